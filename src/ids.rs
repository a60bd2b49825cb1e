//! Identifiers: citizen IDs, house IDs, household IDs, and keyed pseudonyms.
//!
//! A [`CitizenId`] never shows its whole number through `Debug` or `Display`: personal data must
//! not leak into logs or error messages (Thailand's PDPA). Use [`CitizenId::expose`] where the
//! full number is really needed, and [`Pseudonymizer`] to share records without it.
//!
//! ```
//! use tpmap::ids::{CitizenId, PseudonymKey};
//! let id: CitizenId = "1101700230503".parse()?;
//! assert_eq!(id.to_string(), "1-xxxx-xxxxx-x0-3"); // never the whole number in a message
//! let key = PseudonymKey::from_bytes(b"a secret of at least 16 bytes")?;
//! assert_eq!(key.pseudonymizer().pseudonym(&id).to_hex().len(), 64);
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;

/// Why a citizen ID was refused. The messages never repeat the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdError {
    /// Not 13 digits after removing dashes and spaces.
    Length,
    /// Something other than digits, dashes and spaces.
    NotDigits,
    /// 13 digits whose check digit does not match.
    CheckDigit,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdError::Length => "citizen ID must have 13 digits",
            IdError::NotDigits => "citizen ID has characters other than digits, dashes and spaces",
            IdError::CheckDigit => "citizen ID check digit does not match",
        })
    }
}

impl From<IdError> for Error {
    fn from(e: IdError) -> Self {
        Error::Parse(e.to_string())
    }
}

/// Check digit of a citizen ID from its first 12 digits:
/// `(11 − (Σ dᵢ·(14−i)) mod 11) mod 10`.
///
/// The check is weak: digit 3 has weight 11 ≡ 0 (mod 11), so a typo there is never caught.
pub fn check_digit(first12: &[u8; 12]) -> u8 {
    let sum: u32 = first12.iter().enumerate().map(|(i, &d)| d as u32 * (13 - i as u32)).sum();
    ((11 - sum % 11) % 10) as u8
}

/// A Thai 13-digit citizen ID (เลขประจำตัวประชาชน) whose check digit is valid.
///
/// Parses `1234567890121`, `1-2345-67890-12-1`, spaces and Thai digits:
///
/// ```
/// use tpmap::ids::CitizenId;
/// let id: CitizenId = "๑-๒๓๔๕-๖๗๘๙๐-๑๒-๑".parse().unwrap();
/// assert_eq!(id, "1234567890121".parse().unwrap());
/// assert_eq!(id.to_string(), "1-xxxx-xxxxx-x2-1"); // never the whole number
/// assert!("1234567890122".parse::<CitizenId>().is_err());
/// ```
///
/// Stored as a `NonZeroU64` (an all-zero ID never passes the check), so `Option<CitizenId>` takes
/// 8 bytes: 290 MB less for the 36.6 M people of a national extract.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CitizenId(std::num::NonZeroU64);

