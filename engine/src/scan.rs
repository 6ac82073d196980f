//! Search over block pages without rebuilding them (sans-IO): a [`Plan`] compiled from a
//! TraceQL query says which pages can be skipped by their filters (`block::filter`) and,
//! for a page that is read, which of its traces may match, judged from the few columns the
//! query's conditions read. Only those traces are rebuilt and evaluated exactly
//! (`traceql::eval`); the plan never decides a match, it only rules traces out.
//!
//! Soundness (the invariant every rule here keeps): a trace the exact evaluator would
//! return is never ruled out. Conditions are three-valued (true, false, maybe); anything
//! the plan does not model is "maybe". A trace can be stored in parts (in several blocks,
//! or in a block and the WAL), so each trace gets two verdicts:
//! - **strong**: the trace's parts in this page already show every condition of the query
//!   (it is whole here, or it matches anyway);
//! - **weak**: the part here shows at least the conditions one part of any matching trace
//!   must show (one side of `&&` and of structural operators, no counts).
//!
//! A trace passing the strong test is a candidate; one passing only the weak test is a
//! candidate when it is also stored elsewhere (then it is read whole); page filters are
//! checked against the weak conditions.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::block::filter::{self, Fact};
use crate::block::page::{self, Dict, Varints};
use crate::block::{BlockError, PageView};
use crate::traceql::eval::{any_value, kind_from_code, Evaluator, Value};
use crate::traceql::{
    AggregateOp, BinaryOp, Field, FieldExpr, Intrinsic, Kind, Pipeline, PipelineElement, Query,
    ScalarExpr, Scope, SpansetExpr, SpansetOp, Static, Status, UnaryOp,
};

/// Three-valued truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tri {
    False,
    Maybe,
    True,
}

impl Tri {
    fn of(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }

    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::True, Tri::True) => Tri::True,
            _ => Tri::Maybe,
        }
    }

    fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::True, _) | (_, Tri::True) => Tri::True,
            (Tri::False, Tri::False) => Tri::False,
            _ => Tri::Maybe,
        }
    }

    fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Maybe => Tri::Maybe,
        }
    }
}

/// A fact a page must hold, owned (hashed once at compile time).
#[derive(Clone, Debug, PartialEq)]
enum FactKey {
    ResourceAttr(String, String),
    ResourceKey(String),
    SpanAttr(String, String),
    SpanKey(String),
    Name(String),
    Status(u8),
    Kind(u8),
    ServiceStatus(String, u8),
    ServiceName(String, String),
}

impl FactKey {
    fn hash(&self) -> u64 {
        match self {
            FactKey::ResourceAttr(k, v) => Fact::ResourceAttr(k.as_bytes(), v.as_bytes()).hash(),
            FactKey::ResourceKey(k) => Fact::ResourceKey(k.as_bytes()).hash(),
            FactKey::SpanAttr(k, v) => Fact::SpanAttr(k.as_bytes(), v.as_bytes()).hash(),
            FactKey::SpanKey(k) => Fact::SpanKey(k.as_bytes()).hash(),
            FactKey::Name(n) => Fact::Name(n.as_bytes()).hash(),
            FactKey::Status(s) => Fact::Status(*s).hash(),
            FactKey::Kind(k) => Fact::Kind(*k).hash(),
            FactKey::ServiceStatus(s, c) => Fact::ServiceStatus(s.as_bytes(), *c).hash(),
            FactKey::ServiceName(s, n) => Fact::ServiceName(s.as_bytes(), n.as_bytes()).hash(),
        }
    }
}

/// What a page filter must allow for a page to be read.
#[derive(Clone, Debug, PartialEq)]
enum Need {
    Always,
    Fact(FactKey, u64),
    /// An attribute key (the fact: [`FactKey::SpanKey`] or [`FactKey::ResourceKey`]) with an
    /// integer value `op` the static: `span.http.status_code >= 500`.
    Int(FactKey, u64, BinaryOp, i64),
    All(Vec<Need>),
    Any(Vec<Need>),
}

impl Need {
    fn fact(key: FactKey) -> Need {
        let hash = key.hash();
        Need::Fact(key, hash)
    }

    fn all(l: Need, r: Need) -> Need {
        let mut parts = Vec::new();
        for n in [l, r] {
            match n {
                Need::Always => {}
                Need::All(inner) => parts.extend(inner),
                other => parts.push(other),
            }
        }
        // A service with a status or a name: the pair is a fact of its own, far rarer.
        let facts: Vec<FactKey> = parts
            .iter()
            .filter_map(|p| match p {
                Need::Fact(k, _) => Some(k.clone()),
                _ => None,
            })
            .collect();
        for service in facts.iter().filter_map(|f| match f {
            FactKey::ResourceAttr(k, v) if k == "service.name" => Some(v),
            _ => None,
        }) {
            for other in &facts {
                match other {
                    FactKey::Status(s) => {
                        parts.push(Need::fact(FactKey::ServiceStatus(service.clone(), *s)))
                    }
                    FactKey::Name(n) => {
                        parts.push(Need::fact(FactKey::ServiceName(service.clone(), n.clone())))
                    }
                    _ => {}
                }
            }
        }
        match parts.len() {
            0 => Need::Always,
            1 => parts.pop().unwrap_or(Need::Always),
            _ => Need::All(parts),
        }
    }

    fn any(l: Need, r: Need) -> Need {
        if l == Need::Always || r == Need::Always {
            return Need::Always;
        }
        Need::Any(vec![l, r])
    }

