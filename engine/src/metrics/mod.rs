//! TraceQL metrics (sans-IO): `{ filter } | rate() by (x)` and the other functions Tempo 2.7
//! parses, computed from the spans a shard holds with no metrics-generator.
//!
//! Three layers, as in Tempo's engine (`pkg/traceql/engine_metrics.go`):
//! - **raw**, in each shard: [`Partial::observe`] runs the query's spanset pipeline on one
//!   trace and sorts each resulting span whose start lies in `[start, end)` into a series (by
//!   its `by(...)` values) and a step interval;
//! - **sum**, across shards: [`Partial::merge`] adds partials exactly (counts, sums, minima,
//!   maxima and log2 histogram buckets merge without loss);
//! - **final**: [`finish`] turns a partial into Tempo's series (rates, averages, quantiles
//!   from the log2 buckets, `compare` baselines), sorted by their Prometheus label text, with
//!   exemplars.
//!
//! Times are Unix nanoseconds; a [`MetricsRequest`] is aligned to its step as Tempo aligns it.
//!
//! How the answer matches Tempo 2.7.2's query-frontend:
//! - series are keyed by their label text (`Labels.String()`), as Tempo's frontend keys them;
//!   ungrouped series are `{__name__="rate"}` (the function's name); a `by()` value that is
//!   missing is left out, and when all are missing the first becomes `"nil"`;
//! - a range has one interval more than its steps (see [`grid`]); counts, rates, histogram
//!   buckets, quantiles and `compare` counts answer every interval (zeros included), while
//!   `min`/`max`/`sum`/`avg_over_time` answer only the intervals with a value;
//! - durations are measured in seconds (`duration` only: other duration-typed fields are
//!   floatized in nanoseconds, as Tempo's `FloatizeAttribute` does);
//! - exemplars: one span per trace for at most `exemplars` traces per partial; at most
//!   [`EXEMPLARS_PER_INTERVAL_MAX`] per interval and [`EXEMPLARS_MAX`] per series in a
//!   partial, and the same two limits across the whole answer in [`finish`] (Tempo's
//!   frontend shares one `bucketSet` among all series). Rate, count, histogram and compare
//!   exemplars take the value of their interval's sample.
//!
//! Deliberate differences, where Tempo's answer is random, depends on how it split the query
//! into jobs, or is a bug a later Tempo fixed:
//! - the exemplar span of a trace is the middle one of the spans it added, not a random one;
//! - `avg_over_time` keeps exact sums and counts, so averages do not depend on the number
//!   of shards (Tempo's incremental means do, and its frontend merge keeps the first job's
//!   weight; see [`average`]), and the exemplars of an average are not repeated once per
//!   sample as Tempo's `averageOverTimeSeriesAggregator` repeats them;
//! - `quantile_over_time` series carry the exemplars of their own group (Tempo 2.7.2 gives
//!   every quantile series all exemplars of the query; 2.8 fixed that);
//! - `sum_over_time` (not in Tempo 2.7.2; 2.8's semantics) ignores spans without a value
//!   instead of turning the sum into NaN;
//! - `compare` picks its top values from exact counts over all shards, where Tempo keeps
//!   only each job's top values;
//! - an instant query whose start is not a multiple of its step keeps its own start as the
//!   grid's origin, so its first sample covers the whole range (see [`grid`]);
//! - series with the same label text from different value types (`200` and `"200"`) are one
//!   series (Tempo's frontend merges them too; its raw layer lets one overwrite the other).
//!
//! **Architecture Invariant:** no panics on any request [`MetricsRequest::new`] accepts, and
//! bounded memory: at most [`INTERVALS_MAX`] intervals, [`ROWS_MAX`] rows of cells and
//! [`CELLS_BYTES_MAX`] bytes of cells per partial ([`Partial::truncated`] reports what was
//! left out).

mod average;
mod compare;
mod grid;
mod labels;
mod log2;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::mem::size_of;

use crate::ids::TraceId;
use crate::traceql::eval::{EvalError, Evaluator, TraceView, Value};
use crate::traceql::{Field, Intrinsic, MetricsAggregate, MetricsFunction, Query, Static};

use average::{Num, Total};
use grid::{align_end, align_start, Grid, NS_PER_MS};
use labels::{field_label, label_value, prom_labels, trace_id_text};
use log2::{log2_bucketize, log2_quantile};

/// Exemplars per query at most (Tempo's `maxExemplars`).
pub const EXEMPLARS_MAX: u32 = 100;
/// Exemplars per interval of a series at most (Tempo's `maxExemplarsPerBucket`).
pub const EXEMPLARS_PER_INTERVAL_MAX: usize = 2;
/// Intervals per request at most (a day at one-second steps fits).
pub const INTERVALS_MAX: usize = 100_000;
/// Rows of per-interval cells per partial at most: one per series, per histogram bucket of a
/// series, or per `compare` attribute value and total.
pub const ROWS_MAX: usize = 100_000;
/// Bytes of per-interval cells (rows times intervals times a cell's size) per partial at most.
pub const CELLS_BYTES_MAX: usize = 256 << 20;
/// Distinct values per attribute and group that a `compare` partial counts at most.
pub const COMPARE_VALUES_MAX: usize = 1_000;

// A row of the largest cells fits.
const _: () = assert!(INTERVALS_MAX * std::mem::size_of::<Option<Total>>() <= CELLS_BYTES_MAX);
const _: () = assert!(COMPARE_VALUES_MAX <= ROWS_MAX);
const _: () = assert!(EXEMPLARS_PER_INTERVAL_MAX <= EXEMPLARS_MAX as usize);

