//! The time parameters of Tempo's metrics endpoints as `pkg/api/http.go` reads them: `start`,
//! `end` (`parseTimestamp`: Unix seconds up to 10 digits, nanoseconds beyond, fractional
//! seconds, RFC 3339), `since` (Prometheus durations, default 1h) and `step`
//! (`parseSecondsOrDuration`, or `traceql.DefaultQueryRangeStep`).
//!
//! Times are held as exact nanoseconds since the epoch (`i128`); Tempo stores
//! `uint64(t.UnixNano())`, which wraps for times outside `int64` nanoseconds (the zero
//! `time.Time` Tempo falls back to on a bad parameter among them), so [`unix_nano`] wraps the
//! same way.

const SECOND_NS: i64 = 1_000_000_000;

/// Go's zero `time.Time` (year 1), in nanoseconds since the epoch.
pub(super) const ZERO_TIME_NS: i128 = -62_135_596_800 * SECOND_NS as i128;

/// Tempo's `defaultSince`.
const DEFAULT_SINCE_NS: i128 = 3600 * SECOND_NS as i128;

/// `uint64(t.UnixNano())`: Go's `UnixNano` computes `sec*1e9 + nsec` in wrapping `int64`.
pub(super) fn unix_nano(t: i128) -> u64 {
    // Truncating to 64 bits is that wrapping arithmetic.
    t as u64
}

/// Tempo's `determineBounds`: `(start, end)`, or `None` when a parameter does not parse
/// (Tempo's parsers then drop the error and use two zero times).
pub(super) fn bounds(now: i128, start: &str, end: &str, since: &str) -> Option<(i128, i128)> {
    let since = if since.is_empty() {
        DEFAULT_SINCE_NS
    } else {
        i128::from(prometheus_duration(since)?)
    };
    let end = parse_timestamp(end, now)?;
    // The default start counts back from `end`, unless `end` is in the future.
    let end_or_now = end.min(now);
    let start = parse_timestamp(start, end_or_now - since)?;
    Some((start, end))
}

/// Tempo's `parseTimestamp`: the default when empty; a number with a `.` as fractional Unix
/// seconds (rounded to milliseconds); an integer of up to 10 characters as Unix seconds and a
/// longer one as nanoseconds; else RFC 3339.
pub(super) fn parse_timestamp(value: &str, default: i128) -> Option<i128> {
    if value.is_empty() {
        return Some(default);
    }
    if value.contains('.') {
        if let Some(t) = go_parse_float(value) {
            let seconds = t.trunc();
            let fraction = ((t - seconds) * 1000.0).round() / 1000.0;
            // Go's float-to-int conversions; `time.Unix` normalizes a negative fraction.
            return Some(
                i128::from(seconds as i64) * i128::from(SECOND_NS)
                    + i128::from((fraction * 1e9) as i64),
            );
        }
    }
    match crate::http_response::go_parse_int64(value) {
        Ok(n) if value.len() <= 10 => Some(i128::from(n) * i128::from(SECOND_NS)),
        Ok(n) => Some(i128::from(n)),
        Err(_) => parse_rfc3339(value),
    }
}

/// Go's `strconv.ParseFloat(s, 64)`, closely enough: decimal forms, `inf`/`infinity` with a
/// sign, `nan`; `None` on a syntax or range error. Hexadecimal floats are not accepted.
pub(super) fn go_parse_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s).to_ascii_lowercase();
    let special = matches!(unsigned.as_str(), "inf" | "infinity");
    if unsigned == "nan" {
        // Go takes no sign before `NaN`.
        return (unsigned.len() == s.len()).then_some(f64::NAN);
    }
    if !special
        && !unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
    {
        return None;
    }
    let value: f64 = s.parse().ok()?;
    // Rust rounds an overflow to infinity; Go reports a range error.
    (special || value.is_finite()).then_some(value)
}

