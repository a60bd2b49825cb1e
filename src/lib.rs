//! # tpmap
//!
//! The engine for Thailand's TPMAP poverty-eradication work: ingest BMN (จปฐ.) household and
//! person extracts and validate every row ([`ingest`]); link registries ([`link`]); score
//! deprivation ([`score`]); compute area measures ([`aggregate`], [`published`], [`mpi`]) and their
//! changes between rounds ([`changes`]); and plan assistance ([`programs`], [`plan`], [`report`]).
//!
//! The data flows one way: [`ingest`] → [`link`] → [`score`] → [`aggregate`] → match ([`plan`]) →
//! [`report`]. The core works
//! on plain columnar Rust data ([`extract`]); polars frames and Arrow batches live at the edges
//! ([`frame`]).
//!
//! ```no_run
//! use tpmap::ingest::{ingest, IngestOptions};
//! let got = ingest("data-samples/households.csv".as_ref(), "data-samples/persons.csv".as_ref(), &IngestOptions::default())?;
//! println!("{:#?}", got.report);
//! # Ok::<(), tpmap::Error>(())
//! ```
#![warn(missing_docs)]

/// Gives a fieldless enum its text forms, once for every front end: `name()`, `ALL`, `Display`,
/// `FromStr` (case-insensitive, `_` read as `-`, aliases accepted) and, with the `cli` feature,
/// `clap::ValueEnum`. The command line and Python parse options with these; neither keeps a list
/// of its own.
macro_rules! text_forms {
    ($ty:ident, $what:literal, { $($var:ident => $name:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl $ty {
            /// Every value, in order.
            pub const ALL: &'static [$ty] = &[$($ty::$var),+];

            /// The value's text form (what `FromStr` reads and `Display` writes).
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$var => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = crate::Error;
            fn from_str(s: &str) -> crate::Result<Self> {
                let t = s.trim().to_ascii_lowercase().replace('_', "-");
                match t.as_str() {
                    $($name $(| $alias)* => Ok($ty::$var),)+
                    _ => Err(crate::Error::Parse(format!(
                        "{} must be {}, not '{}'",
                        $what,
                        [$($name),+].join(", "),
                        s
                    ))),
                }
            }
        }

        #[cfg(feature = "cli")]
        impl clap::ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(match self {
                    $($ty::$var => clap::builder::PossibleValue::new($name)$(.alias($alias))*),+
                })
            }
        }
    };
}

pub mod aggregate;
pub mod areas;
pub mod changes;
pub mod diagnostics;
pub mod error;
pub mod extract;
pub mod frame;
pub mod ids;
pub mod indicators;
pub mod ingest;
pub mod limits;
pub mod link;
pub mod memory;
pub mod mpi;
pub mod output;
pub mod panel;
pub mod partial;
pub mod pipeline;
pub mod plan;
pub mod programs;
pub mod published;
pub mod rational;
pub mod report;
pub mod score;
mod spill;
pub mod summary;
pub mod synth;
pub mod thai;

pub use error::{Error, Result};

/// Runs `f` in polars' thread pool. Every parallel kernel of the crate runs there: polars decodes
/// and encodes Parquet in that pool, and a second pool on the same cores would oversubscribe them.
pub(crate) fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    polars_core::runtime::THREAD_POOL.install(f)
}

/// Appends `n` copies of `zero` to `v`, written on every core (rayon collects an indexed iterator
/// in place). A column's fresh pages are zeroed by the kernel on their first write, one fault a
/// page: spread over the cores rather than paid on one. (Nationally: 28-33 ms for one 54 MB
/// table of sums on one core, 11-16 ms on two.)
pub(crate) fn extend_zeroed<T: Copy + Send + Sync>(v: &mut Vec<T>, n: usize, zero: T) {
    use rayon::prelude::*;
    v.par_extend(rayon::iter::repeat_n(zero, n).with_min_len(1 << 14));
}

/// The README's Rust examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// FNV-1a over bytes: fast, and stable across runs and platforms (std's hasher is randomly
/// seeded), for blocking keys and for ids that link rounds without being kept.
pub(crate) fn stable_hash(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}
