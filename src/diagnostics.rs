//! Diagnostics for developers: with `TPMAP_TRACE` set (to anything), long phases print how long
//! they took and the memory in use to standard error — times and sizes only, never data. One
//! switch, read once; the pipeline's steps reach it through [`Traced`], a [`Progress`] wrapper.
//!
//! ```
//! let mut lap = tpmap::diagnostics::Lap::start();
//! // ... read a file ...
//! lap.lap("reading"); // prints `trace: reading: 0.001 s, rss …` only when TPMAP_TRACE is set
//! ```

use std::sync::OnceLock;
use std::time::Instant;

use crate::pipeline::Progress;

/// The environment variable that turns tracing on.
pub const TRACE_VAR: &str = "TPMAP_TRACE";

/// Whether tracing is on (`TPMAP_TRACE` set when first asked).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os(TRACE_VAR).is_some())
}

/// Resident and peak memory of this process (Linux; empty elsewhere).
pub fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).map(|l| l[name.len()..].trim().to_string()).unwrap_or_default()
    };
    format!("rss {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}

/// Guarded calls into other crates' readers currently running (see [`foreign`]).
static FOREIGN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// True while a guarded call into another crate's reader runs: a panic now is that reader
/// tripping over a damaged file, which [`foreign`] turns into an error. A panic hook (the
/// program's, a fuzzer's) can stay quiet then.
pub fn in_foreign_code() -> bool {
    FOREIGN.load(std::sync::atomic::Ordering::Relaxed) > 0
}

/// Runs `f` (a call into polars or calamine on a file from outside), turning a panic inside it —
/// a damaged Parquet page can trip one of polars' assertions — into an error naming `file`.
/// tpmap's own code never relies on this: it is the last line against readers we do not own.
pub fn foreign<T>(file: &std::path::Path, what: &str, f: impl FnOnce() -> crate::Result<T>) -> crate::Result<T> {
    struct Enter;
    impl Drop for Enter {
        fn drop(&mut self) {
            FOREIGN.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    FOREIGN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _enter = Enter;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let said = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let first_line = said.lines().next().unwrap_or("").to_string();
            Err(crate::Error::Format {
                file: file.display().to_string(),
                message: format!(
                    "the {what} failed on this file (it is damaged or not what its name says): {first_line}"
                ),
            })
        }
    }
}

/// A stopwatch whose laps are printed when tracing is on (and cost nothing otherwise).
pub struct Lap(Option<Instant>);

impl Lap {
    /// Starts timing (only when tracing is on).
    pub fn start() -> Lap {
        Lap(enabled().then(Instant::now))
    }

    /// Prints the time since the start or the last lap, labelled `what`, and restarts.
    pub fn lap(&mut self, what: &str) {
        if let Some(t) = self.0 {
            eprintln!("trace: {what}: {:.3} s, {}", t.elapsed().as_secs_f64(), memory());
            self.0 = Some(Instant::now());
        }
    }
}

/// A [`Progress`] that also traces: each step closes the previous one's lap.
pub struct Traced<'a> {
    inner: &'a dyn Progress,
    lap: std::sync::Mutex<(Lap, String)>,
}

impl<'a> Traced<'a> {
    /// Wraps `inner`.
    pub fn new(inner: &'a dyn Progress) -> Traced<'a> {
        Traced { inner, lap: std::sync::Mutex::new((Lap::start(), "start".into())) }
    }
}

impl Progress for Traced<'_> {
    fn step(&self, what: &str) {
        if let Ok(mut g) = self.lap.lock() {
            let (lap, last) = &mut *g;
            lap.lap(last);
            *last = what.to_string();
        }
        self.inner.step(what);
    }
    fn programs(&self, done: usize, total: usize) {
        self.inner.programs(done, total);
    }
}

impl Drop for Traced<'_> {
    fn drop(&mut self) {
        if let Ok(mut g) = self.lap.lock() {
            let (lap, last) = &mut *g;
            lap.lap(last);
        }
    }
}
