//! An extract's households file (xlsx bytes) with the corpus base persons: every row accounted for.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::households(data, "xlsx"));
