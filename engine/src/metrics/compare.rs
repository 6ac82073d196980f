//! `compare({filter}, topN, start, end)` (`pkg/traceql/engine_metrics_compare.go`).
//!
//! Every span the pipeline yields is either in the *selection* (the filter holds and, when
//! `start`/`end` are given, the span starts in `[start, end)`) or in the *baseline*. For each
//! attribute of the span (what Tempo's storage returns with "select all": resource, scope
//! and span attributes, and the intrinsics `name`, `status`, `statusMessage`, `kind`,
//! `rootName`, `rootServiceName`, `instrumentation:name`, `instrumentation:version`;
//! durations and `trace:id` are skipped) a count per value and a total are kept per
//! interval. The answer:
//!
//! - `{__meta_type="baseline"|"selection", <attr>=<value>}`: counts of the `topN` values with
//!   the highest sums (ties broken by value text), per attribute and group;
//! - `{__meta_type="baseline_total"|"selection_total", <attr>="<nil>"}`: totals, carrying
//!   the exemplars of the spans that have the attribute (values filled in from the total).
//!
//! Tempo also builds `{__meta_error="__too_many_values__", <attr>=<nil>}` for an attribute
//! with more than `topN` values, but gives it no samples, so its `ToProto` drops it: 2.7.2
//! never answers with it, and neither does this.

use std::collections::BTreeMap;

use super::grid::{Grid, NS_PER_MS};
use super::labels::{label_value, prom_labels, prom_value, trace_id_text};
use super::{Budget, ExemplarCap, Label, LabelValue, RawExemplar, Sample, Series};
use super::{COMPARE_VALUES_MAX, EXEMPLARS_MAX};
use crate::ids::TraceId;
use crate::traceql::eval::{any_value, Evaluator, TraceView, Value};
use crate::traceql::{Field, FieldExpr, Intrinsic};

const META_TYPE: &str = "__meta_type";
const SIDES: [&str; 2] = ["baseline", "selection"];
const TOTALS: [&str; 2] = ["baseline_total", "selection_total"];