impl CitizenId {
    /// Parses a citizen ID, checking its check digit.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let digits = Self::digits_of(s)?;
        Self::from_digits(&digits)
    }

    /// Parses 13 digits without the check (for registry files that keep mistyped IDs).
    pub fn parse_unchecked(s: &str) -> Result<u64, IdError> {
        let d = Self::digits_of(s)?;
        Ok(d.iter().fold(0u64, |acc, &x| acc * 10 + x as u64))
    }

    fn digits_of(s: &str) -> Result<[u8; 13], IdError> {
        // The common form, 13 ASCII digits, without decoding characters one by one (about 2 %
        // of reading a national extract went to the general loop below).
        if let Ok(b) = <&[u8; 13]>::try_from(s.as_bytes())
            && b.iter().all(u8::is_ascii_digit)
        {
            return Ok(b.map(|c| c - b'0'));
        }
        Self::digits_of_chars(s)
    }

    /// [`CitizenId::digits_of`] a character at a time: Thai digits, dashes and spaces.
    fn digits_of_chars(s: &str) -> Result<[u8; 13], IdError> {
        let mut out = [0u8; 13];
        let mut n = 0usize;
        for c in s.chars() {
            let d = match c {
                '0'..='9' => c as u32 - '0' as u32,
                '\u{0E50}'..='\u{0E59}' => c as u32 - 0x0E50,
                '-' | ' ' | '\u{00A0}' | '\t' => continue,
                _ => return Err(IdError::NotDigits),
            };
            if n == 13 {
                return Err(IdError::Length);
            }
            out[n] = d as u8;
            n += 1;
        }
        if n != 13 {
            return Err(IdError::Length);
        }
        Ok(out)
    }

    /// Builds an ID from 13 digits, checking the check digit.
    pub fn from_digits(d: &[u8; 13]) -> Result<Self, IdError> {
        let first: [u8; 12] = d[..12].try_into().expect("12 digits");
        if d.iter().any(|&x| x > 9) {
            return Err(IdError::NotDigits);
        }
        if check_digit(&first) != d[12] {
            return Err(IdError::CheckDigit);
        }
        Ok(CitizenId::from_checked(d.iter().fold(0u64, |acc, &x| acc * 10 + x as u64)))
    }

    fn from_checked(v: u64) -> Self {
        CitizenId(std::num::NonZeroU64::new(v).expect("a valid check digit rules out zero"))
    }

    /// Builds an ID from its numeric value, checking the check digit.
    pub fn from_u64(v: u64) -> Result<Self, IdError> {
        if v >= 10_000_000_000_000 {
            return Err(IdError::Length);
        }
        Self::from_digits(&Self::split(v))
    }

    /// Completes 12 digits with their check digit.
    pub fn with_check_digit(first12: &[u8; 12]) -> Self {
        let mut d = [0u8; 13];
        d[..12].copy_from_slice(first12);
        d[12] = check_digit(first12);
        CitizenId::from_checked(d.iter().fold(0u64, |acc, &x| acc * 10 + x as u64))
    }

    fn split(mut v: u64) -> [u8; 13] {
        let mut d = [0u8; 13];
        for i in (0..13).rev() {
            d[i] = (v % 10) as u8;
            v /= 10;
        }
        d
    }

    /// The 13 digits.
    pub fn digits(&self) -> [u8; 13] {
        Self::split(self.0.get())
    }

    /// The numeric value. This *is* the raw ID: keep it out of logs.
    pub fn as_u64(&self) -> u64 {
        self.0.get()
    }

    /// The numeric value, never zero (as `Option<NonZeroU64>`, 8 bytes with or without an ID).
    /// This *is* the raw ID: keep it out of logs.
    pub fn as_nonzero(&self) -> std::num::NonZeroU64 {
        self.0
    }

    /// The full 13-digit string, for outputs that must carry the raw ID. Keep it out of logs.
    pub fn expose(&self) -> String {
        format!("{:013}", self.0.get())
    }

    /// [`CitizenId::expose`] into `buf`, without allocating (writers of millions of IDs).
    /// Keep it out of logs.
    ///
    /// ```
    /// let id = tpmap::ids::CitizenId::parse("1234567890121").unwrap();
    /// assert_eq!(id.expose_into(&mut [0; 13]), id.expose());
    /// ```
    pub fn expose_into<'b>(&self, buf: &'b mut [u8; 13]) -> &'b str {
        for (b, d) in buf.iter_mut().zip(self.digits()) {
            *b = b'0' + d;
        }
        // Thirteen ASCII digits are always UTF-8.
        std::str::from_utf8(buf).unwrap_or_default()
    }

    /// A masked form for messages: first digit and the last two, `1-xxxx-xxxxx-x2-1`.
    pub fn masked(&self) -> String {
        let d = self.digits();
        format!("{}-xxxx-xxxxx-x{}-{}", d[0], d[11], d[12])
    }
}

impl fmt::Display for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CitizenId({})", self.masked())
    }
}

impl FromStr for CitizenId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CitizenId::parse(s)
    }
}

/// Digits in a run (ASCII or Thai, with single `-`, space or `.` between them) from which a run is
/// hidden by [`redact_numbers`]: citizen IDs have 13, house IDs 11; area codes (at most 10) stay.
pub const REDACT_MIN_DIGITS: usize = 11;

