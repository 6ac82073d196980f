//! The TraceQL lexer: Tempo's token rules on top of an emulation of Go's `text/scanner`.
//!
//! Tempo lexes with `text/scanner` in its default mode (Go identifiers, numbers, strings, raw
//! strings, char literals; `//` and `/* */` comments skipped) and reports every error at the
//! scanner's `Position`, which is the start of the last token `Scan()` returned — and has its
//! line zeroed by every `Next()`. Error columns are part of the API (Grafana shows them), so this
//! module reproduces that bookkeeping exactly rather than approximating it: the scanner below
//! keeps Go's fields (`line`, `column`, `lastLineLen`, `lastCharLen`, the one-rune lookahead)
//! and the same read order.

use super::grammar::Tok;

/// One decoded input unit: a character, or `U+FFFD` standing for one invalid UTF-8 byte.
#[derive(Clone, Copy)]
pub(super) struct Unit {
    ch: char,
    invalid: bool,
}

/// Decodes bytes the way Go ranges over a string: each invalid byte is one `U+FFFD`.
pub(super) fn decode(bytes: &[u8]) -> Vec<Unit> {
    let mut units = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                units.extend(s.chars().map(|ch| Unit { ch, invalid: false }));
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // `valid_up_to` bytes are valid UTF-8 by contract.
                let good = std::str::from_utf8(good).unwrap_or_default();
                units.extend(good.chars().map(|ch| Unit { ch, invalid: false }));
                units.push(Unit {
                    ch: '\u{FFFD}',
                    invalid: true,
                });
                rest = bad.get(1..).unwrap_or_default();
            }
        }
    }
    units
}

const EOF: i32 = -1;
const NOT_READ: i32 = -2;

/// Token classes `text/scanner` returns besides plain characters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Eof,
    Ident,
    Int,
    Float,
    Char,
    String,
    RawString,
    Other,
}

/// A lexer error: the message and Go's `Position` (line, column) at the time it was reported.
#[derive(Clone, Debug)]
pub(super) struct LexError {
    pub message: String,
    pub line: u32,
    pub col: u32,
}

/// Go's `text/scanner.Scanner`, reduced to what Tempo uses.
#[derive(Clone)]
struct Scanner<'a> {
    src: &'a [Unit],
    src_pos: usize,
    ch: i32,
    line: u32,
    column: u32,
    last_line_len: u32,
    last_char_len: u32,
    tok_pos: Option<usize>,
    tok_end: usize,
    /// `Position.Line` / `Position.Column`: start of the last scanned token.
    pos_line: u32,
    pos_col: u32,
    errors: Vec<LexError>,
}

fn is_decimal(ch: i32) -> bool {
    (b'0' as i32..=b'9' as i32).contains(&ch)
}

fn is_hex(ch: i32) -> bool {
    is_decimal(ch) || (b'a' as i32..=b'f' as i32).contains(&lower(ch))
}

fn lower(ch: i32) -> i32 {
    (b'a' as i32 - b'A' as i32) | ch
}

fn to_char(ch: i32) -> Option<char> {
    u32::try_from(ch).ok().and_then(char::from_u32)
}

fn is_ident_rune(ch: i32, i: usize) -> bool {
    match to_char(ch) {
        Some(c) => c == '_' || c.is_alphabetic() || (c.is_numeric() && i > 0),
        None => false,
    }
}

fn is_go_whitespace(ch: i32) -> bool {
    ch == '\t' as i32 || ch == '\n' as i32 || ch == '\r' as i32 || ch == ' ' as i32
}

fn litname(prefix: char) -> &'static str {
    match prefix {
        'x' => "hexadecimal literal",
        'o' | '0' => "octal literal",
        'b' => "binary literal",
        _ => "decimal literal",
    }
}

/// Go's `%q` for a rune.
fn quote_rune(ch: i32) -> String {
    match to_char(ch) {
        Some('\'') => "'\\''".to_string(),
        Some('\\') => "'\\\\'".to_string(),
        Some(c) if !c.is_control() => format!("'{c}'"),
        Some(c) => format!("'\\u{:04x}'", c as u32),
        None => "'\u{FFFD}'".to_string(),
    }
}

