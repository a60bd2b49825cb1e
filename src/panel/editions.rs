//! Which indicators of two editions correspond, when two rounds were surveyed with different
//! indicator editions: a mapping file (TOML, as data), and what has no counterpart (reported,
//! never dropped silently).
//!
//! ```toml
//! earlier = "bmn-2560"   # edition ids, checked against the rounds
//! later = "bmn-2565"
//! same_labels = true     # indicators with the same label correspond (the default)
//!
//! [[pair]]               # and these, by label (TPMAP code, `bmnN`) or BMN number
//! earlier = "2.4"
//! later = "2.9"
//! ```

use serde::Deserialize;

use crate::indicators::Edition;
use crate::{Error, Result};

/// Corresponding indicators of an earlier and a later edition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EditionMap {
    /// `(earlier position, later position)` pairs.
    pub pairs: Vec<(usize, usize)>,
    /// Labels of the earlier edition's indicators without a counterpart.
    pub only_earlier: Vec<String>,
    /// Labels of the later edition's indicators without a counterpart.
    pub only_later: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    earlier: String,
    later: String,
    #[serde(default = "yes")]
    same_labels: bool,
    #[serde(default)]
    pair: Vec<PairRecord>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairRecord {
    earlier: String,
    later: String,
}

/// Most pairs a mapping file may list.
pub const MAX_PAIRS: usize = 64;

/// The position of the indicator `text` names in `e`: its label, TPMAP code or BMN number.
fn find(e: &Edition, text: &str) -> Option<usize> {
    let t = text.trim();
    (0..e.len()).find(|&i| {
        let ind = e.indicator(i);
        ind.label() == t || ind.code.as_deref() == Some(t) || ind.no.to_string() == t
    })
}

impl EditionMap {
    /// Indicators with the same label correspond.
    pub fn by_label(earlier: &Edition, later: &Edition) -> EditionMap {
        let pairs =
            (0..earlier.len()).filter_map(|i| find(later, &earlier.indicator(i).label()).map(|j| (i, j))).collect();
        EditionMap::with_pairs(earlier, later, pairs)
    }

    fn with_pairs(earlier: &Edition, later: &Edition, mut pairs: Vec<(usize, usize)>) -> EditionMap {
        pairs.sort_unstable();
        pairs.dedup();
        let only_earlier = (0..earlier.len())
            .filter(|i| !pairs.iter().any(|p| p.0 == *i))
            .map(|i| earlier.indicator(i).label())
            .collect();
        let only_later =
            (0..later.len()).filter(|j| !pairs.iter().any(|p| p.1 == *j)).map(|j| later.indicator(j).label()).collect();
        EditionMap { pairs, only_earlier, only_later }
    }

    /// Reads a mapping file's text (`name` for messages) for the two editions: its edition ids
    /// must be theirs, each label must name an indicator, and no indicator may be paired twice.
    pub fn from_toml(text: &str, name: &str, earlier: &Edition, later: &Edition) -> Result<EditionMap> {
        let bad = |m: String| Error::Format { file: name.to_string(), message: m };
        let f: MapFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if f.earlier != earlier.id || f.later != later.id {
            return Err(bad(format!(
                "maps {} to {}, but the rounds use {} and {}",
                f.earlier, f.later, earlier.id, later.id
            )));
        }
        if f.pair.len() > MAX_PAIRS {
            return Err(Error::Limit { file: name.to_string(), message: format!("more than {MAX_PAIRS} pairs") });
        }
        let mut pairs = Vec::new();
        for (k, p) in f.pair.iter().enumerate() {
            let a = find(earlier, &p.earlier)
                .ok_or_else(|| bad(format!("pair {}: '{}' is not an indicator of {}", k + 1, p.earlier, earlier.id)))?;
            let b = find(later, &p.later)
                .ok_or_else(|| bad(format!("pair {}: '{}' is not an indicator of {}", k + 1, p.later, later.id)))?;
            pairs.push((a, b));
        }
        if f.same_labels {
            for (a, b) in EditionMap::by_label(earlier, later).pairs {
                if !pairs.iter().any(|p| p.0 == a || p.1 == b) {
                    pairs.push((a, b));
                }
            }
        }
        let mut seen_a: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        let mut seen_b: Vec<usize> = pairs.iter().map(|p| p.1).collect();
        seen_a.sort_unstable();
        seen_b.sort_unstable();
        if seen_a.windows(2).any(|w| w[0] == w[1]) || seen_b.windows(2).any(|w| w[0] == w[1]) {
            return Err(bad("an indicator is paired twice".into()));
        }
        Ok(EditionMap::with_pairs(earlier, later, pairs))
    }