/// True when [`redact_numbers`] would hide something in `text`: a run of [`REDACT_MIN_DIGITS`]
/// or more digits (ASCII or Thai, single `-`, space or `.` between two of them). One pass over the
/// characters, nothing allocated: a household's house number is checked with it on every row.
///
/// ```
/// use tpmap::ids::has_long_number;
/// assert!(has_long_number("ID 1-1017-00230-50-6"));
/// assert!(!has_long_number("99/1 หมู่ 4, village 6101010101"));
/// ```
pub fn has_long_number(text: &str) -> bool {
    // Digits in the current run, and whether the previous character was a separator inside it
    // (one may stand between two digits; a second, or anything else, ends the run).
    let (mut digits, mut separator) = (0usize, false);
    for c in text.chars() {
        if c.is_ascii_digit() || ('\u{0E50}'..='\u{0E59}').contains(&c) {
            digits += 1;
            separator = false;
            if digits >= REDACT_MIN_DIGITS {
                return true;
            }
        } else if matches!(c, '-' | ' ' | '.') && digits > 0 && !separator {
            separator = true;
        } else {
            digits = 0;
            separator = false;
        }
    }
    false
}

/// Hides every long number in a text meant for people (messages, logs, reports): each digit of a
/// run of [`REDACT_MIN_DIGITS`] or more digits becomes `#`. Citizen IDs (also written
/// `1-2345-67890-12-3` or in Thai digits) and mistyped ones never reach a message whole; area
/// codes, row numbers and counts keep their digits.
///
/// ```
/// use tpmap::ids::redact_numbers;
/// assert_eq!(redact_numbers("no program '1101700230506'"), "no program '#############'");
/// assert_eq!(redact_numbers("ID 1-1017-00230-50-6, village 6101010101"), "ID #-####-#####-##-#, village 6101010101");
/// assert_eq!(redact_numbers("row 12, 3 fields"), "row 12, 3 fields");
/// ```
pub fn redact_numbers(text: &str) -> std::borrow::Cow<'_, str> {
    fn digit(c: char) -> bool {
        c.is_ascii_digit() || ('\u{0E50}'..='\u{0E59}').contains(&c)
    }
    if !has_long_number(text) {
        return std::borrow::Cow::Borrowed(text);
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    // Runs: maximal sequences of digits where a single separator may stand between two digits.
    let mut runs: Vec<(usize, usize)> = Vec::new(); // char index ranges
    let mut i = 0;
    while i < chars.len() {
        if !digit(chars[i].1) {
            i += 1;
            continue;
        }
        let (start, mut end, mut count) = (i, i + 1, 1usize);
        loop {
            if end < chars.len() && digit(chars[end].1) {
                end += 1;
                count += 1;
            } else if end + 1 < chars.len() && matches!(chars[end].1, '-' | ' ' | '.') && digit(chars[end + 1].1) {
                end += 2;
                count += 1;
            } else {
                break;
            }
        }
        if count >= REDACT_MIN_DIGITS {
            runs.push((start, end));
        }
        i = end;
    }
    if runs.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut k = 0;
    for (ci, &(_, c)) in chars.iter().enumerate() {
        while k < runs.len() && runs[k].1 <= ci {
            k += 1;
        }
        let inside = k < runs.len() && runs[k].0 <= ci && ci < runs[k].1;
        out.push(if inside && digit(c) { '#' } else { c });
    }
    std::borrow::Cow::Owned(out)
}

/// A keyed pseudonym of a citizen ID: HMAC-SHA256 under a caller's secret key.
///
/// A plain hash of a 13-digit number can be reversed by trying all 10¹² candidates; a keyed HMAC
/// cannot without the key. Equal IDs give equal pseudonyms under one key, so records can still be
/// joined by whoever receives them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pseudonym(pub [u8; 32]);

impl Pseudonym {
    /// Lower-case hex of all 32 bytes.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The first 8 bytes as an integer, for ordering and tie-breaking.
    pub fn prefix_u64(&self) -> u64 {
        u64::from_be_bytes(self.0[..8].try_into().expect("8 bytes"))
    }
}

impl fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pseudonym({})", &self.to_hex()[..16])
    }
}

