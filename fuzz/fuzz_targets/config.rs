//! Configuration text: eligibility rules, catalogues, saved link models, editions.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let e = tpmap::indicators::Edition::bmn_2560();
    let _ = tpmap::programs::Rule::parse(s, &e, tpmap::score::Unit::Households);
    let _ = tpmap::programs::Catalogue::from_toml(s, &e, "fuzz.toml");
    let _ = tpmap::link::Model::from_json(s);
    let _ = tpmap::indicators::Edition::from_toml(s);
});