/// The compare function's arguments.
pub(super) struct Args<'a> {
    pub filter: &'a FieldExpr,
    pub start: i64,
    pub end: i64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Compare {
    /// Baseline, selection.
    sides: [Side; 2],
    /// Baseline, selection: at most [`EXEMPLARS_MAX`] each.
    exemplars: [Vec<RawExemplar>; 2],
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Side {
    /// By Tempo's attribute name (`span.http.status_code`, `name`).
    attributes: BTreeMap<String, Counts>,
}

#[derive(Clone, Debug, PartialEq)]
struct Counts {
    totals: Vec<u64>,
    /// By the value's label text, so `200` and `"200"` are one value as in Tempo's frontend.
    values: BTreeMap<String, (LabelValue, Vec<u64>)>,
}

impl Compare {
    /// Counts `spans` (already in the request's time range) and, when `sample` is set,
    /// keeps the middle one as this trace's exemplar. Returns the spans counted.
    #[expect(
        clippy::too_many_arguments,
        reason = "the borrowed pieces of one observation; a struct would only rename them"
    )]
    pub fn observe(
        &mut self,
        args: &Args,
        ev: &Evaluator,
        trace_id: &TraceId,
        trace: &TraceView,
        spans: &[usize],
        grid: &Grid,
        budget: &mut Budget,
        sample: bool,
    ) -> u64 {
        let mut counted = Vec::with_capacity(spans.len());
        let mut key = String::new();
        for &span in spans {
            let Some(s) = trace.spans.get(span) else {
                continue;
            };
            let Some(i) = grid.interval_of(s.start_ns()) else {
                continue;
            };
            let side = &mut self.sides[usize::from(is_selection(args, ev, trace, span))];
            for (name, value) in attributes(ev, trace, span) {
                if matches!(value, Value::Duration(_) | Value::Nil) {
                    continue;
                }
                let value = label_value(&value);
                key.clear();
                prom_value(&value, &mut key);
                side.add(name, &key, value, i, grid.intervals, budget);
            }
            counted.push(span);
        }
        if sample && !counted.is_empty() {
            // Tempo samples a random span of the trace; a deterministic choice keeps
            // answers reproducible: the middle span of those counted.
            let span = counted[counted.len() / 2];
            self.sample(args, ev, trace_id, trace, span, grid);
        }
        counted.len() as u64
    }

    fn sample(
        &mut self,
        args: &Args,
        ev: &Evaluator,
        trace_id: &TraceId,
        trace: &TraceView,
        span: usize,
        grid: &Grid,
    ) {
        if self
            .exemplars
            .iter()
            .any(|e| e.len() >= EXEMPLARS_MAX as usize)
        {
            return;
        }
        let Some(s) = trace.spans.get(span) else {
            return;
        };
        let mut labels = vec![Label {
            name: "trace:id".to_string(),
            value: LabelValue::Str(trace_id_text(trace_id)),
        }];
        for (name, value) in attributes(ev, trace, span) {
            if !value.is_nil() && !labels.iter().any(|l| l.name == name) {
                labels.push(Label {
                    name,
                    value: label_value(&value),
                });
            }
        }
        let timestamp_ms = (s.start_ns() / NS_PER_MS) as i64;
        let Some(interval) = grid.interval_of_ms(timestamp_ms) else {
            return;
        };
        let side = usize::from(is_selection(args, ev, trace, span));
        self.exemplars[side].push(RawExemplar {
            labels,
            value: None,
            timestamp_ms,
            interval,
            bucket: None,
        });
    }

    pub fn merge(&mut self, other: &Compare, intervals: usize, budget: &mut Budget) {
        for (side, theirs) in self.sides.iter_mut().zip(&other.sides) {
            for (name, counts) in &theirs.attributes {
                side.merge(name, counts, intervals, budget);
            }
        }
        for (mine, theirs) in self.exemplars.iter_mut().zip(&other.exemplars) {
            let room = (EXEMPLARS_MAX as usize).saturating_sub(mine.len());
            mine.extend(theirs.iter().take(room).cloned());
        }
    }

    /// The final series, exemplars capped as Tempo's frontend caps them, in label order.
    pub fn finish(&self, top_n: i64, grid: &Grid, cap: &mut ExemplarCap) -> Vec<Series> {
        let top_n = usize::try_from(top_n).unwrap_or(0);
        let mut out = Vec::new();
        for (s, side) in self.sides.iter().enumerate() {
            for (name, counts) in &side.attributes {
                let mut values: Vec<(&String, &(LabelValue, Vec<u64>))> =
                    counts.values.iter().collect();
                if values.len() > top_n {
                    // Highest sums first; equal sums by value text (Tempo's order is random).
                    let sum = |c: &[u64]| c.iter().sum::<u64>();
                    values.sort_by(|a, b| sum(&b.1 .1).cmp(&sum(&a.1 .1)).then(a.0.cmp(b.0)));
                    values.truncate(top_n);
                }
                for (_, (value, cells)) in values {
                    let labels = vec![meta_type(SIDES[s]), label(name, value.clone())];
                    out.push(series(labels, cells, grid, Vec::new()));
                }
                let labels = vec![
                    meta_type(TOTALS[s]),
                    label(name, LabelValue::Str("nil".to_string())),
                ];
                // Tempo attaches each exemplar to every total its span has a value for.
                let exemplars = self.exemplars[s]
                    .iter()
                    .filter(|e| e.labels.iter().any(|l| l.name == *name))
                    .cloned()
                    .collect();
                out.push(series(labels, &counts.totals, grid, exemplars));
            }
        }
        // The frontend keeps exemplars while its per-query budget lasts; going through the
        // series in answer order makes the choice deterministic.
        out.sort_by(|a: &(Series, Vec<RawExemplar>), b| a.0.prom_labels.cmp(&b.0.prom_labels));
        out.into_iter()
            .map(|(mut s, mut exemplars)| {
                exemplars.sort_by_key(|e| e.timestamp_ms);
                s.exemplars = cap.take(&exemplars);
                s
            })
            .collect()
    }
}

impl Side {
    fn add(
        &mut self,
        name: String,
        key: &str,
        value: LabelValue,
        i: usize,
        intervals: usize,
        budget: &mut Budget,
    ) {
        let counts = match self.attributes.get_mut(&name) {
            Some(c) => c,
            None => {
                if !budget.admit() {
                    return;
                }
                self.attributes.entry(name).or_insert_with(|| Counts {
                    totals: vec![0; intervals],
                    values: BTreeMap::new(),
                })
            }
        };
        if let Some(t) = counts.totals.get_mut(i) {
            *t += 1;
        }
        let cells = match counts.values.get_mut(key) {
            Some((_, cells)) => cells,
            None => {
                if counts.values.len() >= COMPARE_VALUES_MAX || !budget.admit() {
                    budget.truncated = true;
                    return;
                }
                &mut counts
                    .values
                    .entry(key.to_string())
                    .or_insert_with(|| (value, vec![0; intervals]))
                    .1
            }
        };
        if let Some(c) = cells.get_mut(i) {
            *c += 1;
        }
    }

