//! Freed memory given back to the system between the phases of a large job.
//!
//! The library allocates through the program's global allocator and knows nothing of it. An
//! allocator that keeps freed memory for reuse — mimalloc, which the `tpmap` program uses, keeps
//! it until a purge that may come minutes later — holds on to what one phase freed while the
//! next builds its own structures, and the peak is the sum of both. The program names what gives
//! memory back ([`set_release`]); the library calls [`release`] where a phase has just freed
//! large structures: a link job when it starts (what its caller freed), after each blocking
//! rule's keys and after the rule, after scoring and after its records go; the callers that read a job's matches once they
//! have (the welfare registry's marks, a beneficiary list, the panel); a partitioned run once its
//! waves are read. Without a hook, [`release`] does nothing (the system allocator of the Python
//! extension gives blocks of 32 MB and more back when they are freed).
//!
//! ```
//! fn collect() { /* e.g. mimalloc's mi_collect(true) */ }
//! tpmap::memory::set_release(collect);
//! tpmap::memory::release(); // calls `collect` on this thread and on every worker thread
//! ```

use std::sync::OnceLock;

/// The program's hook, set once.
static RELEASE: OnceLock<fn()> = OnceLock::new();

/// Sets the function that gives this thread's freed memory back to the system (for mimalloc:
/// `mi_collect(true)`). Only the first call takes effect: returns whether this one did.
pub fn set_release(f: fn()) -> bool {
    RELEASE.set(f).is_ok()
}

/// Calls the hook of [`set_release`], if any, on this thread and on each thread of the worker
/// pool (an allocator keeps memory freed on a thread in that thread's heap).
pub fn release() {
    if let Some(&f) = RELEASE.get() {
        f();
        crate::in_pool(|| rayon::broadcast(|_| f()));
    }
}

/// Bytes `v`'s allocation takes (its capacity, not its length): what a structure built of
/// vectors reports as its share of a memory budget.
pub fn vec_bytes<T>(v: &Vec<T>) -> u64 {
    (v.capacity() as u64).saturating_mul(std::mem::size_of::<T>() as u64)
}

/// Bytes a `std` hash map of strings takes: its table (an entry and a control byte a bucket,
/// the table at most 8/7 its capacity) and each key's text.
pub(crate) fn string_map_bytes<V>(m: &std::collections::HashMap<String, V>) -> u64 {
    let buckets = (m.capacity() as u64).saturating_mul(8) / 7;
    let entry = std::mem::size_of::<(String, V)>() as u64 + 1;
    m.keys().fold(buckets.saturating_mul(entry), |b, k| b.saturating_add(k.capacity() as u64))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::thread::{self, ThreadId};

    static SEEN: Mutex<Vec<ThreadId>> = Mutex::new(Vec::new());

    fn note() {
        SEEN.lock().unwrap().push(thread::current().id());
    }

    #[test]
    fn the_hook_runs_on_this_thread_and_every_worker() {
        // The only test in the crate that sets the hook (it is process-wide and set once); other
        // tests' calls can only add threads.
        assert!(super::set_release(note));
        assert!(!super::set_release(note), "a second hook is refused");
        super::release();
        let seen: HashSet<ThreadId> = SEEN.lock().unwrap().iter().copied().collect();
        let workers = crate::in_pool(|| rayon::broadcast(|_| thread::current().id()));
        assert!(!workers.is_empty());
        for w in workers.iter().chain([&thread::current().id()]) {
            assert!(seen.contains(w), "a thread the hook did not run on");
        }
    }
}