    /// The byte strings an encoded trace must hold for the facts to be true of it.
    fn bytes_need(&self) -> BytesNeed {
        match self {
            Need::Always => BytesNeed::Always,
            Need::Fact(key, _) => {
                let needles = match key {
                    FactKey::ResourceAttr(k, v) | FactKey::SpanAttr(k, v) => {
                        vec![framed(TAG_KEY, k), framed(TAG_STRING_VALUE, v)]
                    }
                    FactKey::ServiceName(s, n) => {
                        vec![framed(TAG_STRING_VALUE, s), framed(TAG_SPAN_NAME, n)]
                    }
                    FactKey::ResourceKey(k) | FactKey::SpanKey(k) => vec![framed(TAG_KEY, k)],
                    FactKey::Name(n) => vec![framed(TAG_SPAN_NAME, n)],
                    FactKey::ServiceStatus(s, _) => vec![framed(TAG_STRING_VALUE, s)],
                    FactKey::Status(_) | FactKey::Kind(_) => Vec::new(),
                };
                let needles: Vec<BytesNeed> = needles
                    .into_iter()
                    .flatten()
                    .map(|n| BytesNeed::Bytes(memchr::memmem::Finder::new(&n).into_owned()))
                    .collect();
                match needles.len() {
                    0 => BytesNeed::Always,
                    _ => BytesNeed::All(needles),
                }
            }
            Need::Int(FactKey::SpanKey(k) | FactKey::ResourceKey(k), _, op, value) => {
                match framed(TAG_KEY, k) {
                    Some(key) => BytesNeed::Int {
                        key: memchr::memmem::Finder::new(&key).into_owned(),
                        op: *op,
                        value: *value,
                    },
                    None => BytesNeed::Always,
                }
            }
            Need::Int(..) => BytesNeed::Always,
            Need::All(parts) => BytesNeed::All(parts.iter().map(Need::bytes_need).collect()),
            Need::Any(parts) => BytesNeed::Any(parts.iter().map(Need::bytes_need).collect()),
        }
    }

    fn holds(&self, filter: &[u64]) -> bool {
        match self {
            Need::Always => true,
            Need::Fact(_, hash) | Need::Int(_, hash, ..) => filter::may_contain(filter, *hash),
            Need::All(parts) => parts.iter().all(|p| p.holds(filter)),
            Need::Any(parts) => parts.iter().any(|p| p.holds(filter)),
        }
    }
}

/// Protobuf tags (field number << 3 | 2) of the strings a fact names, as OTLP encodes them:
/// `KeyValue.key` and `AnyValue.string_value` are field 1 of their messages, `Span.name`
/// field 5.
const TAG_KEY: u8 = 0x0a;
const TAG_STRING_VALUE: u8 = 0x0a;
const TAG_SPAN_NAME: u8 = 0x2a;

/// `text` as a protobuf encoder writes it after `tag`: the tag, the length as a varint, the
/// bytes. A span that holds the string holds these bytes, a far rarer pattern than the bare
/// text (`"x"` is in every trace, `0a 01 78` in few). `None` for the empty string, which the
/// check does not look for.
fn framed(tag: u8, text: &str) -> Option<Vec<u8>> {
    if text.is_empty() {
        return None;
    }
    let mut out = vec![tag];
    let mut len = text.len() as u64;
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(text.as_bytes());
    Some(out)
}

