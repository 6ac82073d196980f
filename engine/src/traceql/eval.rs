//! TraceQL evaluation over one whole trace (sans-IO): a decoded trace in, the spansets it
//! yields out. Structural operators need every span of the trace, so a trace is always
//! evaluated whole.
//!
//! Semantics follow Tempo 2.7's engine where it matters for answers:
//! - a filter `{ e }` keeps the spans of each input spanset for which `e` is `true`; an empty
//!   spanset is dropped;
//! - `&&`/`||` between spansets need both/either side non-empty; structural operators return
//!   the right-hand spans that stand in the relation (`&>` and friends add the left-hand spans
//!   that took part; `!>` and friends the right-hand spans that do not);
//! - `count() > 3` keeps a spanset when the scalar holds and names the value `count()`;
//! - `by(e)` splits spansets by the value of `e`; `coalesce()` merges them again;
//! - missing attributes are nil, and any comparison with nil is false;
//! - event- and link-scoped conditions hold when they hold for one event (link) of the span;
//! - `=~` and `!~` are fully anchored (Go RE2 syntax, checked by the validator).

use std::cell::RefCell;
use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span as OtlpSpan};

use super::ast::*;

/// A value computed from a span or a spanset.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    /// Nanoseconds.
    Duration(i64),
    Status(Status),
    Kind(Kind),
}

impl Value {
    pub fn from_static(s: &Static) -> Value {
        match s {
            Static::Nil => Value::Nil,
            Static::Int(i) => Value::Int(*i),
            Static::Float(f) => Value::Float(*f),
            Static::String(s) => Value::Str(s.clone()),
            Static::Bool(b) => Value::Bool(*b),
            Static::Duration(d) => Value::Duration(*d),
            Static::Status(s) => Value::Status(*s),
            Static::Kind(k) => Value::Kind(*k),
        }
    }

    fn from_any(v: Option<&AnyValue>) -> Value {
        match v.and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => Value::Str(s.clone()),
            Some(any_value::Value::IntValue(i)) => Value::Int(*i),
            Some(any_value::Value::DoubleValue(f)) => Value::Float(*f),
            Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
            _ => Value::Nil,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) | Value::Duration(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// Tempo's type name for tag values (`/api/v2/search/tag/{tag}/values`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bool(_) => "bool",
            Value::Duration(_) => "duration",
            Value::Status(_) | Value::Kind(_) => "keyword",
        }
    }

    /// The value as Tempo prints it in tag values and `by()` labels.
    pub fn to_text(&self) -> String {
        match self {
            Value::Nil => "nil".to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_go_float(*f),
            Value::Str(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Duration(d) => format_go_duration(*d),
            Value::Status(s) => s.as_str().to_string(),
            Value::Kind(k) => k.as_str().to_string(),
        }
    }
}

/// The value of an OTLP attribute as text (old-style tag search, v1 tag values).
pub fn any_value_text(v: Option<&AnyValue>) -> Option<String> {
    match Value::from_any(v) {
        Value::Nil => None,
        other => Some(other.to_text()),
    }
}

pub fn any_value(v: Option<&AnyValue>) -> Value {
    Value::from_any(v)
}

/// One span of a trace with what evaluation needs around it.
pub struct SpanRef<'a> {
    pub span: &'a OtlpSpan,
    pub resource: &'a [KeyValue],
    pub scope: Option<&'a InstrumentationScope>,
    pub parent: Option<usize>,
    /// Nested-set numbers (0 when the span is not reachable from a root).
    pub left: u32,
    pub right: u32,
    pub child_count: u32,
}

impl SpanRef<'_> {
    pub fn start_ns(&self) -> u64 {
        self.span.start_time_unix_nano
    }

    pub fn duration_ns(&self) -> u64 {
        self.span
            .end_time_unix_nano
            .saturating_sub(self.span.start_time_unix_nano)
    }

    pub fn service_name(&self) -> Option<&str> {
        self.resource
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(
                |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
                    _ => None,
                },
            )
    }

    pub fn is_error(&self) -> bool {
        self.span.status.as_ref().is_some_and(|s| s.code == 2)
    }
}

/// A whole trace, flattened: spans in arrival order, parents resolved by span ID.
pub struct TraceView<'a> {
    pub spans: Vec<SpanRef<'a>>,
    /// The first span without a parent span ID.
    pub root: Option<usize>,
    pub start_ns: u64,
    pub end_ns: u64,
}

