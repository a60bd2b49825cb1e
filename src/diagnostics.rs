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