/// [`Need`] for encoded bytes: byte strings that must occur, compiled once per query.
#[derive(Clone, Debug)]
enum BytesNeed {
    Always,
    Bytes(memchr::memmem::Finder<'static>),
    /// The framed `key`, followed by an integer `AnyValue` that compares `op value`, or by
    /// anything else (a double, a string, another field order: maybe).
    Int {
        key: memchr::memmem::Finder<'static>,
        op: BinaryOp,
        value: i64,
    },
    All(Vec<BytesNeed>),
    Any(Vec<BytesNeed>),
}

impl BytesNeed {
    fn holds_in(&self, parts: &[&[u8]]) -> bool {
        match self {
            BytesNeed::Always => true,
            BytesNeed::Bytes(finder) => parts.iter().any(|p| finder.find(p).is_some()),
            BytesNeed::Int { key, op, value } => parts.iter().any(|part| {
                let mut from = 0;
                // Every occurrence, overlapping ones too.
                while let Some(at) = part.get(from..).and_then(|rest| key.find(rest)) {
                    let after = from + at + key.needle().len();
                    match part.get(after..).and_then(int_any_value) {
                        Some(v) if !int_compare(*op, v, *value) => {}
                        // Compares true, or is not an integer frame: maybe.
                        _ => return true,
                    }
                    from += at + 1;
                }
                false
            }),
            BytesNeed::All(needs) => needs.iter().all(|n| n.holds_in(parts)),
            BytesNeed::Any(needs) => needs.iter().any(|n| n.holds_in(parts)),
        }
    }
}

/// `KeyValue.value` right after a key, when it is an integer: `12 L 18 varint` with the
/// varint filling the `L - 1` bytes after the `AnyValue.int_value` tag, as protobuf encoders
/// write it. `None` for any other shape.
fn int_any_value(bytes: &[u8]) -> Option<i64> {
    let (&[0x12, len, 0x18], rest) = bytes.split_first_chunk::<3>()? else {
        return None;
    };
    let varint = rest.get(..usize::from(len).checked_sub(1)?)?;
    let mut used = 0;
    let value = crate::block::page::read_varint(varint, &mut used)?;
    // Two's complement, as protobuf encodes an int64.
    (used == varint.len()).then_some(value as i64)
}

fn int_compare(op: BinaryOp, left: i64, right: i64) -> bool {
    match op {
        BinaryOp::Eq => left == right,
        BinaryOp::Neq => left != right,
        BinaryOp::Lt => left < right,
        BinaryOp::Lte => left <= right,
        BinaryOp::Gt => left > right,
        BinaryOp::Gte => left >= right,
        // Not built for other operators.
        _ => true,
    }
}

/// A field read from a page's columns.
#[derive(Clone, Debug, PartialEq)]
enum ColField {
    Span(String),
    Resource(String),
    /// `.name`: the span's attribute, else the resource's.
    Unscoped(String),
    Name,
    Status,
    Kind,
    Duration,
    RootService,
    RootName,
    TraceDuration,
}

/// `field op value` (or `value op field` when `swapped`).
#[derive(Clone, Debug)]
struct Atom {
    field: ColField,
    op: BinaryOp,
    value: Value,
    swapped: bool,
}

/// A span condition over columns.
#[derive(Clone, Debug)]
enum Cond {
    Const(Tri),
    Atom(usize),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

/// A trace condition over the spansets of the query.
#[derive(Clone, Debug)]
enum TraceCond {
    True,
    /// Some span of the trace may pass filter `n`.
    Filter(usize),
    /// At least `min` spans may pass filter `n`.
    Count(usize, u64),
    /// Both; the weak test keeps `weak_left ? left : right`.
    Both(Box<TraceCond>, Box<TraceCond>, bool),
    Either(Box<TraceCond>, Box<TraceCond>),
}

/// One span's columns, as the conditions read them.
#[derive(Clone, Copy, Default)]
struct SpanRow {
    resource: u64,
    name: u64,
    status: u8,
    kind: u8,
    start: u64,
    duration: i64,
    is_root: bool,
    /// Attribute rows `attrs_start..attrs_end` of the page-wide attribute list.
    attrs_start: usize,
    attrs_end: usize,
}

/// A trace of a page that may match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Position in the page.
    pub index: usize,
    /// `false`: only its part here may match; read it whole if it is stored elsewhere.
    pub strong: bool,
}

/// What a page scan found.
#[derive(Debug, Default)]
pub struct PageScan {
    pub candidates: Vec<Candidate>,
    pub spans: u64,
    /// Decompressed bytes of the columns read.
    pub bytes: u64,
}

/// A compiled query for block pages.
pub struct Plan {
    evaluator: Evaluator,
    atoms: Vec<Atom>,
    filters: Vec<Cond>,
    trace: TraceCond,
    page_need: Need,
    payload_need: BytesNeed,
    min_duration_ns: u64,
    max_duration_ns: u64,
}

impl Plan {
    /// `min_duration_ns`/`max_duration_ns`: trace duration bounds (0: none).
    pub fn new(query: &Query, min_duration_ns: u64, max_duration_ns: u64) -> Option<Plan> {
        let evaluator = Evaluator::new(query.clone()).ok()?;
        let mut plan = Plan {
            evaluator,
            atoms: Vec::new(),
            filters: Vec::new(),
            trace: TraceCond::True,
            page_need: Need::Always,
            payload_need: BytesNeed::Always,
            min_duration_ns,
            max_duration_ns,
        };
        let mut needs = Vec::new();
        plan.trace = plan.pipeline(&query.pipeline, &mut needs);
        plan.page_need = weak_need(&plan.trace, &needs);
        plan.payload_need = plan.page_need.bytes_need();
        Some(plan)
    }

    /// Whether a page with this filter may hold a matching trace.
    pub fn page_may_match(&self, filter: &[u64]) -> bool {
        self.page_need.holds(filter)
    }

    /// Whether a trace encoded in `parts` (its OTLP payloads, live or from the WAL) may
    /// match: the strings the query needs must occur in its bytes, framed as protobuf frames
    /// them (tag and length first). Judges before a decode. Assumes the canonical encoding
    /// every protobuf library writes (minimal varint lengths).
    pub fn payload_may_match(&self, parts: &[&[u8]]) -> bool {
        self.payload_need.holds_in(parts)
    }

    /// Whether the plan reads no column (every trace is a candidate).
    pub fn is_trivial(&self) -> bool {
        matches!(self.trace, TraceCond::True)
            && self.min_duration_ns == 0
            && self.max_duration_ns == 0
    }

    fn pipeline(&mut self, p: &Pipeline, needs: &mut Vec<Need>) -> TraceCond {
        let mut elements = p.elements.iter();
        let mut cond = match elements.next() {
            Some(PipelineElement::Spanset(e)) => self.spanset(e, needs),
            _ => return TraceCond::True,
        };
        for element in elements {
            match element {
                PipelineElement::Spanset(SpansetExpr::Filter(e)) => {
                    let next = self.filter(e, needs);
                    cond = TraceCond::Both(Box::new(cond), Box::new(next), true);
                }
                PipelineElement::ScalarFilter(f) => {
                    if let (TraceCond::Filter(n), Some(min)) = (&cond, count_min(f)) {
                        let n = *n;
                        cond = TraceCond::Both(
                            Box::new(cond),
                            Box::new(TraceCond::Count(n, min)),
                            true,
                        );
                    }
                }
                _ => {}
            }
        }
        cond
    }

