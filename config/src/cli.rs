//! Command-line flags in the style of Go's `flag` package, as Tempo takes them:
//! `-name=value`, `-name value`, `--name=value`, `--name value`, and `-name` alone for booleans.
//! Parsing stops at `--`. Error texts mirror Go's, which exits with status 2 on them.

use std::fmt;
use std::path::PathBuf;

/// The parsed command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cli {
    /// `-config.file=PATH`. `None` when absent or empty: the caller decides (Allegro uses the
    /// embedded default).
    pub config_file: Option<PathBuf>,
    /// `-config.expand-env`: expand `${VAR}` in the file before parsing. Default false.
    pub config_expand_env: bool,
    /// `-version`: print the version and exit.
    pub version: bool,
    /// `-help`, `-h`: print [`usage`] and exit 0. Flags after it are not parsed, as in Go.
    pub help: bool,
}

/// A command line that cannot be run. `Display` gives Go's message; exit with
/// [`CliError::EXIT_CODE`] after printing it and [`usage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CliError {
    /// `flag provided but not defined: -foo`.
    UndefinedFlag {
        /// The flag's name, without dashes.
        name: String,
    },
    /// `flag needs an argument: -config.file`.
    MissingValue {
        /// The flag's name, without dashes.
        name: String,
    },
    /// `invalid boolean value "x" for -config.expand-env: parse error`.
    InvalidBool {
        /// The flag's name, without dashes.
        name: String,
        /// The value given.
        value: String,
    },
    /// `invalid value "x" for flag -target: ...`.
    InvalidValue {
        /// The flag's name, without dashes.
        name: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// `bad flag syntax: ---x`.
    BadSyntax {
        /// The argument as given.
        arg: String,
    },
    /// An argument that is not a flag. Go would stop parsing there and Tempo would ignore the
    /// rest; Allegro refuses it so that a mistyped flag is not silently dropped.
    UnexpectedArgument {
        /// The argument as given.
        arg: String,
    },
}

impl CliError {
    /// The exit status Go's `flag` package uses for a bad command line.
    pub const EXIT_CODE: i32 = 2;
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::UndefinedFlag { name } => write!(f, "flag provided but not defined: -{name}"),
            CliError::MissingValue { name } => write!(f, "flag needs an argument: -{name}"),
            CliError::InvalidBool { name, value } => {
                write!(
                    f,
                    "invalid boolean value {value:?} for -{name}: parse error"
                )
            }
            CliError::InvalidValue {
                name,
                value,
                reason,
            } => write!(f, "invalid value {value:?} for flag -{name}: {reason}"),
            CliError::BadSyntax { arg } => write!(f, "bad flag syntax: {arg}"),
            CliError::UnexpectedArgument { arg } => write!(
                f,
                "unexpected argument {arg:?}: Allegro takes only flags (see -help)"
            ),
        }
    }
}

impl std::error::Error for CliError {}

/// The `-help` text, in the layout of Go's `flag.PrintDefaults`.
pub fn usage() -> &'static str {
    "\
Usage of allegro:
  -config.expand-env
    \tExpands ${var} or ${var:-default} in the config file with the environment's values; an unset variable becomes empty.
  -config.file string
    \tConfiguration file to load (a Grafana Tempo tempo.yaml). Without it, Allegro runs with its built-in configuration (data under ./data).
  -h, -help
    \tPrint this help and exit.
  -target string
    \tTarget module. Allegro runs as a single binary; only \"all\" is accepted. (default \"all\")
  -version
    \tPrint version information and exit.
"
}

/// The kind of value a flag takes.
enum FlagKind {
    Bool,
    Value,
}

fn flag_kind(name: &str) -> Option<FlagKind> {
    match name {
        "config.expand-env" | "version" => Some(FlagKind::Bool),
        "config.file" | "target" => Some(FlagKind::Value),
        _ => None,
    }
}

