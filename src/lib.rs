//! # tpmap
//!
//! The engine for Thailand's TPMAP poverty-eradication work: ingest BMN (จปฐ.) household and
//! person extracts and validate every row ([`ingest`]); link registries ([`link`]); score
//! deprivation ([`score`]); compute area measures ([`aggregate`], [`published`], [`mpi`]); and
//! plan assistance ([`programs`], [`plan`], [`report`]).
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

pub mod aggregate;
pub mod areas;
pub mod error;
pub mod extract;
pub mod frame;
pub mod ids;
pub mod indicators;
pub mod ingest;
pub mod limits;
pub mod link;
pub mod mpi;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod programs;
pub mod published;
pub mod rational;
pub mod report;
pub mod score;
pub mod summary;
pub mod synth;
pub mod thai;

pub use error::{Error, Result};

/// Runs `f` in polars' thread pool. Every parallel kernel of the crate runs there: polars decodes
/// and encodes Parquet in that pool, and a second pool on the same cores would oversubscribe them.
pub(crate) fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    polars_core::runtime::THREAD_POOL.install(f)
}

/// The README's Rust examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
