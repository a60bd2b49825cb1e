//! The crate's one error type.

use std::path::PathBuf;

/// Every fallible operation in `tpmap` returns this error.
///
/// Messages name the file, row and column where one is known, and never contain a raw citizen
/// ID: values that could be one are masked before they reach a message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A row failed validation in strict mode.
    #[error("{file}: row {row}{line}, column '{column}': {reason}", line = .line.map(|l| format!(" (line {l})")).unwrap_or_default())]
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
    #[error("{file}: {message}")]
    Format {
        /// The file being read.
        file: String,
        /// What was wrong.
        message: String,
    },
    /// A value could not be parsed (used by the domain types' `FromStr`).
    #[error("{0}")]
    Parse(String),
    /// An eligibility rule could not be parsed. `column` counts characters from 1.
    #[error("{context}rule error at column {column}: {message}\n    {text}\n    {caret}^", caret = " ".repeat(.column.saturating_sub(1)))]
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
    /// An indicator edition or other configuration is inconsistent.
    #[error("configuration: {0}")]
    Config(String),
    /// An error from polars while reading or writing a frame.
    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
    /// An error from the CSV parser.
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    /// An error from JSON (de)serialisation.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// An error from the Excel reader or writer.
    #[cfg(feature = "xlsx")]
    #[error("excel: {0}")]
    Excel(String),
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