impl<'a> Scanner<'a> {
    fn new(src: &'a [Unit]) -> Self {
        Scanner {
            src,
            src_pos: 0,
            ch: NOT_READ,
            line: 1,
            column: 0,
            last_line_len: 0,
            last_char_len: 0,
            tok_pos: None,
            tok_end: 0,
            pos_line: 0,
            pos_col: 0,
            errors: Vec::new(),
        }
    }

    fn error(&mut self, message: impl Into<String>) {
        self.errors.push(LexError {
            message: message.into(),
            line: self.pos_line,
            col: self.pos_col,
        });
    }

    fn next_rune(&mut self) -> i32 {
        let Some(unit) = self.src.get(self.src_pos).copied() else {
            if self.last_char_len > 0 {
                self.column += 1;
            }
            self.last_char_len = 0;
            return EOF;
        };
        self.src_pos += 1;
        self.last_char_len = 1;
        self.column += 1;
        if unit.invalid {
            self.error("invalid UTF-8 encoding");
            return unit.ch as i32;
        }
        match unit.ch {
            '\0' => self.error("invalid character NUL"),
            '\n' => {
                self.line += 1;
                self.last_line_len = self.column;
                self.column = 0;
            }
            _ => {}
        }
        unit.ch as i32
    }

    fn peek(&mut self) -> i32 {
        if self.ch == NOT_READ {
            self.ch = self.next_rune();
            if self.ch == 0xFEFF {
                self.ch = self.next_rune();
            }
        }
        self.ch
    }

    /// Go's `Next()`: consumes one rune and invalidates the token position's line.
    fn next(&mut self) -> i32 {
        self.tok_pos = None;
        self.pos_line = 0;
        let ch = self.peek();
        if ch != EOF {
            self.ch = self.next_rune();
        }
        ch
    }

    fn token_text(&self) -> String {
        match self.tok_pos {
            Some(start) => self
                .src
                .get(start..self.tok_end.max(start))
                .unwrap_or_default()
                .iter()
                .map(|u| u.ch)
                .collect(),
            None => String::new(),
        }
    }

    fn scan(&mut self) -> Class {
        let mut ch = self.peek();
        self.tok_pos = None;
        self.pos_line = 0;
        loop {
            while is_go_whitespace(ch) {
                ch = self.next_rune();
            }
            let start = self.src_pos - self.last_char_len as usize;
            self.tok_pos = Some(start);
            if self.column > 0 {
                self.pos_line = self.line;
                self.pos_col = self.column;
            } else {
                self.pos_line = self.line.saturating_sub(1);
                self.pos_col = self.last_line_len;
            }
            let mut class = Class::Other;
            if is_ident_rune(ch, 0) {
                class = Class::Ident;
                ch = self.next_rune();
                let mut i = 1;
                while is_ident_rune(ch, i) {
                    ch = self.next_rune();
                    i += 1;
                }
            } else if is_decimal(ch) {
                (class, ch) = self.scan_number(ch, false);
            } else if ch == EOF {
                class = Class::Eof;
            } else if ch == '"' as i32 {
                self.scan_string('"' as i32);
                class = Class::String;
                ch = self.next_rune();
            } else if ch == '\'' as i32 {
                if self.scan_string('\'' as i32) != 1 {
                    self.error("invalid char literal");
                }
                class = Class::Char;
                ch = self.next_rune();
            } else if ch == '.' as i32 {
                ch = self.next_rune();
                if is_decimal(ch) {
                    (class, ch) = self.scan_number(ch, true);
                }
            } else if ch == '/' as i32 {
                ch = self.next_rune();
                if ch == '/' as i32 || ch == '*' as i32 {
                    self.tok_pos = None;
                    ch = self.scan_comment(ch);
                    continue;
                }
            } else if ch == '`' as i32 {
                ch = self.next_rune();
                while ch != '`' as i32 {
                    if ch < 0 {
                        self.error("literal not terminated");
                        break;
                    }
                    ch = self.next_rune();
                }
                class = Class::RawString;
                ch = self.next_rune();
            } else {
                ch = self.next_rune();
            }
            self.tok_end = self.src_pos - self.last_char_len as usize;
            self.ch = ch;
            return class;
        }
    }