    fn merge(&mut self, name: &str, theirs: &Counts, intervals: usize, budget: &mut Budget) {
        let counts = match self.attributes.get_mut(name) {
            Some(c) => c,
            None => {
                if !budget.admit() {
                    return;
                }
                self.attributes
                    .entry(name.to_string())
                    .or_insert_with(|| Counts {
                        totals: vec![0; intervals],
                        values: BTreeMap::new(),
                    })
            }
        };
        add_cells(&mut counts.totals, &theirs.totals);
        for (key, (value, cells)) in &theirs.values {
            match counts.values.get_mut(key) {
                Some((_, mine)) => add_cells(mine, cells),
                None => {
                    if counts.values.len() >= COMPARE_VALUES_MAX || !budget.admit() {
                        budget.truncated = true;
                        continue;
                    }
                    counts
                        .values
                        .insert(key.clone(), (value.clone(), cells.clone()));
                }
            }
        }
    }
}

fn add_cells(mine: &mut [u64], theirs: &[u64]) {
    for (m, t) in mine.iter_mut().zip(theirs) {
        *m += t;
    }
}

fn meta_type(t: &str) -> Label {
    label(META_TYPE, LabelValue::Str(t.to_string()))
}

fn label(name: &str, value: LabelValue) -> Label {
    Label {
        name: name.to_string(),
        value,
    }
}

fn series(
    labels: Vec<Label>,
    cells: &[u64],
    grid: &Grid,
    exemplars: Vec<RawExemplar>,
) -> (Series, Vec<RawExemplar>) {
    // Tempo's frontend sums into zeroed buffers: every interval has a sample.
    let samples = cells
        .iter()
        .enumerate()
        .filter_map(|(i, &c)| {
            Some(Sample {
                timestamp_ms: grid.timestamp_ms(i)?,
                value: c as f64,
            })
        })
        .collect();
    let prom_labels = prom_labels(&labels);
    (
        Series {
            labels,
            prom_labels,
            samples,
            exemplars: Vec::new(),
        },
        exemplars,
    )
}

/// `MetricsCompare.isSelection`.
fn is_selection(args: &Args, ev: &Evaluator, trace: &TraceView, span: usize) -> bool {
    if args.start > 0 && args.end > 0 {
        let start = trace.spans.get(span).map_or(0, |s| s.start_ns());
        let (from, to) = (args.start as u64, args.end as u64);
        if start < from || start >= to {
            return false;
        }
    }
    ev.filter_matches(trace, args.filter, span)
}

/// What Tempo's storage returns for a span with "select all", in its order: trace-level
/// intrinsics, resource, scope, span. Strings Tempo stores as non-null columns are `""`
/// when missing.
fn attributes(ev: &Evaluator, trace: &TraceView, span: usize) -> Vec<(String, Value)> {
    let Some(s) = trace.spans.get(span) else {
        return Vec::new();
    };
    let intrinsic = |i: Intrinsic| ev.field_value(trace, span, &Field::Intrinsic(i));
    let or_empty = |v: Value| {
        if v.is_nil() {
            Value::Str(String::new())
        } else {
            v
        }
    };
    let mut out = Vec::with_capacity(
        12 + s.resource.len()
            + s.span.attributes.len()
            + s.scope.map_or(0, |sc| sc.attributes.len()),
    );
    for i in [Intrinsic::TraceRootService, Intrinsic::TraceRootSpan] {
        out.push((i.as_str().to_string(), or_empty(intrinsic(i))));
    }
    out.push((
        Intrinsic::TraceDuration.as_str().to_string(),
        intrinsic(Intrinsic::TraceDuration),
    ));
    for kv in s.resource {
        out.push((format!("resource.{}", kv.key), any_value(kv.value.as_ref())));
    }
    for i in [
        Intrinsic::InstrumentationName,
        Intrinsic::InstrumentationVersion,
    ] {
        out.push((i.as_str().to_string(), or_empty(intrinsic(i))));
    }
    if let Some(scope) = s.scope {
        for kv in &scope.attributes {
            out.push((
                format!("instrumentation.{}", kv.key),
                any_value(kv.value.as_ref()),
            ));
        }
    }
    for kv in &s.span.attributes {
        out.push((format!("span.{}", kv.key), any_value(kv.value.as_ref())));
    }
    for i in [
        Intrinsic::Name,
        Intrinsic::Status,
        Intrinsic::StatusMessage,
        Intrinsic::Kind,
        Intrinsic::Duration,
    ] {
        out.push((i.as_str().to_string(), intrinsic(i)));
    }
    out
}
