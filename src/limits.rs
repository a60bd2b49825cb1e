//! Resource limits for untrusted input: what one worksheet may expand to, how deep one rule may
//! nest, how large a catalogue or a saved model may be. The defaults pass every real file we know
//! of (a full 1,048,576-row worksheet of 60 columns, rules a person writes); beyond them tpmap stops
//! with [`Error::Limit`](crate::Error::Limit), naming the limit and the option that raises it,
//! instead of exhausting memory or the stack.
//!
//! ```
//! use tpmap::limits::Limits;
//! let strict = Limits { xlsx_cells: 10_000_000, rule_depth: 16, ..Limits::default() };
//! assert!(strict.xlsx_cells < Limits::default().xlsx_cells);
//! ```

/// Limits on what one input may make tpmap allocate or recurse into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Cells (rows × header columns) one worksheet may hold (`--max-xlsx-cells`). Each takes
    /// 16 bytes in memory.
    pub xlsx_cells: u64,
    /// Bytes the parts of one `.xlsx` workbook may decompress to, together (`--max-xlsx-bytes`).
    pub xlsx_bytes: u64,
    /// Nesting depth of one eligibility rule: parentheses, `not`, `any(...)` (`--max-rule-depth`).
    pub rule_depth: usize,
    /// Bytes of a catalogue, edition, spec or saved-model file read whole.
    pub config_bytes: u64,
    /// Eligible units a plan decides on — places given and declined, over all programs
    /// (`--max-plan-decisions`; [`crate::plan::PlanOptions::max_decisions`]). Each takes about
    /// [`crate::ingest::partition::BYTES_PER_PLAN_DECISION`] bytes with the plan's files.
    pub plan_decisions: u64,
}

/// Default cells per worksheet: 100 million (1.6 GB at 16 bytes a cell).
pub const DEFAULT_XLSX_CELLS: u64 = 100_000_000;
/// Default decompressed size of a workbook: 8 GiB (a full worksheet of 60 columns is about 3 GiB
/// of XML).
pub const DEFAULT_XLSX_BYTES: u64 = 8 << 30;
/// Default nesting depth of a rule.
pub const DEFAULT_RULE_DEPTH: usize = 64;
/// Default size of a configuration file read whole: 64 MiB.
pub const DEFAULT_CONFIG_BYTES: u64 = 64 << 20;
/// Default decisions of a plan: 50 million (about 19 GB at
/// [`crate::ingest::partition::BYTES_PER_PLAN_DECISION`]; the SYNTHETIC national set's 52
/// programs decide on 1.6 M, 2.6 M over every poor household). A catalogue of many programs
/// reaching every household would otherwise decide on programs times households.
pub const DEFAULT_PLAN_DECISIONS: u64 = 50_000_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            xlsx_cells: DEFAULT_XLSX_CELLS,
            xlsx_bytes: DEFAULT_XLSX_BYTES,
            rule_depth: DEFAULT_RULE_DEPTH,
            config_bytes: DEFAULT_CONFIG_BYTES,
            plan_decisions: DEFAULT_PLAN_DECISIONS,
        }
    }
}

/// A size as people write it: `4GiB`, `512MiB`, `8GB`, `1.5G` or a number of bytes. Binary
/// (`KiB`, `MiB`, `GiB`, `TiB`, and the bare `K`, `M`, `G`, `T`) and decimal (`KB`, `MB`, `GB`,
/// `TB`) units; case does not matter.
///
/// ```
/// assert_eq!(tpmap::limits::parse_bytes("4GiB"), Ok(4 << 30));
/// assert_eq!(tpmap::limits::parse_bytes("1.5g"), Ok(3 << 29));
/// assert!(tpmap::limits::parse_bytes("lots").is_err());
/// ```
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(format!("'{t}' is not a size: write it like 4GiB, 512MiB or 8GB")),
    };
    let value: f64 = number.parse().map_err(|_| format!("'{t}' is not a size: write it like 4GiB, 512MiB or 8GB"))?;
    let bytes = value * scale as f64;
    // Below 2^63 a float-to-integer cast is exact enough for a budget and never wraps.
    if !(1.0..9.2e18).contains(&bytes) {
        return Err(format!("'{t}' is not a usable size"));
    }
    Ok(bytes.round() as u64)
}

/// A byte count for messages: `3.2 GiB`, `512.0 MiB`, `900 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (name, size) in UNITS {
        if bytes >= size {
            return format!("{:.1} {name}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes} B")
}

/// Reads a configuration file (catalogue, edition, spec, model, key) whole, refusing one larger
/// than `max_bytes` before reading it.
pub fn read_config(path: &std::path::Path, max_bytes: u64) -> crate::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| crate::Error::io(path, e))?;
    let mut text = String::new();
    let read = file.take(max_bytes + 1).read_to_string(&mut text);
    match read {
        Ok(n) if n as u64 > max_bytes => Err(crate::Error::Limit {
            file: path.display().to_string(),
            message: format!("the file is larger than {max_bytes} bytes, the limit for configuration files"),
        }),
        Ok(_) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(crate::Error::Format { file: path.display().to_string(), message: "the file is not UTF-8 text".into() })
        }
        Err(e) => Err(crate::Error::io(path, e)),
    }
}