    fn scan_comment(&mut self, ch: i32) -> i32 {
        if ch == '/' as i32 {
            let mut ch = self.next_rune();
            while ch != '\n' as i32 && ch >= 0 {
                ch = self.next_rune();
            }
            return ch;
        }
        let mut ch = self.next_rune();
        loop {
            if ch < 0 {
                self.error("comment not terminated");
                return ch;
            }
            let ch0 = ch;
            ch = self.next_rune();
            if ch0 == '*' as i32 && ch == '/' as i32 {
                return self.next_rune();
            }
        }
    }

    fn scan_string(&mut self, quote: i32) -> usize {
        let mut n = 0;
        let mut ch = self.next_rune();
        while ch != quote {
            if ch == '\n' as i32 || ch < 0 {
                self.error("literal not terminated");
                return n;
            }
            if ch == '\\' as i32 {
                ch = self.scan_escape(quote);
            } else {
                ch = self.next_rune();
            }
            n += 1;
        }
        n
    }

    fn scan_escape(&mut self, quote: i32) -> i32 {
        let ch = self.next_rune();
        match to_char(ch) {
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => self.next_rune(),
            _ if ch == quote => self.next_rune(),
            Some('0'..='7') => self.scan_digits(ch, 8, 3),
            Some('x') => {
                let c = self.next_rune();
                self.scan_digits(c, 16, 2)
            }
            Some('u') => {
                let c = self.next_rune();
                self.scan_digits(c, 16, 4)
            }
            Some('U') => {
                let c = self.next_rune();
                self.scan_digits(c, 16, 8)
            }
            _ => {
                self.error("invalid char escape");
                ch
            }
        }
    }

    fn scan_digits(&mut self, mut ch: i32, base: u32, mut n: u32) -> i32 {
        while n > 0
            && to_char(ch)
                .and_then(|c| c.to_digit(16))
                .is_some_and(|d| d < base)
        {
            ch = self.next_rune();
            n -= 1;
        }
        if n > 0 {
            self.error("invalid char escape");
        }
        ch
    }

    fn digits(&mut self, mut ch: i32, base: i32, invalid: &mut i32) -> (i32, u8) {
        let mut digsep = 0;
        if base <= 10 {
            let max = '0' as i32 + base;
            while is_decimal(ch) || ch == '_' as i32 {
                let mut ds = 1;
                if ch == '_' as i32 {
                    ds = 2;
                } else if ch >= max && *invalid == 0 {
                    *invalid = ch;
                }
                digsep |= ds;
                ch = self.next_rune();
            }
        } else {
            while is_hex(ch) || ch == '_' as i32 {
                digsep |= if ch == '_' as i32 { 2 } else { 1 };
                ch = self.next_rune();
            }
        }
        (ch, digsep)
    }

    fn scan_number(&mut self, mut ch: i32, mut seen_dot: bool) -> (Class, i32) {
        let mut base = 10;
        let mut prefix = '\0';
        let mut digsep = 0;
        let mut invalid = 0;
        let mut class = Class::Int;
        if !seen_dot {
            if ch == '0' as i32 {
                ch = self.next_rune();
                match to_char(lower(ch)) {
                    Some('x') => {
                        ch = self.next_rune();
                        (base, prefix) = (16, 'x');
                    }
                    Some('o') => {
                        ch = self.next_rune();
                        (base, prefix) = (8, 'o');
                    }
                    Some('b') => {
                        ch = self.next_rune();
                        (base, prefix) = (2, 'b');
                    }
                    _ => {
                        (base, prefix) = (8, '0');
                        digsep = 1;
                    }
                }
            }
            let (c, ds) = self.digits(ch, base, &mut invalid);
            ch = c;
            digsep |= ds;
            if ch == '.' as i32 {
                ch = self.next_rune();
                seen_dot = true;
            }
        }
        if seen_dot {
            class = Class::Float;
            if prefix == 'o' || prefix == 'b' {
                self.error(format!("invalid radix point in {}", litname(prefix)));
            }
            let (c, ds) = self.digits(ch, base, &mut invalid);
            ch = c;
            digsep |= ds;
        }
        if digsep & 1 == 0 {
            self.error(format!("{} has no digits", litname(prefix)));
        }
        let e = lower(ch);
        if e == 'e' as i32 || e == 'p' as i32 {
            if e == 'e' as i32 && prefix != '\0' && prefix != '0' {
                self.error(format!(
                    "{} exponent requires decimal mantissa",
                    quote_rune(ch)
                ));
            } else if e == 'p' as i32 && prefix != 'x' {
                self.error(format!(
                    "{} exponent requires hexadecimal mantissa",
                    quote_rune(ch)
                ));
            }
            ch = self.next_rune();
            class = Class::Float;
            if ch == '+' as i32 || ch == '-' as i32 {
                ch = self.next_rune();
            }
            let mut none = 0;
            let (c, ds) = self.digits(ch, 10, &mut none);
            ch = c;
            digsep |= ds;
            if ds & 1 == 0 {
                self.error("exponent has no digits");
            }
        } else if prefix == 'x' && class == Class::Float {
            self.error("hexadecimal mantissa requires a 'p' exponent");
        }
        if class == Class::Int && invalid != 0 {
            self.error(format!(
                "invalid digit {} in {}",
                quote_rune(invalid),
                litname(prefix)
            ));
        }
        if digsep & 2 != 0 {
            self.tok_end = self.src_pos - self.last_char_len as usize;
            if invalid_separator(&self.token_text()) {
                self.error("'_' must separate successive digits");
            }
        }
        (class, ch)
    }
}

