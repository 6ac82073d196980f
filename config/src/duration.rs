//! Go's `time.ParseDuration`, which is how Tempo reads every duration in `tempo.yaml`.
//!
//! The grammar is `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with the units `ns`, `us`, `µs` (U+00B5),
//! `μs` (U+03BC), `ms`, `s`, `m` and `h`, or the bare string `0`. The result must fit in Go's
//! `int64` nanoseconds (about 292 years). This port follows Go's algorithm step by step, including
//! its float64 rounding of fractions, so that a value means the same to Allegro as to Tempo.
//!
//! One deliberate difference: Go accepts a leading `-`; no Allegro setting can be negative, so a
//! negative non-zero duration is rejected here.

use std::time::Duration;

/// Go's `1 << 63`: one past the largest `int64` nanosecond count.
const NANOS_LIMIT: u64 = 1 << 63;

/// The expected form, quoted in error messages about durations.
pub(crate) const DURATION_EXPECTED: &str = "Go duration syntax like 10s, 30m, 336h";

/// Parses a duration exactly like Go's `time.ParseDuration` (`"10s"`, `"1h30m"`, `"1.5h"`,
/// `"100ms"`, `"0"`), except that negative durations are rejected.
///
/// The error is a sentence without the input's key or position, e.g.
/// `unknown unit " seconds" in duration "10 seconds"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}");

    let mut rest = text;
    let mut negative = false;
    if let Some(after) = rest.strip_prefix('-') {
        negative = true;
        rest = after;
    } else if let Some(after) = rest.strip_prefix('+') {
        rest = after;
    }
    // Special case: if all that is left is "0", this is zero.
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }

    let mut total: u64 = 0;
    while !rest.is_empty() {
        // The next character must be [0-9.].
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }

        // Consume [0-9]*.
        let before = rest.len();
        let (whole, after_whole) = leading_int(rest).ok_or_else(invalid)?;
        rest = after_whole;
        let has_whole = before != rest.len();

        // Consume (\.[0-9]*)?.
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut has_fraction = false;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let before = after_dot.len();
            let (f, s, after_fraction) = leading_fraction(after_dot);
            fraction = f;
            scale = s;
            rest = after_fraction;
            has_fraction = before != rest.len();
        }
        if !has_whole && !has_fraction {
            // No digits, e.g. ".s" or "-.s".
            return Err(invalid());
        }

        // Consume the unit: everything up to the next digit or '.'.
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(format!("missing unit in duration {text:?}"));
        }
        let (unit_text, after_unit) = rest.split_at(unit_len);
        rest = after_unit;
        let unit = unit_nanos(unit_text)
            .ok_or_else(|| format!("unknown unit {unit_text:?} in duration {text:?}"))?;

        if whole > NANOS_LIMIT / unit {
            return Err(invalid());
        }
        let mut value = whole * unit;
        if fraction > 0 {
            // Go: float64 is needed to be nanosecond accurate for fractions of hours.
            // The casts round and truncate like Go's float64 conversions.
            let fraction_nanos = (fraction as f64 * (unit as f64 / scale)) as u64;
            value = value.checked_add(fraction_nanos).ok_or_else(invalid)?;
            if value > NANOS_LIMIT {
                return Err(invalid());
            }
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > NANOS_LIMIT {
            return Err(invalid());
        }
    }

    if negative {
        if total == 0 {
            return Ok(Duration::ZERO);
        }
        return Err(format!(
            "negative duration {text:?} is not allowed; Allegro durations must be zero or positive"
        ));
    }
    if total > NANOS_LIMIT - 1 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(total))
}

/// Go's `leadingInt`: consumes `[0-9]*`; `None` on overflow past `1 << 63`.
fn leading_int(text: &str) -> Option<(u64, &str)> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(digits);
    let mut value: u64 = 0;
    for byte in number.bytes() {
        if value > NANOS_LIMIT / 10 {
            return None;
        }
        value = value * 10 + u64::from(byte - b'0');
        if value > NANOS_LIMIT {
            return None;
        }
    }
    Some((value, rest))
}

