//! Area codes (DOPA province, amphoe, tambon and village codes, and TPMAP's 10-digit village ids)
//! and the embedded registry of known areas.
//!
//! The registry embeds `data/areas/areas.csv` (province, amphoe and tambon names and codes from
//! thailand-geography-json, MIT licence, notice in `data/areas/LICENSE-thailand-geography-json`;
//! plus tambon codes used only by the BMN 2559 / TPMAP 2561 village lists) and
//! `data/areas/villages.txt` (every 8-digit village code in the BMN 2559 village names and the TPMAP
//! 2561 tables). `scripts/build_embedded_data.py` derives both from `../shared/data`.
//!
//! ```
//! use tpmap::areas::{AreaCode, AreaLevel, AreaRegistry};
//! let v = AreaCode::parse("4001020101")?; // TPMAP's 10-digit village id
//! assert_eq!(v.level(), AreaLevel::TpmapVillage);
//! let province = v.province();
//! assert_eq!(province.as_str(), "40");
//! assert!(AreaRegistry::embedded().names(&province).is_some()); // ขอนแก่น
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The level of an area in Thailand's administrative hierarchy, as used by TPMAP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaLevel {
    /// The whole country (no code).
    Country,
    /// จังหวัด, 2 digits.
    Province,
    /// อำเภอ / เขต, 4 digits.
    Amphoe,
    /// ตำบล / แขวง, 6 digits.
    Tambon,
    /// หมู่บ้าน / ชุมชน, 8 digits.
    Village,
    /// TPMAP's 10-digit village id: the 8-digit village code and 2 more digits of unpublished
    /// meaning.
    TpmapVillage,
}

impl AreaLevel {
    /// Number of characters of a code at this level.
    pub fn code_len(self) -> usize {
        match self {
            AreaLevel::Country => 0,
            AreaLevel::Province => 2,
            AreaLevel::Amphoe => 4,
            AreaLevel::Tambon => 6,
            AreaLevel::Village => 8,
            AreaLevel::TpmapVillage => 10,
        }
    }

    /// The English name used in outputs: `country`, `province`, `amphoe`, `tambon`, `village`.
    pub fn name(self) -> &'static str {
        match self {
            AreaLevel::Country => "country",
            AreaLevel::Province => "province",
            AreaLevel::Amphoe => "amphoe",
            AreaLevel::Tambon => "tambon",
            AreaLevel::Village => "village",
            AreaLevel::TpmapVillage => "tpmap_village",
        }
    }
}

/// A DOPA area code: province (2), amphoe (4), tambon (6), village (8) or TPMAP village id (10).
///
/// Stored as its ASCII characters (no heap), so it is `Copy` and sorts like the text. Village
/// numbers past 99 are written with a letter in real files (`501471A0`), so the character at
/// position 7 may be `A`–`Z`; every other character is a digit. Thai digits are accepted.
///
/// ```
/// use tpmap::areas::{AreaCode, AreaLevel};
/// let v: AreaCode = "1101100101".parse().unwrap();
/// assert_eq!(v.level(), AreaLevel::TpmapVillage);
/// assert_eq!(v.parent().unwrap().to_string(), "11011001");
/// assert_eq!(v.province().to_string(), "11");
/// assert!("123".parse::<AreaCode>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AreaCode {
    len: u8,
    bytes: [u8; 10],
}

impl AreaCode {
    /// Parses a code; see the type's documentation for the accepted form.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = crate::thai::fold_digits(s.trim());
        let b = s.as_bytes();
        if !matches!(b.len(), 2 | 4 | 6 | 8 | 10) {
            return Err(Error::Parse("area code must have 2, 4, 6, 8 or 10 characters".into()));
        }
        let mut bytes = [0u8; 10];
        for (i, &c) in b.iter().enumerate() {
            let ok = c.is_ascii_digit() || (i == 6 && c.is_ascii_uppercase());
            if !ok {
                return Err(Error::Parse("area code must be digits (a letter only as the 7th character)".into()));
            }
            bytes[i] = c;
        }
        if bytes[0] == b'0' {
            return Err(Error::Parse("area code cannot start with 0".into()));
        }
        Ok(AreaCode { len: b.len() as u8, bytes })
    }

    /// The code's level.
    pub fn level(&self) -> AreaLevel {
        match self.len {
            2 => AreaLevel::Province,
            4 => AreaLevel::Amphoe,
            6 => AreaLevel::Tambon,
            8 => AreaLevel::Village,
            _ => AreaLevel::TpmapVillage,
        }
    }

    /// The code's digits as bytes (ASCII): [`AreaCode::as_str`] without its UTF-8 check, for
    /// keys made of millions of codes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("ASCII")
    }

    /// The enclosing area one level up, or `None` for a province.
    pub fn parent(&self) -> Option<AreaCode> {
        (self.len > 2).then(|| self.truncate(self.len as usize - 2))
    }

    /// The enclosing area at `level`, if that level is at or above this code's.
    pub fn at(&self, level: AreaLevel) -> Option<AreaCode> {
        let n = level.code_len();
        (n >= 2 && n <= self.len as usize).then(|| self.truncate(n))
    }

    fn truncate(&self, n: usize) -> AreaCode {
        let mut bytes = [0u8; 10];
        bytes[..n].copy_from_slice(&self.bytes[..n]);
        AreaCode { len: n as u8, bytes }
    }

    /// The province.
    pub fn province(&self) -> AreaCode {
        self.truncate(2)
    }

    /// The two-digit province number.
    pub fn province_number(&self) -> u8 {
        (self.bytes[0] - b'0') * 10 + (self.bytes[1] - b'0')
    }
}

impl FromStr for AreaCode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        AreaCode::parse(s)
    }
}