/// Go's `invalidSep`: true when a `_` does not separate two digits.
fn invalid_separator(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut x1 = b' ';
    let mut d = b'.';
    let mut i = 0;
    if bytes.len() >= 2 && bytes[0] == b'0' {
        x1 = bytes[1] | 0x20;
        if x1 == b'x' || x1 == b'o' || x1 == b'b' {
            d = b'0';
            i = 2;
        }
    }
    while i < bytes.len() {
        let p = d;
        d = bytes[i];
        if d == b'_' {
            if p != b'0' {
                return true;
            }
        } else if d.is_ascii_digit() || (x1 == b'x' && d.is_ascii_hexdigit()) {
            d = b'0';
        } else {
            if p == b'_' {
                return true;
            }
            d = b'.';
        }
        i += 1;
    }
    d == b'_'
}

/// A token's value.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum TokVal {
    None,
    Str(String),
    Int(i64),
    Float(f64),
    /// Nanoseconds.
    Duration(i64),
}

/// Tempo's lexer state on top of the scanner.
pub(super) struct Lexer<'a> {
    scanner: Scanner<'a>,
    parsing_attribute: bool,
    current_scope: Option<Tok>,
    errors: Vec<LexError>,
}

fn is_space(ch: i32) -> bool {
    to_char(ch).is_some_and(char::is_whitespace)
}

/// Tempo's `isAttributeRune`: everything that does not end an attribute name.
pub(super) fn is_attribute_rune(ch: i32) -> bool {
    if ch < 0 || is_space(ch) {
        return false;
    }
    !matches!(
        to_char(ch),
        Some('{' | '}' | '(' | ')' | '=' | '~' | '!' | '<' | '>' | '&' | '|' | '^' | ',')
    )
}

fn is_duration_rune(ch: i32) -> bool {
    matches!(
        to_char(ch),
        Some('n' | 's' | 'u' | 'm' | 'h' | 'µ' | 'd' | 'w' | 'y')
    )
}

impl<'a> Lexer<'a> {
    pub(super) fn new(src: &'a [Unit]) -> Self {
        Lexer {
            scanner: Scanner::new(src),
            parsing_attribute: false,
            current_scope: None,
            errors: Vec::new(),
        }
    }

    /// Errors reported so far, oldest first (Tempo answers with the first).
    pub(super) fn take_errors(&mut self) -> Vec<LexError> {
        self.flush();
        std::mem::take(&mut self.errors)
    }

    /// Go's scanner `Position` right now: where a parser error is reported.
    pub(super) fn position(&self) -> (u32, u32) {
        (self.scanner.pos_line, self.scanner.pos_col)
    }

    fn flush(&mut self) {
        self.errors.append(&mut self.scanner.errors);
    }

    /// Errors a copy of the scanner ran into are reported by Tempo at the original's position.
    fn adopt(&mut self, copy: &mut Scanner<'_>) {
        self.flush();
        for mut e in copy.errors.drain(..) {
            e.line = self.scanner.pos_line;
            e.col = self.scanner.pos_col;
            self.errors.push(e);
        }
    }