const NS_PER_SECOND: u64 = 1_000_000_000;

/// Partials travel from shard threads to the merging thread.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Partial>();
};

/// A metrics query over a time range, checked and aligned.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsRequest {
    /// A compiled metrics query ([`Query::is_metrics`]).
    pub query: Query,
    pub start_ns: u64,
    pub end_ns: u64,
    pub step_ns: u64,
    /// Exemplars wanted, at most [`EXEMPLARS_MAX`].
    pub exemplars: u32,
}

impl MetricsRequest {
    /// Tempo's checks, with its texts (`start required`, `end must be greater than start`,
    /// `step required`, `not a metrics query`), then its alignment: start rounded down and end
    /// rounded up to the step, except for an instant query (`end - start == step`).
    ///
    /// `exemplars` is what the caller allows (Tempo's frontend turns 0 into its configured
    /// maximum before this point); a `with(exemplars=N)` hint overrides it, as in Tempo's
    /// querier, and the result is clamped to [`EXEMPLARS_MAX`]. A range with more than
    /// [`INTERVALS_MAX`] intervals is refused.
    pub fn new(
        query: Query,
        start_ns: u64,
        end_ns: u64,
        step_ns: u64,
        exemplars: u32,
    ) -> Result<MetricsRequest, String> {
        if start_ns == 0 {
            return Err("start required".to_string());
        }
        if end_ns == 0 {
            return Err("end required".to_string());
        }
        if end_ns <= start_ns {
            return Err("end must be greater than start".to_string());
        }
        if step_ns == 0 {
            return Err("step required".to_string());
        }
        if query.metrics.is_none() {
            return Err("not a metrics query".to_string());
        }
        let hinted = query.hints.iter().find_map(|h| match h.value {
            Static::Int(n) if h.name == "exemplars" => Some(n.clamp(0, i64::from(u32::MAX))),
            _ => None,
        });
        let exemplars = match hinted {
            Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
            None => exemplars,
        }
        .min(EXEMPLARS_MAX);
        let too_large = || {
            format!(
                "exceeded maximum resolution of {INTERVALS_MAX} points per timeseries. \
                 Try decreasing the query resolution (?step=XX)"
            )
        };
        let (start_ns, end_ns) = if end_ns - start_ns == step_ns {
            (start_ns, end_ns)
        } else {
            let end = align_end(end_ns, step_ns).ok_or_else(too_large)?;
            (align_start(start_ns, step_ns), end)
        };
        let intervals = Grid::new(start_ns, end_ns, step_ns).intervals;
        if intervals == 0 || intervals > INTERVALS_MAX {
            return Err(too_large());
        }
        Ok(MetricsRequest {
            query,
            start_ns,
            end_ns,
            step_ns,
            exemplars,
        })
    }

    /// `end - start == step`: one value per series.
    pub fn is_instant(&self) -> bool {
        self.end_ns.wrapping_sub(self.start_ns) == self.step_ns
    }

    /// The evaluator of the query's spanset pipeline (the metrics stage left out), which
    /// [`Partial::observe`] is given for every trace.
    pub fn evaluator(&self) -> Result<Evaluator, EvalError> {
        Evaluator::new(Query {
            pipeline: self.query.pipeline.clone(),
            metrics: None,
            hints: self.query.hints.clone(),
        })
    }

    fn grid(&self) -> Grid {
        Grid::new(self.start_ns, self.end_ns, self.step_ns)
    }
}

/// One shard's series so far (the raw layer), or several shards' merged (the sum layer).
#[derive(Clone, Debug, PartialEq)]
pub struct Partial {
    intervals: usize,
    spans: u64,
    /// Traces an exemplar was sampled from (Tempo's `exemplarMap`, per partial).
    exemplar_traces: u32,
    budget: Budget,
    state: State,
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    /// A request without a metrics stage: nothing is counted.
    Idle,
    /// Keyed by label text (without `__bucket` for histograms and quantiles).
    Series(BTreeMap<String, SeriesState>),
    Compare(compare::Compare),
}

/// How many rows of cells a partial may still allocate.
#[derive(Clone, Debug, PartialEq)]
struct Budget {
    rows: usize,
    rows_max: usize,
    truncated: bool,
}

impl Budget {
    fn new(intervals: usize, cell_bytes: usize) -> Budget {
        let row_bytes = intervals.max(1).saturating_mul(cell_bytes.max(1));
        Budget {
            rows: 0,
            rows_max: ROWS_MAX.min(CELLS_BYTES_MAX / row_bytes),
            truncated: false,
        }
    }

    /// Takes one row, or records that one was refused.
    fn admit(&mut self) -> bool {
        if self.rows >= self.rows_max {
            self.truncated = true;
            return false;
        }
        self.rows += 1;
        true
    }
}

#[derive(Clone, Debug, PartialEq)]
struct SeriesState {
    /// In Tempo's order: `by()` labels, or `__name__`.
    labels: Vec<Label>,
    cells: Cells,
    exemplars: Vec<RawExemplar>,
}

/// Per-interval values of one series.
#[derive(Clone, Debug, PartialEq)]
enum Cells {
    /// `rate`, `count_over_time`.
    Counts(Vec<u64>),
    /// `min_over_time`: `None` until a value.
    Min(Vec<Option<f64>>),
    /// `max_over_time`: `None` until a value.
    Max(Vec<Option<f64>>),
    /// `sum_over_time`, `avg_over_time`: exact sums and counts.
    Totals(Vec<Option<Total>>),
    /// `histogram_over_time`, `quantile_over_time`: counts per log2 bucket, keyed by the
    /// bucket's bits (bounds are positive, so bit order is numeric order).
    Buckets(BTreeMap<u64, Vec<u64>>),
}