/// Parses the arguments after the program name, e.g. `parse_args(std::env::args().skip(1))`.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Cli, CliError> {
    let mut cli = Cli::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            // Go: "--" terminates the flags; anything after it is a positional argument.
            return match args.next() {
                Some(arg) => Err(CliError::UnexpectedArgument { arg }),
                None => Ok(cli),
            };
        }
        let Some(flag) = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .filter(|_| arg.len() >= 2)
        else {
            return Err(CliError::UnexpectedArgument { arg });
        };
        if flag.is_empty() || flag.starts_with(['-', '=']) {
            return Err(CliError::BadSyntax { arg });
        }
        let (name, inline_value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (flag, None),
        };
        let Some(kind) = flag_kind(name) else {
            if name == "help" || name == "h" {
                cli.help = true;
                return Ok(cli);
            }
            return Err(CliError::UndefinedFlag {
                name: name.to_owned(),
            });
        };
        match kind {
            FlagKind::Bool => {
                let value = inline_value.unwrap_or("true");
                let parsed = parse_go_bool(value).ok_or_else(|| CliError::InvalidBool {
                    name: name.to_owned(),
                    value: value.to_owned(),
                })?;
                match name {
                    "config.expand-env" => cli.config_expand_env = parsed,
                    _ => cli.version = parsed,
                }
            }
            FlagKind::Value => {
                let value = match inline_value {
                    Some(value) => value.to_owned(),
                    None => args.next().ok_or_else(|| CliError::MissingValue {
                        name: name.to_owned(),
                    })?,
                };
                if name == "target" {
                    if value != "all" {
                        return Err(CliError::InvalidValue {
                            name: name.to_owned(),
                            value,
                            reason: "Allegro runs as a single binary; only \"all\" is supported"
                                .to_owned(),
                        });
                    }
                } else {
                    cli.config_file = (!value.is_empty()).then(|| PathBuf::from(value));
                }
            }
        }
    }
    Ok(cli)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, CliError> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    fn with_file(path: &str) -> Cli {
        Cli {
            config_file: Some(PathBuf::from(path)),
            ..Cli::default()
        }
    }

    #[test]
    fn config_file_forms() {
        for args in [
            &["-config.file=tempo.yaml"][..],
            &["--config.file=tempo.yaml"],
            &["-config.file", "tempo.yaml"],
            &["--config.file", "tempo.yaml"],
            &["-config.file=other.yaml", "-config.file=tempo.yaml"],
            &["-config.file=tempo.yaml", "--"],
        ] {
            assert_eq!(parse(args), Ok(with_file("tempo.yaml")), "{args:?}");
        }
        // As in Go, the next argument is the value even if it looks like a flag.
        assert_eq!(parse(&["-config.file", "-x"]), Ok(with_file("-x")));
        assert_eq!(parse(&["-config.file="]), Ok(Cli::default()));
        assert_eq!(parse(&["-config.file=a=b.yaml"]), Ok(with_file("a=b.yaml")));
    }

    #[test]
    fn booleans() {
        let expand = |value: bool| Cli {
            config_expand_env: value,
            ..Cli::default()
        };
        assert_eq!(parse(&["-config.expand-env"]), Ok(expand(true)));
        assert_eq!(parse(&["--config.expand-env"]), Ok(expand(true)));
        for value in ["true", "1", "t", "T", "TRUE", "True"] {
            assert_eq!(
                parse(&[&format!("-config.expand-env={value}")]),
                Ok(expand(true))
            );
        }
        for value in ["false", "0", "f", "F", "FALSE", "False"] {
            assert_eq!(
                parse(&[&format!("-config.expand-env={value}")]),
                Ok(expand(false))
            );
        }
        // A boolean flag never takes the next argument as its value.
        assert_eq!(
            parse(&["-config.expand-env", "false"]),
            Err(CliError::UnexpectedArgument {
                arg: "false".to_owned()
            })
        );
        let version = Cli {
            version: true,
            ..Cli::default()
        };
        assert_eq!(parse(&["-version"]), Ok(version.clone()));
        assert_eq!(parse(&["--version"]), Ok(version));
    }

    #[test]
    fn help_stops_parsing() {
        let help = Cli {
            help: true,
            ..Cli::default()
        };
        for args in [
            &["-help"][..],
            &["-h"],
            &["--help"],
            &["--h"],
            &["-help=1"],
            &["-h", "-unknown"],
        ] {
            assert_eq!(parse(args), Ok(help.clone()), "{args:?}");
        }
        assert_eq!(
            parse(&["-config.file=x.yaml", "-h"]),
            Ok(Cli {
                config_file: Some(PathBuf::from("x.yaml")),
                help: true,
                ..Cli::default()
            })
        );
    }

    #[test]
    fn target() {
        assert_eq!(parse(&["-target=all"]), Ok(Cli::default()));
        assert_eq!(parse(&["-target", "all"]), Ok(Cli::default()));
        assert_eq!(
            parse(&["-target=distributor"]).unwrap_err().to_string(),
            "invalid value \"distributor\" for flag -target: Allegro runs as a single binary; only \"all\" is supported"
        );
    }

    #[test]
    fn errors_mirror_go() {
        let cases: &[(&[&str], &str)] = &[
            (&["-foo"], "flag provided but not defined: -foo"),
            (&["--foo=bar"], "flag provided but not defined: -foo"),
            (&["-config.file"], "flag needs an argument: -config.file"),
            (&["-target"], "flag needs an argument: -target"),
            (
                &["-config.expand-env=yes"],
                "invalid boolean value \"yes\" for -config.expand-env: parse error",
            ),
            (
                &["-version="],
                "invalid boolean value \"\" for -version: parse error",
            ),
            (&["---config.file=x"], "bad flag syntax: ---config.file=x"),
            (&["-=x"], "bad flag syntax: -=x"),
            (
                &["tempo.yaml"],
                "unexpected argument \"tempo.yaml\": Allegro takes only flags (see -help)",
            ),
            (
                &["-"],
                "unexpected argument \"-\": Allegro takes only flags (see -help)",
            ),
            (
                &["--", "x"],
                "unexpected argument \"x\": Allegro takes only flags (see -help)",
            ),
        ];
        for &(args, message) in cases {
            assert_eq!(parse(args).unwrap_err().to_string(), message, "{args:?}");
        }
        assert_eq!(CliError::EXIT_CODE, 2);
    }

    #[test]
    fn usage_lists_every_flag() {
        for flag in [
            "-config.file",
            "-config.expand-env",
            "-target",
            "-version",
            "-help",
        ] {
            assert!(usage().contains(flag), "{flag}");
        }
    }
}
