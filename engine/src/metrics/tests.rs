//! Metrics evaluation against expectations worked out by hand from Tempo 2.7.2's engine
//! (several ported from `pkg/traceql/engine_metrics_test.go`). Every case runs twice: all
//! traces in one partial, and the traces dealt alternately into two partials (two shards)
//! that are merged; both must give the expected series.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as OtlpSpan, Status as OtlpStatus,
};

use super::log2::log2_quantile;
use super::*;
use crate::traceql::compile;

/// A multiple of every step used here (one minute), in seconds.
const T0_S: u64 = 1_700_000_040;
const T0_NS: u64 = T0_S * NS_PER_SECOND;
const MS: u64 = 1_000_000;

/// A span starting `at_ms` after `T0`.
#[derive(Clone)]
struct Sp {
    at_ms: u64,
    dur_ns: u64,
    svc: &'static str,
    name: &'static str,
    status: i32,
    attrs: Vec<KeyValue>,
    resource: Vec<KeyValue>,
}

fn sp(at_ms: u64) -> Sp {
    Sp {
        at_ms,
        dur_ns: 1_000_000,
        svc: "frontend",
        name: "GET /",
        status: 0,
        attrs: Vec::new(),
        resource: Vec::new(),
    }
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

impl Sp {
    fn dur(mut self, ns: u64) -> Sp {
        self.dur_ns = ns;
        self
    }
    fn svc(mut self, svc: &'static str) -> Sp {
        self.svc = svc;
        self
    }
    fn name(mut self, name: &'static str) -> Sp {
        self.name = name;
        self
    }
    fn err(mut self) -> Sp {
        self.status = 2;
        self
    }
    fn int(mut self, key: &str, v: i64) -> Sp {
        self.attrs.push(kv(key, any_value::Value::IntValue(v)));
        self
    }
    fn float(mut self, key: &str, v: f64) -> Sp {
        self.attrs.push(kv(key, any_value::Value::DoubleValue(v)));
        self
    }
    fn str(mut self, key: &str, v: &str) -> Sp {
        self.attrs
            .push(kv(key, any_value::Value::StringValue(v.to_string())));
        self
    }
    fn res(mut self, key: &str, v: &str) -> Sp {
        self.resource
            .push(kv(key, any_value::Value::StringValue(v.to_string())));
        self
    }
}

/// One trace: the first span is the root, the others its children.
struct Tr {
    id: u8,
    spans: Vec<Sp>,
}

fn tr(id: u8, spans: Vec<Sp>) -> Tr {
    Tr { id, spans }
}

fn trace_id(id: u8) -> TraceId {
    let mut bytes = [0u8; 16];
    bytes[15] = id;
    bytes[14] = 0x0a;
    TraceId(bytes)
}

fn batches(t: &Tr) -> Vec<ResourceSpans> {
    t.spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let start = T0_NS + s.at_ms * MS;
            let mut resource = vec![kv(
                "service.name",
                any_value::Value::StringValue(s.svc.to_string()),
            )];
            resource.extend(s.resource.iter().cloned());
            ResourceSpans {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![OtlpSpan {
                        trace_id: trace_id(t.id).0.to_vec(),
                        span_id: vec![
                            t.id,
                            (i as u8).wrapping_add(1),
                            (i >> 8) as u8,
                            0,
                            0,
                            0,
                            0,
                            1,
                        ],
                        parent_span_id: if i == 0 {
                            Vec::new()
                        } else {
                            vec![t.id, 1, 0, 0, 0, 0, 0, 1]
                        },
                        name: s.name.to_string(),
                        start_time_unix_nano: start,
                        end_time_unix_nano: start + s.dur_ns,
                        attributes: s.attrs.clone(),
                        status: Some(OtlpStatus {
                            code: s.status,
                            message: String::new(),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect()
}

/// A request over `[start, end)` milliseconds after `T0`.
fn request(query: &str, (start, end, step): (u64, u64, u64), exemplars: u32) -> MetricsRequest {
    let q = compile(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    MetricsRequest::new(
        q,
        T0_NS + start * MS,
        T0_NS + end * MS,
        step * MS,
        exemplars,
    )
    .unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// Observes trace `k` into partial `k % partials`, merges them, finishes.
fn run(req: &MetricsRequest, traces: &[Tr], partials: usize) -> (Vec<Series>, Partial) {
    let ev = req.evaluator().expect("evaluator");
    let mut parts: Vec<Partial> = (0..partials).map(|_| Partial::new(req)).collect();
    for (k, t) in traces.iter().enumerate() {
        let b = batches(t);
        let view = TraceView::new(&b);
        parts[k % partials].observe(req, &ev, &trace_id(t.id), &view);
    }
    let mut merged = parts.remove(0);
    for p in &parts {
        merged.merge(p);
    }
    (finish(req, &merged), merged)
}

/// Seconds after `T0` of a timestamp.
fn at(ts_ms: i64) -> String {
    let ms = ts_ms - (T0_NS / MS) as i64;
    format!("{}", ms as f64 / 1000.0)
}

/// One line per series: `{labels} @t:v @t:v`, `t` in seconds after `T0`.
fn render(series: &[Series]) -> String {
    let mut out = String::new();
    for s in series {
        out.push_str(&s.prom_labels);
        for x in &s.samples {
            out.push_str(&format!(" @{}:{}", at(x.timestamp_ms), x.value));
        }
        out.push('\n');
    }
    out
}

fn lines(expected: &str) -> String {
    expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The data-driven check: one partial and two merged partials both give `expected`.
fn check(query: &str, range_ms: (u64, u64, u64), traces: &[Tr], expected: &str) {
    let req = request(query, range_ms, 0);
    let expected = lines(expected);
    for partials in [1, 2] {
        let (series, _) = run(&req, traces, partials);
        assert_eq!(
            render(&series),
            expected,
            "{query} with {partials} partial(s)"
        );
    }
}

#[test]
fn rate_and_count_by_service() {
    let traces = [
        tr(1, vec![sp(9_999), sp(10_100), sp(11_500)]),
        tr(2, vec![sp(12_100).svc("backend"), sp(12_500)]),
        tr(3, vec![sp(13_999).svc("backend"), sp(14_000)]),
    ];
    // [10s, 14s) by 2s: intervals stamped 10, 12 and 14 (the last one is always empty).
    check(
        "{} | rate() by (resource.service.name)",
        (10_000, 14_000, 2_000),
        &traces,
        r#"
        {resource.service.name="backend"} @10:0 @12:1 @14:0
        {resource.service.name="frontend"} @10:1 @12:0.5 @14:0
        "#,
    );
    check(
        "{} | count_over_time()",
        (10_000, 14_000, 2_000),
        &traces,
        r#"{__name__="count_over_time"} @10:2 @12:3 @14:0"#,
    );
    check(
        "{} | rate()",
        (10_000, 14_000, 2_000),
        &traces,
        r#"{__name__="rate"} @10:1 @12:1.5 @14:0"#,
    );
}

#[test]
fn status_error_filter() {
    let traces = [
        tr(
            1,
            vec![sp(0), sp(100).err(), sp(1_500).err().svc("backend")],
        ),
        tr(2, vec![sp(2_500).err().name("charge")]),
    ];
    check(
        "{ status = error } | count_over_time() by (name)",
        (0, 3_000, 1_000),
        &traces,
        r#"
        {name="GET /"} @0:1 @1:1 @2:0 @3:0
        {name="charge"} @0:0 @1:0 @2:1 @3:0
        "#,
    );
    check(
        "{ status = error } | rate() by (status)",
        (0, 3_000, 1_000),
        &traces,
        r#"{status="error"} @0:1 @1:1 @2:1 @3:0"#,
    );
    check(
        "{ status = error && resource.service.name = \"nope\" } | rate()",
        (0, 3_000, 1_000),
        &traces,
        "",
    );
}

/// Tempo's spans for its min/max/avg/quantile/histogram tests, at 1s, 2s and 3s.
fn tempo_durations() -> Vec<Tr> {
    let d = |at: u64, foo: &'static str, ns: u64| sp(at).str("foo", foo).dur(ns);
    vec![
        tr(
            1,
            vec![
                d(1_000, "bar", 128),
                d(1_000, "bar", 256),
                d(1_000, "bar", 512),
            ],
        ),
        tr(
            2,
            vec![
                d(2_000, "bar", 256),
                d(2_000, "bar", 64),
                d(2_000, "bar", 256),
                d(2_000, "bar", 8),
            ],
        ),
        tr(
            3,
            vec![
                d(3_000, "baz", 512),
                d(3_000, "baz", 1024),
                d(3_000, "baz", 512),
            ],
        ),
    ]
}

#[test]
fn min_max_over_duration() {
    let range = (1_000, 4_000, 1_000);
    check(
        "{ } | min_over_time(duration) by (span.foo)",
        range,
        &tempo_durations(),
        r#"
        {span.foo="bar"} @1:0.000000128 @2:0.000000008
        {span.foo="baz"} @3:0.000000512
        "#,
    );
    check(
        "{ } | max_over_time(duration) by (span.foo)",
        range,
        &tempo_durations(),
        r#"
        {span.foo="bar"} @1:0.000000512 @2:0.000000256
        {span.foo="baz"} @3:0.000001024
        "#,
    );
    // No span has the attribute: series without samples are dropped.
    check(
        "{ } | min_over_time(span.buu)",
        range,
        &tempo_durations(),
        "",
    );
}

/// Tempo's `TestMaxOverTimeForSpanAttribute`: two jobs, each a trace here.
fn tempo_status_codes() -> Vec<Tr> {
    let c = |at: u64, foo: &'static str, code: i64| {
        sp(at).str("foo", foo).int("http.status_code", code)
    };
    vec![
        tr(
            1,
            vec![
                c(1_000, "bar", 200),
                c(1_000, "bar", 404),
                c(1_000, "bar", 200),
                c(2_000, "bar", 200),
                c(2_000, "bar", 200),
                c(2_000, "bar", 200),
                c(2_000, "bar", 200),
                c(3_000, "baz", 201),
                c(3_000, "baz", 401),
                c(3_000, "baz", 500),
            ],
        ),
        tr(
            2,
            vec![
                c(1_000, "bar", 100),
                c(1_000, "bar", 200),
                c(1_000, "bar", 300),
                c(1_000, "baz", 204),
                c(2_000, "bar", 400),
                c(2_000, "bar", 401),
                c(2_000, "bar", 402),
                c(2_000, "bar", 403),
                c(3_000, "baz", 200),
                c(3_000, "baz", 300),
                c(3_000, "baz", 400),
            ],
        ),
    ]
}

#[test]
fn min_max_sum_over_int_attribute() {
    let range = (1_000, 4_000, 1_000);
    check(
        "{ } | max_over_time(span.http.status_code) by (span.foo)",
        range,
        &tempo_status_codes(),
        r#"
        {span.foo="bar"} @1:404 @2:403
        {span.foo="baz"} @1:204 @3:500
        "#,
    );
    check(
        "{ } | min_over_time(span.http.status_code) by (span.foo)",
        range,
        &tempo_status_codes(),
        r#"
        {span.foo="bar"} @1:100 @2:200
        {span.foo="baz"} @1:204 @3:200
        "#,
    );
    check(
        "{ } | sum_over_time(span.http.status_code) by (span.foo)",
        range,
        &tempo_status_codes(),
        r#"
        {span.foo="bar"} @1:1404 @2:2406
        {span.foo="baz"} @1:204 @3:2002
        "#,
    );
}

#[test]
fn avg_over_time() {
    let range = (1_000, 4_000, 1_000);
    // Tempo's TestAvgOverTimeForSpanAttribute, with the jobs as two traces.
    let c = |at: u64, foo: &'static str, code: i64| {
        sp(at).str("foo", foo).int("http.status_code", code)
    };
    let traces = [
        tr(
            1,
            vec![
                c(1_000, "bar", 200),
                c(1_000, "bar", 404),
                c(1_000, "bar", 200),
                c(2_000, "bar", 200),
                c(2_000, "bar", 200),
                c(2_000, "bar", 200),
                c(2_000, "bar", 200),
                c(3_000, "baz", 200),
                c(3_000, "baz", 400),
                c(3_000, "baz", 300),
            ],
        ),
        tr(
            2,
            vec![
                c(1_000, "bar", 200),
                c(1_000, "bar", 200),
                c(1_000, "bar", 200),
                c(2_000, "bar", 200),
                c(2_000, "bar", 200),
                c(2_000, "bar", 200),
                c(2_000, "bar", 200),
                c(3_000, "baz", 200),
                c(3_000, "baz", 200),
                c(3_000, "baz", 200),
            ],
        ),
    ];
    check(
        "{ } | avg_over_time(span.http.status_code) by (span.foo)",
        range,
        &traces,
        r#"
        {span.foo="bar"} @1:234 @2:200
        {span.foo="baz"} @3:250
        "#,
    );
    // Tempo's TestAvgOverTimeForDuration: 100ns, and (100, 100, 100, 500) / 4.
    let d = |at: u64, foo: &'static str, ns: u64| sp(at).str("foo", foo).dur(ns);
    let traces = [
        tr(
            1,
            vec![
                d(1_000, "bar", 100),
                d(1_000, "bar", 100),
                d(1_000, "bar", 100),
            ],
        ),
        tr(
            2,
            vec![
                d(2_000, "bar", 100),
                d(2_000, "bar", 100),
                d(2_000, "bar", 100),
                d(2_000, "bar", 500),
            ],
        ),
        tr(
            3,
            vec![
                d(3_000, "baz", 100),
                d(3_000, "baz", 200),
                d(3_000, "baz", 300),
            ],
        ),
    ];
    check(
        "{ } | avg_over_time(duration) by (span.foo)",
        range,
        &traces,
        r#"
        {span.foo="bar"} @1:0.0000001 @2:0.0000002
        {span.foo="baz"} @3:0.0000002
        "#,
    );
    check(
        "{ } | avg_over_time(duration)",
        range,
        &traces,
        r#"{__name__="avg_over_time"} @1:0.0000001 @2:0.0000002 @3:0.0000002"#,
    );
    // No value anywhere: no series (and no `__meta_type` count series ever).
    check("{ } | avg_over_time(span.buu)", range, &traces, "");
}

#[test]
fn avg_merges_by_weight() {
    // Tempo's TestObserveSeriesAverageOverTimeForSpanAttribute: 260 = mean of
    // (200, 300, 400) and (100, 300); 300 = mean of (200, 400, 500) and (100).
    let c = |at: u64, foo: &'static str, code: i64| {
        sp(at).str("foo", foo).int("http.status_code", code)
    };
    let traces = [
        tr(
            1,
            vec![
                c(1_000, "bar", 200),
                c(1_000, "bar", 300),
                c(1_000, "bar", 400),
                c(2_000, "bar", 200),
                c(2_000, "bar", 200),
                c(2_000, "bar", 100),
                c(2_000, "bar", 100),
                c(3_000, "baz", 200),
                c(3_000, "baz", 400),
                c(3_000, "baz", 500),
            ],
        ),
        tr(
            2,
            vec![
                c(1_000, "bar", 100),
                c(1_000, "bar", 300),
                c(2_000, "bar", 400),
                c(2_000, "bar", 200),
                c(3_000, "baz", 100),
                c(3_000, "bar", 100),
            ],
        ),
    ];
    check(
        "{ } | avg_over_time(span.http.status_code) by (span.foo)",
        (1_000, 4_000, 1_000),
        &traces,
        r#"
        {span.foo="bar"} @1:260 @2:200 @3:100
        {span.foo="baz"} @3:300
        "#,
    );
}

#[test]
fn quantile_over_time() {
    // Tempo's TestQuantileOverTime (its end moved to 4s: spans at `end` are outside).
    let q = |p: f64, buckets: &[(f64, u64)]| log2_quantile(p, buckets);
    let (n128, n256, n512) = (128e-9, 256e-9, 512e-9);
    let expected = format!(
        r#"
        {{p="0", span.foo="bar"}} @1:{} @2:{} @3:0 @4:0
        {{p="0", span.foo="baz"}} @1:0 @2:0 @3:{} @4:0
        {{p="0.5", span.foo="bar"}} @1:{} @2:{} @3:0 @4:0
        {{p="0.5", span.foo="baz"}} @1:0 @2:0 @3:{} @4:0
        {{p="1", span.foo="bar"}} @1:{} @2:{} @3:0 @4:0
        {{p="1", span.foo="baz"}} @1:0 @2:0 @3:{} @4:0
        "#,
        n128,
        q(0.0, &[(n256, 4)]),
        q(0.0, &[(n512, 3)]),
        n256,
        q(0.5, &[(n256, 4)]),
        q(0.5, &[(n512, 3)]),
        n512,
        n256,
        n512,
    );
    // The 64ns and 8ns spans of Tempo's min test are left out, as in its quantile test.
    let d = |at: u64, foo: &'static str, ns: u64| sp(at).str("foo", foo).dur(ns);
    let traces = [
        tr(
            1,
            vec![
                d(1_000, "bar", 128),
                d(1_000, "bar", 256),
                d(1_000, "bar", 512),
            ],
        ),
        tr(
            2,
            vec![
                d(2_000, "bar", 256),
                d(2_000, "bar", 256),
                d(2_000, "bar", 256),
                d(2_000, "bar", 256),
            ],
        ),
        tr(
            3,
            vec![
                d(3_000, "baz", 512),
                d(3_000, "baz", 512),
                d(3_000, "baz", 512),
            ],
        ),
    ];
    check(
        "{ } | quantile_over_time(duration, 0, 0.5, 1) by (span.foo)",
        (1_000, 4_000, 1_000),
        &traces,
        &expected,
    );
    // The interpolation itself: p=0 of four samples in the (128ns, 256ns] bucket reads one
    // of them, a quarter of the way (log2) from 128ns.
    assert!((q(0.0, &[(n256, 4)]) - 128e-9 * 2f64.powf(0.25)).abs() < 1e-18);
    assert!((q(0.5, &[(n256, 4)]) - 128e-9 * 2f64.sqrt()).abs() < 1e-18);

    // Integers are bucketed as values (200 -> 256, 404 -> 512), values below 2 dropped; the
    // labels keep Tempo's order with `p` last.
    let traces = [tr(
        1,
        vec![
            sp(0).int("code", 200),
            sp(0).int("code", 404),
            sp(0).int("code", 1),
            sp(0).str("code", "x"),
        ],
    )];
    check(
        "{ } | quantile_over_time(span.code, 0.5, 0.9)",
        (0, 1_000, 1_000),
        &traces,
        r#"
        {p="0.5"} @0:256 @1:0
        {p="0.9"} @0:512 @1:0
        "#,
    );
    let req = request(
        "{ } | quantile_over_time(duration, .99) by (resource.service.name)",
        (0, 1_000, 1_000),
        0,
    );
    let (series, _) = run(&req, &traces, 1);
    assert_eq!(
        series[0].labels,
        vec![
            Label {
                name: "resource.service.name".into(),
                value: LabelValue::Str("frontend".into())
            },
            Label {
                name: "p".into(),
                value: LabelValue::Float(0.99)
            },
        ]
    );
    // 1ms spans: the bucket is 2^20 ns = 1.048576ms.
    assert_eq!(series[0].samples[0].value, 0.001048576);
}

#[test]
fn histogram_over_time() {
    // Tempo's TestHistogramOverTime.
    let d = |at: u64, foo: &'static str, ns: u64| sp(at).str("foo", foo).dur(ns);
    let traces = [
        tr(
            1,
            vec![
                d(1_000, "bar", 128),
                d(1_000, "bar", 256),
                d(1_000, "bar", 512),
            ],
        ),
        tr(
            2,
            vec![
                d(2_000, "bar", 256),
                d(2_000, "bar", 256),
                d(2_000, "bar", 256),
                d(2_000, "bar", 256),
            ],
        ),
        tr(
            3,
            vec![
                d(3_000, "baz", 512),
                d(3_000, "baz", 512),
                d(3_000, "baz", 512),
            ],
        ),
    ];
    check(
        "{ } | histogram_over_time(duration) by (span.foo)",
        (1_000, 4_000, 1_000),
        &traces,
        r#"
        {__bucket="1.28e-07", span.foo="bar"} @1:1 @2:0 @3:0 @4:0
        {__bucket="2.56e-07", span.foo="bar"} @1:1 @2:4 @3:0 @4:0
        {__bucket="5.12e-07", span.foo="bar"} @1:1 @2:0 @3:0 @4:0
        {__bucket="5.12e-07", span.foo="baz"} @1:0 @2:0 @3:3 @4:0
        "#,
    );
    // Durations under 2ns have no bucket; integer attributes are bucketed as values, floats
    // and strings not at all.
    let traces = [tr(
        1,
        vec![
            sp(0).dur(1).int("n", 3),
            sp(0).dur(0).int("n", 1_000),
            sp(0).int("n", 1_024),
            sp(0).float("n", 5.0),
            sp(0).str("n", "7"),
        ],
    )];
    check(
        "{ } | histogram_over_time(span.n)",
        (0, 1_000, 1_000),
        &traces,
        r#"
        {__bucket="1024"} @0:2 @1:0
        {__bucket="4"} @0:1 @1:0
        "#,
    );
    check(
        "{ } | histogram_over_time(duration)",
        (0, 1_000, 1_000),
        &traces,
        r#"{__bucket="0.001048576"} @0:3 @1:0"#,
    );
}

#[test]
fn group_by_nil_and_lookups() {
    let traces = [
        tr(
            1,
            vec![
                sp(0).int("a", 1),
                sp(0).str("b", "x"),
                sp(0).int("a", 1).str("b", "x"),
                sp(0),
            ],
        ),
        tr(2, vec![sp(0), sp(0).str("b", "")]),
    ];
    check(
        "{} | count_over_time() by (span.missing)",
        (0, 1_000, 1_000),
        &traces,
        r#"{span.missing="<nil>"} @0:6 @1:0"#,
    );
    check(
        "{} | count_over_time() by (span.a, span.b)",
        (0, 1_000, 1_000),
        &traces,
        r#"
        {span.a="1", span.b="x"} @0:1 @1:0
        {span.a="1"} @0:1 @1:0
        {span.a="<nil>"} @0:2 @1:0
        {span.b="<empty>"} @0:1 @1:0
        {span.b="x"} @0:1 @1:0
        "#,
    );
    // Unscoped attributes are looked up on the span, then on the resource.
    let traces = [tr(
        1,
        vec![
            sp(0).str("foo", "span-level").res("foo", "hidden"),
            sp(0).res("foo", "resource-level"),
        ],
    )];
    check(
        "{} | count_over_time() by (.foo)",
        (0, 1_000, 1_000),
        &traces,
        r#"
        {.foo="resource-level"} @0:1 @1:0
        {.foo="span-level"} @0:1 @1:0
        "#,
    );
    // Typed values: an integer label stays an integer, a duration becomes its text.
    let req = request(
        "{} | count_over_time() by (span.a, duration)",
        (0, 1_000, 1_000),
        0,
    );
    let (series, _) = run(&req, &traces_with_int(), 1);
    assert_eq!(series[0].prom_labels, r#"{duration="1ms", span.a="7"}"#);
    assert_eq!(
        series[0].labels,
        vec![
            Label {
                name: "span.a".into(),
                value: LabelValue::Int(7)
            },
            Label {
                name: "duration".into(),
                value: LabelValue::Str("1ms".into())
            },
        ]
    );
}

fn traces_with_int() -> Vec<Tr> {
    vec![tr(1, vec![sp(0).int("a", 7)])]
}

#[test]
fn structural_queries_count_the_right_hand_spans() {
    let traces = [tr(
        1,
        vec![sp(0), sp(10).err().svc("backend"), sp(20).svc("backend")],
    )];
    check(
        concat!(
            "{ resource.service.name = \"frontend\" } > { status = error }",
            " | count_over_time() by (resource.service.name)"
        ),
        (0, 1_000, 1_000),
        &traces,
        r#"{resource.service.name="backend"} @0:1 @1:0"#,
    );
    // A span in two spansets counts once.
    check(
        "{ } | by(resource.service.name) | count_over_time()",
        (0, 1_000, 1_000),
        &traces,
        r#"{__name__="count_over_time"} @0:3 @1:0"#,
    );
}

#[test]
fn compare() {
    // One span per trace: A and D are errors (the selection), B and C the baseline.
    let traces = [
        tr(1, vec![sp(100).err().int("http.status_code", 500)]),
        tr(2, vec![sp(200).int("http.status_code", 200)]),
        tr(
            3,
            vec![sp(300)
                .svc("backend")
                .name("query")
                .int("http.status_code", 200)],
        ),
        tr(
            4,
            vec![sp(400)
                .svc("backend")
                .name("query")
                .err()
                .int("http.status_code", 503)],
        ),
    ];
    let only = |series: &[Series], needle: &str| -> String {
        render(series)
            .lines()
            .filter(|l| l.contains(needle))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    // An instant query: [0, 10s) by 10s has intervals at 0 and 10.
    let req = request(
        "{} | compare({ status = error }, 1)",
        (0, 10_000, 10_000),
        0,
    );
    for partials in [1, 2] {
        let (series, _) = run(&req, &traces, partials);
        // Top 1 of tied values: the first by value text.
        let expected = lines(
            r#"
            {__meta_type="baseline", resource.service.name="backend"} @0:1 @10:0
            {__meta_type="baseline_total", resource.service.name="<nil>"} @0:2 @10:0
            {__meta_type="selection", resource.service.name="backend"} @0:1 @10:0
            {__meta_type="selection_total", resource.service.name="<nil>"} @0:2 @10:0
            "#,
        );
        assert_eq!(only(&series, "resource.service.name"), expected);
        let expected = lines(
            r#"
            {__meta_type="baseline", span.http.status_code="200"} @0:2 @10:0
            {__meta_type="baseline_total", span.http.status_code="<nil>"} @0:2 @10:0
            {__meta_type="selection", span.http.status_code="500"} @0:1 @10:0
            {__meta_type="selection_total", span.http.status_code="<nil>"} @0:2 @10:0
            "#,
        );
        assert_eq!(only(&series, "status_code"), expected);
        let expected = lines(
            r#"
            {__meta_type="baseline", status="unset"} @0:2 @10:0
            {__meta_type="baseline", statusMessage="<empty>"} @0:2 @10:0
            {__meta_type="baseline_total", status="<nil>"} @0:2 @10:0
            {__meta_type="baseline_total", statusMessage="<nil>"} @0:2 @10:0
            {__meta_type="selection", status="error"} @0:2 @10:0
            {__meta_type="selection", statusMessage="<empty>"} @0:2 @10:0
            {__meta_type="selection_total", status="<nil>"} @0:2 @10:0
            {__meta_type="selection_total", statusMessage="<nil>"} @0:2 @10:0
            "#,
        );
        let got: String = only(&series, "status")
            .lines()
            .filter(|l| !l.contains("status_code"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(got, expected);
        // Durations and trace IDs are not compared; Tempo's error series has no samples.
        let text = render(&series);
        for absent in ["duration", "trace:id", "__meta_error"] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
        // Typed labels: the status code stays an integer.
        let code = series
            .iter()
            .find(|s| s.prom_labels.contains("span.http.status_code=\"500\""))
            .expect("the selection's status code");
        assert_eq!(code.labels[1].value, LabelValue::Int(500));
    }
    // A selection window: only spans starting in [0, 250ms) can be selected, so D
    // (an error at 400ms) is in the baseline.
    let start = T0_NS as i64;
    let end = (T0_NS + 250 * MS) as i64;
    let query = format!("{{}} | compare({{ status = error }}, 10, {start}, {end})");
    let req = request(&query, (0, 10_000, 10_000), 0);
    let (series, _) = run(&req, &traces, 2);
    assert_eq!(
        only(&series, "span.http.status_code"),
        lines(
            r#"
            {__meta_type="baseline", span.http.status_code="200"} @0:2 @10:0
            {__meta_type="baseline", span.http.status_code="503"} @0:1 @10:0
            {__meta_type="baseline_total", span.http.status_code="<nil>"} @0:3 @10:0
            {__meta_type="selection", span.http.status_code="500"} @0:1 @10:0
            {__meta_type="selection_total", span.http.status_code="<nil>"} @0:1 @10:0
            "#
        )
    );
}

#[test]
fn compare_exemplars_go_to_totals() {
    let traces: Vec<Tr> = (1..=4)
        .map(|i| tr(i, vec![sp(u64::from(i) * 100).int("code", i64::from(i))]))
        .collect();
    let req = request("{} | compare({ span.code > 2 })", (0, 10_000, 10_000), 10);
    let (series, _) = run(&req, &traces, 1);
    let with: Vec<&Series> = series.iter().filter(|s| !s.exemplars.is_empty()).collect();
    // All four spans fall in one interval and the answer keeps two exemplars per interval:
    // both go to the first total (in label order) of the baseline.
    assert_eq!(with.len(), 1, "{:?}", with);
    assert_eq!(
        with[0].prom_labels,
        r#"{__meta_type="baseline_total", instrumentation:name="<nil>"}"#
    );
    assert_eq!(with[0].exemplars.len(), 2);
    for e in &with[0].exemplars {
        // The placeholder takes the total's value in its interval.
        assert_eq!(e.value, 2.0);
        assert_eq!(e.labels[0].name, "trace:id");
        assert!(e.labels.iter().any(|l| l.name == "span.code"));
    }
}

#[test]
fn alignment_and_errors() {
    let q = || compile("{} | rate()").expect("compiles");
    let s = NS_PER_SECOND;
    let r =
        MetricsRequest::new(q(), T0_NS + 1_500 * MS, T0_NS + 5_500 * MS, 2 * s, 5).expect("valid");
    assert_eq!((r.start_ns, r.end_ns), (T0_NS, T0_NS + 6 * s));
    assert!(!r.is_instant());
    assert_eq!(r.exemplars, 5);
    let err = |start, end, step, query: &str| {
        MetricsRequest::new(compile(query).expect("compiles"), start, end, step, 0)
            .err()
            .unwrap_or_default()
    };
    assert_eq!(err(0, 10, 1, "{} | rate()"), "start required");
    assert_eq!(err(10, 0, 1, "{} | rate()"), "end required");
    assert_eq!(
        err(10, 10, 1, "{} | rate()"),
        "end must be greater than start"
    );
    assert_eq!(
        err(10, 9, 1, "{} | rate()"),
        "end must be greater than start"
    );
    assert_eq!(err(10, 20, 0, "{} | rate()"), "step required");
    assert_eq!(err(10, 20, 1, "{ status = error }"), "not a metrics query");
    assert!(err(1, u64::MAX, 3, "{} | rate()").starts_with("exceeded maximum resolution"));
    assert!(err(1, 1 << 40, 1, "{} | rate()").starts_with("exceeded maximum resolution"));
    // Exemplars: clamped, and a `with(exemplars=N)` hint overrides the caller's number.
    let ex = |query: &str, n| {
        MetricsRequest::new(compile(query).expect("compiles"), s, 3 * s, s, n)
            .expect("valid")
            .exemplars
    };
    assert_eq!(ex("{} | rate()", 1_000), EXEMPLARS_MAX);
    assert_eq!(ex("{} | rate() with(exemplars=3)", 50), 3);
    assert_eq!(ex("{} | rate() with(exemplars=1000)", 50), EXEMPLARS_MAX);
    // The evaluator runs the spanset pipeline alone.
    assert!(r.evaluator().is_ok());

    // Alignment moves spans: [1.5s, 5.5s) by 2s counts from 0s to 6s.
    let traces = [tr(1, vec![sp(500), sp(1_200), sp(5_900)])];
    let req =
        MetricsRequest::new(q(), T0_NS + 1_500 * MS, T0_NS + 5_500 * MS, 2 * s, 0).expect("valid");
    let (series, _) = run(&req, &traces, 1);
    assert_eq!(
        render(&series),
        lines(r#"{__name__="rate"} @0:1 @2:0 @4:0.5 @6:0"#)
    );
}

#[test]
fn instant_queries() {
    let s = NS_PER_SECOND;
    let q = || compile("{} | count_over_time()").expect("compiles");
    // Aligned: two intervals, everything in the first.
    let req = MetricsRequest::new(q(), T0_NS, T0_NS + 60 * s, 60 * s, 0).expect("valid");
    assert!(req.is_instant());
    let traces = [tr(1, vec![sp(0), sp(30_000), sp(59_999), sp(60_000)])];
    let (series, _) = run(&req, &traces, 2);
    assert_eq!(
        render(&series),
        lines(r#"{__name__="count_over_time"} @0:3 @60:0"#)
    );
    // Not aligned: the range is kept, and its grid starts at its start so that the first
    // sample holds all of it (Tempo's would split it at 60s).
    let req = MetricsRequest::new(q(), T0_NS + 30 * s, T0_NS + 90 * s, 60 * s, 0).expect("valid");
    assert_eq!((req.start_ns, req.end_ns), (T0_NS + 30 * s, T0_NS + 90 * s));
    let traces = [tr(
        1,
        vec![sp(10_000), sp(40_000), sp(70_000), sp(89_999), sp(90_000)],
    )];
    let (series, _) = run(&req, &traces, 2);
    assert_eq!(
        render(&series),
        lines(r#"{__name__="count_over_time"} @30:3 @90:0"#)
    );
}

#[test]
fn exemplars() {
    // Ten traces in the first second, ten in the second, three spans each.
    let traces: Vec<Tr> = (0..20u8)
        .map(|i| {
            let at = u64::from(i / 10) * 1_000 + u64::from(i % 10) * 10;
            tr(
                i + 1,
                vec![
                    sp(at).str("foo", "a"),
                    sp(at + 1).str("foo", "a").dur(2_000_000),
                    sp(at + 2).str("foo", "a"),
                ],
            )
        })
        .collect();
    let req = request(
        "{ resource.service.name = \"frontend\" } | rate() by (span.foo)",
        (0, 3_000, 1_000),
        100,
    );
    let (series, _) = run(&req, &traces, 1);
    assert_eq!(series.len(), 1);
    let ex = &series[0].exemplars;
    // Two per interval.
    assert_eq!(ex.len(), 4);
    // The middle span of each trace, by time, with the rate of its interval.
    assert_eq!(at(ex[0].timestamp_ms), "0.001");
    assert_eq!(at(ex[2].timestamp_ms), "1.001");
    assert!(ex.iter().all(|e| e.value == 30.0));
    assert_eq!(
        ex[0].labels,
        vec![
            Label {
                name: "trace:id".into(),
                value: LabelValue::Str("a01".into())
            },
            Label {
                name: "span.foo".into(),
                value: LabelValue::Str("a".into())
            },
            Label {
                name: "resource.service.name".into(),
                value: LabelValue::Str("frontend".into())
            },
        ]
    );
    // The budget is per partial: three traces, all in the first second.
    let req = request("{} | rate()", (0, 3_000, 1_000), 3);
    let (series, _) = run(&req, &traces, 1);
    assert_eq!(series[0].exemplars.len(), 2);
    let (series, partial) = run(&req, &traces, 2);
    assert_eq!(partial.exemplar_traces, 6);
    assert_eq!(series[0].exemplars.len(), 2);
    // Valued exemplars: the attribute, durations in seconds.
    let req = request("{} | max_over_time(duration)", (0, 3_000, 1_000), 1);
    let (series, _) = run(&req, &traces, 1);
    assert_eq!(series[0].exemplars.len(), 1);
    assert_eq!(series[0].exemplars[0].value, 0.002);
    let req = request(
        "{} | quantile_over_time(duration, .5, .9)",
        (0, 3_000, 1_000),
        1,
    );
    let (series, _) = run(&req, &traces, 1);
    assert_eq!(series.len(), 2);
    assert!(series
        .iter()
        .all(|s| s.exemplars.len() == 1 && s.exemplars[0].value == 0.002));
    // Histogram exemplars are placeholders filled from their own bucket's count.
    let req = request("{} | histogram_over_time(duration)", (0, 3_000, 1_000), 1);
    let (series, _) = run(&req, &traces, 1);
    let with: Vec<&Series> = series.iter().filter(|s| !s.exemplars.is_empty()).collect();
    assert_eq!(with.len(), 1);
    assert_eq!(with[0].prom_labels, r#"{__bucket="0.002097152"}"#);
    assert_eq!(with[0].exemplars[0].value, 10.0);
    // Attributes a span lacks give 0, as Tempo's `exemplarAttribute` does.
    let req = request("{} | min_over_time(span.nope)", (0, 3_000, 1_000), 1);
    let (series, _) = run(&req, &traces, 1);
    assert!(series.is_empty());
}

#[test]
fn exemplars_per_answer_at_most_100() {
    // 150 traces over 60 one-second intervals; two partials sample 100 traces each.
    let traces: Vec<Tr> = (0..150u32)
        .map(|i| {
            tr(
                (i % 250) as u8,
                vec![sp(u64::from(i % 60) * 1_000 + u64::from(i / 60))],
            )
        })
        .collect();
    let req = request("{} | count_over_time()", (0, 60_000, 1_000), 100);
    let (series, partial) = run(&req, &traces, 2);
    assert_eq!(partial.exemplar_traces, 150);
    let ex = &series[0].exemplars;
    assert_eq!(ex.len(), EXEMPLARS_MAX as usize);
    assert!(ex
        .windows(2)
        .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
    let grid = req.grid();
    let mut per_interval = vec![0; grid.intervals];
    for e in ex {
        per_interval[grid.interval_of_ms(e.timestamp_ms).expect("in range")] += 1;
    }
    assert!(per_interval
        .iter()
        .all(|&n| n <= EXEMPLARS_PER_INTERVAL_MAX));
}

#[test]
fn merge_equals_single_partial() {
    let traces: Vec<Tr> = (0..40u8)
        .map(|i| {
            let at = u64::from(i) * 97 % 4_000;
            let svc = if i % 3 == 0 { "backend" } else { "frontend" };
            let mut spans = vec![sp(at)
                .svc(svc)
                .int("code", i64::from(i % 5) * 100)
                .dur(u64::from(i) * 1_000 + 3)];
            if i % 2 == 0 {
                spans.push(sp(at + 5).svc("db").err().dur(1 << (i % 20)));
            }
            tr(i + 1, spans)
        })
        .collect();
    for query in [
        "{} | rate() by (resource.service.name)",
        "{} | count_over_time() by (status, span.code)",
        "{} | min_over_time(span.code) by (resource.service.name)",
        "{} | max_over_time(duration)",
        "{} | sum_over_time(span.code)",
        "{} | avg_over_time(span.code) by (resource.service.name)",
        "{} | quantile_over_time(duration, 0, .5, .9, .99, 1) by (resource.service.name)",
        "{} | histogram_over_time(duration) by (status)",
        "{} | compare({ resource.service.name = \"db\" }, 3)",
    ] {
        let req = request(query, (0, 4_000, 500), 0);
        let (one, p1) = run(&req, &traces, 1);
        let (two, p2) = run(&req, &traces, 2);
        let (three, _) = run(&req, &traces, 3);
        assert!(!one.is_empty(), "{query}");
        assert_eq!(render(&one), render(&two), "{query}");
        assert_eq!(render(&one), render(&three), "{query}");
        assert_eq!(p1.spans(), p2.spans(), "{query}");
        assert!(!p1.truncated());
    }
}

#[test]
fn spans_counted() {
    let traces = [tr(1, vec![sp(0).dur(1), sp(10), sp(5_000)])];
    let req = request("{} | count_over_time()", (0, 1_000, 1_000), 0);
    assert_eq!(run(&req, &traces, 1).1.spans(), 2);
    // A span without a bucket is not counted into a histogram.
    let req = request("{} | histogram_over_time(duration)", (0, 1_000, 1_000), 0);
    assert_eq!(run(&req, &traces, 1).1.spans(), 1);
}

#[test]
fn limits_truncate() {
    // More series than a partial's rows: the rest is left out and reported.
    let rows_max = ROWS_MAX.min(CELLS_BYTES_MAX / (3 * 8));
    let spans: Vec<Sp> = (0..rows_max + 5)
        .map(|i| sp(0).int("k", i as i64))
        .collect();
    let traces = [tr(1, spans)];
    let req = request("{} | count_over_time() by (span.k)", (0, 2_000, 1_000), 0);
    let (series, partial) = run(&req, &traces, 1);
    assert!(partial.truncated());
    assert_eq!(series.len(), rows_max);
}

/// Queries the parser accepts, run end to end on a trace with odd data: none may panic.
#[test]
fn accepted_queries_never_panic() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/traceql/test_examples.yaml"
    );
    let mut queries: Vec<String> = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_yaml::from_str::<serde_yaml::Value>(&text).ok())
        .and_then(|doc| {
            doc.get("valid")?.as_sequence().map(|qs| {
                qs.iter()
                    .filter_map(|q| q.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default();
    queries.extend(
        [
            "{} | compare({ status = error }, 0)",
            "{} | compare({ status = error }, 3, 5, 2)",
            "{} | compare({ .a =~ \"x.*\" }, 9223372036854775807, 1, 9223372036854775807)",
            "{} | compare({})",
            "{} | quantile_over_time(duration, 0, 1)",
            "{} | quantile_over_time(span.neg, .5) by (span.a, span.b, span.c, span.d)",
            "{} | histogram_over_time(span.f)",
            "{} | histogram_over_time(traceDuration)",
            "{} | min_over_time(name)",
            "{} | avg_over_time(traceDuration) by (rootServiceName)",
            "{} | sum_over_time(event:timeSinceStart)",
            "{} | max_over_time(span.big) by (event:name, link:traceID)",
            "{} | rate() by (span.a, resource.b, .c, kind, status)",
            "{ } >> { } | count_over_time()",
            "{ } | count() > 1 | rate()",
            "{ } | select(span.a) | avg_over_time(span.f) by (span.f)",
            "{} | rate() with(exemplars=0)",
            "{} | rate() with(exemplars=1000)",
        ]
        .map(str::to_string),
    );
    let traces = [tr(
        1,
        vec![
            sp(0)
                .int("neg", -5)
                .int("big", i64::MAX)
                .float("f", f64::NAN),
            sp(1).float("f", f64::INFINITY).int("a", 3).str("b", "nil"),
            sp(2)
                .dur(0)
                .float("big", -f64::INFINITY)
                .str("c", "\u{0}\""),
            sp(999).dur(u64::MAX / 4),
        ],
    )];
    let mut ran = 0;
    for q in &queries {
        let Ok(query) = compile(q) else { continue };
        if !query.is_metrics() {
            continue;
        }
        for range in [(0, 1_000, 1_000), (0, 1_000, 7), (3, 1_000, 997)] {
            let Ok(req) = MetricsRequest::new(
                query.clone(),
                T0_NS + range.0 * MS,
                T0_NS + range.1 * MS,
                range.2 * MS,
                EXEMPLARS_MAX,
            ) else {
                continue;
            };
            for partials in [1, 2] {
                let (series, _) = run(&req, &traces, partials);
                for s in &series {
                    assert!(!s.samples.is_empty(), "{q}");
                    assert!(s.prom_labels.starts_with('{'), "{q}");
                }
            }
            ran += 1;
        }
    }
    assert!(ran >= 60, "only {ran} runs");
}

/// The column path gives what the trace path gives for the same spans.
#[test]
fn column_groups_count_like_traces() {
    use crate::scan::{Group, Observation};
    let traces = tempo_durations();
    let ids: Vec<TraceId> = traces.iter().map(|t| trace_id(t.id)).collect();
    for query in [
        "{ } | quantile_over_time(duration, 0, .5, 1) by (span.foo)",
        "{ } | histogram_over_time(duration) by (span.foo)",
        "{ } | avg_over_time(duration) by (span.foo)",
        "{ } | rate() by (span.foo)",
        "{ } | count_over_time()",
    ] {
        let req = request(query, (1_000, 4_000, 1_000), 10);
        let by = |foo: &str| {
            if query.contains("by") {
                vec![Value::Str(foo.to_string())]
            } else {
                Vec::new()
            }
        };
        let mut groups: Vec<Group> = Vec::new();
        for (k, t) in traces.iter().enumerate() {
            for s in &t.spans {
                let foo = match s.attrs.first().and_then(|kv| kv.value.as_ref()) {
                    Some(AnyValue {
                        value: Some(any_value::Value::StringValue(v)),
                    }) => v.clone(),
                    _ => String::new(),
                };
                let observation = Observation {
                    trace: k as u32,
                    start_ns: T0_NS + s.at_ms * MS,
                    value: Value::Duration(s.dur_ns as i64),
                };
                match groups.iter_mut().find(|g| g.by == by(&foo)) {
                    Some(g) => g.observations.push(observation),
                    None => groups.push(Group {
                        by: by(&foo),
                        observations: vec![observation],
                    }),
                }
            }
        }
        let mut columns = Partial::new(&req);
        columns.observe_groups(&req, &ids, &groups);
        let (from_traces, partial) = run(&req, &traces, 1);
        let from_columns = finish(&req, &columns);
        assert_eq!(render(&from_columns), render(&from_traces), "{query}");
        assert_eq!(columns.spans(), partial.spans(), "{query}");
        let exemplars = |series: &[Series]| -> Vec<(i64, f64)> {
            let mut all: Vec<(i64, f64)> = series
                .iter()
                .flat_map(|s| s.exemplars.iter().map(|e| (e.timestamp_ms, e.value)))
                .collect();
            all.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            all
        };
        assert_eq!(exemplars(&from_columns), exemplars(&from_traces), "{query}");
    }
    // Exemplar labels: the trace, the `by()` values, the attribute.
    let req = request(
        "{ } | max_over_time(duration) by (span.foo)",
        (1_000, 4_000, 1_000),
        1,
    );
    let groups = [Group {
        by: vec![Value::Str("bar".into())],
        observations: vec![Observation {
            trace: 0,
            start_ns: T0_NS + 1_000 * MS,
            value: Value::Duration(1_500),
        }],
    }];
    let mut p = Partial::new(&req);
    p.observe_groups(&req, &ids, &groups);
    let series = finish(&req, &p);
    let names: Vec<&str> = series[0].exemplars[0]
        .labels
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(names, ["trace:id", "span.foo", "duration"]);
    assert_eq!(series[0].exemplars[0].value, 1.5e-6);
}