impl<'a> TraceView<'a> {
    pub fn new(batches: &'a [ResourceSpans]) -> TraceView<'a> {
        let mut spans = Vec::new();
        for rs in batches {
            let resource: &[KeyValue] = rs
                .resource
                .as_ref()
                .map_or(&[], |r| r.attributes.as_slice());
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    spans.push(SpanRef {
                        span,
                        resource,
                        scope: ss.scope.as_ref(),
                        parent: None,
                        left: 0,
                        right: 0,
                        child_count: 0,
                    });
                }
            }
        }
        let by_id: HashMap<&[u8], usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span.span_id.as_slice(), i))
            .collect();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
        let mut roots = Vec::new();
        for (i, s) in spans.iter_mut().enumerate() {
            let parent_id = s.span.parent_span_id.as_slice();
            match by_id.get(parent_id) {
                Some(&p) if !parent_id.is_empty() && p != i => {
                    s.parent = Some(p);
                    children[p].push(i);
                }
                _ => roots.push(i),
            }
        }
        // Nested sets by an explicit DFS from the roots (a parent cycle is never reached).
        let mut counter = 0u32;
        for &r in &roots {
            let mut stack = vec![(r, false)];
            while let Some((node, done)) = stack.pop() {
                counter += 1;
                if done {
                    spans[node].right = counter;
                    continue;
                }
                spans[node].left = counter;
                spans[node].child_count = children[node].len() as u32;
                stack.push((node, true));
                for &c in children[node].iter().rev() {
                    stack.push((c, false));
                }
            }
        }
        let root = spans.iter().position(|s| s.span.parent_span_id.is_empty());
        let start_ns = spans.iter().map(|s| s.start_ns()).min().unwrap_or(0);
        let end_ns = spans
            .iter()
            .map(|s| s.span.end_time_unix_nano)
            .max()
            .unwrap_or(0);
        TraceView {
            spans,
            root,
            start_ns,
            end_ns,
        }
    }

    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        let (a, b) = (&self.spans[a], &self.spans[b]);
        a.left > 0 && b.left > 0 && a.left < b.left && b.right < a.right
    }
}

/// A group of spans of one trace, with the values the pipeline attached to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanset {
    /// Indices into [`TraceView::spans`], ascending, unique.
    pub spans: Vec<usize>,
    /// `count()`, `by(...)` labels, in the order they were attached.
    pub attributes: Vec<(String, Value)>,
}

/// What the evaluator refuses (features Tempo parses but does not run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalError(pub String);

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A compiled query, reusable for every trace.
pub struct Evaluator {
    query: Query,
    regexes: RefCell<HashMap<String, Option<regex::Regex>>>,
    /// Fields shown on result spans (the query's fields, `select()` included).
    shown: Vec<Field>,
}

#[derive(Clone, Copy, Default)]
struct Ctx {
    event: Option<usize>,
    link: Option<usize>,
}

impl Evaluator {
    /// Checks that the query is a search this evaluator runs.
    pub fn new(query: Query) -> Result<Evaluator, EvalError> {
        if query.is_metrics() {
            return Err(EvalError(
                "metrics queries are not supported by search; use /api/metrics/query_range"
                    .to_string(),
            ));
        }
        let shown = query
            .fields()
            .into_iter()
            .filter(|f| match f {
                Field::Attribute(_) => true,
                Field::Intrinsic(i) => matches!(
                    i,
                    Intrinsic::Name
                        | Intrinsic::Status
                        | Intrinsic::StatusMessage
                        | Intrinsic::Kind
                        | Intrinsic::EventName
                        | Intrinsic::InstrumentationName
                        | Intrinsic::InstrumentationVersion
                ),
            })
            .collect();
        Ok(Evaluator {
            query,
            regexes: RefCell::new(HashMap::new()),
            shown,
        })
    }

    /// `l op r` exactly as a filter computes it (nil compares false; regexes anchored).
    pub fn compare(&self, op: BinaryOp, l: &Value, r: &Value) -> Value {
        binary(op, l, r, self)
    }

    /// The query this evaluator runs.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The fields shown on result spans: `name` goes to the span's name, the rest become
    /// attributes keyed by attribute name or intrinsic name.
    pub fn shown_fields(&self) -> &[Field] {
        &self.shown
    }

    /// Runs the query on one trace: the spansets it yields (none when it does not match).
    pub fn eval(&self, trace: &TraceView) -> Vec<Spanset> {
        if trace.spans.is_empty() {
            return Vec::new();
        }
        let all = Spanset {
            spans: (0..trace.spans.len()).collect(),
            attributes: Vec::new(),
        };
        self.pipeline(trace, &self.query.pipeline, vec![all])
    }