    fn spanset(&mut self, e: &SpansetExpr, needs: &mut Vec<Need>) -> TraceCond {
        match e {
            SpansetExpr::Filter(f) => self.filter(f, needs),
            SpansetExpr::Pipeline(p) => self.pipeline(p, needs),
            SpansetExpr::Operation { op, lhs, rhs } => {
                let l = self.spanset(lhs, needs);
                let r = self.spanset(rhs, needs);
                match op {
                    SpansetOp::Union => TraceCond::Either(Box::new(l), Box::new(r)),
                    // The right-hand spans that do not stand in the relation.
                    SpansetOp::NotChild
                    | SpansetOp::NotParent
                    | SpansetOp::NotDescendant
                    | SpansetOp::NotAncestor
                    | SpansetOp::NotSibling => r,
                    _ => {
                        let weak_left = !matches!(weak_need(&l, needs), Need::Always)
                            || matches!(weak_need(&r, needs), Need::Always);
                        TraceCond::Both(Box::new(l), Box::new(r), weak_left)
                    }
                }
            }
        }
    }

    fn filter(&mut self, e: &FieldExpr, needs: &mut Vec<Need>) -> TraceCond {
        let cond = self.cond(e);
        self.filters.push(cond);
        needs.push(need(e));
        TraceCond::Filter(self.filters.len() - 1)
    }

    fn cond(&mut self, e: &FieldExpr) -> Cond {
        match e {
            FieldExpr::Static(Static::Bool(b)) => Cond::Const(Tri::of(*b)),
            FieldExpr::Binary { op, lhs, rhs } => match op {
                BinaryOp::And => Cond::And(Box::new(self.cond(lhs)), Box::new(self.cond(rhs))),
                BinaryOp::Or => Cond::Or(Box::new(self.cond(lhs)), Box::new(self.cond(rhs))),
                op if op.is_boolean() => {
                    let (field, value, swapped) = match (&**lhs, &**rhs) {
                        (FieldExpr::Field(f), FieldExpr::Static(s)) => (f, s, false),
                        (FieldExpr::Static(s), FieldExpr::Field(f)) => (f, s, true),
                        _ => return Cond::Const(Tri::Maybe),
                    };
                    let Some(field) = col_field(field) else {
                        return Cond::Const(Tri::Maybe);
                    };
                    self.atoms.push(Atom {
                        field,
                        op: *op,
                        value: Value::from_static(value),
                        swapped,
                    });
                    Cond::Atom(self.atoms.len() - 1)
                }
                _ => Cond::Const(Tri::Maybe),
            },
            FieldExpr::Unary {
                op: UnaryOp::Not,
                expr,
            } => Cond::Not(Box::new(self.cond(expr))),
            _ => Cond::Const(Tri::Maybe),
        }
    }

    /// Judges every trace of a page. Errors are damage in the page.
    pub fn scan(&self, view: &PageView<'_>) -> Result<PageScan, BlockError> {
        let mut scan = PageScan::default();
        let traces = view.trace_count as usize;
        if self.is_trivial() {
            scan.candidates = (0..traces)
                .map(|index| Candidate {
                    index,
                    strong: true,
                })
                .collect();
            return Ok(scan);
        }
        let col = |id: u8, scan: &mut PageScan| -> Result<_, BlockError> {
            let c = view.column(id)?;
            scan.bytes += c.len() as u64;
            Ok(c)
        };
        let form = col(page::TRACE_FORM, &mut scan)?;
        let trace_rs = col(page::TRACE_RS, &mut scan)?;
        let rs_resource = col(page::RS_RESOURCE, &mut scan)?;
        let rs_scopes = col(page::RS_SCOPES, &mut scan)?;
        let ss_spans = col(page::SS_SPANS, &mut scan)?;
        let dict_lens = col(page::DICT_LENS, &mut scan)?;
        let dict_bytes = col(page::DICT_BYTES, &mut scan)?;
        let dict = Dict::decode(&dict_lens, &dict_bytes)?;
        let reads = |f: &dyn Fn(&ColField) -> bool| self.atoms.iter().any(|a| f(&a.field));
        let wants_attrs = reads(&|f| matches!(f, ColField::Span(_) | ColField::Unscoped(_)));
        let wants_name = reads(&|f| matches!(f, ColField::Name | ColField::RootName));
        let wants_times = reads(&|f| matches!(f, ColField::Duration | ColField::TraceDuration))
            || self.min_duration_ns > 0
            || self.max_duration_ns > 0;
        let wants_root = reads(&|f| matches!(f, ColField::RootName | ColField::RootService));
        let columns = SpanColumns::read(
            view,
            SpanWants {
                status: reads(&|f| *f == ColField::Status),
                kind: reads(&|f| *f == ColField::Kind),
                name: wants_name,
                start: wants_times,
                duration: wants_times,
                parent: wants_root,
                attrs: wants_attrs,
            },
            &mut scan.bytes,
        )?;
        let mut span_rows = columns.rows();
        let mut page_ctx = PageCtx::new(self, &dict);
        let mut trace_rs = Varints::new(&trace_rs, page::TRACE_RS);
        let mut rs_resource = Varints::new(&rs_resource, page::RS_RESOURCE);
        let mut rs_scopes = Varints::new(&rs_scopes, page::RS_SCOPES);
        let mut ss_spans = Varints::new(&ss_spans, page::SS_SPANS);
        let mut rows: Vec<SpanRow> = Vec::new();
        let mut attrs: Vec<(u64, u64)> = Vec::new();
        let mut exists = vec![false; self.filters.len()];
        let mut counts = vec![0u64; self.filters.len()];
        for index in 0..traces {
            match form.get(index) {
                Some(0) => {}
                Some(1) => {
                    // Raw traces have no rows: only an exact evaluation can judge them.
                    scan.candidates.push(Candidate {
                        index,
                        strong: true,
                    });
                    continue;
                }
                _ => return Err(BlockError::Malformed("trace form".into())),
            }
            rows.clear();
            attrs.clear();
            for _ in 0..trace_rs.next()? {
                let resource = rs_resource.next()?;
                for _ in 0..rs_scopes.next()? {
                    for _ in 0..ss_spans.next()? {
                        let span = span_rows.next(resource, &mut attrs)?;
                        rows.push(span);
                    }
                }
            }
            scan.spans += rows.len() as u64;
            let trace = TraceInfo::new(&rows);
            exists.fill(false);
            counts.fill(0);
            for span in &rows {
                for (n, cond) in self.filters.iter().enumerate() {
                    let t = page_ctx.eval(self, cond, span, &attrs, &trace, &dict);
                    if t != Tri::False {
                        if let (Some(e), Some(c)) = (exists.get_mut(n), counts.get_mut(n)) {
                            *e = true;
                            *c += 1;
                        }
                    }
                }
            }
            let mut strong = self.judge(&self.trace, &exists, &counts, true);
            // Trace duration bounds judge the strong verdict only (a part's duration says
            // little about the whole).
            if self.min_duration_ns > 0 || self.max_duration_ns > 0 {
                let d = trace.duration_ns.max(0) as u64;
                if (self.min_duration_ns > 0 && d < self.min_duration_ns)
                    || (self.max_duration_ns > 0 && d > self.max_duration_ns)
                {
                    strong = false;
                }
            }
            if strong {
                scan.candidates.push(Candidate {
                    index,
                    strong: true,
                });
            } else if self.judge(&self.trace, &exists, &counts, false) {
                scan.candidates.push(Candidate {
                    index,
                    strong: false,
                });
            }
        }
        Ok(scan)
    }