/// An exemplar before the final layer.
#[derive(Clone, Debug, PartialEq)]
struct RawExemplar {
    labels: Vec<Label>,
    /// `None`: a placeholder that takes its interval's sample value in [`finish`].
    value: Option<f64>,
    timestamp_ms: i64,
    /// `IntervalOfMs(timestamp_ms)`, known to lie in the request's range.
    interval: usize,
    /// The histogram bucket of the span (bits), which picks its `histogram_over_time` series.
    bucket: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Rate,
    Count,
    Min,
    Max,
    Sum,
    Avg,
    Histogram,
    Quantile,
}

impl Op {
    /// The operation and its attribute; `None` for `compare`.
    fn of(f: &MetricsFunction) -> Option<(Op, Option<&Field>)> {
        Some(match f {
            MetricsFunction::Rate => (Op::Rate, None),
            MetricsFunction::CountOverTime => (Op::Count, None),
            MetricsFunction::MinOverTime(a) => (Op::Min, Some(a)),
            MetricsFunction::MaxOverTime(a) => (Op::Max, Some(a)),
            MetricsFunction::SumOverTime(a) => (Op::Sum, Some(a)),
            MetricsFunction::AvgOverTime(a) => (Op::Avg, Some(a)),
            MetricsFunction::HistogramOverTime(a) => (Op::Histogram, Some(a)),
            MetricsFunction::QuantileOverTime(a, _) => (Op::Quantile, Some(a)),
            MetricsFunction::Compare { .. } => return None,
        })
    }

    fn bucketed(self) -> bool {
        matches!(self, Op::Histogram | Op::Quantile)
    }

    /// Whether exemplars carry the attribute's value (`exemplarFnFor`) rather than a
    /// placeholder (`exemplarNaN`).
    fn valued_exemplars(self) -> bool {
        matches!(self, Op::Min | Op::Max | Op::Sum | Op::Avg | Op::Quantile)
    }

    /// The size of one per-interval cell.
    fn cell_bytes(self) -> usize {
        match self {
            Op::Rate | Op::Count | Op::Histogram | Op::Quantile => size_of::<u64>(),
            Op::Min | Op::Max => size_of::<Option<f64>>(),
            Op::Sum | Op::Avg => size_of::<Option<Total>>(),
        }
    }

    fn cells(self, intervals: usize) -> Cells {
        match self {
            Op::Rate | Op::Count => Cells::Counts(vec![0; intervals]),
            Op::Min => Cells::Min(vec![None; intervals]),
            Op::Max => Cells::Max(vec![None; intervals]),
            Op::Sum | Op::Avg => Cells::Totals(vec![None; intervals]),
            Op::Histogram | Op::Quantile => Cells::Buckets(BTreeMap::new()),
        }
    }
}

/// What one span adds to its series.
enum Point {
    Count,
    /// `None`: the span has no numeric value (it still makes its series exist).
    Value(Option<Num>),
    /// A log2 bucket bound.
    Bucket(f64),
}

impl Partial {
    pub fn new(request: &MetricsRequest) -> Partial {
        let intervals = request.grid().intervals;
        let op = request.query.metrics.as_ref().map(|m| Op::of(&m.function));
        let (state, cell_bytes) = match op {
            None => (State::Idle, 0),
            Some(None) => (State::Compare(Default::default()), size_of::<u64>()),
            Some(Some((op, _))) => (State::Series(BTreeMap::new()), op.cell_bytes()),
        };
        Partial {
            intervals,
            spans: 0,
            exemplar_traces: 0,
            budget: Budget::new(intervals, cell_bytes),
            state,
        }
    }

    /// Observes one whole trace: runs `evaluator` (from [`MetricsRequest::evaluator`]) on it
    /// and adds every span of the resulting spansets that starts in `[start, end)`.
    pub fn observe(
        &mut self,
        request: &MetricsRequest,
        evaluator: &Evaluator,
        trace_id: &TraceId,
        trace: &TraceView,
    ) {
        let Some(m) = &request.query.metrics else {
            return;
        };
        let mut spans: Vec<usize> = evaluator
            .eval(trace)
            .iter()
            .flat_map(|ss| ss.spans.iter().copied())
            .filter(|&i| {
                trace.spans.get(i).is_some_and(|s| {
                    let start = s.start_ns();
                    start >= request.start_ns && start < request.end_ns
                })
            })
            .collect();
        spans.sort_unstable();
        spans.dedup();
        if spans.is_empty() {
            return;
        }
        let grid = request.grid();
        let sample = self.exemplar_traces < request.exemplars;
        let counted = match (&mut self.state, &m.function) {
            (State::Idle, _) => 0,
            (
                State::Compare(c),
                MetricsFunction::Compare {
                    filter, start, end, ..
                },
            ) => {
                let args = compare::Args {
                    filter,
                    start: *start,
                    end: *end,
                };
                c.observe(
                    &args,
                    evaluator,
                    trace_id,
                    trace,
                    &spans,
                    &grid,
                    &mut self.budget,
                    sample,
                )
            }
            (State::Series(series), _) => match SeriesCtx::new(request) {
                Some(ctx) => ctx.observe(
                    series,
                    &mut self.budget,
                    request,
                    evaluator,
                    trace_id,
                    trace,
                    &spans,
                    sample,
                ),
                None => 0,
            },
            (State::Compare(_), _) => 0,
        };
        if sample && counted > 0 {
            self.exemplar_traces += 1;
        }
        self.spans += counted;
    }

