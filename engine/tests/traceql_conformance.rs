//! TraceQL conformance against Tempo's own examples (`shared/traceql/test_examples.yaml`):
//! every `valid` query parses and validates, every `parse_fails` query fails to parse, every
//! `validate_fails` query parses and fails validation with an error other than "unsupported",
//! every `unsupported` query parses and fails validation as unsupported. Plus golden error texts
//! and positions from Tempo's captured answers.

use allegro_engine::traceql::{self, ValidateErrorKind};

const EXAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/traceql/test_examples.yaml"
);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Valid,
    ParseFails,
    ValidateFails,
    Unsupported,
}

/// The outcome for one query, or why it differs from `expect`.
fn check(query: &str, expect: Expect) -> Result<(), String> {
    let parsed = traceql::parse(query);
    match (expect, parsed) {
        (Expect::ParseFails, Err(_)) => Ok(()),
        (Expect::ParseFails, Ok(q)) => Err(format!("parsed as `{q}`, expected a parse error")),
        (_, Err(e)) => Err(format!("parse error: {e}")),
        (expect, Ok(q)) => match (expect, traceql::validate(&q)) {
            (Expect::Valid, Ok(())) => Ok(()),
            (Expect::Valid, Err(e)) => Err(format!("validate error: {e}")),
            (_, Ok(())) => Err(format!("`{q}` validated, expected {expect:?}")),
            (Expect::ValidateFails, Err(e)) if e.kind == ValidateErrorKind::Invalid => Ok(()),
            (Expect::Unsupported, Err(e)) if e.kind == ValidateErrorKind::Unsupported => Ok(()),
            (_, Err(e)) => Err(format!("wrong validate error kind {:?}: {e}", e.kind)),
        },
    }
}