    fn judge(&self, c: &TraceCond, exists: &[bool], counts: &[u64], strong: bool) -> bool {
        match c {
            TraceCond::True => true,
            TraceCond::Filter(n) => exists.get(*n).copied().unwrap_or(true),
            TraceCond::Count(n, min) => !strong || counts.get(*n).is_none_or(|c| c >= min),
            TraceCond::Both(l, r, weak_left) => {
                if strong {
                    self.judge(l, exists, counts, true) && self.judge(r, exists, counts, true)
                } else if *weak_left {
                    self.judge(l, exists, counts, false)
                } else {
                    self.judge(r, exists, counts, false)
                }
            }
            TraceCond::Either(l, r) => {
                self.judge(l, exists, counts, strong) || self.judge(r, exists, counts, strong)
            }
        }
    }
}

/// Which span columns a scan reads.
#[derive(Clone, Copy, Default)]
struct SpanWants {
    status: bool,
    kind: bool,
    name: bool,
    start: bool,
    duration: bool,
    parent: bool,
    attrs: bool,
}

/// The span columns a scan reads, decompressed ([`SpanWants`]; the others are `None`).
struct SpanColumns<'a> {
    spans: usize,
    status: Option<std::borrow::Cow<'a, [u8]>>,
    kind: Option<std::borrow::Cow<'a, [u8]>>,
    name: Option<std::borrow::Cow<'a, [u8]>>,
    start: Option<std::borrow::Cow<'a, [u8]>>,
    duration: Option<std::borrow::Cow<'a, [u8]>>,
    parent: Option<std::borrow::Cow<'a, [u8]>>,
    attrs: Option<[std::borrow::Cow<'a, [u8]>; 3]>,
}

impl<'a> SpanColumns<'a> {
    /// Decompresses the wanted columns, adding their bytes to `bytes`.
    fn read(view: &PageView<'a>, wants: SpanWants, bytes: &mut u64) -> Result<Self, BlockError> {
        let mut col = |wanted: bool, id: u8| -> Result<_, BlockError> {
            if !wanted {
                return Ok(None);
            }
            let c = view.column(id)?;
            *bytes += c.len() as u64;
            Ok(Some(c))
        };
        let spans = view.span_count as usize;
        let status = col(wants.status, page::SPAN_STATUS)?;
        let kind = col(wants.kind, page::SPAN_KIND)?;
        if status.as_ref().is_some_and(|c| c.len() != spans)
            || kind.as_ref().is_some_and(|c| c.len() != spans)
        {
            return Err(BlockError::Malformed(
                "span status or kind column does not match the span count".into(),
            ));
        }
        let attrs = match (
            col(wants.attrs, page::SPAN_ATTRS)?,
            col(wants.attrs, page::ATTR_KEY)?,
            col(wants.attrs, page::ATTR_VALUE)?,
        ) {
            (Some(counts), Some(keys), Some(values)) => Some([counts, keys, values]),
            _ => None,
        };
        Ok(SpanColumns {
            spans,
            status,
            kind,
            name: col(wants.name, page::SPAN_NAME)?,
            start: col(wants.start, page::SPAN_START)?,
            duration: col(wants.duration, page::SPAN_DURATION)?,
            parent: col(wants.parent, page::SPAN_PARENT)?,
            attrs,
        })
    }

