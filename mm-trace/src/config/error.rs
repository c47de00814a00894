//! What a rejected configuration says: every bad key with its value and what is allowed.

use std::fmt;
use std::path::PathBuf;

/// One rejected key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Full key, e.g. `trace.sample_rate`.
    pub key: String,
    /// The value as written (YAML), or empty for a missing value.
    pub value: String,
    /// What is allowed.
    pub allowed: String,
}

/// A rejected configuration: unreadable file, invalid YAML, no `trace:` section, or keys with bad
/// values. `Debug` prints the same message as `Display`, so `fn main() -> Result<(), Box<dyn Error>>`
/// with `?` shows it readably.
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The text is not YAML, or not a mapping of sections.
    Syntax {
        /// Where the text came from.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// The document has no `trace` key (only the `trace:` section is read; an empty `trace:`
    /// gives the defaults).
    MissingSection {
        /// Where the text came from.
        origin: String,
        /// The top-level keys found instead, in document order (empty: an empty document).
        found: Vec<String>,
        /// The found key that looks like a misspelt `trace` (`Trace`, `traec`), if any.
        near_miss: Option<String>,
    },
    /// Every bad key at once.
    Invalid {
        /// Where the text came from (a path, `<yaml>`, `<in code>`, or empty inside a deserializer).
        origin: String,
        /// One entry per bad key.
        issues: Vec<ConfigIssue>,
    },
}

/// `origin: ` before a message, or nothing for an empty origin (inside a deserializer, which
/// adds its own position).
struct At<'a>(&'a str);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { Ok(()) } else { write!(f, "{}: ", self.0) }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DEFAULTS: &str = "an empty `trace:` or `trace: {}` gives the defaults";
        match self {
            ConfigError::Io { path, source } => {
                write!(f, "{}: cannot read config: {source}", path.display())
            }
            ConfigError::Syntax { origin, message } => {
                write!(f, "{}invalid YAML: {message}", At(origin))
            }
            ConfigError::MissingSection { origin, found, near_miss } => {
                write!(f, "{}no `trace:` section", At(origin))?;
                if found.is_empty() {
                    return write!(f, " (the document is empty): add a `trace:` section ({DEFAULTS})");
                }
                let keys: Vec<String> = found.iter().map(|k| format!("`{k}`")).collect();
                write!(f, "; found top-level keys {}", keys.join(", "))?;
                match near_miss {
                    Some(k) => write!(
                        f,
                        ": did you mean `trace`? (only the `trace:` section is read, so `{k}` is ignored; {DEFAULTS})"
                    ),
                    None => write!(f, ": add a `trace:` section ({DEFAULTS}; other sections are ignored)"),
                }
            }
            ConfigError::Invalid { origin, issues } => {
                for (i, issue) in issues.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{}{} = {}: {}", At(origin), issue.key, issue.value, issue.allowed)?;
                }
                Ok(())
            }
        }
    }
}

/// The message, as `Display` gives it: what `main` returning `Err` and `unwrap` print.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