    /// Adds spans read from block columns instead of a rebuilt trace
    /// ([`crate::scan::MetricsScan`], which only takes queries it judges span by span):
    /// `groups` of spans with the same `by()` values, each span by the position of its trace
    /// in `ids`. The same rules as [`Partial::observe`] (time range, values, exemplars: the
    /// middle counted span of a trace); exemplars are labelled with `trace:id`, the `by()`
    /// values and the function's attribute, all that the columns hold.
    pub fn observe_groups(
        &mut self,
        request: &MetricsRequest,
        ids: &[TraceId],
        groups: &[crate::scan::Group],
    ) {
        let (State::Series(series), Some(ctx)) = (&mut self.state, SeriesCtx::new(request)) else {
            return;
        };
        // A group's series is looked up once, not per span: a page holds thousands of spans
        // in a handful of groups.
        let remaining = request.exemplars.saturating_sub(self.exemplar_traces) as usize;
        // The traces exemplars come from (the first `remaining` with a counted span), each
        // with its counted spans as (group, observation).
        let mut counted: Vec<(u32, Vec<(usize, usize)>)> = Vec::new();
        let mut counted_at: HashMap<u32, usize> = HashMap::new();
        for (g, group) in groups.iter().enumerate() {
            if group.by.len() != ctx.m.by.len() {
                continue;
            }
            let labels = ctx.labels(&group.by);
            let key = prom_labels(&labels);
            let mut labels = Some(labels);
            // The group's series, looked up (or made) at its first counted span.
            let mut state: Option<&mut SeriesState> = None;
            for (o, x) in group.observations.iter().enumerate() {
                if x.start_ns < request.start_ns || x.start_ns >= request.end_ns {
                    continue;
                }
                let (Some(i), Some(point)) =
                    (ctx.grid.interval_of(x.start_ns), ctx.point(&x.value))
                else {
                    continue;
                };
                if state.is_none() {
                    if !series.contains_key(&key) && !self.budget.admit() {
                        break;
                    }
                    state = Some(series.entry(key.clone()).or_insert_with(|| SeriesState {
                        labels: labels.take().unwrap_or_default(),
                        cells: ctx.op.cells(ctx.grid.intervals),
                        exemplars: Vec::new(),
                    }));
                }
                let Some(state) = state.as_deref_mut() else {
                    break;
                };
                if !state
                    .cells
                    .record(i, &point, ctx.scale(), ctx.grid.intervals, &mut self.budget)
                {
                    continue;
                }
                self.spans += 1;
                match counted_at.get(&x.trace) {
                    Some(&at) => {
                        if let Some((_, spans)) = counted.get_mut(at) {
                            spans.push((g, o));
                        }
                    }
                    None if counted.len() < remaining => {
                        counted_at.insert(x.trace, counted.len());
                        counted.push((x.trace, vec![(g, o)]));
                    }
                    None => {}
                }
            }
        }
        for (trace, spans) in counted {
            if self.exemplar_traces >= request.exemplars {
                break;
            }
            let Some(trace_id) = ids.get(trace as usize) else {
                continue;
            };
            self.exemplar_traces += 1;
            let (g, o) = spans[spans.len() / 2];
            let (Some(group), Some(x)) = (
                groups.get(g),
                groups.get(g).and_then(|gr| gr.observations.get(o)),
            ) else {
                continue;
            };
            let mut labels = vec![trace_id_label(trace_id)];
            let fields = ctx
                .m
                .by
                .iter()
                .zip(&group.by)
                .chain(ctx.attr.zip(Some(&x.value)));
            for (f, v) in fields {
                let name = field_label(f);
                if !v.is_nil() && !labels.iter().any(|l| l.name == name) {
                    labels.push(Label {
                        name,
                        value: label_value(v),
                    });
                }
            }
            let obs = Obs {
                start_ns: x.start_ns,
                by: &group.by,
                value: &x.value,
            };
            ctx.sample(series, &obs, labels);
        }
    }

    /// Adds another partial of the same request.
    pub fn merge(&mut self, other: &Partial) {
        self.spans += other.spans;
        self.exemplar_traces = self.exemplar_traces.saturating_add(other.exemplar_traces);
        self.budget.truncated |= other.budget.truncated;
        let grid_intervals = self.intervals;
        match (&mut self.state, &other.state) {
            (State::Series(mine), State::Series(theirs)) => {
                for (key, s) in theirs {
                    merge_series(mine, key, s, grid_intervals, &mut self.budget);
                }
            }
            (State::Compare(mine), State::Compare(theirs)) => {
                mine.merge(theirs, grid_intervals, &mut self.budget);
            }
            // Partials of different requests (a caller's bug): nothing sensible to add.
            _ => {}
        }
    }

    /// Spans observed (counted into some series).
    pub fn spans(&self) -> u64 {
        self.spans
    }

    /// Whether a limit ([`ROWS_MAX`], [`CELLS_BYTES_MAX`], [`COMPARE_VALUES_MAX`]) left some
    /// series, buckets or values out.
    pub fn truncated(&self) -> bool {
        self.budget.truncated
    }
}

/// What adding spans to the series of a request needs.
struct SeriesCtx<'a> {
    m: &'a MetricsAggregate,
    op: Op,
    attr: Option<&'a Field>,
    grid: Grid,
}

