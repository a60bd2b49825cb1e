//! The crate's one error type.
//!
//! ```
//! let e = tpmap::Error::Parse("no program '1101700230503' in the catalogue".into());
//! assert_eq!(e.to_string(), "no program '#############' in the catalogue");
//! ```

use std::fmt;
use std::path::PathBuf;

/// Every fallible operation in `tpmap` returns this error.
///
/// Messages name the file, row and column where one is known, and never contain a raw citizen
/// ID: [`Display`](fmt::Display) passes every message through [`crate::ids::redact_numbers`], so
/// a number of 11 or more digits that reached a message from the data (a citizen ID in a program
/// column, a header, a file name) is shown as `#############`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A row failed validation in strict mode.
    InvalidRow {
        /// The file being read.
        file: String,
        /// 1-based data row number (the header is not counted).
        row: u64,
        /// Physical line (CSV) or sheet row (Excel) where known.
        line: Option<u64>,
        /// Column as named in the file, or the canonical field name.
        column: String,
        /// What was wrong.
        reason: String,
    },
    /// A file's layout is unusable as a whole (missing required columns, unreadable header, ...).
    Format {
        /// The file being read.
        file: String,
        /// What was wrong.
        message: String,
    },
    /// An input is larger than a resource limit allows (cells of a worksheet, decompressed bytes,
    /// nesting of a rule, size of a file); the message names the limit and the option that
    /// raises it.
    Limit {
        /// The file or input concerned.
        file: String,
        /// Which limit, and how to raise it.
        message: String,
    },
    /// A value could not be parsed (used by the domain types' `FromStr` and for options).
    Parse(String),
    /// An eligibility rule could not be parsed. `column` counts characters from 1.
    Rule {
        /// Where the rule came from ("catalogue.toml, program msdhs-house-repair: "), or empty.
        context: String,
        /// The rule's text.
        text: String,
        /// 1-based column (in characters) of the problem.
        column: usize,
        /// What was wrong.
        message: String,
    },
    /// An indicator edition, an option or other configuration is inconsistent.
    Config(String),
    /// An error from polars while reading or writing a frame.
    Polars(#[from] polars::error::PolarsError),
    /// An error from the CSV parser.
    Csv(#[from] csv::Error),
    /// An error from JSON (de)serialisation.
    Json(#[from] serde_json::Error),
    /// An error from the Excel reader or writer.
    #[cfg(feature = "xlsx")]
    Excel(String),
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Names `path` in an error met while writing it that came without a file: a polars I/O
    /// error (a full disk) becomes [`Error::Io`] on `path` with the operating system's error (its
    /// code kept), any other polars error a [`Error::Format`] of `path`. Other errors, which name
    /// their file already, are returned as they are. (Reading names its file through the
    /// readers' own mapping, which makes every polars error a [`Error::Format`]: a damaged file
    /// is a format problem, not the system's.)
    ///
    /// ```
    /// use std::path::Path;
    /// let full = std::io::Error::from_raw_os_error(28);
    /// let e = tpmap::Error::Polars(full.into()).writing(Path::new("out/pairs.csv"));
    /// assert!(e.to_string().starts_with("out/pairs.csv: "), "{e}");
    /// assert!(matches!(e, tpmap::Error::Io { ref source, .. } if source.raw_os_error() == Some(28)));
    /// ```
    pub fn writing(self, path: &std::path::Path) -> Error {
        match self {
            Error::Polars(polars::error::PolarsError::IO { error, msg }) => {
                let source = match (error.raw_os_error(), msg) {
                    (Some(code), None) => std::io::Error::from_raw_os_error(code),
                    (_, msg) => {
                        std::io::Error::new(error.kind(), msg.map_or_else(|| error.to_string(), |m| m.to_string()))
                    }
                };
                Error::Io { path: path.to_path_buf(), source }
            }
            Error::Polars(p) => Error::Format { file: path.display().to_string(), message: p.to_string() },
            other => other,
        }
    }

    /// The message before redaction. It can hold values from the data (a citizen ID typed into
    /// the wrong column): keep it out of logs; [`Display`](fmt::Display) is the safe form.
    pub fn unredacted(&self) -> String {
        match self {
            Error::Io { path, source } => format!("{}: {source}", path.display()),
            Error::InvalidRow { file, row, line, column, reason } => format!(
                "{file}: row {row}{}, column '{column}': {reason}",
                line.map(|l| format!(" (line {l})")).unwrap_or_default()
            ),
            Error::Format { file, message } | Error::Limit { file, message } if file.is_empty() => message.clone(),
            Error::Format { file, message } | Error::Limit { file, message } => format!("{file}: {message}"),
            Error::Parse(m) => m.clone(),
            Error::Rule { context, text, column, message } => {
                let caret = " ".repeat(column.saturating_sub(1).min(text.chars().count()));
                // The rule is shown on one line whatever it holds.
                let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
                format!("{context}rule error at column {column}: {message}\n    {one_line}\n    {caret}^")
            }
            Error::Config(m) => format!("configuration: {m}"),
            Error::Polars(e) => format!("polars: {e}"),
            Error::Csv(e) => format!("csv: {e}"),
            Error::Json(e) => format!("json: {e}"),
            #[cfg(feature = "xlsx")]
            Error::Excel(m) => format!("excel: {m}"),
        }
    }
}

/// Longest line of a message shown: a parser that quotes a 200,000-character line of a hostile
/// file does not flood the terminal.
pub const MAX_MESSAGE_LINE: usize = 400;

/// Cuts each line of `text` to [`MAX_MESSAGE_LINE`] characters, saying how much was cut.
fn shorten_lines(text: &str) -> std::borrow::Cow<'_, str> {
    if text.lines().all(|l| l.len() <= MAX_MESSAGE_LINE) {
        return std::borrow::Cow::Borrowed(text);
    }
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let n = l.chars().count();
            if n <= MAX_MESSAGE_LINE {
                l.to_string()
            } else {
                let head: String = l.chars().take(MAX_MESSAGE_LINE).collect();
                format!("{head}… ({} more characters)", n - MAX_MESSAGE_LINE)
            }
        })
        .collect();
    std::borrow::Cow::Owned(lines.join("\n"))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.unredacted();
        f.write_str(&crate::ids::redact_numbers(&shorten_lines(&text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_never_carry_a_citizen_id() {
        let e = Error::InvalidRow {
            file: "served.csv".into(),
            row: 3,
            line: Some(5),
            column: "program".into(),
            reason: "no program '1101700230506' in the catalogue".into(),
        };
        let text = e.to_string();
        assert_eq!(text, "served.csv: row 3 (line 5), column 'program': no program '#############' in the catalogue");
        assert!(e.unredacted().contains("1101700230506"));
        let e = Error::io("/data/๑๑๐๑๗๐๐๒๓๐๕๐๖/x.csv", std::io::Error::other("gone"));
        assert!(!e.to_string().contains('๑'), "{e}");
    }
}
