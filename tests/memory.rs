//! The library's own accounting of what it holds, checked against what it allocated: a test
//! binary of its own, so that its counting allocator sees no other test's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

/// The system allocator, counting the bytes live.
struct Counted;

static LIVE: AtomicI64 = AtomicI64::new(0);

/// The most bytes live at once since it was last set to what was live.
static PEAK: AtomicI64 = AtomicI64::new(0);

/// One test at a time: the counters are the whole binary's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn add(bytes: usize, sign: i64) {
    let now = LIVE.fetch_add(sign * i64::try_from(bytes).unwrap_or(i64::MAX), Ordering::Relaxed)
        + sign * i64::try_from(bytes).unwrap_or(i64::MAX);
    PEAK.fetch_max(now, Ordering::Relaxed);
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
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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

/// The stable entity ids of `tpmap link` take two vectors of 8 bytes beyond the input at most —
/// the entities' (each one's smallest record, then in its place its id) and the records' ids —
/// not three (each entity's smallest record was held in a vector of its own to the end: 0.29 GB
/// more at the peak of the national job).
#[test]
fn entity_ids_hold_two_vectors_at_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = 1 << 20;
    // Every record an entity of its own, numbered backwards.
    let entity: Vec<u32> = (0..n as u32).rev().collect();
    let keys: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let ids = tpmap::link::model::entity_ids_by(&entity, |_| "survey", |i| keys[i].as_str());
    let peak = u64::try_from(PEAK.load(Ordering::SeqCst) - before).unwrap();
    assert_eq!(ids.len(), n);
    assert_eq!(ids[0], tpmap::link::model::entity_id("survey", &keys[0]));
    // Two vectors of n 8-byte values, and the hashing's own small strings.
    let two = 2 * 8 * n as u64;
    assert!(peak >= two && peak <= two + (64 << 10), "peak {peak} bytes, two vectors {two}");
}

/// Clustering reads each record's citizen ID where it is held: no copy of the IDs (8 bytes a
/// record, 0.42 GB for the national job's 52 M records) beside the union's parents, sources and
/// sorted pairs; and the entities numbered in the parents' room, not in two more vectors of 4
/// bytes a record (the peak of the clustering's end). At most 10 bytes a record: the parents (4),
/// the sources' bit sets (1), the accepted pairs' indices (4 a pair: 2 a record here) and the
/// stable sort's copy of them (2).
#[test]
fn clustering_makes_no_copy_of_the_ids() {
    use tpmap::link::{Scored, Task};
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n: usize = 1 << 20;
    // Records 2i and 2i + 1 (of two sources) are one person; the first carries an ID.
    let ids: Vec<Option<u64>> = (0..n as u64).map(|i| (i % 2 == 0).then_some(1_000 + i)).collect();
    let source: Vec<u16> = (0..n).map(|i| (i % 2) as u16).collect();
    let scored: Vec<Scored> = (0..n as u32 / 2)
        .map(|k| Scored {
            a: 2 * k,
            b: 2 * k + 1,
            weight: 10.0,
            probability: 0.99,
            deterministic: false,
            contradicted: false,
        })
        .collect();
    let cluster =
        |n: usize| tpmap::link::model::cluster_with(&ids[..n], &source[..n], 2, &scored[..n / 2], 0.9, Task::Link);
    // The thread pool made before counting.
    cluster(64);
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let entity = cluster(n);
    let peak = u64::try_from(PEAK.load(Ordering::SeqCst) - before).unwrap();
    assert!(entity.iter().enumerate().all(|(i, &e)| e as usize == i / 2), "each pair one entity, numbered in order");
    // The IDs copied took 8 bytes a record more while the union was made; the entities by root
    // and the entities beside the parents, 8 more at the end (12 bytes a record).
    let ten = 10 * n as u64;
    assert!(peak <= ten, "peak {peak} bytes, 10 a record {ten}");
}