/// Where a [`PseudonymKey`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// A key file (`--key-file`).
    File,
    /// The `TPMAP_PSEUDONYM_KEY` environment variable.
    Environment,
    /// Given by the caller as bytes.
    Given,
    /// tpmap's public default: anyone can recompute these pseudonyms.
    PublicDefault,
}

/// The secret key of pseudonyms and of tie-breaking in plans, with where it came from. One policy
/// for the library, the command line and Python ([`PseudonymKey::resolve`]): a key file, else
/// `$TPMAP_PSEUDONYM_KEY`, else the public default — and outputs made with the public default say
/// so loudly ([`PseudonymKey::warning`]), because anyone who enumerates citizen IDs can reverse
/// such pseudonyms.
#[derive(Clone, PartialEq, Eq)]
pub struct PseudonymKey {
    bytes: Vec<u8>,
    source: KeySource,
}

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PseudonymKey(<hidden>, {:?})", self.source)
    }
}

/// Bytes a key must have at least.
pub const MIN_KEY_BYTES: usize = 16;

impl PseudonymKey {
    /// The environment variable that holds a key.
    pub const ENV: &'static str = "TPMAP_PSEUDONYM_KEY";
    const PUBLIC: &'static [u8] = b"tpmap-default-key: set your own";

    /// tpmap's public default key.
    pub fn public_default() -> PseudonymKey {
        PseudonymKey { bytes: Self::PUBLIC.to_vec(), source: KeySource::PublicDefault }
    }

    /// A key given as bytes (at least [`MIN_KEY_BYTES`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<PseudonymKey, Error> {
        Self::checked(bytes.to_vec(), KeySource::Given, "the key")
    }

    fn checked(bytes: Vec<u8>, source: KeySource, what: &str) -> Result<PseudonymKey, Error> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(Error::Config(format!(
                "{what} has {} bytes; a pseudonym key needs at least {MIN_KEY_BYTES} (use random bytes, e.g. `head -c 32 /dev/urandom > key`)",
                bytes.len()
            )));
        }
        Ok(PseudonymKey { bytes, source })
    }

    /// The key by tpmap's policy: `key_file` when given, else `$TPMAP_PSEUDONYM_KEY` when set and
    /// not empty, else the public default.
    pub fn resolve(key_file: Option<&std::path::Path>) -> Result<PseudonymKey, Error> {
        if let Some(p) = key_file {
            let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
            if meta.len() > 4096 {
                return Err(Error::Config(format!("the key file {} is larger than 4096 bytes", p.display())));
            }
            let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
            return Self::checked(bytes, KeySource::File, &format!("the key file {}", p.display()));
        }
        match std::env::var_os(Self::ENV) {
            Some(v) if !v.is_empty() => {
                Self::checked(v.as_encoded_bytes().to_vec(), KeySource::Environment, &format!("${}", Self::ENV))
            }
            _ => Ok(Self::public_default()),
        }
    }

    /// Where the key came from.
    pub fn source(&self) -> KeySource {
        self.source
    }

    /// True for the public default key.
    pub fn is_public_default(&self) -> bool {
        self.source == KeySource::PublicDefault
    }

    /// The warning every output carrying pseudonyms repeats when the key is the public default.
    pub fn warning(&self) -> Option<&'static str> {
        self.is_public_default().then_some(
            "WARNING: pseudonyms made with tpmap's PUBLIC default key: anyone can reverse them by trying every citizen ID. Set $TPMAP_PSEUDONYM_KEY or --key-file before sharing these files.",
        )
    }

    /// A pseudonymizer with this key.
    pub fn pseudonymizer(&self) -> Pseudonymizer {
        Pseudonymizer::new(&self.bytes)
    }
}

impl Default for PseudonymKey {
    fn default() -> Self {
        Self::public_default()
    }
}

