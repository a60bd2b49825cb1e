//! The library's own accounting of what it holds, checked against what it allocated: a test
//! binary of its own, so that its counting allocator sees no other test's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

/// The system allocator, counting the bytes live.
struct Counted;

static LIVE: AtomicI64 = AtomicI64::new(0);

fn add(bytes: usize, sign: i64) {
    LIVE.fetch_add(sign * i64::try_from(bytes).unwrap_or(i64::MAX), Ordering::Relaxed);
}

// SAFETY: every call is passed on to `System` unchanged; only a counter is kept beside it.
unsafe impl GlobalAlloc for Counted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size(), 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size(), 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) };
        add(layout.size(), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(layout.size(), -1);
            add(new_size, 1);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counted = Counted;

fn samples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data-samples"))
}

#[test]
fn a_keyed_registry_holds_what_it_reports() {
    // The samples' registry ten times over (each copy its own record IDs, house numbers moved
    // on: more distinct values), 25 k records.
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(samples().join("welfare_registry.csv")).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let mut out = lines.next().unwrap().to_string() + "\n";
    let rows: Vec<&str> = lines.collect();
    for copy in 0..10 {
        for row in &rows {
            let mut cells: Vec<String> = row.split(',').map(str::to_string).collect();
            cells[0] = format!("{}-{copy}", cells[0]);
            if let Ok(h) = cells[8].parse::<u32>() {
                cells[8] = (h + 1000 * copy).to_string();
            }
            out += &(cells.join(",") + "\n");
        }
    }
    let registry = tmp.path().join("registry.csv");
    std::fs::write(&registry, out).unwrap();
    let key = |path: &Path| tpmap::link::parts::Counting::of_registry(path, &Default::default()).unwrap();
    // Once first, so that what lives on after (the worker pool, lazily built tables) is not
    // counted as the registry's.
    drop(key(&registry));
    let before = LIVE.load(Ordering::SeqCst);
    let mut c = key(&registry);
    let live = u64::try_from(LIVE.load(Ordering::SeqCst) - before).unwrap();
    let reported = c.registry_bytes();
    assert_eq!(c.registry_len(), 10 * rows.len());
    assert!(live > 1 << 20, "{live} bytes live");
    // Within 2 % of what is live (the little it does not count: options, rule lists; 0.04 %
    // when written).
    assert!(reported.abs_diff(live) * 50 <= live, "reported {reported}, live {live}");
    // Room for the persons is made whole, once: exactly 8 bytes a person.
    let before = LIVE.load(Ordering::SeqCst);
    c.reserve(100_000);
    assert_eq!(LIVE.load(Ordering::SeqCst) - before, 800_000);
    c.reserve(100_000);
    assert_eq!(LIVE.load(Ordering::SeqCst) - before, 800_000);
}
