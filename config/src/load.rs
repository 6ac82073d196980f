//! Text to [`Config`]: environment expansion, YAML parsing, typed reading, warnings for ignored
//! keys, Tempo's semantics and defaults, validation.

use std::path::Path;

use serde_yaml::Value;

use crate::envsubst::expand_env;
use crate::error::ConfigError;
use crate::keys::{self, KeyLines, Segment};
use crate::model::Config;
use crate::raw::RawConfig;

/// A configuration and what the user should be told about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The configuration, validated.
    pub config: Config,
    /// One message per key that has no effect, in file order, e.g.
    /// `unknown configuration key "foo.bar" (line 12) ignored`. Log them; none is fatal.
    pub warnings: Vec<String>,
}

/// Reads and loads a configuration file, as `allegro -config.file=PATH` does. With `expand_env`
/// (`-config.expand-env=true`), `${VAR}` references are expanded from the process environment
/// first. Error messages name the file as given.
pub fn load_file(path: &Path, expand_env: bool) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    let source_name = path.display().to_string();
    if expand_env {
        load_str(&text, &source_name, |name| std::env::var(name).ok())
    } else {
        parse_str(&text, &source_name)
    }
}

/// Loads configuration text after expanding `${VAR}` references with `env` (see
/// [`crate::expand_env`]); `source_name` labels error messages (usually the file name).
pub fn load_str(
    text: &str,
    source_name: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let expanded = expand_env(text, env).map_err(|error| ConfigError::EnvSubst {
        source_name: source_name.to_owned(),
        line: ConfigError::position(error.line),
        column: ConfigError::position(error.column),
        message: error.message,
    })?;
    parse_str(&expanded, source_name)
}

/// Loads configuration text as is, without environment expansion.
pub fn parse_str(text: &str, source_name: &str) -> Result<Loaded, ConfigError> {
    let lines = KeyLines::scan(text);

    // Untyped first: syntax errors are reported as such, and the document answers questions
    // the typed view cannot (which ignored keys hold what, is `receivers:` empty).
    let document: Value =
        serde_yaml::from_str(text).map_err(|error| syntax_error(&error, source_name, &lines))?;
    match &document {
        Value::Null | Value::Mapping(_) => {}
        other => {
            return Err(ConfigError::Syntax {
                source_name: source_name.to_owned(),
                line: Some(1),
                column: Some(1),
                message: format!(
                    "the top level must be a mapping of configuration keys, not {}",
                    kind(other)
                ),
            });
        }
    }

    let mut ignored: Vec<Vec<Segment>> = Vec::new();
    let raw: RawConfig =
        serde_ignored::deserialize(serde_yaml::Deserializer::from_str(text), |path| {
            ignored.push(keys::from_ignored(&path))
        })
        .map_err(|error| value_error(&error, source_name))?;
    let warnings = keys::warnings(&ignored, &document, &lines);

    let place = |error: ConfigError| match error {
        ConfigError::Invalid { key, message, .. } => ConfigError::Invalid {
            source_name: source_name.to_owned(),
            line: lines.line(&key).map(ConfigError::position),
            key,
            message,
        },
        other => other,
    };
    let config = raw.into_config(&document).map_err(place)?;
    config.validate().map_err(place)?;
    Ok(Loaded { config, warnings })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a sequence",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// serde_yaml appends ` at line L column C` to its messages; the position is reported
/// separately, so it is cut out of the text. `None` when the message has no position.
fn split_position(error: &serde_yaml::Error) -> (String, Option<(u32, u32)>) {
    let message = error.to_string();
    if let Some(location) = error.location() {
        let position = format!(" at line {} column {}", location.line(), location.column());
        if message.contains(&position) {
            return (
                message.replacen(&position, "", 1),
                Some((
                    ConfigError::position(location.line()),
                    ConfigError::position(location.column()),
                )),
            );
        }
    }
    (message, None)
}

fn syntax_error(error: &serde_yaml::Error, source_name: &str, lines: &KeyLines) -> ConfigError {
    let (message, position) = split_position(error);
    if message.contains("duplicate entry with key") {
        // serde_yaml places duplicates at the start of the document; the scan knows better.
        if let Some(duplicate) = lines.duplicate() {
            return ConfigError::Syntax {
                source_name: source_name.to_owned(),
                line: Some(ConfigError::position(duplicate.line)),
                column: None,
                message: format!(
                    "duplicate key {:?} (first set at line {})",
                    duplicate.key, duplicate.first_line
                ),
            };
        }
    }
    ConfigError::Syntax {
        source_name: source_name.to_owned(),
        line: position.map(|(line, _)| line),
        column: position.map(|(_, column)| column),
        message,
    }
}

/// serde_yaml's message is `path: problem, expected form`; split it so the position can sit
/// between problem and expected form.
fn value_error(error: &serde_yaml::Error, source_name: &str) -> ConfigError {
    let (message, position) = split_position(error);
    // Paths hold no spaces; serde's own messages ("invalid type: ...") do before their colon.
    let (key, rest) = match message.split_once(": ") {
        Some((key, rest)) if !key.is_empty() && !key.contains(char::is_whitespace) => {
            (key.to_owned(), rest.to_owned())
        }
        _ => (String::new(), message),
    };
    let (problem, expected) = match rest.split_once(", expected ") {
        Some((problem, expected)) => (problem.to_owned(), Some(expected.to_owned())),
        None => (rest, None),
    };
    ConfigError::Value {
        source_name: source_name.to_owned(),
        key,
        line: position.map(|(line, _)| line),
        column: position.map(|(_, column)| column),
        problem,
        expected,
    }
}
