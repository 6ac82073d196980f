//! `-config.expand-env=true`: environment variable references in the configuration text, expanded
//! before YAML parsing, with the rules of `github.com/drone/envsubst`, which Tempo uses.
//!
//! | Written            | Becomes                                                  |
//! | ------------------ | -------------------------------------------------------- |
//! | `${VAR}`           | the value of `VAR`; empty if unset                       |
//! | `${VAR:-default}`  | `default` if `VAR` is unset or empty                     |
//! | `${VAR:=default}`  | the same as `:-` (nothing is assigned)                   |
//! | `${VAR=default}`   | `default` if `VAR` is unset                              |
//! | `$$`               | a literal `$` (so `$${VAR}` stays `${VAR}`)              |
//! | `$VAR`, lone `$`   | unchanged: envsubst expands only the braced form         |
//!
//! Defaults may contain further `${...}`. Variable names are made of letters, digits, `_` and
//! `-`, as in envsubst. envsubst's string functions (`${#VAR}`, `${VAR:0:3}`, `${VAR/a/b}`,
//! `${VAR^^}`, ...) are refused with an error rather than half-supported. The whole text is
//! expanded, comments included, as Tempo does.

use std::fmt;
use std::iter::Peekable;
use std::str::CharIndices;

/// Why expansion failed, with the position of the `$` that starts the bad expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for EnvError {}