    fn rows(&self) -> SpanRows<'_> {
        fn v<'c>(c: &'c Option<std::borrow::Cow<'_, [u8]>>, id: u8) -> Option<Varints<'c>> {
            c.as_deref().map(|c| Varints::new(c, id))
        }
        SpanRows {
            columns: self,
            row: 0,
            name: v(&self.name, page::SPAN_NAME),
            start: v(&self.start, page::SPAN_START),
            duration: v(&self.duration, page::SPAN_DURATION),
            parent: v(&self.parent, page::SPAN_PARENT),
            attrs: self.attrs.as_ref().map(|[counts, keys, values]| {
                [
                    Varints::new(counts, page::SPAN_ATTRS),
                    Varints::new(keys, page::ATTR_KEY),
                    Varints::new(values, page::ATTR_VALUE),
                ]
            }),
        }
    }
}

/// Span rows in page order, from [`SpanColumns`].
struct SpanRows<'c> {
    columns: &'c SpanColumns<'c>,
    row: usize,
    name: Option<Varints<'c>>,
    start: Option<Varints<'c>>,
    duration: Option<Varints<'c>>,
    parent: Option<Varints<'c>>,
    attrs: Option<[Varints<'c>; 3]>,
}

impl SpanRows<'_> {
    /// The next span row, of resource `resource`; its attribute rows are appended to
    /// `attrs`. `start` is relative to its trace's start. Fields whose columns were not read
    /// keep their defaults.
    fn next(&mut self, resource: u64, attrs: &mut Vec<(u64, u64)>) -> Result<SpanRow, BlockError> {
        let row = self.row;
        self.row += 1;
        if self.row > self.columns.spans {
            return Err(BlockError::Malformed("more span rows than spans".into()));
        }
        let byte =
            |c: &Option<std::borrow::Cow<'_, [u8]>>| c.as_ref().and_then(|c| c.get(row).copied());
        let mut span = SpanRow {
            resource,
            status: byte(&self.columns.status).unwrap_or(page::STATUS_ABSENT),
            kind: byte(&self.columns.kind).unwrap_or(0),
            ..SpanRow::default()
        };
        if let Some(names) = &mut self.name {
            span.name = names.next()?;
        }
        if let Some(starts) = &mut self.start {
            span.start = starts.next()?;
        }
        if let Some(durations) = &mut self.duration {
            span.duration = page::unzigzag(durations.next()?);
        }
        if let Some(parents) = &mut self.parent {
            span.is_root = parents.next()? == 0;
        }
        if let Some([counts, keys, values]) = &mut self.attrs {
            span.attrs_start = attrs.len();
            for _ in 0..counts.next()? {
                attrs.push((keys.next()?, values.next()?));
            }
            span.attrs_end = attrs.len();
        }
        Ok(span)
    }
}

/// What trace-level fields read, computed once per trace.
struct TraceInfo {
    root: Option<SpanRow>,
    duration_ns: i64,
}

impl TraceInfo {
    fn new(rows: &[SpanRow]) -> TraceInfo {
        let start = rows.iter().map(|s| s.start).min().unwrap_or(0);
        let end = rows
            .iter()
            .map(|s| s.start.wrapping_add(s.duration as u64))
            .max()
            .unwrap_or(0);
        TraceInfo {
            root: rows.iter().find(|s| s.is_root).copied(),
            duration_ns: end.wrapping_sub(start) as i64,
        }
    }
}

/// Per-page caches of atom results by dictionary index.
struct PageCtx {
    /// Per atom: `d+1` of its attribute key in this page (`None`: not in the page).
    keys: Vec<Option<u64>>,
    /// Per atom: verdicts by value `d+1` (span attributes, names) or resource `d+1`.
    cache: Vec<HashMap<u64, Verdict>>,
}

/// A cached atom result on one value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The value is nil (an unscoped field then reads the resource).
    Nil,
    Is(Tri),
}

impl PageCtx {
    fn new(plan: &Plan, dict: &Dict<'_>) -> PageCtx {
        let keys = plan
            .atoms
            .iter()
            .map(|a| match &a.field {
                ColField::Span(k) | ColField::Unscoped(k) => dict.find(k.as_bytes()),
                _ => None,
            })
            .collect();
        PageCtx {
            keys,
            cache: vec![HashMap::new(); plan.atoms.len()],
        }
    }

    fn eval(
        &mut self,
        plan: &Plan,
        cond: &Cond,
        span: &SpanRow,
        attrs: &[(u64, u64)],
        trace: &TraceInfo,
        dict: &Dict<'_>,
    ) -> Tri {
        match cond {
            Cond::Const(t) => *t,
            Cond::And(l, r) => {
                let l = self.eval(plan, l, span, attrs, trace, dict);
                if l == Tri::False {
                    return Tri::False;
                }
                l.and(self.eval(plan, r, span, attrs, trace, dict))
            }
            Cond::Or(l, r) => {
                let l = self.eval(plan, l, span, attrs, trace, dict);
                if l == Tri::True {
                    return Tri::True;
                }
                l.or(self.eval(plan, r, span, attrs, trace, dict))
            }
            Cond::Not(e) => self.eval(plan, e, span, attrs, trace, dict).not(),
            Cond::Atom(n) => self.atom(plan, *n, span, attrs, trace, dict),
        }
    }