    fn error(&mut self, message: impl Into<String>) {
        self.flush();
        self.errors.push(LexError {
            message: message.into(),
            line: self.scanner.pos_line,
            col: self.scanner.pos_col,
        });
    }

    /// The next token; `Tok::End` at the end of input and after a lexer error.
    pub(super) fn lex(&mut self) -> (Tok, TokVal) {
        let result = self.lex_inner();
        self.flush();
        result
    }

    fn lex_inner(&mut self) -> (Tok, TokVal) {
        if self.parsing_attribute && !is_attribute_rune(self.scanner.peek()) {
            self.parsing_attribute = false;
            return (Tok::EndAttribute, TokVal::None);
        }
        if self.parsing_attribute {
            if let Some(tok) = self.try_scope_attribute() {
                self.current_scope = Some(tok);
                return (tok, TokVal::None);
            }
            return match self.parse_attribute() {
                Ok(name) => (Tok::Identifier, TokVal::Str(name)),
                Err(message) => {
                    self.error(message);
                    (Tok::End, TokVal::None)
                }
            };
        }

        let class = self.scanner.scan();
        match class {
            Class::Eof => return (Tok::End, TokVal::None),
            Class::String | Class::RawString => {
                return match unquote(&self.scanner.token_text()) {
                    Some(s) => (Tok::String, TokVal::Str(s)),
                    None => {
                        self.error("invalid syntax");
                        (Tok::End, TokVal::None)
                    }
                };
            }
            Class::Int | Class::Float => {
                let text = self.scanner.token_text();
                if let Some(ns) = self.try_scan_duration(&text) {
                    return (Tok::Duration, TokVal::Duration(ns));
                }
                let parsed = if class == Class::Int {
                    parse_go_int(&text).map(|i| (Tok::Integer, TokVal::Int(i)))
                } else {
                    parse_go_float(&text).map(|f| (Tok::Float, TokVal::Float(f)))
                };
                return match parsed {
                    Ok(t) => t,
                    Err(message) => {
                        self.error(message);
                        (Tok::End, TokVal::None)
                    }
                };
            }
            _ => {}
        }

        // Combination tokens: extend the text one rune at a time while it names a token.
        let mut multi = None;
        let mut text = self.scanner.token_text();
        while let Some(c) = to_char(self.scanner.peek()) {
            text.push(c);
            match Tok::from_text(&text) {
                Some(tok) => {
                    multi = Some(tok);
                    self.scanner.next();
                }
                None => break,
            }
        }
        if let Some(tok) = multi {
            if tok.is_scope() {
                self.current_scope = Some(tok);
            }
            self.parsing_attribute = tok.starts_attribute();
            return (tok, TokVal::None);
        }
        let text = self.scanner.token_text();
        if let Some(tok) = Tok::from_text(&text) {
            self.parsing_attribute = tok.starts_attribute();
            return (tok, TokVal::None);
        }
        (Tok::Identifier, TokVal::Str(text))
    }

    /// `parent.span.x` / `parent.resource.x`: the inner scope is a token of its own.
    fn try_scope_attribute(&mut self) -> Option<Tok> {
        const LONGEST_SCOPE: usize = 9; // "resource."
        let mut copy = self.scanner.clone();
        copy.errors.clear();
        let mut text = String::new();
        let mut count = 0usize;
        while copy.peek() != EOF {
            let r = copy.peek();
            if r == '.' as i32 {
                copy.next();
                text.push('.');
                count += 1;
                break;
            }
            if !is_attribute_rune(r) || count > LONGEST_SCOPE {
                break;
            }
            if let Some(c) = to_char(copy.next()) {
                text.push(c);
                count += 1;
            }
        }
        self.adopt(&mut copy);
        let tok = Tok::from_text(&text)?;
        if matches!(tok, Tok::SpanDot | Tok::ResourceDot)
            && self.current_scope == Some(Tok::ParentDot)
        {
            for _ in 0..count {
                self.scanner.next();
            }
            return Some(tok);
        }
        None
    }