#[test]
fn tempo_test_examples() {
    let text = std::fs::read_to_string(EXAMPLES).unwrap_or_else(|e| {
        panic!("the TraceQL conformance corpus is missing: cannot read {EXAMPLES}: {e}")
    });
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("test_examples.yaml parses");
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for (key, expect) in [
        ("valid", Expect::Valid),
        ("parse_fails", Expect::ParseFails),
        ("validate_fails", Expect::ValidateFails),
        ("unsupported", Expect::Unsupported),
    ] {
        let queries: Vec<&str> = doc
            .get(key)
            .and_then(|v| v.as_sequence())
            .map(|s| s.iter().filter_map(|q| q.as_str()).collect())
            .unwrap_or_default();
        assert!(!queries.is_empty(), "no `{key}` queries in {EXAMPLES}");
        let mut passed = 0;
        for q in &queries {
            match check(q, expect) {
                Ok(()) => passed += 1,
                Err(why) => failures.push(format!("{key}: {q:?}: {why}")),
            }
        }
        summary.push(format!("{key} {passed}/{}", queries.len()));
    }
    println!("traceql conformance: {}", summary.join(", "));
    assert!(
        failures.is_empty(),
        "{} TraceQL conformance failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Golden parse errors: (query, Tempo's error text).
const PARSE_ERRORS: &[(&str, &str)] = &[
    // shared/tempo-api/52_search_malformed_traceql.txt
    (
        "{ span.http.method = }",
        "parse error at line 1, col 22: syntax error: unexpected }",
    ),
    // shared/tempo-api/53_search_malformed_traceql2.txt
    (
        "not traceql",
        "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER",
    ),
    // shared/tempo-api/43_metrics_query_range_bad_traceql.txt
    (
        "{ .foo = }",
        "parse error at line 1, col 10: syntax error: unexpected }",
    ),
    ("true", "parse error at line 1, col 1: syntax error: unexpected true"),
    (
        "{ . }",
        "parse error at line 1, col 3: syntax error: unexpected END_ATTRIBUTE, expecting IDENTIFIER",
    ),
    ("{ .a < 3", "parse error at line 1, col 9: syntax error: unexpected $end"),
    (
        "{ true } | count = 1",
        "parse error at line 1, col 18: syntax error: unexpected =, expecting (",
    ),
    (
        "select(.a",
        "parse error at line 1, col 10: syntax error: unexpected $end, expecting ) or ,",
    ),
    (
        "{ true } }",
        "parse error at line 1, col 10: syntax error: unexpected }, expecting with",
    ),
    (
        "{ trace:name = \"a\" }",
        "parse error at line 1, col 9: syntax error: unexpected name, expecting duration or rootName or rootService or id",
    ),
    // Go's scanner zeroes the line after `Next()`: `span.` is read that way, and the
    // attribute end is not a scanned token.
    (
        "{ span. }",
        "parse error at line 0, col 3: syntax error: unexpected END_ATTRIBUTE, expecting IDENTIFIER",
    ),
    (
        "{\n  .a = 1 &&\n  }",
        "parse error at line 3, col 3: syntax error: unexpected }",
    ),
    // Lexer errors win over syntax errors and carry the token's position.
    ("{ .a = \"x }", "parse error at line 1, col 8: literal not terminated"),
    ("{ .a = 09 }", "parse error at line 1, col 8: invalid digit '9' in octal literal"),
    // Tempo folds constants while parsing; integer division by zero panics and is recovered.
    ("{ 1 / 0 = 1 }", "parse error : runtime error: integer divide by zero"),
];

#[test]
fn golden_parse_errors() {
    let mut failures = Vec::new();
    for (query, want) in PARSE_ERRORS {
        match traceql::parse(query) {
            Ok(q) => failures.push(format!("{query:?}: parsed as `{q}`")),
            Err(e) if e.to_string() == *want => {}
            Err(e) => failures.push(format!("{query:?}:\n   got: {e}\n  want: {want}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Golden validation errors: (query, Tempo's error text).
const VALIDATE_ERRORS: &[(&str, &str)] = &[
    (
        "{ 1 = \"foo\" }",
        "binary operations must operate on the same type: 1 = `foo`",
    ),
    (
        "{ status > ok }",
        "illegal operation for the given types: status > ok",
    ),
    (
        "{ 1 + 1 }",
        "span filter field expressions must resolve to a boolean: { 2 }",
    ),
    ("{ -true }", "illegal operation for the given type: -true"),
    (
        "sum(3) = 2",
        "aggregate field expressions must reference the span: sum(3)",
    ),
    ("{ .foo = nil }", "nil not yet supported"),
    ("{ parent.a != 3 }", "parent not yet supported"),
    (
        "{ 1 = childCount }",
        "intrinsic (childCount) not yet supported",
    ),
    ("3 = 2", "scalar filter lhs of type (%v) not yet supported"),
    ("{ span.foo =~ \"[\" }", "invalid regex: `[`"),
    (
        "{ true } | by(1)",
        "grouping field expressions must reference the span: by(1)",
    ),
    // Metrics (`MetricsCompare.validate`, `averageOverTimeAggregator.validate`).
    (
        "{ } | compare({ status = error }, 0)",
        "compare() top number of values must be integer greater than 0",
    ),
    (
        "{ } | compare({ status = error }, 5, 0, 10)",
        "compare() timestamps must be positive integer unix nanoseconds",
    ),
    (
        "{ } | compare({ status = error }, 5, 20, 10)",
        "compare() end timestamp must be greater than start timestamp",
    ),
    (
        "{ } | avg_over_time(duration) by (.a, .b, .c, .d, .e)",
        "metrics group by 5 values not yet supported",
    ),
    (
        "{ } | quantile_over_time(duration, 1.5)",
        "quantile must be between 0 and 1: 1.5",
    ),
];

#[test]
fn golden_validate_errors() {
    let mut failures = Vec::new();
    for (query, want) in VALIDATE_ERRORS {
        let q = match traceql::parse(query) {
            Ok(q) => q,
            Err(e) => {
                failures.push(format!("{query:?}: parse error {e}"));
                continue;
            }
        };
        match traceql::validate(&q) {
            Ok(()) => failures.push(format!("{query:?}: validated")),
            Err(e) if e.to_string() == *want => {}
            Err(e) => failures.push(format!("{query:?}:\n   got: {e}\n  want: {want}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn captured_queries_compile() {
    for q in [
        "{resource.service.name=\"frontend\"}",
        "{status=error}",
        "{}",
        "{span.http.status_code >= 500 && resource.service.name=\"payments\"} | select(span.http.method, status)",
        "{resource.service.name=\"frontend\"} >> {status=error}",
        "{} | count() > 3",
        "{name=\"payment.charge\"}",
        "{} | rate()",
        "{status=error} | count_over_time()",
        "{} | rate() by (resource.service.name)",
        "{} | quantile_over_time(duration, .5, .9, .99)",
    ] {
        if let Err(e) = traceql::compile(q) {
            panic!("{q:?}: {e}");
        }
    }
}

#[test]
fn helpers() {
    let q = traceql::parse("{ span.a = 1 && duration > 1s } | rate() by (resource.service.name)")
        .expect("parses");
    assert!(q.is_metrics());
    let fields: Vec<String> = q.fields().iter().map(|f| f.to_string()).collect();
    assert_eq!(fields, ["duration", "span.a", "resource.service.name"]);
    assert!(!traceql::parse("{}").expect("parses").is_metrics());
}

#[test]
fn no_panics_and_depth_limit() {
    let deep = format!("{{ {}true{} }}", "(".repeat(5000), ")".repeat(5000));
    assert!(traceql::parse(&deep).is_err());
    let long = format!("{{ {} }}", vec![".a = 1"; 3000].join(" || "));
    assert!(traceql::parse(&long).is_err());
    let nots = format!("{{ {}true }}", "!".repeat(5000));
    assert!(traceql::parse(&nots).is_err());
    for input in [
        &b"\xff\xfe{"[..],
        b"{ .\"a",
        b"{ .a = \"\\q\" }",
        b"/* x",
        b"{ 1e999 }",
        b"\0",
        b"{ 9223372036854775808 }",
        b"{ `x",
        b"'ab'",
        b"{ 0x1p-2 = 0b }",
    ] {
        traceql::fuzz_parse(input);
    }
}