impl fmt::Display for AreaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AreaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AreaCode({})", self.as_str())
    }
}

impl Serialize for AreaCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AreaCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AreaCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Why an area code is not known to the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnknownArea {
    /// The province does not exist.
    Province,
    /// The amphoe does not exist in its province.
    Amphoe,
    /// The tambon does not exist in its amphoe.
    Tambon,
    /// The tambon exists but the village is in no known village list.
    Village,
}

impl fmt::Display for UnknownArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnknownArea::Province => "unknown province",
            UnknownArea::Amphoe => "unknown amphoe",
            UnknownArea::Tambon => "unknown tambon",
            UnknownArea::Village => "unknown village",
        })
    }
}

/// Names of a known area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AreaNames {
    /// Thai name (empty where the source has none).
    pub th: String,
    /// English name (empty where the source has none).
    pub en: String,
}

/// The known provinces, amphoe, tambon and villages.
pub struct AreaRegistry {
    names: HashMap<AreaCode, AreaNames>,
    villages: HashSet<AreaCode>,
}

static EMBEDDED: OnceLock<AreaRegistry> = OnceLock::new();

impl AreaRegistry {
    /// The registry embedded in the library (parsed once, on first use).
    pub fn embedded() -> &'static AreaRegistry {
        EMBEDDED.get_or_init(|| {
            Self::from_sources(include_str!("../data/areas/areas.csv"), include_str!("../data/areas/villages.txt"))
                .expect("embedded area tables are valid")
        })
    }

    /// Builds a registry from an `areas.csv` (`code,level,name_th,name_en`) and a list of
    /// village codes, one per line.
    pub fn from_sources(areas_csv: &str, villages: &str) -> Result<Self, Error> {
        let mut names = HashMap::new();
        let mut rdr = csv::Reader::from_reader(areas_csv.as_bytes());
        for rec in rdr.records() {
            let rec = rec?;
            let code = AreaCode::parse(&rec[0])?;
            names.insert(code, AreaNames { th: rec[2].to_string(), en: rec[3].to_string() });
        }
        let villages =
            villages.lines().filter(|l| !l.trim().is_empty()).map(AreaCode::parse).collect::<Result<_, _>>()?;
        Ok(AreaRegistry { names, villages })
    }

    /// Checks that a code names a known area; a TPMAP 10-digit id is checked through its village.
    pub fn check(&self, code: &AreaCode) -> Result<(), UnknownArea> {
        let levels = [
            (AreaLevel::Province, UnknownArea::Province),
            (AreaLevel::Amphoe, UnknownArea::Amphoe),
            (AreaLevel::Tambon, UnknownArea::Tambon),
        ];
        for (level, err) in levels {
            match code.at(level) {
                Some(c) if !self.names.contains_key(&c) => return Err(err),
                _ => {}
            }
        }
        if let Some(v) = code.at(AreaLevel::Village)
            && !self.villages.contains(&v)
        {
            return Err(UnknownArea::Village);
        }
        Ok(())
    }

    /// Checks every level above the village only (for extracts from villages newer than the lists).
    pub fn check_tambon(&self, code: &AreaCode) -> Result<(), UnknownArea> {
        match code.at(AreaLevel::Tambon) {
            Some(t) => self.check(&t),
            None => self.check(code),
        }
    }

    /// Names of a province, amphoe or tambon, if known.
    pub fn names(&self, code: &AreaCode) -> Option<&AreaNames> {
        self.names.get(code)
    }

    /// Every known province code, sorted.
    pub fn provinces(&self) -> Vec<AreaCode> {
        let mut v: Vec<_> = self.names.keys().filter(|c| c.level() == AreaLevel::Province).copied().collect();
        v.sort();
        v
    }

    /// Number of known villages.
    pub fn village_count(&self) -> usize {
        self.villages.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_parents() {
        let v: AreaCode = "๑๑๐๑๑๐๐๑".parse().unwrap();
        assert_eq!(v.level(), AreaLevel::Village);
        let chain: Vec<String> = std::iter::successors(Some(v), |c| c.parent()).map(|c| c.to_string()).collect();
        assert_eq!(chain, ["11011001", "110110", "1101", "11"]);
        assert_eq!(v.at(AreaLevel::Amphoe).unwrap().to_string(), "1101");
        assert!(v.at(AreaLevel::TpmapVillage).is_none());
        assert_eq!(v.province_number(), 11);
        let lettered: AreaCode = "340151A001".parse().unwrap();
        assert_eq!(lettered.parent().unwrap().to_string(), "340151A0");
        for bad in ["1", "123", "0101", "11A1", "1101100x", "12345678901", ""] {
            assert!(bad.parse::<AreaCode>().is_err(), "{bad}");
        }
    }

    #[test]
    fn embedded_registry() {
        let r = AreaRegistry::embedded();
        assert_eq!(r.provinces().len(), 77);
        assert_eq!(r.names(&"10".parse().unwrap()).unwrap().en, "Bangkok");
        assert_eq!(r.check(&"1101100101".parse().unwrap()), Ok(()));
        assert_eq!(r.check(&"340151A001".parse().unwrap()), Ok(()));
        assert_eq!(r.check(&"99".parse().unwrap()), Err(UnknownArea::Province));
        assert_eq!(r.check(&"1199".parse().unwrap()), Err(UnknownArea::Amphoe));
        assert_eq!(r.check(&"110199".parse().unwrap()), Err(UnknownArea::Tambon));
        assert_eq!(r.check(&"11011098".parse().unwrap()), Err(UnknownArea::Village));
        assert_eq!(r.check_tambon(&"11011098".parse().unwrap()), Ok(()));
        assert!(r.village_count() > 90_000);
    }
}