/// Go's `time.Parse(time.RFC3339Nano, s)` fast path: `YYYY-MM-DDTHH:MM:SS`, an optional
/// fraction (digits past the ninth ignored), then `Z` or `±HH:MM`.
fn parse_rfc3339(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = s.get(from..to)?;
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let at = |i: usize| b.get(i).copied();
    if b.len() < 20
        || at(4) != Some(b'-')
        || at(7) != Some(b'-')
        || at(10) != Some(b'T')
        || at(13) != Some(b':')
        || at(16) != Some(b':')
    {
        return None;
    }
    let year = num(0, 4)?;
    let month = num(5, 7)?;
    let day = num(8, 10)?;
    let hour = num(11, 13)?;
    let minute = num(14, 16)?;
    let second = num(17, 19)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if at(i) == Some(b'.') && at(i + 1).is_some_and(|c| c.is_ascii_digit()) {
        i += 1;
        let mut digits = 0;
        while let Some(c) = at(i).filter(u8::is_ascii_digit) {
            if digits < 9 {
                nanos = nanos * 10 + i64::from(c - b'0');
                digits += 1;
            }
            i += 1;
        }
        while digits < 9 {
            nanos *= 10;
            digits += 1;
        }
    }
    let offset_s = match s.get(i..)? {
        "Z" => 0,
        zone if zone.len() == 6
            && matches!(at(i), Some(b'+' | b'-'))
            && at(i + 3) == Some(b':') =>
        {
            let hours = num(i + 1, i + 3)?;
            let minutes = num(i + 4, i + 6)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if at(i) == Some(b'-') {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(i128::from(seconds) * i128::from(SECOND_NS) + i128::from(nanos))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Prometheus' `model.ParseDuration` (`since`): `1y2w3d4h5m6s7ms` with each unit at most
/// once and in that order, or `0`. Nanoseconds; `None` when invalid or past `int64`.
pub(super) fn prometheus_duration(s: &str) -> Option<i64> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * SECOND_NS as u64),
        ("w", 7 * 24 * 3600 * SECOND_NS as u64),
        ("d", 24 * 3600 * SECOND_NS as u64),
        ("h", 3600 * SECOND_NS as u64),
        ("m", 60 * SECOND_NS as u64),
        ("s", SECOND_NS as u64),
        ("ms", 1_000_000),
    ];
    if s == "0" {
        return Some(0);
    }
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let value: u64 = rest.get(..digits)?.parse().ok()?;
        rest = rest.get(digits..)?;
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        let unit = rest.get(..unit_len)?;
        rest = rest.get(unit_len..)?;
        let position = UNITS.iter().position(|(name, _)| *name == unit)? + 1;
        if position <= last_unit {
            return None;
        }
        last_unit = position;
        let multiplier = UNITS.get(position - 1)?.1;
        if value > (1u64 << 63) / multiplier {
            return None;
        }
        total = total.checked_add(value * multiplier)?;
    }
    i64::try_from(total).ok().filter(|_| !s.is_empty())
}

/// Why a `step` parameter was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum StepError {
    /// Tempo's own text (`cannot parse "x" to a valid duration`).
    Invalid(String),
    /// A negative step, which Tempo would take as a huge unsigned one.
    Negative,
}

/// Tempo's `parseSecondsOrDuration`: a number of seconds (fractions allowed), else a Go
/// duration. Nanoseconds.
pub(super) fn parse_step(value: &str) -> Result<u64, StepError> {
    let quoted = crate::http_response::go_quote(value);
    let step_ns: i64 = if let Some(seconds) = go_parse_float(value) {
        let ns = seconds * 1e9;
        if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(StepError::Invalid(format!(
                "cannot parse {quoted} to a valid duration. It overflows int64"
            )));
        }
        if ns.is_nan() {
            // Go converts NaN to the smallest `int64`.
            return Err(StepError::Negative);
        }
        ns as i64
    } else {
        let (negative, unsigned) = match value.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let invalid = || StepError::Invalid(format!("cannot parse {quoted} to a valid duration"));
        if negative && unsigned.starts_with(['+', '-']) {
            return Err(invalid());
        }
        let d = allegro_config::parse_duration(unsigned).map_err(|_| invalid())?;
        let ns = i64::try_from(d.as_nanos()).map_err(|_| invalid())?;
        if negative {
            -ns
        } else {
            ns
        }
    };
    u64::try_from(step_ns).map_err(|_| StepError::Negative)
}

/// Tempo's `traceql.DefaultQueryRangeStep`: about 240 points, in whole 5s (or 1s below 5s)
/// steps, at least 1s.
pub(super) fn default_step(start_ns: u64, end_ns: u64) -> u64 {
    const FIVE_SECONDS_NS: i64 = 5 * SECOND_NS;
    // `time.Duration(end - start)`: the unsigned difference seen as signed.
    let delta = end_ns.wrapping_sub(start_ns) as i64;
    let baseline = delta / 240;
    let mut interval = baseline / FIVE_SECONDS_NS * FIVE_SECONDS_NS;
    if interval < FIVE_SECONDS_NS {
        interval = baseline / SECOND_NS * SECOND_NS;
    }
    if interval < SECOND_NS {
        return SECOND_NS as u64;
    }
    interval as u64
}