    fn atom(
        &mut self,
        plan: &Plan,
        n: usize,
        span: &SpanRow,
        attrs: &[(u64, u64)],
        trace: &TraceInfo,
        dict: &Dict<'_>,
    ) -> Tri {
        let Some(atom) = plan.atoms.get(n) else {
            return Tri::Maybe;
        };
        let compare = |v: &Value| -> Tri {
            let result = if atom.swapped {
                plan.evaluator.compare(atom.op, &atom.value, v)
            } else {
                plan.evaluator.compare(atom.op, v, &atom.value)
            };
            Tri::of(matches!(result, Value::Bool(true)))
        };
        match &atom.field {
            ColField::Status => compare(&Value::Status(match span.status {
                1 => Status::Ok,
                2 => Status::Error,
                _ => Status::Unset,
            })),
            ColField::Kind => compare(&Value::Kind(kind_from_code(i32::from(span.kind)))),
            ColField::Duration => compare(&Value::Duration(span.duration)),
            ColField::TraceDuration => compare(&Value::Duration(trace.duration_ns)),
            ColField::Name => self.text(n, span.name, dict, compare),
            ColField::RootName => match &trace.root {
                None => compare(&Value::Nil),
                Some(root) => self.text(n, root.name, dict, compare),
            },
            ColField::RootService => match &trace.root {
                None => compare(&Value::Nil),
                Some(root) => self.resource(n, root.resource, "service.name", dict, compare),
            },
            ColField::Resource(key) => self.resource(n, span.resource, key, dict, compare),
            ColField::Span(_) => match self.span_attr(n, span, attrs, dict, compare) {
                Verdict::Nil => compare(&Value::Nil),
                Verdict::Is(t) => t,
            },
            ColField::Unscoped(key) => match self.span_attr(n, span, attrs, dict, compare) {
                Verdict::Nil => self.resource(n, span.resource, key, dict, compare),
                Verdict::Is(t) => t,
            },
        }
    }

    /// A string column value (`d+1`, 0 = empty), compared once per distinct entry.
    fn text(&mut self, n: usize, d: u64, dict: &Dict<'_>, compare: impl Fn(&Value) -> Tri) -> Tri {
        let Some(cache) = self.cache.get_mut(n) else {
            return Tri::Maybe;
        };
        if let Some(Verdict::Is(t)) = cache.get(&d) {
            return *t;
        }
        let t = match dict.optional(d) {
            Ok(bytes) => match std::str::from_utf8(bytes.unwrap_or_default()) {
                Ok(text) => compare(&Value::Str(text.to_string())),
                Err(_) => Tri::Maybe,
            },
            Err(_) => Tri::Maybe,
        };
        cache.insert(d, Verdict::Is(t));
        t
    }

    /// A resource attribute (first of its key, as the evaluator reads it), once per resource.
    fn resource(
        &mut self,
        n: usize,
        resource: u64,
        key: &str,
        dict: &Dict<'_>,
        compare: impl Fn(&Value) -> Tri,
    ) -> Tri {
        // Resource verdicts live beside value verdicts: keyed by resource d+1 with the top
        // bit set.
        let slot = resource | (1 << 63);
        let Some(cache) = self.cache.get_mut(n) else {
            return Tri::Maybe;
        };
        if let Some(Verdict::Is(t)) = cache.get(&slot) {
            return *t;
        }
        let t = match dict.optional(resource) {
            Ok(None) => compare(&Value::Nil),
            Ok(Some(bytes)) => match Resource::decode(bytes) {
                Ok(r) => compare(
                    &r.attributes
                        .iter()
                        .find(|kv| kv.key == key)
                        .map_or(Value::Nil, |kv| any_value(kv.value.as_ref())),
                ),
                Err(_) => Tri::Maybe,
            },
            Err(_) => Tri::Maybe,
        };
        cache.insert(slot, Verdict::Is(t));
        t
    }

    /// A span attribute: the first row of the atom's key.
    fn span_attr(
        &mut self,
        n: usize,
        span: &SpanRow,
        attrs: &[(u64, u64)],
        dict: &Dict<'_>,
        compare: impl Fn(&Value) -> Tri,
    ) -> Verdict {
        let key = self.keys.get(n).copied().flatten();
        let rows = attrs
            .get(span.attrs_start..span.attrs_end)
            .unwrap_or_default();
        let mut value = None;
        for &(k, v) in rows {
            if k == 0 {
                // A KeyValue of unusual shape, stored whole: it may be this key.
                return Verdict::Is(Tri::Maybe);
            }
            if Some(k) == key {
                value = Some(v);
                break;
            }
        }
        let Some(value) = value else {
            return Verdict::Nil;
        };
        let Some(cache) = self.cache.get_mut(n) else {
            return Verdict::Is(Tri::Maybe);
        };
        if let Some(verdict) = cache.get(&value) {
            return *verdict;
        }
        let verdict = match dict.optional(value) {
            Ok(None) => Verdict::Nil,
            Ok(Some(bytes)) => match AnyValue::decode(bytes) {
                Ok(any) => match any_value(Some(&any)) {
                    Value::Nil => Verdict::Nil,
                    v => Verdict::Is(compare(&v)),
                },
                Err(_) => Verdict::Is(Tri::Maybe),
            },
            Err(_) => Verdict::Is(Tri::Maybe),
        };
        cache.insert(value, verdict);
        verdict
    }
}

/// `count() > n` and friends: the fewest spans a spanset needs.
fn count_min(f: &crate::traceql::ScalarFilter) -> Option<u64> {
    let (ScalarExpr::Aggregate(a), ScalarExpr::Static(Static::Int(n))) = (&f.lhs, &f.rhs) else {
        return None;
    };
    if a.op != AggregateOp::Count {
        return None;
    }
    let n = u64::try_from(*n).ok()?;
    match f.op {
        BinaryOp::Gt => Some(n + 1),
        BinaryOp::Gte | BinaryOp::Eq => Some(n),
        _ => None,
    }
}

