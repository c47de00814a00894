//! The error type of mm-trace's fallible functions.

use std::fmt;
use std::path::PathBuf;

/// What went wrong in a fallible mm-trace call. Every variant names the thing at fault.
///
/// `Debug` reads like `Display`, so `fn main() -> Result<(), Box<dyn std::error::Error>>` with
/// `mm_trace::init(..)?` prints the message, not a struct dump.
///
/// ```
/// let bad = mm_trace::TraceConfig { sample_rate: 2.0, ..Default::default() };
/// let e = mm_trace::init(bad).unwrap_err();
/// assert_eq!(format!("{e:?}"), e.to_string());
/// ```
#[non_exhaustive]
pub enum Error {
    /// A configuration file or value was rejected.
    Config(crate::config::ConfigError),
    /// A file could not be read or written.
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A socket could not be bound (the `/metrics` endpoint).
    Bind {
        /// The address asked for.
        addr: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// An argument was out of its allowed range.
    InvalidArgument(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => e.fmt(f),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::InvalidArgument(msg) => f.write_str(msg),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(e) => Some(e),
            Error::Io { source, .. } | Error::Bind { source, .. } => Some(source),
            Error::InvalidArgument(_) => None,
        }
    }
}

impl From<crate::config::ConfigError> for Error {
    fn from(e: crate::config::ConfigError) -> Self {
        Error::Config(e)
    }
}