    /// The value of a field on one span (first event/link for event/link scopes).
    pub fn field_value(&self, trace: &TraceView, span: usize, field: &Field) -> Value {
        let s = &trace.spans[span];
        let needs_event = matches!(field, Field::Attribute(a) if a.scope == Scope::Event)
            || matches!(
                field,
                Field::Intrinsic(Intrinsic::EventName | Intrinsic::EventTimeSinceStart)
            );
        if needs_event {
            for i in 0..s.span.events.len() {
                let v = field_value(
                    trace,
                    span,
                    field,
                    Ctx {
                        event: Some(i),
                        link: None,
                    },
                );
                if !v.is_nil() {
                    return v;
                }
            }
            return Value::Nil;
        }
        let needs_link = matches!(field, Field::Attribute(a) if a.scope == Scope::Link)
            || matches!(
                field,
                Field::Intrinsic(Intrinsic::LinkTraceId | Intrinsic::LinkSpanId)
            );
        if needs_link {
            for i in 0..s.span.links.len() {
                let v = field_value(
                    trace,
                    span,
                    field,
                    Ctx {
                        event: None,
                        link: Some(i),
                    },
                );
                if !v.is_nil() {
                    return v;
                }
            }
            return Value::Nil;
        }
        field_value(trace, span, field, Ctx::default())
    }

    /// Whether the span filter `{ filter }` keeps span `span` of `trace` (what `compare()`
    /// asks of each span). `false` for an index outside the trace.
    pub fn filter_matches(&self, trace: &TraceView, filter: &FieldExpr, span: usize) -> bool {
        span < trace.spans.len() && self.filter_span(trace, filter, span)
    }

    fn pipeline(&self, t: &TraceView, p: &Pipeline, input: Vec<Spanset>) -> Vec<Spanset> {
        let mut sets = input;
        for element in &p.elements {
            if sets.is_empty() {
                break;
            }
            sets = match element {
                PipelineElement::Spanset(expr) => sets
                    .iter()
                    .flat_map(|ss| self.spanset_expr(t, expr, ss))
                    .collect(),
                PipelineElement::ScalarFilter(f) => sets
                    .into_iter()
                    .filter_map(|mut ss| {
                        let lhs = self.scalar(t, &f.lhs, &ss);
                        let rhs = self.scalar(t, &f.rhs, &ss);
                        if !truthy(&binary(f.op, &lhs, &rhs, self)) {
                            return None;
                        }
                        if let ScalarExpr::Aggregate(a) = &f.lhs {
                            ss.attributes.push((a.to_string(), lhs));
                        }
                        Some(ss)
                    })
                    .collect(),
                PipelineElement::GroupBy(e) => {
                    let label = format!("by({e})");
                    let mut out = Vec::new();
                    for ss in sets {
                        let mut groups: Vec<(Value, Vec<usize>)> = Vec::new();
                        for &span in &ss.spans {
                            let v = self.field_expr_any(t, e, span);
                            if v.is_nil() {
                                continue;
                            }
                            match groups.iter_mut().find(|(g, _)| *g == v) {
                                Some((_, spans)) => spans.push(span),
                                None => groups.push((v, vec![span])),
                            }
                        }
                        for (v, spans) in groups {
                            let mut attributes = ss.attributes.clone();
                            attributes.push((label.clone(), v));
                            out.push(Spanset { spans, attributes });
                        }
                    }
                    out
                }
                PipelineElement::Coalesce => {
                    let mut spans: Vec<usize> = sets.iter().flat_map(|s| s.spans.clone()).collect();
                    spans.sort_unstable();
                    spans.dedup();
                    vec![Spanset {
                        spans,
                        attributes: Vec::new(),
                    }]
                }
                PipelineElement::Select(_) | PipelineElement::Aggregate(_) => sets,
            };
        }
        sets
    }

    fn spanset_expr(&self, t: &TraceView, e: &SpansetExpr, input: &Spanset) -> Vec<Spanset> {
        match e {
            SpansetExpr::Filter(f) => {
                let spans: Vec<usize> = input
                    .spans
                    .iter()
                    .copied()
                    .filter(|&s| self.filter_span(t, f, s))
                    .collect();
                if spans.is_empty() {
                    Vec::new()
                } else {
                    vec![Spanset {
                        spans,
                        attributes: input.attributes.clone(),
                    }]
                }
            }
            SpansetExpr::Pipeline(p) => self.pipeline(t, p, vec![input.clone()]),
            SpansetExpr::Operation { op, lhs, rhs } => {
                let l = union(&self.spanset_expr(t, lhs, input));
                let r = union(&self.spanset_expr(t, rhs, input));
                let spans = structural(t, *op, &l, &r);
                if spans.is_empty() {
                    Vec::new()
                } else {
                    vec![Spanset {
                        spans,
                        attributes: input.attributes.clone(),
                    }]
                }
            }
        }
    }