fn col_field(f: &Field) -> Option<ColField> {
    match f {
        Field::Attribute(a) if !a.parent => match a.scope {
            Scope::Span => Some(ColField::Span(a.name.clone())),
            Scope::Resource => Some(ColField::Resource(a.name.clone())),
            Scope::None => Some(ColField::Unscoped(a.name.clone())),
            _ => None,
        },
        Field::Intrinsic(i) => match i {
            Intrinsic::Name => Some(ColField::Name),
            Intrinsic::Status => Some(ColField::Status),
            Intrinsic::Kind => Some(ColField::Kind),
            Intrinsic::Duration => Some(ColField::Duration),
            Intrinsic::TraceRootService => Some(ColField::RootService),
            Intrinsic::TraceRootSpan => Some(ColField::RootName),
            Intrinsic::TraceDuration => Some(ColField::TraceDuration),
            _ => None,
        },
        _ => None,
    }
}

/// The facts a page must hold for one of its spans to pass `e`.
fn need(e: &FieldExpr) -> Need {
    match e {
        FieldExpr::Binary { op, lhs, rhs } => match op {
            BinaryOp::And => Need::all(need(lhs), need(rhs)),
            BinaryOp::Or => Need::any(need(lhs), need(rhs)),
            op if op.is_boolean() => {
                let (field, value, op) = match (&**lhs, &**rhs) {
                    (FieldExpr::Field(f), FieldExpr::Static(s)) => (f, s, *op),
                    // `500 <= span.x` is `span.x >= 500`.
                    (FieldExpr::Static(s), FieldExpr::Field(f)) => (f, s, mirrored(*op)),
                    _ => return Need::Always,
                };
                compare_need(op, field, value)
            }
            _ => Need::Always,
        },
        _ => Need::Always,
    }
}

/// The operator with its operands swapped.
fn mirrored(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Lte => BinaryOp::Gte,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Gte => BinaryOp::Lte,
        other => other,
    }
}

fn compare_need(op: BinaryOp, field: &Field, value: &Static) -> Need {
    if *value == Static::Nil {
        return Need::Always;
    }
    match field {
        Field::Attribute(a) if !a.parent => {
            let text = match (op, value) {
                (BinaryOp::Eq, Static::String(s)) => Some(s.clone()),
                _ => None,
            };
            let int = match (op, value) {
                (
                    BinaryOp::Eq
                    | BinaryOp::Neq
                    | BinaryOp::Lt
                    | BinaryOp::Lte
                    | BinaryOp::Gt
                    | BinaryOp::Gte,
                    Static::Int(i),
                ) => Some(*i),
                _ => None,
            };
            let with_int = |key: FactKey| match int {
                Some(i) => {
                    let hash = key.hash();
                    Need::Int(key, hash, op, i)
                }
                None => Need::fact(key),
            };
            let span = || match &text {
                Some(t) => Need::fact(FactKey::SpanAttr(a.name.clone(), t.clone())),
                None => with_int(FactKey::SpanKey(a.name.clone())),
            };
            let resource = || match &text {
                Some(t) => Need::fact(FactKey::ResourceAttr(a.name.clone(), t.clone())),
                None => with_int(FactKey::ResourceKey(a.name.clone())),
            };
            match a.scope {
                Scope::Span => span(),
                Scope::Resource => resource(),
                Scope::None => Need::any(span(), resource()),
                _ => Need::Always,
            }
        }
        Field::Intrinsic(Intrinsic::Name) => match (op, value) {
            (BinaryOp::Eq, Static::String(s)) if !s.is_empty() => {
                Need::fact(FactKey::Name(s.clone()))
            }
            _ => Need::Always,
        },
        Field::Intrinsic(Intrinsic::Status) => match (op, value) {
            (BinaryOp::Eq, Static::Status(s)) => Need::fact(FactKey::Status(match s {
                Status::Unset => 0,
                Status::Ok => 1,
                Status::Error => 2,
            })),
            _ => Need::Always,
        },
        Field::Intrinsic(Intrinsic::Kind) => match (op, value) {
            (BinaryOp::Eq, Static::Kind(k)) => Need::fact(FactKey::Kind(match k {
                Kind::Unspecified => 0,
                Kind::Internal => 1,
                Kind::Server => 2,
                Kind::Client => 3,
                Kind::Producer => 4,
                Kind::Consumer => 5,
            })),
            _ => Need::Always,
        },
        _ => Need::Always,
    }
}

/// The page need of a trace condition's weak test.
fn weak_need(c: &TraceCond, needs: &[Need]) -> Need {
    match c {
        TraceCond::True | TraceCond::Count(..) => Need::Always,
        TraceCond::Filter(n) => needs.get(*n).cloned().unwrap_or(Need::Always),
        TraceCond::Both(l, r, weak_left) => {
            if *weak_left {
                weak_need(l, needs)
            } else {
                weak_need(r, needs)
            }
        }
        TraceCond::Either(l, r) => Need::any(weak_need(l, needs), weak_need(r, needs)),
    }
}

mod corpus;
mod fuzz;
mod metrics;
mod page_tags;
pub use fuzz::fuzz_query;
pub use metrics::{Group, MetricsPage, MetricsScan, Observation};
#[cfg(test)]
mod metrics_tests;
pub use page_tags::{page_tags, PageTags, TagWant};

#[cfg(test)]
mod tests;