/// Go's `leadingFraction`: consumes `[0-9]*` after the decimal point. On overflow it stops
/// accumulating precision rather than failing.
fn leading_fraction(text: &str) -> (u64, f64, &str) {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(digits);
    let mut value: u64 = 0;
    let mut scale: f64 = 1.0;
    let mut overflow = false;
    for byte in number.bytes() {
        if overflow {
            continue;
        }
        if value > (NANOS_LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let next = value * 10 + u64::from(byte - b'0');
        if next > NANOS_LIMIT {
            overflow = true;
            continue;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale, rest)
}

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{00B5}s" | "\u{03BC}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

/// Formats a duration the way Go's `Duration.String` does for whole units (`336h0m0s` becomes
/// `336h`, `1h30m0s` becomes `1h30m`), for messages and `Debug`-free display of defaults.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    const UNITS: [(&str, u128); 6] = [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    let mut rest = nanos;
    let mut out = String::new();
    for (name, size) in UNITS {
        let count = rest / size;
        if count > 0 {
            out.push_str(&count.to_string());
            out.push_str(name);
            rest -= count * size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: u64 = 1;
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    const M: u64 = 60 * S;
    const H: u64 = 60 * M;

    /// Go's `parseDurationTests` (src/time/time_test.go), minus the negative results.
    #[test]
    fn go_accepts() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            ("-0s", 0),
            ("0s", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600 * MS),
            ("5.s", 5 * S),
            (".5s", 500 * MS),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4 * MS),
            ("1.0040s", S + 4 * MS),
            ("100.00100s", 100 * S + MS),
            ("10ns", 10 * NS),
            ("11us", 11 * US),
            ("12\u{00B5}s", 12 * US),
            ("12\u{03BC}s", 12 * US),
            ("13ms", 13 * MS),
            ("14s", 14 * S),
            ("15m", 15 * M),
            ("16h", 16 * H),
            ("3h30m", 3 * H + 30 * M),
            ("1h30m", H + 30 * M),
            ("1.5h", H + 30 * M),
            ("10.5s4m", 4 * M + 10 * S + 500 * MS),
            (
                "1h2m3s4ms5us6ns",
                H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
            ),
            ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * M),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", (1 << 63) - 1),
            ("9223372036854775.807us", (1 << 63) - 1),
            ("9223372036s854ms775us807ns", (1 << 63) - 1),
            ("0.100000000000000000000h", 6 * M),
            ("0.830103483285477580700h", 49 * M + 48 * S + 372_539_827),
            // Tempo's own defaults, as its docs write them.
            ("336h", 336 * H),
            ("2562047h47m16.854775807s", (1 << 63) - 1),
            ("100ms", 100 * MS),
        ];
        for &(text, nanos) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_nanos(nanos)),
                "parse_duration({text:?})"
            );
        }
    }

    /// Go's `parseDurationErrorTests`, plus the negative durations Allegro refuses.
    #[test]
    fn go_rejects() {
        let cases: &[(&str, &str)] = &[
            ("", r#"invalid duration """#),
            ("3", r#"missing unit in duration "3""#),
            ("10", r#"missing unit in duration "10""#),
            ("-", r#"invalid duration "-""#),
            ("s", r#"invalid duration "s""#),
            (".", r#"invalid duration ".""#),
            ("-.", r#"invalid duration "-.""#),
            (".s", r#"invalid duration ".s""#),
            ("+.s", r#"invalid duration "+.s""#),
            ("1d", r#"unknown unit "d" in duration "1d""#),
            ("1w", r#"unknown unit "w" in duration "1w""#),
            ("1S", r#"unknown unit "S" in duration "1S""#),
            (
                "10 seconds",
                r#"unknown unit " seconds" in duration "10 seconds""#,
            ),
            (" 10s", r#"invalid duration " 10s""#),
            ("10s ", r#"unknown unit "s " in duration "10s ""#),
            ("1h-5m", r#"unknown unit "h-" in duration "1h-5m""#),
            ("\u{FFFD}", "invalid duration \"\u{FFFD}\""),
            (
                "9223372036854775810ns",
                r#"invalid duration "9223372036854775810ns""#,
            ),
            (
                "9223372036854775808ns",
                r#"invalid duration "9223372036854775808ns""#,
            ),
            (
                "9223372036854776us",
                r#"invalid duration "9223372036854776us""#,
            ),
            ("3000000h", r#"invalid duration "3000000h""#),
            (
                "9223372036854775.808us",
                r#"invalid duration "9223372036854775.808us""#,
            ),
            (
                "9223372036854ms775us808ns",
                r#"invalid duration "9223372036854ms775us808ns""#,
            ),
            (
                "-5s",
                r#"negative duration "-5s" is not allowed; Allegro durations must be zero or positive"#,
            ),
            (
                "-2m3.4s",
                r#"negative duration "-2m3.4s" is not allowed; Allegro durations must be zero or positive"#,
            ),
            (
                "-9223372036854775808ns",
                r#"negative duration "-9223372036854775808ns" is not allowed; Allegro durations must be zero or positive"#,
            ),
            (
                "-9223372036854775809ns",
                r#"invalid duration "-9223372036854775809ns""#,
            ),
        ];
        for &(text, message) in cases {
            assert_eq!(
                parse_duration(text),
                Err(message.to_owned()),
                "parse_duration({text:?})"
            );
        }
    }

    #[test]
    fn format_round_trips() {
        for text in [
            "336h",
            "1h30m",
            "10s",
            "100ms",
            "15m",
            "0s",
            "1h2m3s4ms5us6ns",
        ] {
            let parsed = parse_duration(text).unwrap();
            assert_eq!(format_duration(parsed), text);
            assert_eq!(parse_duration(&format_duration(parsed)).unwrap(), parsed);
        }
    }
}