/// Makes [`Pseudonym`]s with one secret key.
///
/// ```
/// use tpmap::ids::{CitizenId, Pseudonymizer};
/// let p = Pseudonymizer::new(b"province secret");
/// let id: CitizenId = "1234567890121".parse().unwrap();
/// assert_eq!(p.pseudonym(&id), p.pseudonym(&id));
/// assert_ne!(p.pseudonym(&id), Pseudonymizer::new(b"other").pseudonym(&id));
/// ```
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl Pseudonymizer {
    /// A pseudonymizer keyed with `key` (any length; use at least 16 random bytes).
    pub fn new(key: &[u8]) -> Self {
        Pseudonymizer { mac: Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length") }
    }

    /// The pseudonym of a citizen ID: HMAC-SHA256(key, the 13 ASCII digits).
    pub fn pseudonym(&self, id: &CitizenId) -> Pseudonym {
        self.pseudonym_bytes(id.expose().as_bytes())
    }

    /// The pseudonym of any byte string (household IDs, composite keys).
    pub fn pseudonym_bytes(&self, data: &[u8]) -> Pseudonym {
        let mut mac = self.mac.clone();
        mac.update(data);
        Pseudonym(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pseudonymizer(<key hidden>)")
    }
}

/// An 11-digit house ID (รหัสประจำบ้าน). No check-digit rule is confirmed, so none is applied.
///
/// Held as its value plus one, never zero, so that an `Option<HouseId>` takes 8 bytes, not 16
/// (a column of them for every household of an extract and of each panel round: 0.1 GB saved
/// per national round). The order is the values'.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HouseId(std::num::NonZeroU64);

impl fmt::Debug for HouseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HouseId({})", self.as_u64())
    }
}

impl HouseId {
    /// The numeric value.
    pub fn as_u64(&self) -> u64 {
        self.0.get() - 1
    }

    /// The house ID of an 11-digit value (checked by the callers).
    fn of(v: u64) -> HouseId {
        // v < 10^11, so v + 1 neither overflows nor is zero.
        HouseId(std::num::NonZeroU64::MIN.saturating_add(v))
    }

    /// The house ID of numeric value `v` (`None` beyond 11 digits).
    ///
    /// ```
    /// use tpmap::ids::HouseId;
    /// let h: HouseId = "10010000001".parse()?;
    /// assert_eq!(HouseId::from_u64(h.as_u64()), Some(h));
    /// assert_eq!(HouseId::from_u64(100_000_000_000), None);
    /// # Ok::<(), tpmap::Error>(())
    /// ```
    pub fn from_u64(v: u64) -> Option<HouseId> {
        (v < 100_000_000_000).then(|| HouseId::of(v))
    }
}

impl FromStr for HouseId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        // The common form, 11 ASCII digits, without folding and filtering into a new string
        // (every household row of an extract has one; a proptest holds this to the general reader).
        if s.len() == 11
            && let Some(v) = crate::thai::ascii_digits(s.as_bytes(), 11)
        {
            return Ok(HouseId::of(v));
        }
        Self::from_text(s)
    }
}

impl HouseId {
    /// [`HouseId::from_str`] of any text: Thai digits, digits grouped by dashes or spaces.
    fn from_text(s: &str) -> Result<Self, Error> {
        let digits: String = crate::thai::fold_digits(s).chars().filter(|c| *c != '-' && *c != ' ').collect();
        if digits.len() != 11 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Parse("house ID must have 11 digits".into()));
        }
        Ok(HouseId::of(digits.parse().map_err(|_| Error::Parse("house ID must have 11 digits".into()))?))
    }
}

impl fmt::Display for HouseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:011}", self.as_u64())
    }
}

/// A household's key within an extract: up to 18 digits (BMN keys a household by its house ID and
/// a 2-digit household number, 13 digits in all; other systems use their own numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HouseholdId(pub u64);

impl FromStr for HouseholdId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        // The common form, 1 to 18 ASCII digits, without trimming, folding and the checks for
        // grouping below (they would read it the same; a proptest holds them to it).
        match crate::thai::ascii_digits(s.as_bytes(), 18) {
            Some(v) => Ok(HouseholdId(v)),
            None => Self::from_text(s),
        }
    }
}