/// One span as the series path sees it.
struct Obs<'a> {
    start_ns: u64,
    /// One value per `by()` field, `Nil` when missing.
    by: &'a [Value],
    /// The function's attribute (`duration` in nanoseconds), `Nil` when missing.
    value: &'a Value,
}

impl<'a> SeriesCtx<'a> {
    fn new(request: &'a MetricsRequest) -> Option<SeriesCtx<'a>> {
        let m = request.query.metrics.as_ref()?;
        let (op, attr) = Op::of(&m.function)?;
        Some(SeriesCtx {
            m,
            op,
            attr,
            grid: request.grid(),
        })
    }

    /// Adds `spans` of one trace (already in the time range); returns how many were
    /// counted, and keeps the middle one of those as an exemplar when `sample` is set.
    #[expect(
        clippy::too_many_arguments,
        reason = "the borrowed pieces of one observation; a struct would only rename them"
    )]
    fn observe(
        &self,
        series: &mut BTreeMap<String, SeriesState>,
        budget: &mut Budget,
        request: &MetricsRequest,
        ev: &Evaluator,
        trace_id: &TraceId,
        trace: &TraceView,
        spans: &[usize],
        sample: bool,
    ) -> u64 {
        let mut counted = Vec::with_capacity(spans.len());
        for &span in spans {
            let (by, value) = self.read(ev, trace, span);
            let obs = Obs {
                start_ns: trace.spans.get(span).map_or(0, |s| s.start_ns()),
                by: &by,
                value: &value,
            };
            if self.add(series, budget, &obs) {
                counted.push((span, obs.start_ns, by, value));
            }
        }
        if sample && !counted.is_empty() {
            // Tempo samples a random span of the trace; a deterministic choice keeps
            // answers reproducible: the middle span of those counted.
            let (span, start_ns, by, value) = &counted[counted.len() / 2];
            let labels = exemplar_labels(&request.query, ev, trace_id, trace, *span);
            let obs = Obs {
                start_ns: *start_ns,
                by,
                value,
            };
            self.sample(series, &obs, labels);
        }
        counted.len() as u64
    }

    /// Tempo measures `duration` in seconds (and only `duration`).
    fn scale(&self) -> f64 {
        scale_of(self.attr)
    }

    /// The values of span `span` of a trace.
    fn read(&self, ev: &Evaluator, trace: &TraceView, span: usize) -> (Vec<Value>, Value) {
        let by = self
            .m
            .by
            .iter()
            .map(|f| ev.field_value(trace, span, f))
            .collect();
        let value = match self.attr {
            None => Value::Nil,
            Some(Field::Intrinsic(Intrinsic::Duration)) => {
                trace.spans.get(span).map_or(Value::Nil, |s| {
                    Value::Duration(i64::try_from(s.duration_ns()).unwrap_or(i64::MAX))
                })
            }
            Some(f) => ev.field_value(trace, span, f),
        };
        (by, value)
    }

    /// Adds one span to its series; `false` when it is not counted (outside the range,
    /// without the value the function needs, or refused by the budget).
    fn add(
        &self,
        series: &mut BTreeMap<String, SeriesState>,
        budget: &mut Budget,
        obs: &Obs,
    ) -> bool {
        let Some(i) = self.grid.interval_of(obs.start_ns) else {
            return false;
        };
        let Some(point) = self.point(obs.value) else {
            return false;
        };
        let labels = self.labels(obs.by);
        let key = prom_labels(&labels);
        let state = match series.get_mut(&key) {
            Some(state) => state,
            None => {
                if !budget.admit() {
                    return false;
                }
                series.entry(key).or_insert_with(|| SeriesState {
                    labels,
                    cells: self.op.cells(self.grid.intervals),
                    exemplars: Vec::new(),
                })
            }
        };
        state
            .cells
            .record(i, &point, self.scale(), self.grid.intervals, budget)
    }

    /// Keeps `obs` (a counted span) as an exemplar of its series, labelled `labels`.
    fn sample(&self, series: &mut BTreeMap<String, SeriesState>, obs: &Obs, labels: Vec<Label>) {
        let Some(state) = series.get_mut(&prom_labels(&self.labels(obs.by))) else {
            return;
        };
        let bucket = if self.op.bucketed() {
            match bucket_of(obs.value) {
                Some(b) => Some(b.to_bits()),
                None => return,
            }
        } else {
            None
        };
        // Tempo's `exemplarAttribute` gives 0 for a span without the attribute.
        let value = self
            .op
            .valued_exemplars()
            .then(|| num_of(obs.value).map_or(0.0, |n| n.to_f64() / self.scale()));
        let timestamp_ms = (obs.start_ns / NS_PER_MS) as i64;
        let Some(interval) = self.grid.interval_of_ms(timestamp_ms) else {
            return;
        };
        let exemplar = RawExemplar {
            labels,
            value,
            timestamp_ms,
            interval,
            bucket,
        };
        push_exemplar(&mut state.exemplars, exemplar);
    }

    fn point(&self, value: &Value) -> Option<Point> {
        match self.op {
            Op::Rate | Op::Count => Some(Point::Count),
            Op::Min | Op::Max | Op::Sum => Some(Point::Value(num_of(value))),
            Op::Avg => num_of(value).map(|v| Point::Value(Some(v))),
            Op::Histogram | Op::Quantile => bucket_of(value).map(Point::Bucket),
        }
    }

    /// The series labels of a span: its non-nil `by()` values in order (the first as `nil`
    /// when all are missing), or `__name__` without `by()`. Histograms and quantiles get
    /// just the values: their bucket or quantile label is added in [`finish`].
    fn labels(&self, by: &[Value]) -> Vec<Label> {
        let mut labels = Vec::with_capacity(self.m.by.len() + 1);
        for (f, v) in self.m.by.iter().zip(by) {
            if !v.is_nil() {
                labels.push(Label {
                    name: field_label(f),
                    value: label_value(v),
                });
            }
        }
        if self.op.bucketed() {
            return labels;
        }
        match self.m.by.first() {
            None => labels.push(Label {
                name: "__name__".to_string(),
                value: LabelValue::Str(self.m.function.name().to_string()),
            }),
            Some(first) if labels.is_empty() => labels.push(Label {
                name: field_label(first),
                value: LabelValue::Str("nil".to_string()),
            }),
            Some(_) => {}
        }
        labels
    }
}