    /// Reads a mapping file.
    pub fn load(path: &std::path::Path, earlier: &Edition, later: &Edition) -> Result<EditionMap> {
        let text = crate::limits::read_config(path, crate::limits::DEFAULT_CONFIG_BYTES)?;
        EditionMap::from_toml(&text, &path.display().to_string(), earlier, later)
    }

    /// The edition ids a mapping file maps from and to (to pick the file for a pair of rounds).
    pub fn ids_of(path: &std::path::Path) -> Result<(String, String)> {
        let text = crate::limits::read_config(path, crate::limits::DEFAULT_CONFIG_BYTES)?;
        let f: MapFile = toml::from_str(&text)
            .map_err(|e| Error::Format { file: path.display().to_string(), message: e.to_string() })?;
        Ok((f.earlier, f.later))
    }

    /// The later position of the earlier indicator at `earlier`.
    pub fn later_of(&self, earlier: usize) -> Option<usize> {
        self.pairs.iter().find(|p| p.0 == earlier).map(|p| p.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renamed() -> Edition {
        let e = Edition::bmn_2560();
        let no = (0..e.len()).map(|i| e.indicator(i)).find(|i| i.code.as_deref() == Some("2.4")).unwrap().no;
        let sel = e.selection("tpmap").unwrap().iter().map(|&i| e.indicator(i).label()).collect::<Vec<_>>();
        let sel: Vec<String> = sel.into_iter().map(|l| if l == "2.4" { "2.9".into() } else { l }).collect();
        let over =
            format!("id = \"bmn-test\"\n[selections]\ntpmap = {sel:?}\n[[indicator]]\nno = {no}\ncode = \"2.9\"\n");
        e.with_overrides(&over).unwrap()
    }

    #[test]
    fn labels_pair_and_the_file_adds_renamed_ones() {
        let (a, b) = (Edition::bmn_2560(), renamed());
        let by = EditionMap::by_label(&a, &b);
        assert_eq!(by.only_earlier, ["2.4"]);
        assert_eq!(by.only_later, ["2.9"]);
        let m = EditionMap::from_toml(
            "earlier = \"bmn-2560\"\nlater = \"bmn-test\"\n[[pair]]\nearlier = \"2.4\"\nlater = \"2.9\"\n",
            "map.toml",
            &a,
            &b,
        )
        .unwrap();
        assert!(m.only_earlier.is_empty() && m.only_later.is_empty());
        assert_eq!(m.pairs.len(), a.len());
        // Errors name the file and what is wrong.
        for (text, says) in [
            ("earlier = \"x\"\nlater = \"bmn-test\"\n", "rounds use"),
            ("earlier = \"bmn-2560\"\nlater = \"bmn-test\"\n[[pair]]\nearlier = \"9.9\"\nlater = \"2.9\"\n", "'9.9'"),
            (
                "earlier = \"bmn-2560\"\nlater = \"bmn-test\"\n[[pair]]\nearlier = \"2.4\"\nlater = \"2.9\"\n[[pair]]\nearlier = \"2.4\"\nlater = \"1.1\"\n",
                "twice",
            ),
            ("earlier = \"bmn-2560\"\nlater = \"bmn-test\"\nextra = 1\n", "unknown field"),
        ] {
            let e = EditionMap::from_toml(text, "map.toml", &a, &b).unwrap_err().to_string();
            assert!(e.contains("map.toml") && e.contains(says), "{e}");
        }
    }
}