    fn parse_attribute(&mut self) -> Result<String, &'static str> {
        let mut name = String::new();
        loop {
            let r = self.scanner.peek();
            if r == '"' as i32 {
                self.parse_quoted_attribute(&mut name)?;
            } else if is_attribute_rune(r) {
                if let Some(c) = to_char(self.scanner.next()) {
                    name.push(c);
                }
            } else {
                return Ok(name);
            }
        }
    }

    fn parse_quoted_attribute(&mut self, name: &mut String) -> Result<(), &'static str> {
        self.scanner.next();
        let mut r = self.scanner.peek();
        while r != EOF {
            if r == '"' as i32 {
                self.scanner.next();
                break;
            } else if r == '\\' as i32 {
                self.scanner.next();
                let e = self.scanner.peek();
                if e == '\\' as i32 || e == '"' as i32 {
                    name.extend(to_char(e));
                    self.scanner.next();
                } else {
                    return Err("invalid escape sequence");
                }
            } else {
                name.extend(to_char(r));
                self.scanner.next();
            }
            r = self.scanner.peek();
        }
        if r == EOF {
            return Err("unexpected EOF, expecting \"");
        }
        Ok(())
    }

    fn try_scan_duration(&mut self, number: &str) -> Option<i64> {
        let mut copy = self.scanner.clone();
        copy.errors.clear();
        let mut text = number.to_string();
        let mut consumed = 0usize;
        loop {
            let r = copy.peek();
            if r == EOF || is_space(r) {
                break;
            }
            let numeric = to_char(r).is_some_and(char::is_numeric);
            if !numeric && !is_duration_rune(r) && r != '.' as i32 {
                break;
            }
            text.extend(to_char(r));
            copy.next();
            consumed += 1;
        }
        self.adopt(&mut copy);
        if consumed == 0 {
            return None;
        }
        let ns = parse_duration(&text)?;
        for _ in 0..consumed {
            self.scanner.next();
        }
        Some(ns)
    }
}

/// Go's `strconv.Atoi` on a scanner number, with its error texts.
fn parse_go_int(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {text:?}: invalid syntax"));
    }
    text.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {text:?}: value out of range"))
}

/// Go's `strconv.ParseFloat(text, 64)` on a scanner number, with its error texts.
fn parse_go_float(text: &str) -> Result<f64, String> {
    let syntax = || format!("strconv.ParseFloat: parsing {text:?}: invalid syntax");
    let range = || format!("strconv.ParseFloat: parsing {text:?}: value out of range");
    let lower = text.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x") {
        return parse_hex_float(&hex.replace('_', "")).ok_or_else(syntax);
    }
    if text.contains('_') {
        return Err(syntax());
    }
    let f: f64 = text.parse().map_err(|_| syntax())?;
    if f.is_infinite() {
        return Err(range());
    }
    Ok(f)
}

fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exp) = s.split_once('p')?;
    let exp: i32 = exp.parse().ok()?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut value = 0f64;
    for c in int.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        value += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(value * 2f64.powi(exp))
}

/// Tempo's `parseDuration`: Prometheus syntax first (`1d`, `2w`, `1h30m`), then Go's
/// `time.ParseDuration` (`1.5h`, `300us`). Nanoseconds.
pub(super) fn parse_duration(s: &str) -> Option<i64> {
    parse_prometheus_duration(s).or_else(|| parse_go_duration(s))
}

fn parse_prometheus_duration(s: &str) -> Option<i64> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000_000_000),
        ("w", 7 * 24 * 3_600_000_000_000),
        ("d", 24 * 3_600_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
    ];
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_unit = 0usize;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let value: u64 = s.get(start..i)?.parse().ok()?;
        let unit_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_digit() {
            i += 1;
        }
        let unit = s.get(unit_start..i)?;
        let pos = UNITS.iter().position(|(u, _)| *u == unit)? + 1;
        if pos <= last_unit {
            return None;
        }
        last_unit = pos;
        let mult = UNITS[pos - 1].1;
        if value > (1u64 << 63) / mult {
            return None;
        }
        total = total.checked_add(value * mult)?;
        if total > i64::MAX as u64 {
            return None;
        }
    }
    i64::try_from(total).ok()
}