/// Tempo's per-span value (`FloatizeAttribute`): integers, floats, durations in
/// nanoseconds; `None` for anything else or a NaN.
fn num_of(v: &Value) -> Option<Num> {
    match v {
        Value::Int(i) | Value::Duration(i) => Some(Num::Int(i128::from(*i))),
        Value::Float(f) if !f.is_nan() => Some(Num::Float(*f)),
        _ => None,
    }
}

/// Tempo's `bucketizeDuration` / `bucketizeAttribute`: the log2 bucket of an integer, or
/// of a duration in seconds; `None` below 2 and for types it does not bucket (floats).
fn bucket_of(v: &Value) -> Option<f64> {
    match *v {
        Value::Int(i) => {
            let f = i as f64;
            (f >= 2.0).then(|| log2_bucketize(f as u64))
        }
        Value::Duration(d) => {
            let f = d as f64;
            (f >= 2.0).then(|| log2_bucketize(f as u64) / NS_PER_SECOND as f64)
        }
        _ => None,
    }
}

/// `trace:id`, then every field the query reads that the span has, named as Tempo names
/// them (`resource.service.name`, `duration`).
fn exemplar_labels(
    query: &Query,
    ev: &Evaluator,
    trace_id: &TraceId,
    trace: &TraceView,
    span: usize,
) -> Vec<Label> {
    let mut labels = vec![trace_id_label(trace_id)];
    for f in query.fields() {
        if f == Field::Intrinsic(Intrinsic::TraceId) {
            continue;
        }
        let v = ev.field_value(trace, span, &f);
        let name = field_label(&f);
        if v.is_nil() || labels.iter().any(|l| l.name == name) {
            continue;
        }
        labels.push(Label {
            name,
            value: label_value(&v),
        });
    }
    labels
}

fn trace_id_label(trace_id: &TraceId) -> Label {
    Label {
        name: "trace:id".to_string(),
        value: LabelValue::Str(trace_id_text(trace_id)),
    }
}

impl Cells {
    /// Adds one span at interval `i`; `false` when it was not counted (a histogram bucket
    /// refused by the budget).
    fn record(
        &mut self,
        i: usize,
        point: &Point,
        scale: f64,
        intervals: usize,
        budget: &mut Budget,
    ) -> bool {
        match (self, point) {
            (Cells::Counts(c), Point::Count) => {
                if let Some(c) = c.get_mut(i) {
                    *c += 1;
                }
            }
            (Cells::Min(c), Point::Value(v)) => {
                let v = v.map(|v| v.to_f64() / scale);
                if let (Some(c), Some(v)) = (c.get_mut(i), &v) {
                    *c = Some(c.map_or(*v, |cur| if *v < cur { *v } else { cur }));
                }
            }
            (Cells::Max(c), Point::Value(v)) => {
                let v = v.map(|v| v.to_f64() / scale);
                if let (Some(c), Some(v)) = (c.get_mut(i), &v) {
                    *c = Some(c.map_or(*v, |cur| if *v > cur { *v } else { cur }));
                }
            }
            (Cells::Totals(c), Point::Value(v)) => {
                if let (Some(c), Some(v)) = (c.get_mut(i), v) {
                    match c {
                        Some(total) => total.add(*v),
                        None => *c = Some(Total::new(*v)),
                    }
                }
            }
            (Cells::Buckets(rows), Point::Bucket(b)) => {
                let row = match rows.get_mut(&b.to_bits()) {
                    Some(row) => row,
                    None => {
                        if !budget.admit() {
                            return false;
                        }
                        rows.entry(b.to_bits())
                            .or_insert_with(|| vec![0; intervals])
                    }
                };
                if let Some(c) = row.get_mut(i) {
                    *c += 1;
                }
            }
            _ => return false,
        }
        true
    }

    fn merge(&mut self, other: &Cells, intervals: usize, budget: &mut Budget) {
        fn zip<T, U>(a: &mut [T], b: &[U], f: impl Fn(&mut T, &U)) {
            a.iter_mut().zip(b).for_each(|(a, b)| f(a, b));
        }
        match (self, other) {
            (Cells::Counts(a), Cells::Counts(b)) => zip(a, b, |a, b| *a += b),
            (Cells::Min(a), Cells::Min(b)) => zip(a, b, |a, b| {
                *a = match (*a, *b) {
                    (Some(x), Some(y)) => Some(if y < x { y } else { x }),
                    (x, y) => x.or(y),
                }
            }),
            (Cells::Max(a), Cells::Max(b)) => zip(a, b, |a, b| {
                *a = match (*a, *b) {
                    (Some(x), Some(y)) => Some(if y > x { y } else { x }),
                    (x, y) => x.or(y),
                }
            }),
            (Cells::Totals(a), Cells::Totals(b)) => zip(a, b, |a, b| match (a.as_mut(), b) {
                (Some(a), Some(b)) => a.merge(b),
                (None, Some(b)) => *a = Some(*b),
                _ => {}
            }),
            (Cells::Buckets(a), Cells::Buckets(b)) => {
                for (bucket, counts) in b {
                    match a.get_mut(bucket) {
                        Some(row) => zip(row, counts, |a, b| *a += b),
                        None => {
                            if budget.admit() {
                                let mut row = vec![0; intervals];
                                zip(&mut row, counts, |a, b| *a = *b);
                                a.insert(*bucket, row);
                            }
                        }
                    }
                }
            }
            // Partials of different requests: nothing sensible to add.
            _ => {}
        }
    }
}

