//! A syntax check for RE2 patterns (Go's `regexp/syntax`), so that `{ .a =~ "[" }` fails
//! validation like it does in Tempo. It checks structure only; matching belongs to the
//! evaluator.

/// Go's repeat count limit.
const REPEAT_MAX: u32 = 1000;

/// `Err` carries Go's description, e.g. "missing closing ]: `[`".
pub(super) fn check(pattern: &str) -> Result<(), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut depth: Vec<usize> = Vec::new();
    // Whether the last item can take a repetition operator, and whether it already has one.
    let mut operand = false;
    let mut repeated = false;
    let rest = |i: usize| -> String { chars.get(i..).unwrap_or_default().iter().collect() };
    while let Some(&c) = chars.get(i) {
        match c {
            '(' => {
                let start = i;
                i += 1;
                if chars.get(i) == Some(&'?') {
                    i += 1;
                    match chars.get(i) {
                        Some('P') | Some('<') => {
                            let named_start = if chars.get(i) == Some(&'P') { i + 1 } else { i };
                            if chars.get(named_start) != Some(&'<') {
                                return Err(format!("invalid named capture: `{}`", rest(start)));
                            }
                            let close = chars[named_start..].iter().position(|&c| c == '>');
                            let Some(close) = close else {
                                return Err(format!("invalid named capture: `{}`", rest(start)));
                            };
                            let name = &chars[named_start + 1..named_start + close];
                            if name.is_empty()
                                || !name.iter().all(|c| c.is_alphanumeric() || *c == '_')
                            {
                                let text: String =
                                    chars[start..=named_start + close].iter().collect();
                                return Err(format!("invalid named capture: `{text}`"));
                            }
                            i = named_start + close + 1;
                            depth.push(start);
                        }
                        _ => {
                            // Flags: (?flags) or (?flags:re)
                            let mut seen_minus = false;
                            loop {
                                match chars.get(i) {
                                    Some('i' | 'm' | 's' | 'U') => i += 1,
                                    Some('-') if !seen_minus => {
                                        seen_minus = true;
                                        i += 1;
                                    }
                                    Some(')') => {
                                        i += 1;
                                        break;
                                    }
                                    Some(':') => {
                                        i += 1;
                                        depth.push(start);
                                        break;
                                    }
                                    _ => {
                                        let end = (i + 1).min(chars.len());
                                        let text: String = chars[start..end].iter().collect();
                                        return Err(format!(
                                            "invalid or unsupported Perl syntax: `{text}`"
                                        ));
                                    }
                                }
                            }
                        }
                    }
                } else {
                    depth.push(start);
                }
                operand = false;
                repeated = false;
                continue;
            }
            ')' => {
                if depth.pop().is_none() {
                    return Err(format!("unexpected ): `{pattern}`"));
                }
                operand = true;
                repeated = false;
                i += 1;
            }
            '|' => {
                operand = false;
                repeated = false;
                i += 1;
            }
            '*' | '+' | '?' => {
                let mut end = i + 1;
                if chars.get(end) == Some(&'?') {
                    end += 1;
                }
                let op: String = chars[i..end].iter().collect();
                if repeated {
                    return Err(format!("invalid nested repetition operator: `{op}`"));
                }
                if !operand {
                    return Err(format!("missing argument to repetition operator: `{op}`"));
                }
                repeated = true;
                i = end;
            }
            '{' => match parse_repeat(&chars, i) {
                Some((min, max, end)) => {
                    let op: String = chars[i..end].iter().collect();
                    if min > REPEAT_MAX || max.is_some_and(|m| m > REPEAT_MAX || m < min) {
                        return Err(format!("invalid repeat count: `{op}`"));
                    }
                    if repeated {
                        return Err(format!("invalid nested repetition operator: `{op}`"));
                    }
                    if !operand {
                        return Err(format!("missing argument to repetition operator: `{op}`"));
                    }
                    repeated = true;
                    i = end;
                }
                None => {
                    operand = true;
                    repeated = false;
                    i += 1;
                }
            },
            '[' => {
                i = check_class(&chars, i)?;
                operand = true;
                repeated = false;
            }
            '\\' => {
                i = check_escape(&chars, i, false)?;
                operand = true;
                repeated = false;
            }
            _ => {
                operand = true;
                repeated = false;
                i += 1;
            }
        }
    }
    if !depth.is_empty() {
        return Err(format!("missing closing ): `{pattern}`"));
    }
    Ok(())
}

/// `{n}`, `{n,}`, `{n,m}` starting at `i`; `None` if it is a literal brace.
fn parse_repeat(chars: &[char], i: usize) -> Option<(u32, Option<u32>, usize)> {
    let mut j = i + 1;
    let num = |j: &mut usize| -> Option<u32> {
        let start = *j;
        while chars.get(*j).is_some_and(char::is_ascii_digit) {
            *j += 1;
        }
        if *j == start {
            return None;
        }
        chars[start..*j]
            .iter()
            .collect::<String>()
            .parse()
            .ok()
            .or(Some(u32::MAX))
    };
    let min = num(&mut j)?;
    let max = if chars.get(j) == Some(&',') {
        j += 1;
        if chars.get(j) == Some(&'}') {
            None
        } else {
            Some(num(&mut j)?)
        }
    } else {
        Some(min)
    };
    if chars.get(j) != Some(&'}') {
        return None;
    }
    Some((min, max, j + 1))
}