fn parse_go_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut rest = s;
    let mut total: u64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let first = rest.chars().next()?;
        if !(first == '.' || first.is_ascii_digit()) {
            return None;
        }
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after) = rest.strip_prefix('.') {
            let n = after.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &after[..n];
            rest = &after[n..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult: u64 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int: u64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut value = int.checked_mul(mult)?;
        if !frac_part.is_empty() {
            // Go keeps at most the digits that fit and scales exactly.
            let mut f: u64 = 0;
            let mut scale: f64 = 1.0;
            for b in frac_part.bytes() {
                if f > (1u64 << 63) / 10 {
                    break;
                }
                f = f * 10 + u64::from(b - b'0');
                scale *= 10.0;
            }
            value = value.checked_add((f as f64 * (mult as f64 / scale)) as u64)?;
        }
        total = total.checked_add(value)?;
        if total > i64::MAX as u64 {
            return None;
        }
    }
    i64::try_from(total).ok()
}

/// Go's `strconv.Unquote` for `"..."` and `` `...` `` literals; `None` is `invalid syntax`.
fn unquote(text: &str) -> Option<String> {
    if let Some(inner) = text.strip_prefix('`') {
        let inner = inner.strip_suffix('`')?;
        if inner.contains('`') {
            return None;
        }
        return Some(inner.replace('\r', ""));
    }
    let inner = text.strip_prefix('"')?;
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.char_indices().peekable();
    let mut closed_at = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                closed_at = Some(i);
                break;
            }
            '\n' => return None,
            '\\' => {
                let (_, e) = chars.next()?;
                let mut hex = |n: usize| -> Option<u32> {
                    let mut v = 0u32;
                    for _ in 0..n {
                        let (_, d) = chars.next()?;
                        v = v << 4 | d.to_digit(16)?;
                    }
                    Some(v)
                };
                match e {
                    'a' => out.push(7),
                    'b' => out.push(8),
                    'f' => out.push(12),
                    'n' => out.push(b'\n'),
                    'r' => out.push(b'\r'),
                    't' => out.push(b'\t'),
                    'v' => out.push(11),
                    '\\' => out.push(b'\\'),
                    '"' => out.push(b'"'),
                    'x' => out.push(u8::try_from(hex(2)?).ok()?),
                    'u' | 'U' => {
                        let v = hex(if e == 'u' { 4 } else { 8 })?;
                        let c = char::from_u32(v)?;
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8)?;
                        for _ in 0..2 {
                            let (_, d) = chars.next()?;
                            v = v << 3 | d.to_digit(8)?;
                        }
                        out.push(u8::try_from(v).ok()?);
                    }
                    _ => return None,
                }
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    let end = closed_at?;
    if end + 1 != inner.len() {
        return None;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(q: &str) -> Vec<(Tok, TokVal, (u32, u32))> {
        let units = decode(q.as_bytes());
        let mut lexer = Lexer::new(&units);
        let mut out = Vec::new();
        loop {
            let (tok, val) = lexer.lex();
            out.push((tok, val, lexer.position()));
            if tok == Tok::End || out.len() > 100 {
                return out;
            }
        }
    }

    #[test]
    fn attributes_and_scopes() {
        let t: Vec<Tok> = tokens("{ span.http.method = parent.resource.a }")
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(
            t,
            vec![
                Tok::OpenBrace,
                Tok::SpanDot,
                Tok::Identifier,
                Tok::EndAttribute,
                Tok::Eq,
                Tok::ParentDot,
                Tok::ResourceDot,
                Tok::Identifier,
                Tok::EndAttribute,
                Tok::CloseBrace,
                Tok::End
            ]
        );
    }

    #[test]
    fn durations_and_numbers() {
        let t = tokens("1ms 1.5h 2d 3 4.5 1h30m 0x1F");
        assert_eq!(t[0].1, TokVal::Duration(1_000_000));
        assert_eq!(t[1].1, TokVal::Duration(5_400_000_000_000));
        assert_eq!(t[2].1, TokVal::Duration(172_800_000_000_000));
        assert_eq!(t[3].1, TokVal::Int(3));
        assert_eq!(t[4].1, TokVal::Float(4.5));
        assert_eq!(t[5].1, TokVal::Duration(5_400_000_000_000));
        assert_eq!(t[6].0, Tok::End);
    }

    #[test]
    fn strings() {
        assert_eq!(unquote(r#""a\"b\x41""#).as_deref(), Some("a\"bA"));
        assert_eq!(unquote("`a\\b`").as_deref(), Some("a\\b"));
        assert_eq!(unquote(r#""\400""#), None);
    }
}