fn merge_series(
    mine: &mut BTreeMap<String, SeriesState>,
    key: &str,
    theirs: &SeriesState,
    intervals: usize,
    budget: &mut Budget,
) {
    match mine.get_mut(key) {
        Some(state) => {
            state.cells.merge(&theirs.cells, intervals, budget);
            for e in &theirs.exemplars {
                push_exemplar(&mut state.exemplars, e.clone());
            }
        }
        None => {
            let rows = match &theirs.cells {
                Cells::Buckets(rows) => rows.len().max(1),
                _ => 1,
            };
            if budget.rows.saturating_add(rows) > budget.rows_max {
                budget.truncated = true;
                return;
            }
            budget.rows += rows;
            mine.insert(key.to_string(), theirs.clone());
        }
    }
}

/// Keeps an exemplar unless its series (its histogram bucket, for histograms) already has
/// [`EXEMPLARS_MAX`] of them, or [`EXEMPLARS_PER_INTERVAL_MAX`] in its interval (Tempo's
/// per-series `bucketSet`).
fn push_exemplar(exemplars: &mut Vec<RawExemplar>, e: RawExemplar) -> bool {
    let (mut total, mut same_interval) = (0usize, 0usize);
    for x in exemplars.iter().filter(|x| x.bucket == e.bucket) {
        total += 1;
        same_interval += usize::from(x.interval == e.interval);
    }
    if total >= EXEMPLARS_MAX as usize || same_interval >= EXEMPLARS_PER_INTERVAL_MAX {
        return false;
    }
    exemplars.push(e);
    true
}

/// The frontend's exemplar budget for a whole answer (Tempo's final-layer `bucketSet`, one
/// per query): [`EXEMPLARS_MAX`] in all, [`EXEMPLARS_PER_INTERVAL_MAX`] per interval.
struct ExemplarCap {
    per_interval: Vec<usize>,
    total: usize,
}

impl ExemplarCap {
    fn new(intervals: usize) -> ExemplarCap {
        ExemplarCap {
            per_interval: vec![0; intervals],
            total: 0,
        }
    }

    /// The exemplars of one series that fit, in the order given.
    fn take(&mut self, exemplars: &[RawExemplar]) -> Vec<Exemplar> {
        let mut out = Vec::new();
        for e in exemplars {
            if self.total >= EXEMPLARS_MAX as usize {
                break;
            }
            let Some(n) = self.per_interval.get_mut(e.interval) else {
                continue;
            };
            if *n >= EXEMPLARS_PER_INTERVAL_MAX {
                continue;
            }
            *n += 1;
            self.total += 1;
            out.push(Exemplar {
                labels: e.labels.clone(),
                value: e.value.unwrap_or(f64::NAN),
                timestamp_ms: e.timestamp_ms,
            });
        }
        out
    }
}

/// The final series of a partial, as Tempo's frontend answers them: sorted by
/// `prom_labels`, samples by time (NaN samples left out, series without samples dropped),
/// exemplars by time with the placeholder values filled from their interval's sample.
pub fn finish(request: &MetricsRequest, partial: &Partial) -> Vec<Series> {
    let Some(m) = &request.query.metrics else {
        return Vec::new();
    };
    let grid = request.grid();
    let mut cap = ExemplarCap::new(grid.intervals);
    let mut out = match (&partial.state, &m.function) {
        (State::Series(series), f) => match Op::of(f) {
            Some((op, attr)) => finish_series(m, op, scale_of(attr), series, &grid, &mut cap),
            None => Vec::new(),
        },
        (State::Compare(c), MetricsFunction::Compare { top_n, .. }) => {
            c.finish(*top_n, &grid, &mut cap)
        }
        _ => Vec::new(),
    };
    out.retain(|s| !s.samples.is_empty());
    // Tempo's `sortResponse`, then `attachExemplars`.
    out.sort_by(|a, b| a.prom_labels.cmp(&b.prom_labels));
    out.dedup_by(|a, b| a.prom_labels == b.prom_labels);
    for s in &mut out {
        s.samples.sort_by_key(|x| x.timestamp_ms);
        s.exemplars.sort_by_key(|e| e.timestamp_ms);
        attach_exemplars(&grid, s);
    }
    out
}

