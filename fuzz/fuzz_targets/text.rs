//! Text parsers: dates, IDs, fractions, cell parsers, redaction.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tpmap::ingest::{parse, source::Cell};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Some(d) = tpmap::thai::parse_date(s) {
        assert!(d.month <= 12 && d.day <= 31);
    }
    let _ = tpmap::ids::CitizenId::parse(s);
    let _ = s.parse::<tpmap::ids::HouseholdId>();
    let _ = s.parse::<tpmap::rational::Rational>();
    let r = tpmap::ids::redact_numbers(s);
    assert_eq!(r.chars().count(), s.chars().count());
    let c = Cell::Str(s);
    let _ = parse::status(c, parse::OneMeans::Fail);
    let _ = parse::flag(c);
    let _ = parse::number(c);
    let _ = parse::year_be(c);
    let _ = parse::date(c);
    let _ = parse::sex(c);
    let _ = parse::relation(c);
});