impl HouseholdId {
    /// [`HouseholdId::from_str`] of any text: Thai digits, digits grouped by dashes or spaces.
    fn from_text(s: &str) -> Result<Self, Error> {
        let bad = || Error::Parse("household ID must be 1 to 18 digits".into());
        let s = crate::thai::fold_digits(s.trim());
        let b = s.as_bytes();
        // Dashes and spaces may group digits (`4001-000000001`), never lead or trail: `-3` is a
        // negative number, not household 3.
        let grouped = b.first().is_some_and(u8::is_ascii_digit)
            && b.last().is_some_and(u8::is_ascii_digit)
            && !s.contains("--")
            && !s.contains("  ");
        if !grouped {
            return Err(bad());
        }
        // Read in place (this runs for every household and person row of a text extract): 18
        // digits at most, so the value cannot overflow.
        let (mut value, mut digits) = (0u64, 0usize);
        for &c in b {
            match c {
                b'0'..=b'9' => {
                    digits += 1;
                    if digits > 18 {
                        return Err(bad());
                    }
                    value = value * 10 + u64::from(c - b'0');
                }
                b'-' | b' ' => {}
                _ => return Err(bad()),
            }
        }
        Ok(HouseholdId(value))
    }
}

impl fmt::Display for HouseholdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_id_and_forms() {
        let a: CitizenId = "1234567890121".parse().unwrap();
        for s in ["1-2345-67890-12-1", "1 2345 67890 12 1", "๑๒๓๔๕๖๗๘๙๐๑๒๑"] {
            assert_eq!(s.parse::<CitizenId>().unwrap(), a);
        }
        assert_eq!(a.expose(), "1234567890121");
        assert_eq!(format!("{a:?}"), "CitizenId(1-xxxx-xxxxx-x2-1)");
        assert_eq!("123456789012".parse::<CitizenId>(), Err(IdError::Length));
        assert_eq!("12345678901211".parse::<CitizenId>(), Err(IdError::Length));
        assert_eq!("12345678901a1".parse::<CitizenId>(), Err(IdError::NotDigits));
        assert_eq!("1234567890120".parse::<CitizenId>(), Err(IdError::CheckDigit));
    }

    #[test]
    fn errors_do_not_echo_input() {
        let e = "1234567890122".parse::<CitizenId>().unwrap_err().to_string();
        assert!(!e.contains("123456789012"), "{e}");
    }

    #[test]
    fn option_is_eight_bytes_and_zero_is_invalid() {
        assert_eq!(std::mem::size_of::<Option<CitizenId>>(), 8);
        assert!(CitizenId::parse("0000000000000").is_err());
        // The check digit of twelve zeros is 1.
        assert_eq!(check_digit(&[0; 12]), 1);
    }

    #[test]
    fn third_digit_typo_is_invisible() {
        // Weight of digit 3 is 11 ≡ 0 (mod 11): changing it keeps the check digit valid.
        let a = CitizenId::parse("1234567890121").unwrap();
        let mut d = a.digits();
        d[2] = (d[2] + 4) % 10;
        assert!(CitizenId::from_digits(&d).is_ok());
    }

    #[test]
    fn house_and_household_ids() {
        assert_eq!("๑๒๓๔๕๖๗๘๙๐๑".parse::<HouseId>().unwrap().to_string(), "12345678901");
        assert!("1234567890".parse::<HouseId>().is_err());
        // Zero and the largest value are house IDs, ordered and shown by their values; an
        // absent one takes no room of its own.
        let (zero, max) = ("00000000000".parse::<HouseId>().unwrap(), "99999999999".parse::<HouseId>().unwrap());
        assert_eq!((zero.as_u64(), max.as_u64()), (0, 99_999_999_999));
        assert_eq!(
            (zero.to_string(), format!("{max:?}")),
            ("00000000000".to_string(), "HouseId(99999999999)".to_string())
        );
        assert!(zero < HouseId::from_u64(1).unwrap() && HouseId::from_u64(1).unwrap() < max);
        assert_eq!(std::mem::size_of::<Option<HouseId>>(), 8);
        assert_eq!("0012".parse::<HouseholdId>().unwrap(), HouseholdId(12));
        assert!("12a".parse::<HouseholdId>().is_err());
        assert!("1234567890123456789".parse::<HouseholdId>().is_err());
    }

    #[test]
    fn pseudonym_is_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let p = Pseudonymizer::new(b"Jefe");
        assert_eq!(
            p.pseudonym_bytes(b"what do ya want for nothing?").to_hex(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    proptest! {
        /// A household ID of plain digits reads as the general reader reads it, and only 1 to
        /// 18 ASCII digits take the fast path.
        #[test]
        fn plain_household_ids_read_as_the_general_reader_reads_them(
            s in "[0-9]{1,20}|[0-9๐-๙ -]{1,20}|[0-9a]{1,5}"
        ) {
            let fast = s.parse::<HouseholdId>().map_err(|e| e.to_string());
            prop_assert_eq!(fast, HouseholdId::from_text(&s).map_err(|e| e.to_string()));
        }

        /// A house ID of 11 plain digits reads as the general reader reads it; other text
        /// (shorter, longer, Thai digits, grouped, letters) gives the general reader's answer.
        #[test]
        fn plain_house_ids_read_as_the_general_reader_reads_them(
            s in "[0-9]{11}|[0-9]{9,13}|[0-9๐-๙ -]{9,15}|[0-9a]{11}"
        ) {
            let fast = s.parse::<HouseId>().map_err(|e| e.to_string());
            prop_assert_eq!(fast, HouseId::from_text(&s).map_err(|e| e.to_string()));
        }

        /// The ASCII fast path reads what the general loop reads, and only 13 ASCII digits take
        /// it (any other text, Thai digits among them, gives the loop's answer).
        #[test]
        fn thirteen_ascii_digits_read_as_the_general_loop_reads_them(
            s in "[0-9]{13}|[0-9๐-๙ -]{11,15}|[0-9a]{13}|[0-9]{12,14}"
        ) {
            prop_assert_eq!(CitizenId::digits_of(&s), CitizenId::digits_of_chars(&s));
        }

        /// The one-pass check agrees with the redaction on text made of digits (ASCII and Thai),
        /// separators and letters, in runs around the threshold.
        #[test]
        fn long_numbers_are_found_exactly_where_redaction_hides_digits(
            parts in proptest::collection::vec(
                prop_oneof![Just("1"), Just("๙"), Just("-"), Just(" "), Just("."), Just("a"), Just("ก"), Just("--")],
                0..40,
            )
        ) {
            let text: String = parts.concat();
            prop_assert_eq!(has_long_number(&text), redact_numbers(&text) != text.as_str(), "{:?}", text);
        }

        /// The in-place household-ID reader agrees with reading a copy of the digits (the
        /// reader before it): the same IDs accepted with the same values, the same rejected.
        #[test]
        fn household_ids_read_in_place_as_from_a_copy(
            parts in proptest::collection::vec(
                prop_oneof![Just("1"), Just("0"), Just("9"), Just("๙"), Just("-"), Just(" "), Just("--"), Just("a"), Just("ก")],
                0..24,
            )
        ) {
            let text: String = parts.concat();
            let copied = {
                let s = crate::thai::fold_digits(text.trim());
                let grouped = s.starts_with(|c: char| c.is_ascii_digit())
                    && s.ends_with(|c: char| c.is_ascii_digit())
                    && !s.contains("--")
                    && !s.contains("  ");
                let digits: String = s.chars().filter(|c| *c != '-' && *c != ' ').collect();
                (grouped && !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| digits.parse::<u64>().ok())
                    .flatten()
            };
            prop_assert_eq!(text.parse::<HouseholdId>().ok().map(|h| h.0), copied, "{:?}", text);
        }

        #[test]
        fn every_generated_id_validates_and_every_other_check_digit_fails(first in proptest::array::uniform12(0u8..10)) {
            let id = CitizenId::with_check_digit(&first);
            prop_assert!(CitizenId::parse(&id.expose()).is_ok());
            let good = id.digits()[12];
            for wrong in (0..10u8).filter(|&c| c != good) {
                let mut d = id.digits();
                d[12] = wrong;
                prop_assert_eq!(CitizenId::from_digits(&d), Err(IdError::CheckDigit));
            }
        }

        #[test]
        fn display_never_shows_the_middle(first in proptest::array::uniform12(0u8..10)) {
            let id = CitizenId::with_check_digit(&first);
            let shown = format!("{id} {id:?}");
            prop_assert!(!shown.contains(&id.expose()[1..11]));
        }
    }
}