fn finish_series(
    m: &MetricsAggregate,
    op: Op,
    scale: f64,
    series: &BTreeMap<String, SeriesState>,
    grid: &Grid,
    cap: &mut ExemplarCap,
) -> Vec<Series> {
    let rate = rate_multiplier(grid.step);
    let mut out = Vec::new();
    for state in series.values() {
        let mut exemplars = state.exemplars.clone();
        exemplars.sort_by_key(|e| e.timestamp_ms);
        match &state.cells {
            Cells::Buckets(rows) if op == Op::Histogram => {
                for (&bits, counts) in rows {
                    let samples = samples(grid, counts.iter().map(|&c| c as f64));
                    if samples.is_empty() {
                        continue;
                    }
                    let mine: Vec<RawExemplar> = exemplars
                        .iter()
                        .filter(|e| e.bucket == Some(bits))
                        .cloned()
                        .collect();
                    let mut labels = state.labels.clone();
                    labels.push(Label {
                        name: "__bucket".to_string(),
                        value: LabelValue::Float(f64::from_bits(bits)),
                    });
                    out.push(series_of(labels, samples, cap.take(&mine)));
                }
            }
            Cells::Buckets(rows) => {
                let MetricsFunction::QuantileOverTime(_, qs) = &m.function else {
                    continue;
                };
                if rows.is_empty() {
                    continue;
                }
                let exemplars = cap.take(&exemplars);
                let mut buckets = Vec::with_capacity(rows.len());
                for q in qs {
                    let values = (0..grid.intervals).map(|i| {
                        buckets.clear();
                        for (&bits, counts) in rows {
                            match counts.get(i) {
                                Some(&c) if c > 0 => buckets.push((f64::from_bits(bits), c)),
                                _ => {}
                            }
                        }
                        log2_quantile(*q, &buckets)
                    });
                    let samples = samples(grid, values);
                    let mut labels = state.labels.clone();
                    labels.push(Label {
                        name: "p".to_string(),
                        value: LabelValue::Float(*q),
                    });
                    out.push(series_of(labels, samples, exemplars.clone()));
                }
            }
            cells => {
                let samples = match cells {
                    Cells::Counts(c) if op == Op::Rate => {
                        samples(grid, c.iter().map(|&c| c as f64 * rate))
                    }
                    Cells::Counts(c) => samples(grid, c.iter().map(|&c| c as f64)),
                    Cells::Min(c) | Cells::Max(c) => {
                        samples(grid, c.iter().map(|v| v.unwrap_or(f64::NAN)))
                    }
                    Cells::Totals(c) if op == Op::Sum => {
                        samples(grid, c.iter().map(|v| v.map_or(f64::NAN, |t| t.sum(scale))))
                    }
                    Cells::Totals(c) => samples(
                        grid,
                        c.iter().map(|v| v.map_or(f64::NAN, |t| t.mean(scale))),
                    ),
                    Cells::Buckets(_) => Vec::new(),
                };
                // A series the raw layer has no samples for never reaches Tempo's frontend,
                // so its exemplars take nothing from the answer's budget.
                if samples.is_empty() {
                    continue;
                }
                let exemplars = cap.take(&exemplars);
                out.push(series_of(state.labels.clone(), samples, exemplars));
            }
        }
    }
    out
}

/// What values of `attr` are divided by: Tempo measures `duration` in seconds.
fn scale_of(attr: Option<&Field>) -> f64 {
    match attr {
        Some(Field::Intrinsic(Intrinsic::Duration)) => NS_PER_SECOND as f64,
        _ => 1.0,
    }
}

/// `1 / time.Duration(step).Seconds()`, the multiplier of Tempo's rate aggregator.
fn rate_multiplier(step_ns: u64) -> f64 {
    let seconds = (step_ns / NS_PER_SECOND) as f64 + (step_ns % NS_PER_SECOND) as f64 / 1e9;
    1.0 / seconds
}

/// `ToProto`: one sample per interval, stamped `TimestampOf(i)` in milliseconds, NaNs left
/// out.
fn samples(grid: &Grid, values: impl Iterator<Item = f64>) -> Vec<Sample> {
    values
        .enumerate()
        .take(grid.intervals)
        .filter(|(_, v)| !v.is_nan())
        .filter_map(|(i, value)| {
            Some(Sample {
                timestamp_ms: grid.timestamp_ms(i)?,
                value,
            })
        })
        .collect()
}

fn series_of(labels: Vec<Label>, samples: Vec<Sample>, exemplars: Vec<Exemplar>) -> Series {
    Series {
        prom_labels: prom_labels(&labels),
        labels,
        samples,
        exemplars,
    }
}

/// Tempo's `attachExemplars`: a placeholder (NaN) exemplar takes the value of the sample in
/// its interval, when there is one.
fn attach_exemplars(grid: &Grid, s: &mut Series) {
    for e in &mut s.exemplars {
        if !e.value.is_nan() {
            continue;
        }
        let Some(interval) = grid.interval_of_ms(e.timestamp_ms) else {
            continue;
        };
        // Samples are in time order, so their intervals ascend: a binary search.
        let of = |x: &Sample| grid.interval_of_ms(x.timestamp_ms).unwrap_or(usize::MAX);
        let j = s.samples.partition_point(|x| of(x) < interval);
        if let Some(x) = s.samples.get(j).filter(|x| of(x) == interval) {
            e.value = x.value;
        }
    }
}

/// A label value as Tempo sends it (`AnyValue`: durations, statuses and kinds as strings).
#[derive(Clone, Debug, PartialEq)]
pub enum LabelValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub name: String,
    pub value: LabelValue,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    pub labels: Vec<Label>,
    pub value: f64,
    pub timestamp_ms: i64,
}

/// One output series (`tempopb.TimeSeries`).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Vec<Label>,
    /// Prometheus' text of the labels, sorted by name: `{resource.service.name="frontend"}`.
    pub prom_labels: String,
    pub samples: Vec<Sample>,
    pub exemplars: Vec<Exemplar>,
}