    /// A span filter: true when it holds for the span (for one of its events or links when
    /// the expression reads event or link fields).
    fn filter_span(&self, t: &TraceView, f: &FieldExpr, span: usize) -> bool {
        let s = &t.spans[span];
        let (events, links) = scopes_read(f);
        let event_choices: Vec<Option<usize>> = if events && !s.span.events.is_empty() {
            (0..s.span.events.len()).map(Some).collect()
        } else {
            vec![None]
        };
        let link_choices: Vec<Option<usize>> = if links && !s.span.links.is_empty() {
            (0..s.span.links.len()).map(Some).collect()
        } else {
            vec![None]
        };
        event_choices.iter().any(|&event| {
            link_choices
                .iter()
                .any(|&link| truthy(&self.field_expr(t, f, span, Ctx { event, link })))
        })
    }

    fn field_expr_any(&self, t: &TraceView, e: &FieldExpr, span: usize) -> Value {
        match e {
            FieldExpr::Field(f) => self.field_value(t, span, f),
            other => self.field_expr(t, other, span, Ctx::default()),
        }
    }

    fn field_expr(&self, t: &TraceView, e: &FieldExpr, span: usize, ctx: Ctx) -> Value {
        match e {
            FieldExpr::Static(s) => Value::from_static(s),
            FieldExpr::Field(f) => field_value(t, span, f, ctx),
            FieldExpr::Binary { op, lhs, rhs } => {
                let l = self.field_expr(t, lhs, span, ctx);
                // Short-circuit like Go.
                match (op, &l) {
                    (BinaryOp::And, v) if !truthy(v) => return Value::Bool(false),
                    (BinaryOp::Or, v) if truthy(v) => return Value::Bool(true),
                    _ => {}
                }
                let r = self.field_expr(t, rhs, span, ctx);
                binary(*op, &l, &r, self)
            }
            FieldExpr::Unary { op, expr } => {
                let v = self.field_expr(t, expr, span, ctx);
                match (op, v) {
                    (UnaryOp::Not, Value::Bool(b)) => Value::Bool(!b),
                    (UnaryOp::Neg, Value::Int(i)) => Value::Int(i.wrapping_neg()),
                    (UnaryOp::Neg, Value::Float(f)) => Value::Float(-f),
                    (UnaryOp::Neg, Value::Duration(d)) => Value::Duration(d.wrapping_neg()),
                    _ => Value::Nil,
                }
            }
        }
    }

    fn scalar(&self, t: &TraceView, e: &ScalarExpr, ss: &Spanset) -> Value {
        match e {
            ScalarExpr::Static(s) => Value::from_static(s),
            ScalarExpr::Aggregate(a) => self.aggregate(t, a, &ss.spans),
            ScalarExpr::Operation { op, lhs, rhs } => {
                let l = self.scalar(t, lhs, ss);
                let r = self.scalar(t, rhs, ss);
                binary(*op, &l, &r, self)
            }
            ScalarExpr::Pipeline(p) => {
                let Some((PipelineElement::Aggregate(a), rest)) = p.elements.split_last() else {
                    return Value::Nil;
                };
                let sub = Pipeline {
                    elements: rest.to_vec(),
                };
                let sets = self.pipeline(t, &sub, vec![ss.clone()]);
                self.aggregate(t, a, &union(&sets))
            }
        }
    }

