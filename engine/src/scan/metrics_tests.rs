#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failure"
)]

//! [`MetricsScan`] against the exact evaluator on generated traces: the spans counted from
//! the columns, plus those of the traces left to the exact path, are exactly the spans (with
//! the same grouping values, start and measured value) that decoding every trace and
//! evaluating the spanset filter gives.

use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

use super::corpus::block;
use super::*;
use crate::block::{open_bytes, page_bytes};
use crate::ids::TraceId;
use crate::traceql::eval::TraceView;
use crate::traceql::MetricsFunction;

/// `(by values as text, start, measured value as text)` of one counted span.
type Seen = (Vec<String>, u64, String);

fn text(v: &Value) -> String {
    format!("{}:{}", v.type_name(), v.to_text())
}

fn number(v: Value) -> Value {
    match v {
        Value::Int(_) | Value::Float(_) | Value::Duration(_) => v,
        _ => Value::Nil,
    }
}

/// The spans the exact path counts in one decoded trace.
fn exact_spans(query: &Query, payload: &[u8], start_ns: u64, end_ns: u64, out: &mut Vec<Seen>) {
    let metrics = query.metrics.as_ref().unwrap();
    let mut spanset = query.clone();
    spanset.metrics = None;
    let evaluator = Evaluator::new(spanset).unwrap();
    let data = TracesData::decode(payload).unwrap();
    let view = TraceView::new(&data.resource_spans);
    let mut spans: Vec<usize> = evaluator
        .eval(&view)
        .iter()
        .flat_map(|s| s.spans.iter().copied())
        .collect();
    spans.sort_unstable();
    spans.dedup();
    let attr = match &metrics.function {
        MetricsFunction::MinOverTime(f)
        | MetricsFunction::MaxOverTime(f)
        | MetricsFunction::AvgOverTime(f)
        | MetricsFunction::SumOverTime(f)
        | MetricsFunction::QuantileOverTime(f, _)
        | MetricsFunction::HistogramOverTime(f) => Some(f),
        _ => None,
    };
    for i in spans {
        let start = view.spans[i].start_ns();
        if start < start_ns || start >= end_ns {
            continue;
        }
        let by = metrics
            .by
            .iter()
            .map(|f| text(&evaluator.field_value(&view, i, f)))
            .collect();
        let value = attr.map_or(Value::Nil, |f| number(evaluator.field_value(&view, i, f)));
        out.push((by, start, text(&value)));
    }
}

const QUERIES: &[&str] = &[
    "{ } | count_over_time()",
    "{ } | rate() by (resource.service.name)",
    "{ status = error } | rate() by (resource.service.name, name)",
    "{ span.http.status_code >= 500 } | count_over_time() by (span.http.status_code)",
    "{ } | count_over_time() by (.service.name)",
    "{ } | count_over_time() by (span.http.method, kind, status)",
    "{ } | count_over_time() by (resource.deployment.environment)",
    "{ } | quantile_over_time(duration, .5, .99)",
    "{ kind = server } | max_over_time(duration) by (name)",
    "{ } | avg_over_time(span.http.status_code) by (resource.service.name)",
    "{ name =~ \"GET.*\" } | histogram_over_time(duration)",
    "{ span.flag = true } | sum_over_time(span.http.status_code)",
    "{ .http.method = \"GET\" && duration > 1s } | min_over_time(duration) by (.flag)",
];

#[test]
fn columns_count_the_spans_the_evaluator_counts() {
    let (bytes, traces) = block(3000);
    let index = open_bytes(&bytes).unwrap();
    let by_id: std::collections::HashMap<TraceId, &Vec<u8>> =
        traces.iter().map(|(id, p)| (*id, p)).collect();
    let windows = [
        (0, u64::MAX),
        (1_700_000_000_500_000_000, 1_700_000_001_500_000_000),
    ];
    for text_query in QUERIES {
        let query = crate::traceql::compile(text_query).unwrap();
        let scan = MetricsScan::new(&query)
            .unwrap_or_else(|| panic!("{text_query}: not answered from columns"));
        for &(start, end) in &windows {
            let mut expected = Vec::new();
            for (_, payload) in &traces {
                exact_spans(&query, payload, start, end, &mut expected);
            }
            let mut got = Vec::new();
            let mut exact_traces = 0;
            for (number, entry) in index.pages.iter().enumerate() {
                let view = PageView::decode(page_bytes(&bytes, entry).unwrap()).unwrap();
                let ids = view.trace_ids().unwrap();
                let page = scan.scan(&view, start, end, &|_| false).unwrap();
                if !scan.page_may_match(index.page_filter(number)) {
                    assert!(
                        page.groups.is_empty(),
                        "{text_query}: page {number} skipped"
                    );
                }
                for group in &page.groups {
                    let by: Vec<String> = group.by.iter().map(text).collect();
                    for o in &group.observations {
                        got.push((by.clone(), o.start_ns, text(&o.value)));
                    }
                }
                for &t in &page.exact {
                    exact_traces += 1;
                    exact_spans(&query, by_id[&ids[t]], start, end, &mut got);
                }
            }
            expected.sort();
            got.sort();
            assert!(
                !expected.is_empty(),
                "{text_query}: the corpus counts no span"
            );
            assert_eq!(got.len(), expected.len(), "{text_query} in {start}..{end}");
            if let Some(i) = (0..got.len()).find(|&i| got[i] != expected[i]) {
                panic!(
                    "{text_query} in {start}..{end}: span {i} of {}: got {:?}, want {:?}",
                    got.len(),
                    got[i],
                    expected[i]
                );
            }
            eprintln!(
                "{text_query}: {} spans, {exact_traces} traces evaluated exactly",
                got.len()
            );
        }
    }
}

#[test]
fn queries_the_columns_cannot_answer_are_left_to_the_exact_path() {
    for q in [
        "{ } >> { status = error } | rate()",
        "{ rootServiceName = \"frontend\" } | rate()",
        "{ } | rate() by (rootName)",
        "{ } | compare({ status = error })",
        "{ event.exception.message = \"x\" } | rate()",
        "{ } | count_over_time() by (event:name)",
        "{ status = error } && { kind = server } | rate()",
    ] {
        let query = crate::traceql::compile(q).unwrap();
        assert!(MetricsScan::new(&query).is_none(), "{q}");
    }
}

#[test]
fn traces_counted_elsewhere_are_skipped() {
    let (bytes, _) = block(300);
    let index = open_bytes(&bytes).unwrap();
    let query = crate::traceql::compile("{ } | count_over_time()").unwrap();
    let scan = MetricsScan::new(&query).unwrap();
    let entry = &index.pages[0];
    let view = PageView::decode(page_bytes(&bytes, entry).unwrap()).unwrap();
    let all = scan.scan(&view, 0, u64::MAX, &|_| false).unwrap();
    let none = scan.scan(&view, 0, u64::MAX, &|_| true).unwrap();
    assert!(!all.groups.is_empty());
    assert!(none.groups.is_empty() && none.exact.is_empty());
}
