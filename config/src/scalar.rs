//! Scalar value types read the way Tempo's YAML library (`gopkg.in/yaml.v2`) reads them, each
//! with an error message that says what form was expected.
//!
//! serde_yaml 0.9 follows YAML 1.2; Tempo's configs follow YAML 1.1, so a few forms Tempo users
//! write need care here: `1_000_000` (a string to YAML 1.2), `yes`/`on` booleans, and durations,
//! which Go reads from strings with `time.ParseDuration`.
//!
//! Every message has the shape `<problem>, expected <form>`; the loader splits at `, expected `
//! to place the line and column between the two halves.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::duration::{parse_duration, DURATION_EXPECTED};
use crate::model::Endpoint;

/// A boolean: `true`/`false` and YAML 1.1's `yes`/`no`/`on`/`off`/`y`/`n` spellings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flag(pub bool);

const FLAG_EXPECTED: &str = "a boolean (true or false)";

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Flag, D::Error> {
        struct FlagVisitor;
        impl Visitor<'_> for FlagVisitor {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(FLAG_EXPECTED)
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Flag, E> {
                Ok(Flag(value))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Flag, E> {
                // yaml.v2's resolve table.
                match value {
                    "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True"
                    | "TRUE" => Ok(Flag(true)),
                    "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False"
                    | "FALSE" => Ok(Flag(false)),
                    _ => Err(E::custom(format!(
                        "invalid value {value:?}, expected {FLAG_EXPECTED}"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(FlagVisitor)
    }
}

/// A duration in Go syntax (`10s`, `1h30m`). A bare `0` is zero; any other bare number is
/// refused, because yaml.v2 would read it as nanoseconds, which is never what was meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GoDuration(pub Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<GoDuration, D::Error> {
        struct DurationVisitor;
        impl DurationVisitor {
            fn bare_number<E: de::Error>(shown: &dyn fmt::Display) -> E {
                E::custom(format!(
                    "invalid duration {shown} (a number without a unit), expected {DURATION_EXPECTED}"
                ))
            }
        }
        impl Visitor<'_> for DurationVisitor {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(DURATION_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<GoDuration, E> {
                parse_duration(value).map(GoDuration).map_err(|reason| {
                    E::custom(format!(
                        "invalid duration {value:?} ({reason}), expected {DURATION_EXPECTED}"
                    ))
                })
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<GoDuration, E> {
                if value == 0 {
                    Ok(GoDuration(Duration::ZERO))
                } else {
                    Err(Self::bare_number(&value))
                }
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<GoDuration, E> {
                if value == 0 {
                    Ok(GoDuration(Duration::ZERO))
                } else {
                    Err(Self::bare_number(&value))
                }
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<GoDuration, E> {
                Err(Self::bare_number(&value))
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

/// What an unsigned integer setting counts, for its error message.
pub(crate) trait UintKind {
    const EXPECTED: &'static str;
}

/// A byte size: a plain integer, as in Tempo (`524288000`, `1_000_000`, `15e6`); no units.
pub(crate) enum BytesKind {}
impl UintKind for BytesKind {
    const EXPECTED: &'static str = "an integer number of bytes like 524288000 (no unit suffix)";
}

/// A count or limit: a plain non-negative integer.
pub(crate) enum CountKind {}
impl UintKind for CountKind {
    const EXPECTED: &'static str = "a non-negative integer";
}

/// A non-negative integer read like yaml.v2 reads an int: decimal, `0x` hex, `0o`/leading-`0`
/// octal, `0b` binary, `_` separators anywhere after the first digit, or a float with an
/// integral value (`15e6`).
pub(crate) struct Uint<K>(pub u64, PhantomData<K>);

pub(crate) type Bytes = Uint<BytesKind>;
pub(crate) type Count = Uint<CountKind>;

impl<K> fmt::Debug for Uint<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de, K: UintKind> Deserialize<'de> for Uint<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Uint<K>, D::Error> {
        struct UintVisitor<K>(PhantomData<K>);
        impl<K: UintKind> UintVisitor<K> {
            fn invalid<E: de::Error>(shown: &dyn fmt::Display) -> E {
                E::custom(format!("invalid value {shown}, expected {}", K::EXPECTED))
            }
        }
        impl<K: UintKind> Visitor<'_> for UintVisitor<K> {
            type Value = Uint<K>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(K::EXPECTED)
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Uint<K>, E> {
                Ok(Uint(value, PhantomData))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Uint<K>, E> {
                u64::try_from(value)
                    .map(|value| Uint(value, PhantomData))
                    .map_err(|_| Self::invalid(&value))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Uint<K>, E> {
                // 2^64 as f64; every integral f64 below it converts exactly.
                const LIMIT: f64 = 18_446_744_073_709_551_616.0;
                if value.fract() == 0.0 && (0.0..LIMIT).contains(&value) {
                    // Checked integral and in range just above: the cast is exact.
                    let whole = value as u64;
                    Ok(Uint(whole, PhantomData))
                } else {
                    Err(Self::invalid(&value))
                }
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Uint<K>, E> {
                parse_go_uint(value)
                    .map(|value| Uint(value, PhantomData))
                    .ok_or_else(|| Self::invalid(&format_args!("{value:?}")))
            }
        }
        deserializer.deserialize_any(UintVisitor(PhantomData))
    }
}

/// yaml.v2 resolves a plain scalar as an int with `strconv.ParseInt(strings.Replace(s, "_", "",
/// -1), 0, 64)`; this is the unsigned half of that, for the forms YAML 1.2 leaves as strings.
fn parse_go_uint(text: &str) -> Option<u64> {
    let text = text.strip_prefix('+').unwrap_or(text);
    if !text.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    let (radix, body) = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, hex)
    } else if let Some(binary) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        (2, binary)
    } else if let Some(octal) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        (8, octal)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, digits.get(1..)?)
    } else {
        (10, digits.as_str())
    };
    if body.is_empty() || body.starts_with('+') {
        return None;
    }
    u64::from_str_radix(body, radix).ok()
}

/// A TCP port, 0-65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Port(pub u16);

const PORT_EXPECTED: &str = "a port number (0-65535)";

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Port, D::Error> {
        struct PortVisitor;
        fn invalid<E: de::Error>(shown: &dyn fmt::Display) -> E {
            E::custom(format!("invalid value {shown}, expected {PORT_EXPECTED}"))
        }
        impl Visitor<'_> for PortVisitor {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(PORT_EXPECTED)
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Port, E> {
                u16::try_from(value).map(Port).map_err(|_| invalid(&value))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Port, E> {
                u16::try_from(value).map(Port).map_err(|_| invalid(&value))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Port, E> {
                if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
                    if let Ok(port) = value.parse::<u16>() {
                        return Ok(Port(port));
                    }
                }
                Err(invalid(&format_args!("{value:?}")))
            }
        }
        deserializer.deserialize_any(PortVisitor)
    }
}

/// A string. Like yaml.v2, a scalar that YAML reads as a number or boolean is taken as written
/// (`path: 2024` is the string `"2024"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Text, E> {
                Ok(Text(value.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Text, E> {
                Ok(Text(value.to_string()))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Text, E> {
                Ok(Text(value.to_string()))
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Text, E> {
                Ok(Text(value.to_string()))
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}

/// A `host:port` listen address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EndpointValue(pub Endpoint);

const ENDPOINT_EXPECTED: &str = "host:port like 0.0.0.0:4317";

impl<'de> Deserialize<'de> for EndpointValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<EndpointValue, D::Error> {
        struct EndpointVisitor;
        impl Visitor<'_> for EndpointVisitor {
            type Value = EndpointValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(ENDPOINT_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<EndpointValue, E> {
                Endpoint::parse(value).map(EndpointValue).map_err(|reason| {
                    E::custom(format!(
                        "invalid endpoint {value:?} ({reason}), expected {ENDPOINT_EXPECTED}"
                    ))
                })
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<EndpointValue, E> {
                Err(E::custom(format!(
                    "invalid endpoint {value} (missing host or port), expected {ENDPOINT_EXPECTED}"
                )))
            }
        }
        deserializer.deserialize_any(EndpointVisitor)
    }
}

/// A closed set of words, such as `storage.trace.backend`.
pub(crate) trait Keyword: Sized {
    /// The accepted words, as shown in errors: `one of local, s3, gcs, azure`.
    const EXPECTED: &'static str;
    fn from_word(word: &str) -> Option<Self>;
}

/// A [`Keyword`] read from a YAML string.
pub(crate) struct Word<T>(pub T);

impl<'de, T: Keyword> Deserialize<'de> for Word<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Word<T>, D::Error> {
        struct WordVisitor<T>(PhantomData<T>);
        impl<T: Keyword> Visitor<'_> for WordVisitor<T> {
            type Value = Word<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::EXPECTED)
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Word<T>, E> {
                T::from_word(value).map(Word).ok_or_else(|| {
                    E::custom(format!("invalid value {value:?}, expected {}", T::EXPECTED))
                })
            }
        }
        deserializer.deserialize_any(WordVisitor(PhantomData))
    }
}

/// Deserializes a key that counts as present even when its value is empty: `grpc:` with no
/// value enables the protocol with its defaults. An absent key stays `None` (via
/// `#[serde(default)]`).
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(
        Option::<T>::deserialize(deserializer)?.unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T: for<'de> Deserialize<'de>>(yaml: &str) -> Result<T, String> {
        serde_yaml::from_str::<T>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn flags() {
        for (yaml, value) in [
            ("true", true),
            ("false", false),
            ("True", true),
            ("yes", true),
            ("on", true),
            ("Y", true),
            ("no", false),
            ("OFF", false),
        ] {
            assert_eq!(read::<Flag>(yaml), Ok(Flag(value)), "{yaml}");
        }
        assert_eq!(
            read::<Flag>("maybe"),
            Err("invalid value \"maybe\", expected a boolean (true or false)".to_owned())
        );
        assert_eq!(
            read::<Flag>("1"),
            Err("invalid type: integer `1`, expected a boolean (true or false)".to_owned())
        );
    }

    #[test]
    fn durations() {
        assert_eq!(
            read::<GoDuration>("10s").unwrap().0,
            Duration::from_secs(10)
        );
        assert_eq!(
            read::<GoDuration>("'1h30m'").unwrap().0,
            Duration::from_secs(5400)
        );
        assert_eq!(read::<GoDuration>("0").unwrap().0, Duration::ZERO);
        assert_eq!(
            read::<GoDuration>("10"),
            Err("invalid duration 10 (a number without a unit), expected Go duration syntax like 10s, 30m, 336h".to_owned())
        );
        assert_eq!(
            read::<GoDuration>("1.5"),
            Err("invalid duration 1.5 (a number without a unit), expected Go duration syntax like 10s, 30m, 336h".to_owned())
        );
        assert_eq!(
            read::<GoDuration>("10 seconds"),
            Err("invalid duration \"10 seconds\" (unknown unit \" seconds\" in duration \"10 seconds\"), expected Go duration syntax like 10s, 30m, 336h".to_owned())
        );
        assert_eq!(
            read::<GoDuration>("[1]"),
            Err(
                "invalid type: sequence, expected Go duration syntax like 10s, 30m, 336h"
                    .to_owned()
            )
        );
    }

    #[test]
    fn byte_sizes() {
        for (yaml, value) in [
            ("524288000", 524_288_000),
            ("1_000_000", 1_000_000),
            ("100_000_000", 100_000_000),
            ("15e6", 15_000_000),
            ("0x10", 16),
            ("0o17", 15),
            ("017", 15),
            ("0b101", 5),
            ("+42", 42),
            ("0", 0),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(read::<Bytes>(yaml).map(|b| b.0), Ok(value), "{yaml}");
        }
        for (yaml, shown) in [
            ("500MiB", "\"500MiB\""),
            ("-1", "-1"),
            ("1.5", "1.5"),
            ("_1", "\"_1\""),
            ("0x", "\"0x\""),
            ("08", "\"08\""),
        ] {
            assert_eq!(
                read::<Bytes>(yaml).map(|b| b.0),
                Err(format!(
                    "invalid value {shown}, expected an integer number of bytes like 524288000 (no unit suffix)"
                )),
                "{yaml}"
            );
        }
        assert_eq!(
            read::<Count>("many").map(|c| c.0),
            Err("invalid value \"many\", expected a non-negative integer".to_owned())
        );
    }

    #[test]
    fn ports() {
        assert_eq!(read::<Port>("3200"), Ok(Port(3200)));
        assert_eq!(read::<Port>("'3200'"), Ok(Port(3200)));
        assert_eq!(read::<Port>("0"), Ok(Port(0)));
        assert_eq!(read::<Port>("65535"), Ok(Port(65535)));
        for (yaml, shown) in [("abc", "\"abc\""), ("65536", "65536"), ("-1", "-1")] {
            assert_eq!(
                read::<Port>(yaml),
                Err(format!(
                    "invalid value {shown}, expected a port number (0-65535)"
                )),
                "{yaml}"
            );
        }
    }

    #[test]
    fn text_takes_scalars_as_written() {
        assert_eq!(
            read::<Text>("/var/tempo"),
            Ok(Text("/var/tempo".to_owned()))
        );
        assert_eq!(read::<Text>("2024"), Ok(Text("2024".to_owned())));
        assert_eq!(read::<Text>("true"), Ok(Text("true".to_owned())));
        assert_eq!(
            read::<Text>("{a: 1}"),
            Err("invalid type: map, expected a string".to_owned())
        );
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            read::<EndpointValue>("0.0.0.0:4317").map(|e| e.0.to_string()),
            Ok("0.0.0.0:4317".to_owned())
        );
        assert_eq!(
            read::<EndpointValue>("localhost").map(|e| e.0.to_string()),
            Err("invalid endpoint \"localhost\" (missing port in address), expected host:port like 0.0.0.0:4317".to_owned())
        );
        assert_eq!(
            read::<EndpointValue>("4317").map(|e| e.0.to_string()),
            Err("invalid endpoint 4317 (missing host or port), expected host:port like 0.0.0.0:4317".to_owned())
        );
    }
}