    fn aggregate(&self, t: &TraceView, a: &Aggregate, spans: &[usize]) -> Value {
        let Some(expr) = &a.expr else {
            return Value::Int(spans.len() as i64);
        };
        let values: Vec<Value> = spans
            .iter()
            .map(|&s| self.field_expr_any(t, expr, s))
            .filter(|v| v.as_f64().is_some())
            .collect();
        if values.is_empty() {
            return Value::Nil;
        }
        let is_duration = values.iter().all(|v| matches!(v, Value::Duration(_)));
        let is_int = values.iter().all(|v| matches!(v, Value::Int(_)));
        let nums: Vec<f64> = values.iter().filter_map(Value::as_f64).collect();
        let wrap = |x: f64| {
            if is_duration {
                Value::Duration(x as i64)
            } else if is_int {
                Value::Int(x as i64)
            } else {
                Value::Float(x)
            }
        };
        match a.op {
            AggregateOp::Count => Value::Int(spans.len() as i64),
            AggregateOp::Sum => wrap(nums.iter().sum()),
            AggregateOp::Min => wrap(nums.iter().copied().fold(f64::INFINITY, f64::min)),
            AggregateOp::Max => wrap(nums.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
            AggregateOp::Avg => {
                let avg = nums.iter().sum::<f64>() / nums.len() as f64;
                if is_duration {
                    Value::Duration(avg as i64)
                } else {
                    Value::Float(avg)
                }
            }
        }
    }

    fn regex_match(&self, pattern: &str, text: &str) -> bool {
        let mut cache = self.regexes.borrow_mut();
        let re = cache
            .entry(pattern.to_string())
            .or_insert_with(|| regex::Regex::new(&format!("^(?:{pattern})$")).ok());
        re.as_ref().is_some_and(|re| re.is_match(text))
    }
}

fn scopes_read(e: &FieldExpr) -> (bool, bool) {
    match e {
        FieldExpr::Static(_) => (false, false),
        FieldExpr::Field(f) => (
            matches!(f, Field::Attribute(a) if a.scope == Scope::Event)
                || matches!(
                    f,
                    Field::Intrinsic(Intrinsic::EventName | Intrinsic::EventTimeSinceStart)
                ),
            matches!(f, Field::Attribute(a) if a.scope == Scope::Link)
                || matches!(
                    f,
                    Field::Intrinsic(Intrinsic::LinkTraceId | Intrinsic::LinkSpanId)
                ),
        ),
        FieldExpr::Binary { lhs, rhs, .. } => {
            let (a, b) = scopes_read(lhs);
            let (c, d) = scopes_read(rhs);
            (a || c, b || d)
        }
        FieldExpr::Unary { expr, .. } => scopes_read(expr),
    }
}

fn union(sets: &[Spanset]) -> Vec<usize> {
    let mut spans: Vec<usize> = sets.iter().flat_map(|s| s.spans.iter().copied()).collect();
    spans.sort_unstable();
    spans.dedup();
    spans
}

fn structural(t: &TraceView, op: SpansetOp, l: &[usize], r: &[usize]) -> Vec<usize> {
    use SpansetOp::*;
    let merge = |a: &[usize], b: &[usize]| {
        let mut v: Vec<usize> = a.iter().chain(b).copied().collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    match op {
        And => {
            if l.is_empty() || r.is_empty() {
                Vec::new()
            } else {
                merge(l, r)
            }
        }
        Union => merge(l, r),
        _ => {
            // `related(x, y)`: x (left) and y (right) stand in the relation.
            let related = |x: usize, y: usize| -> bool {
                match op {
                    Child | NotChild | UnionChild => t.spans[y].parent == Some(x),
                    Parent | NotParent | UnionParent => t.spans[x].parent == Some(y),
                    Descendant | NotDescendant | UnionDescendant => t.is_ancestor(x, y),
                    Ancestor | NotAncestor | UnionAncestor => t.is_ancestor(y, x),
                    Sibling | NotSibling | UnionSibling => {
                        x != y
                            && t.spans[x].parent.is_some()
                            && t.spans[x].parent == t.spans[y].parent
                    }
                    And | Union => false,
                }
            };
            match op {
                NotChild | NotParent | NotDescendant | NotAncestor | NotSibling => r
                    .iter()
                    .copied()
                    .filter(|&y| !l.iter().any(|&x| related(x, y)))
                    .collect(),
                UnionChild | UnionParent | UnionDescendant | UnionAncestor | UnionSibling => {
                    let rs: Vec<usize> = r
                        .iter()
                        .copied()
                        .filter(|&y| l.iter().any(|&x| related(x, y)))
                        .collect();
                    let ls: Vec<usize> = l
                        .iter()
                        .copied()
                        .filter(|&x| r.iter().any(|&y| related(x, y)))
                        .collect();
                    merge(&ls, &rs)
                }
                _ => r
                    .iter()
                    .copied()
                    .filter(|&y| l.iter().any(|&x| related(x, y)))
                    .collect(),
            }
        }
    }
}

fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true))
}