/// Expands `${VAR}`-style references in `text`; `env` answers `None` for an unset variable.
/// Pass `|name| std::env::var(name).ok()` for the process environment.
pub fn expand_env(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, EnvError> {
    let mut expander = Expander {
        text,
        chars: text.char_indices().peekable(),
        env: &env,
    };
    expander.expand_all()
}

struct Expander<'a> {
    text: &'a str,
    chars: Peekable<CharIndices<'a>>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Expander<'_> {
    fn expand_all(&mut self) -> Result<String, EnvError> {
        let mut out = String::with_capacity(self.text.len());
        while let Some((offset, c)) = self.chars.next() {
            if c == '$' {
                self.dollar(offset, &mut out)?;
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// After a `$` at `offset`: `$$`, `${...}` or a literal `$`.
    fn dollar(&mut self, offset: usize, out: &mut String) -> Result<(), EnvError> {
        match self.chars.peek() {
            Some(&(_, '$')) => {
                self.chars.next();
                out.push('$');
            }
            Some(&(_, '{')) => {
                self.chars.next();
                let value = self.braced(offset)?;
                out.push_str(&value);
            }
            _ => out.push('$'),
        }
        Ok(())
    }

    /// After `${` whose `$` is at `start`; consumes through the closing `}`.
    fn braced(&mut self, start: usize) -> Result<String, EnvError> {
        let mut name = String::new();
        while let Some(&(_, c)) = self.chars.peek() {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                name.push(c);
                self.chars.next();
            } else {
                break;
            }
        }
        let next = self.chars.next().map(|(_, c)| c);
        if name.is_empty() {
            return match next {
                None => Err(self.error(start, "missing closing \"}\"".to_owned())),
                Some('}') => Err(self.error(start, "empty variable name in \"${}\"".to_owned())),
                Some(_) => Err(self.unsupported(start)),
            };
        }
        match next {
            Some('}') => Ok((self.env)(&name).unwrap_or_default()),
            Some(':') => match self.chars.next().map(|(_, c)| c) {
                Some('-' | '=') => {
                    let default = self.default_value(start)?;
                    Ok(match (self.env)(&name) {
                        Some(value) if !value.is_empty() => value,
                        _ => default,
                    })
                }
                None => Err(self.error(start, "missing closing \"}\"".to_owned())),
                Some(_) => Err(self.unsupported(start)),
            },
            Some('=') => {
                let default = self.default_value(start)?;
                Ok((self.env)(&name).unwrap_or(default))
            }
            None => Err(self.error(start, "missing closing \"}\"".to_owned())),
            Some(_) => Err(self.unsupported(start)),
        }
    }

    /// The default after `:-`, `:=` or `=`, through the closing `}`, itself expanded.
    fn default_value(&mut self, start: usize) -> Result<String, EnvError> {
        let mut out = String::new();
        loop {
            match self.chars.next() {
                None => return Err(self.error(start, "missing closing \"}\"".to_owned())),
                Some((_, '}')) => return Ok(out),
                Some((offset, '$')) => self.dollar(offset, &mut out)?,
                Some((_, c)) => out.push(c),
            }
        }
    }

    fn unsupported(&self, start: usize) -> EnvError {
        let line = self
            .text
            .get(start..)
            .and_then(|rest| rest.lines().next())
            .unwrap_or("");
        let Some(end) = line.find('}') else {
            return self.error(start, "missing closing \"}\"".to_owned());
        };
        let shown = line.get(..=end).unwrap_or(line);
        self.error(
            start,
            format!(
                "unsupported expression {shown:?}; Allegro expands ${{VAR}}, ${{VAR:-default}}, \
                 ${{VAR:=default}}, ${{VAR=default}} and $$"
            ),
        )
    }

    fn error(&self, offset: usize, message: String) -> EnvError {
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
        EnvError {
            line,
            column,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("3201".to_owned()),
            "EMPTY" => Some(String::new()),
            "DATA" => Some("/data".to_owned()),
            "WITH-DASH" => Some("dash".to_owned()),
            "ÜBER" => Some("unicode".to_owned()),
            _ => None,
        }
    }

    fn check(input: &str, output: &str) {
        assert_eq!(expand_env(input, env), Ok(output.to_owned()), "{input:?}");
    }

    fn check_err(input: &str, line: usize, column: usize, message: &str) {
        assert_eq!(
            expand_env(input, env),
            Err(EnvError {
                line,
                column,
                message: message.to_owned()
            }),
            "{input:?}"
        );
    }

    #[test]
    fn expands() {
        check("", "");
        check("no variables", "no variables");
        check("port: ${PORT}", "port: 3201");
        check("port: ${UNSET}", "port: ");
        check("${PORT}${PORT}", "32013201");
        check("port: ${PORT:-3200}", "port: 3201");
        check("port: ${UNSET:-3200}", "port: 3200");
        check("port: ${EMPTY:-3200}", "port: 3200");
        check("port: ${EMPTY=3200}", "port: ");
        check("port: ${UNSET=3200}", "port: 3200");
        check("port: ${UNSET:=3200}", "port: 3200");
        check("port: ${EMPTY:=3200}", "port: 3200");
        check("path: ${UNSET:-${DATA}/wal}", "path: /data/wal");
        check("path: ${UNSET:-${ALSO_UNSET:-/tmp}/wal}", "path: /tmp/wal");
        check("path: ${UNSET:-}", "path: ");
        check("${WITH-DASH}", "dash");
        check("${ÜBER}", "unicode");
        check("url: http://a:b@host/${DATA}", "url: http://a:b@host//data");
    }

    #[test]
    fn leaves_the_unbraced_form_alone() {
        check("password: $PORT", "password: $PORT");
        check("cost: 5$", "cost: 5$");
        check("a $ b", "a $ b");
        check("$$", "$");
        check("$${PORT}", "${PORT}");
        check("$$PORT", "$PORT");
        check(
            "text $${PORT}$${x$${PORT}$PORT${PORT}",
            "text ${PORT}${x${PORT}$PORT3201",
        );
        check("# comment ${PORT}\nkey: 1", "# comment 3201\nkey: 1");
    }

    #[test]
    fn rejects() {
        check_err("a: ${PORT", 1, 4, "missing closing \"}\"");
        check_err("a: 1\nb: ${UNSET:-x", 2, 4, "missing closing \"}\"");
        check_err("${", 1, 1, "missing closing \"}\"");
        check_err("  ${}", 1, 3, "empty variable name in \"${}\"");
        let unsupported = |shown: &str| {
            format!(
                "unsupported expression {shown:?}; Allegro expands ${{VAR}}, ${{VAR:-default}}, \
                 ${{VAR:=default}}, ${{VAR=default}} and $$"
            )
        };
        check_err("${#PORT}", 1, 1, &unsupported("${#PORT}"));
        check_err("x: ${PORT:0:2}", 1, 4, &unsupported("${PORT:0:2}"));
        check_err("${PORT/1/2}", 1, 1, &unsupported("${PORT/1/2}"));
        check_err("${PORT^^}", 1, 1, &unsupported("${PORT^^}"));
        check_err("${PORT:?required}", 1, 1, &unsupported("${PORT:?required}"));
        check_err("${PORT:+alt}", 1, 1, &unsupported("${PORT:+alt}"));
        check_err("é: ${ PORT}", 1, 4, &unsupported("${ PORT}"));
        check_err("a: ${PORT\nb: }", 1, 4, "missing closing \"}\"");
        check_err("a: ${PORT x", 1, 4, "missing closing \"}\"");
    }
}