fn check_class(chars: &[char], start: usize) -> Result<usize, String> {
    let whole = || chars[start..].iter().collect::<String>();
    let mut i = start + 1;
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    let mut first = true;
    let mut prev: Option<char> = None;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(format!("missing closing ]: `{}`", whole()));
        };
        if c == ']' && !first {
            return Ok(i + 1);
        }
        first = false;
        let lo = if c == '[' && chars.get(i + 1) == Some(&':') {
            let close = (i + 2..chars.len().saturating_sub(1))
                .find(|&k| chars[k] == ':' && chars[k + 1] == ']');
            match close {
                Some(k) => {
                    let name: String = chars[i + 2..k].iter().collect();
                    let name = name.trim_start_matches('^');
                    const NAMES: [&str; 14] = [
                        "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower",
                        "print", "punct", "space", "upper", "word", "xdigit",
                    ];
                    if !NAMES.contains(&name) {
                        let text: String = chars[i..k + 2].iter().collect();
                        return Err(format!("invalid character class range: `{text}`"));
                    }
                    i = k + 2;
                    prev = None;
                    continue;
                }
                None => {
                    i += 1;
                    Some('[')
                }
            }
        } else if c == '\\' {
            let end = check_escape(chars, i, true)?;
            let single = if end == i + 2 {
                chars.get(i + 1).copied()
            } else {
                None
            };
            i = end;
            single.filter(|c| !c.is_ascii_alphanumeric())
        } else {
            i += 1;
            Some(c)
        };
        // Range a-z
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&c| c != ']') {
            let Some(lo) = lo else {
                i += 1;
                continue;
            };
            let hi_start = i + 1;
            let hi = if chars.get(hi_start) == Some(&'\\') {
                let end = check_escape(chars, hi_start, true)?;
                let h = chars.get(hi_start + 1).copied();
                i = end;
                h
            } else {
                i = hi_start + 1;
                chars.get(hi_start).copied()
            };
            if let Some(hi) = hi {
                if hi < lo {
                    let text: String = chars[hi_start - 2..i].iter().collect();
                    return Err(format!("invalid character class range: `{text}`"));
                }
            }
        }
        prev = lo.or(prev);
    }
}

fn check_escape(chars: &[char], i: usize, in_class: bool) -> Result<usize, String> {
    let bad = |end: usize| {
        let text: String = chars[i..end.min(chars.len())].iter().collect();
        Err(format!("invalid escape sequence: `{text}`"))
    };
    let Some(&c) = chars.get(i + 1) else {
        return Err("trailing backslash at end of expression: ``".to_string());
    };
    match c {
        '1'..='7' => {
            if chars.get(i + 2).is_some_and(|d| ('0'..='7').contains(d)) {
                let mut j = i + 2;
                while j < i + 4 && chars.get(j).is_some_and(|d| ('0'..='7').contains(d)) {
                    j += 1;
                }
                Ok(j)
            } else {
                bad(i + 2)
            }
        }
        '0' => {
            let mut j = i + 2;
            while j < i + 4 && chars.get(j).is_some_and(|d| ('0'..='7').contains(d)) {
                j += 1;
            }
            Ok(j)
        }
        'x' => {
            if chars.get(i + 2) == Some(&'{') {
                let close = chars[i + 3..].iter().position(|&c| c == '}');
                match close {
                    Some(n)
                        if n > 0 && chars[i + 3..i + 3 + n].iter().all(char::is_ascii_hexdigit) =>
                    {
                        Ok(i + 4 + n)
                    }
                    _ => bad(i + 3),
                }
            } else if chars.get(i + 2).is_some_and(char::is_ascii_hexdigit)
                && chars.get(i + 3).is_some_and(char::is_ascii_hexdigit)
            {
                Ok(i + 4)
            } else {
                bad(i + 4)
            }
        }
        'p' | 'P' => {
            if chars.get(i + 2) == Some(&'{') {
                match chars[i + 3..].iter().position(|&c| c == '}') {
                    Some(n) if n > 0 => Ok(i + 4 + n),
                    _ => Err(format!(
                        "invalid character class range: `{}`",
                        chars[i..].iter().collect::<String>()
                    )),
                }
            } else if chars.get(i + 2).is_some() {
                Ok(i + 3)
            } else {
                bad(i + 2)
            }
        }
        'Q' if !in_class => {
            let rest: String = chars[i + 2..].iter().collect();
            Ok(match rest.find("\\E") {
                Some(n) => i + 2 + rest[..n].chars().count() + 2,
                None => chars.len(),
            })
        }
        'a' | 'f' | 'n' | 'r' | 't' | 'v' | 'd' | 'D' | 's' | 'S' | 'w' | 'W' => Ok(i + 2),
        'A' | 'b' | 'B' | 'z' if !in_class => Ok(i + 2),
        c if c.is_ascii_punctuation() => Ok(i + 2),
        _ => bad(i + 2),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_and_rejects() {
        for ok in [
            "a",
            ".*",
            "^foo$",
            "[a-z]+",
            "(?i)abc",
            "(?P<x>a)",
            "a{2,3}",
            "\\d+",
            "[[:alpha:]]",
            "a|b|",
            "x{",
            "\\.",
            "[]a]",
            "a*?",
            "\\x41",
            "\\pL",
            "(a)(b)",
        ] {
            assert!(check(ok).is_ok(), "{ok}: {:?}", check(ok));
        }
        for bad in [
            "[", "(", ")", "a**", "*a", "a{2,1}", "\\1", "(?=a)", "[z-a]", "\\", "\\Z", "a{1001}",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