fn binary(op: BinaryOp, l: &Value, r: &Value, ev: &Evaluator) -> Value {
    use std::cmp::Ordering;
    use BinaryOp::*;
    match op {
        And => Value::Bool(truthy(l) && truthy(r)),
        Or => Value::Bool(truthy(l) || truthy(r)),
        Regex | NotRegex => match (l, r) {
            (Value::Str(text), Value::Str(pattern)) => {
                let m = ev.regex_match(pattern, text);
                Value::Bool(if op == Regex { m } else { !m })
            }
            _ => Value::Bool(false),
        },
        Eq | Neq | Lt | Lte | Gt | Gte => {
            let ordering: Option<Ordering> = match (l, r) {
                (Value::Nil, _) | (_, Value::Nil) => None,
                (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
                (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
                (Value::Bool(a), Value::Bool(b)) if matches!(op, Eq | Neq) => Some(a.cmp(b)),
                (Value::Status(a), Value::Status(b)) if matches!(op, Eq | Neq) => Some(if a == b {
                    Ordering::Equal
                } else {
                    Ordering::Less
                }),
                (Value::Kind(a), Value::Kind(b)) if matches!(op, Eq | Neq) => Some(if a == b {
                    Ordering::Equal
                } else {
                    Ordering::Less
                }),
                (a, b) => match (a.as_f64(), b.as_f64()) {
                    (Some(x), Some(y)) => x.partial_cmp(&y),
                    _ => None,
                },
            };
            let Some(o) = ordering else {
                return Value::Bool(false);
            };
            Value::Bool(match op {
                Eq => o == Ordering::Equal,
                Neq => o != Ordering::Equal,
                Lt => o == Ordering::Less,
                Lte => o != Ordering::Greater,
                Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            })
        }
        Add | Sub | Mul | Div | Mod | Pow => {
            let kind_of = |v: &Value| match v {
                Value::Int(_) => 0,
                Value::Duration(_) => 1,
                _ => 2,
            };
            let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) else {
                return Value::Nil;
            };
            let x = match op {
                Add => a + b,
                Sub => a - b,
                Mul => a * b,
                Div => {
                    if b == 0.0 {
                        return Value::Nil;
                    }
                    a / b
                }
                Mod => {
                    if b == 0.0 {
                        return Value::Nil;
                    }
                    a % b
                }
                _ => a.powf(b),
            };
            match (kind_of(l), kind_of(r), op) {
                (0, 0, Add | Sub | Mul | Mod) => Value::Int(x as i64),
                (1, _, Add | Sub | Mul | Div | Mod) | (_, 1, Add | Sub | Mul) => {
                    Value::Duration(x as i64)
                }
                _ => Value::Float(x),
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn find_attr(attrs: &[KeyValue], name: &str) -> Value {
    attrs
        .iter()
        .find(|kv| kv.key == name)
        .map_or(Value::Nil, |kv| Value::from_any(kv.value.as_ref()))
}

fn status_of(span: &OtlpSpan) -> Status {
    match span.status.as_ref().map_or(0, |s| s.code) {
        1 => Status::Ok,
        2 => Status::Error,
        _ => Status::Unset,
    }
}

fn kind_of(span: &OtlpSpan) -> Kind {
    kind_from_code(span.kind)
}

/// TraceQL's kind of an OTLP `Span.kind` (unknown values are unspecified).
pub(crate) fn kind_from_code(code: i32) -> Kind {
    match code {
        1 => Kind::Internal,
        2 => Kind::Server,
        3 => Kind::Client,
        4 => Kind::Producer,
        5 => Kind::Consumer,
        _ => Kind::Unspecified,
    }
}

fn field_value(t: &TraceView, span: usize, f: &Field, ctx: Ctx) -> Value {
    let s = &t.spans[span];
    let event = ctx.event.and_then(|i| s.span.events.get(i));
    let link = ctx.link.and_then(|i| s.span.links.get(i));
    match f {
        Field::Attribute(a) => {
            if a.parent {
                return Value::Nil;
            }
            match a.scope {
                Scope::Span => find_attr(&s.span.attributes, &a.name),
                Scope::Resource => find_attr(s.resource, &a.name),
                Scope::None => match find_attr(&s.span.attributes, &a.name) {
                    Value::Nil => find_attr(s.resource, &a.name),
                    v => v,
                },
                Scope::Event => event.map_or(Value::Nil, |e| find_attr(&e.attributes, &a.name)),
                Scope::Link => link.map_or(Value::Nil, |l| find_attr(&l.attributes, &a.name)),
                Scope::Instrumentation => s
                    .scope
                    .map_or(Value::Nil, |sc| find_attr(&sc.attributes, &a.name)),
            }
        }
        Field::Intrinsic(i) => match i {
            Intrinsic::Duration => Value::Duration(s.duration_ns() as i64),
            Intrinsic::ChildCount => Value::Int(i64::from(s.child_count)),
            Intrinsic::Name => Value::Str(s.span.name.clone()),
            Intrinsic::Status => Value::Status(status_of(s.span)),
            Intrinsic::StatusMessage => Value::Str(
                s.span
                    .status
                    .as_ref()
                    .map(|st| st.message.clone())
                    .unwrap_or_default(),
            ),
            Intrinsic::Kind => Value::Kind(kind_of(s.span)),
            Intrinsic::Parent => Value::Nil,
            Intrinsic::TraceRootSpan => t
                .root
                .map_or(Value::Nil, |r| Value::Str(t.spans[r].span.name.clone())),
            Intrinsic::TraceRootService => t.root.map_or(Value::Nil, |r| {
                t.spans[r]
                    .service_name()
                    .map_or(Value::Nil, |n| Value::Str(n.to_string()))
            }),
            Intrinsic::TraceDuration => Value::Duration(t.end_ns.saturating_sub(t.start_ns) as i64),
            Intrinsic::NestedSetLeft => Value::Int(i64::from(s.left)),
            Intrinsic::NestedSetRight => Value::Int(i64::from(s.right)),
            Intrinsic::NestedSetParent => {
                Value::Int(s.parent.map_or(-1, |p| i64::from(t.spans[p].left)))
            }
            Intrinsic::TraceId => Value::Str(hex(&s.span.trace_id)),
            Intrinsic::SpanId => Value::Str(hex(&s.span.span_id)),
            Intrinsic::EventName => event.map_or(Value::Nil, |e| Value::Str(e.name.clone())),
            Intrinsic::EventTimeSinceStart => event.map_or(Value::Nil, |e| {
                Value::Duration(e.time_unix_nano.saturating_sub(s.start_ns()) as i64)
            }),
            Intrinsic::LinkTraceId => link.map_or(Value::Nil, |l| Value::Str(hex(&l.trace_id))),
            Intrinsic::LinkSpanId => link.map_or(Value::Nil, |l| Value::Str(hex(&l.span_id))),
            Intrinsic::InstrumentationName => {
                s.scope.map_or(Value::Nil, |sc| Value::Str(sc.name.clone()))
            }
            Intrinsic::InstrumentationVersion => s
                .scope
                .map_or(Value::Nil, |sc| Value::Str(sc.version.clone())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::compile;
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Status as OtlpStatus};

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: k.to_string(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn span(id: u8, parent: u8, name: &str, dur_ms: u64, error: bool, code: i64) -> OtlpSpan {
        OtlpSpan {
            trace_id: vec![1; 16],
            span_id: vec![id; 8],
            parent_span_id: if parent == 0 { vec![] } else { vec![parent; 8] },
            name: name.to_string(),
            start_time_unix_nano: 1_000_000_000 + u64::from(id),
            end_time_unix_nano: 1_000_000_000 + u64::from(id) + dur_ms * 1_000_000,
            attributes: vec![kv("http.status_code", any_value::Value::IntValue(code))],
            status: Some(OtlpStatus {
                code: if error { 2 } else { 0 },
                message: String::new(),
            }),
            ..Default::default()
        }
    }

    /// frontend: 1 (root) -> 2 -> 3 (payments, error), 1 -> 4
    fn trace() -> Vec<ResourceSpans> {
        let rs = |svc: &str, spans: Vec<OtlpSpan>| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv(
                    "service.name",
                    any_value::Value::StringValue(svc.to_string()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        };
        vec![
            rs(
                "frontend",
                vec![
                    span(1, 0, "GET /", 100, false, 200),
                    span(4, 1, "render", 5, false, 200),
                ],
            ),
            rs("checkout", vec![span(2, 1, "checkout", 50, false, 200)]),
            rs("payments", vec![span(3, 2, "charge", 3, true, 500)]),
        ]
    }

    /// The span IDs (first byte) of each resulting spanset.
    fn check(query: &str, expected: &[&[u8]]) {
        let q = compile(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        let batches = trace();
        let view = TraceView::new(&batches);
        let ev = Evaluator::new(q).expect("evaluates");
        let got: Vec<Vec<u8>> = ev
            .eval(&view)
            .iter()
            .map(|ss| {
                let mut ids: Vec<u8> = ss
                    .spans
                    .iter()
                    .map(|&i| view.spans[i].span.span_id[0])
                    .collect();
                ids.sort_unstable();
                ids
            })
            .collect();
        let expected: Vec<Vec<u8>> = expected.iter().map(|e| e.to_vec()).collect();
        assert_eq!(got, expected, "{query}");
    }

    #[test]
    fn filters() {
        check("{}", &[&[1, 2, 3, 4]]);
        check("{ status = error }", &[&[3]]);
        check("{ resource.service.name = \"frontend\" }", &[&[1, 4]]);
        check("{ .service.name = \"payments\" }", &[&[3]]);
        check("{ span.http.status_code >= 500 }", &[&[3]]);
        check("{ duration > 40ms }", &[&[1, 2]]);
        check("{ name =~ \"GET.*\" }", &[&[1]]);
        check("{ name =~ \"GET\" }", &[]);
        check("{ name !~ \"c.*\" }", &[&[1, 4]]);
        check(
            "{ rootServiceName = \"frontend\" && kind = unspecified }",
            &[&[1, 2, 3, 4]],
        );
        check("{ .missing != 1 }", &[]);
        check("{ traceDuration > 90ms }", &[&[1, 2, 3, 4]]);
    }

    #[test]
    fn structural() {
        check(
            "{ resource.service.name = \"frontend\" } >> { status = error }",
            &[&[3]],
        );
        check(
            "{ resource.service.name = \"frontend\" } > { status = error }",
            &[],
        );
        check("{ resource.service.name = \"frontend\" } > { }", &[&[2, 4]]);
        check("{ status = error } < { }", &[&[2]]);
        check("{ status = error } << { }", &[&[1, 2]]);
        check("{ name = \"checkout\" } ~ { }", &[&[4]]);
        check("{ name = \"GET /\" } !> { }", &[&[1, 3]]);
        check("{ name = \"GET /\" } &> { name = \"render\" }", &[&[1, 4]]);
        check("{ status = error } && { name = \"render\" }", &[&[3, 4]]);
        check("{ status = error } && { name = \"nope\" }", &[]);
        check("{ status = error } || { name = \"nope\" }", &[&[3]]);
    }

    #[test]
    fn aggregates_and_grouping() {
        check("{} | count() > 3", &[&[1, 2, 3, 4]]);
        check("{} | count() > 4", &[]);
        check("{} | avg(duration) > 30ms", &[&[1, 2, 3, 4]]);
        check("{} | max(span.http.status_code) = 500", &[&[1, 2, 3, 4]]);
        check("{} | by(resource.service.name)", &[&[1, 4], &[2], &[3]]);
        check("{} | by(resource.service.name) | count() > 1", &[&[1, 4]]);
        check(
            "{} | by(resource.service.name) | coalesce()",
            &[&[1, 2, 3, 4]],
        );
        check(
            "({ status = error } | count() > 0) && ({ name = \"render\" })",
            &[&[3, 4]],
        );
        check("{ } | select(name)", &[&[1, 2, 3, 4]]);
    }

    /// Every valid query of Tempo's examples runs on a trace without panicking.
    #[test]
    fn tempo_examples_evaluate() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/traceql/test_examples.yaml"
        );
        let text = std::fs::read_to_string(path).expect("the TraceQL corpus");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("parses");
        let batches = trace();
        let view = TraceView::new(&batches);
        let mut evaluated = 0;
        for q in doc
            .get("valid")
            .and_then(|v| v.as_sequence())
            .expect("valid queries")
            .iter()
            .filter_map(|q| q.as_str())
        {
            let Ok(query) = compile(q) else { continue };
            if let Ok(ev) = Evaluator::new(query) {
                let sets = ev.eval(&view);
                for ss in &sets {
                    assert!(ss.spans.windows(2).all(|w| w[0] < w[1]), "{q}");
                    for &span in &ss.spans {
                        for field in ev.shown_fields() {
                            let _ = ev.field_value(&view, span, field);
                        }
                    }
                }
                evaluated += 1;
            }
        }
        assert!(evaluated > 50, "only {evaluated} queries evaluated");
    }

    #[test]
    fn aggregate_value_is_attached() {
        let q = compile("{} | count() > 3").expect("compiles");
        let batches = trace();
        let view = TraceView::new(&batches);
        let sets = Evaluator::new(q).expect("ok").eval(&view);
        assert_eq!(
            sets[0].attributes,
            vec![("count()".to_string(), Value::Int(4))]
        );
    }
}
