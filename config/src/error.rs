//! [`ConfigError`]: every way loading a configuration can fail, each with a message that names
//! the file, the key, the position and what was expected.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded. `Display` gives the full, user-facing message, e.g.
///
/// ```text
/// tempo.yaml: server.http_listen_port: invalid value "abc" at line 4 column 21: expected a port number (0-65535)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        /// The file that was asked for.
        path: PathBuf,
        /// The operating system's reason.
        message: String,
    },
    /// A `${...}` expression could not be expanded (`-config.expand-env=true`).
    EnvSubst {
        /// File name or other label of the text.
        source_name: String,
        /// 1-based line of the `$`.
        line: u32,
        /// 1-based column (in characters) of the `$`.
        column: u32,
        /// What was wrong.
        message: String,
    },
    /// The text is not YAML, or not a YAML mapping at the top level.
    Syntax {
        /// File name or other label of the text.
        source_name: String,
        /// 1-based line, when the parser reported one.
        line: Option<u32>,
        /// 1-based column, when the parser reported one.
        column: Option<u32>,
        /// What was wrong.
        message: String,
    },
    /// A key's value has the wrong type or form.
    Value {
        /// File name or other label of the text.
        source_name: String,
        /// Dotted key path, e.g. `ingester.trace_idle_period`; empty for the top level.
        key: String,
        /// 1-based line of the value.
        line: Option<u32>,
        /// 1-based column of the value.
        column: Option<u32>,
        /// What was found, e.g. `invalid duration "10 seconds"`.
        problem: String,
        /// The expected form, e.g. `Go duration syntax like 10s, 30m, 336h`.
        expected: Option<String>,
    },
    /// Each value is well-formed, but a value or a combination of values is not acceptable.
    Invalid {
        /// File name or other label of the text; empty from [`crate::Config::validate`] alone.
        source_name: String,
        /// Dotted key path of the offending setting.
        key: String,
        /// 1-based line of the key, when it is written in the file.
        line: Option<u32>,
        /// What is wrong and what would be right.
        message: String,
    },
}

impl ConfigError {
    /// The dotted key path the error is about, if it is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Value { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Io { .. } | ConfigError::EnvSubst { .. } | ConfigError::Syntax { .. } => {
                None
            }
        }
    }

    /// The 1-based line the error is about, if known.
    pub fn line(&self) -> Option<u32> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::EnvSubst { line, .. } => Some(*line),
            ConfigError::Syntax { line, .. }
            | ConfigError::Value { line, .. }
            | ConfigError::Invalid { line, .. } => *line,
        }
    }

    /// A line or column number as stored here; config files do not reach 4 billion lines.
    pub(crate) fn position(n: usize) -> u32 {
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// An [`ConfigError::Invalid`] without source or line; [`crate::load_str`] fills them in.
    pub(crate) fn invalid(key: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            source_name: String::new(),
            key: key.to_owned(),
            line: None,
            message,
        }
    }
}

fn write_source(f: &mut fmt::Formatter<'_>, source_name: &str) -> fmt::Result {
    if source_name.is_empty() {
        Ok(())
    } else {
        write!(f, "{source_name}: ")
    }
}

fn write_position(
    f: &mut fmt::Formatter<'_>,
    line: Option<u32>,
    column: Option<u32>,
) -> fmt::Result {
    match (line, column) {
        (Some(line), Some(column)) => write!(f, " at line {line} column {column}"),
        (Some(line), None) => write!(f, " at line {line}"),
        (None, _) => Ok(()),
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, message } => {
                write!(
                    f,
                    "{}: cannot read configuration file: {message}",
                    path.display()
                )
            }
            ConfigError::EnvSubst {
                source_name,
                line,
                column,
                message,
            } => {
                write_source(f, source_name)?;
                write!(
                    f,
                    "environment variable expansion failed at line {line} column {column}: {message}"
                )
            }
            ConfigError::Syntax {
                source_name,
                line,
                column,
                message,
            } => {
                write_source(f, source_name)?;
                f.write_str("invalid YAML")?;
                write_position(f, *line, *column)?;
                write!(f, ": {message}")
            }
            ConfigError::Value {
                source_name,
                key,
                line,
                column,
                problem,
                expected,
            } => {
                write_source(f, source_name)?;
                if !key.is_empty() {
                    write!(f, "{key}: ")?;
                }
                f.write_str(problem)?;
                write_position(f, *line, *column)?;
                if let Some(expected) = expected {
                    write!(f, ": expected {expected}")?;
                }
                Ok(())
            }
            ConfigError::Invalid {
                source_name,
                key,
                line,
                message,
            } => {
                write_source(f, source_name)?;
                write!(f, "{key}")?;
                if let Some(line) = line {
                    write!(f, " (line {line})")?;
                }
                write!(f, ": {message}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}
