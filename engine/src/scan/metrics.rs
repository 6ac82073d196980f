//! TraceQL metrics from a page's columns, without rebuilding its traces: for a query whose
//! spanset part is one filter on span-local fields (`{ status = error } | rate() by
//! (resource.service.name)`), each span's verdict, start, grouping values and measured value
//! are read from the columns the query names, and spans are grouped by the dictionary codes
//! of their grouping values (a value is decoded once per distinct code, not per span).
//!
//! Soundness: a span is counted here only when the filter's verdict on it is exact (true);
//! a trace with a span the columns cannot judge ("maybe"), and a trace stored raw, is left
//! to the exact path ([`MetricsPage::exact`]: rebuild, decode, evaluate). Fields that depend
//! on the whole trace (root name and service, trace duration) or on events, links, scopes
//! and parents are not taken: a query reading them is not a [`MetricsScan`].

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::{ColField, Cond, PageCtx, Plan, SpanColumns, SpanRow, SpanWants, TraceInfo, Tri};
use crate::block::page::{self, Dict, Varints};
use crate::block::{BlockError, PageView};
use crate::traceql::eval::{any_value, kind_from_code, Value};
use crate::traceql::{Field, MetricsFunction, PipelineElement, Query, SpansetExpr, Status};

/// A metrics query that page columns answer span by span.
pub struct MetricsScan {
    plan: Plan,
    by: Vec<ColField>,
    /// The function's attribute (`min_over_time(duration)`), if it has one.
    value: Option<ColField>,
}

/// One counted span.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// Position of its trace in the page.
    pub trace: u32,
    pub start_ns: u64,
    /// The function's attribute on the span: `Nil`, `Int`, `Float` or `Duration` (strings
    /// and booleans are `Nil`, as Tempo's metrics read no number from them).
    pub value: Value,
}

/// Spans with the same grouping values.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// One value per `by(...)` field (`Nil` when the span has none).
    pub by: Vec<Value>,
    pub observations: Vec<Observation>,
}

/// What a page gave.
#[derive(Debug, Default)]
pub struct MetricsPage {
    pub groups: Vec<Group>,
    /// Traces (positions in the page) the columns could not judge: evaluate them exactly.
    pub exact: Vec<usize>,
    /// Span rows read.
    pub spans: u64,
    /// Decompressed bytes of the columns read.
    pub bytes: u64,
}

/// Grouping values of a span as codes (dictionary `d+1`, enum values), before decoding.
type Codes = [u64; CODES_MAX];
/// Tempo's `maxGroupBys`.
const CODES_MAX: usize = 5;

impl MetricsScan {
    /// `None` when the columns cannot answer the query span by span (the exact path then
    /// reads every trace).
    pub fn new(query: &Query) -> Option<MetricsScan> {
        let metrics = query.metrics.as_ref()?;
        let value = match &metrics.function {
            MetricsFunction::Rate | MetricsFunction::CountOverTime => None,
            MetricsFunction::MinOverTime(f)
            | MetricsFunction::MaxOverTime(f)
            | MetricsFunction::AvgOverTime(f)
            | MetricsFunction::SumOverTime(f)
            | MetricsFunction::QuantileOverTime(f, _)
            | MetricsFunction::HistogramOverTime(f) => Some(value_field(f)?),
            // Needs every attribute of every span.
            MetricsFunction::Compare { .. } => return None,
        };
        if metrics.by.len() > CODES_MAX {
            return None;
        }
        let by = metrics
            .by
            .iter()
            .map(value_field)
            .collect::<Option<Vec<ColField>>>()?;
        // One filter: each span is judged on its own.
        let [PipelineElement::Spanset(SpansetExpr::Filter(_))] = query.pipeline.elements.as_slice()
        else {
            return None;
        };
        let mut spanset = query.clone();
        spanset.metrics = None;
        let plan = Plan::new(&spanset, 0, 0)?;
        // Conditions the columns do not model would send every trace to the exact path.
        if plan.atoms.iter().any(|a| !span_local(&a.field))
            || plan.filters.len() != 1
            || plan.filters.iter().any(models_nothing)
        {
            return None;
        }
        Some(MetricsScan { plan, by, value })
    }

    /// Whether a page with this filter may hold a span the query counts.
    pub fn page_may_match(&self, filter: &[u64]) -> bool {
        self.plan.page_may_match(filter)
    }

    /// Reads the spans of `view` that pass the filter and start in `[start_ns, end_ns)`.
    /// `skip(position)`: a trace counted elsewhere (it is in memory or the WAL).
    pub fn scan(
        &self,
        view: &PageView<'_>,
        start_ns: u64,
        end_ns: u64,
        skip: &dyn Fn(usize) -> bool,
    ) -> Result<MetricsPage, BlockError> {
        let mut out = MetricsPage::default();
        let col = |id: u8, out: &mut MetricsPage| -> Result<_, BlockError> {
            let c = view.column(id)?;
            out.bytes += c.len() as u64;
            Ok(c)
        };
        let reads = |f: &dyn Fn(&ColField) -> bool| {
            self.plan.atoms.iter().any(|a| f(&a.field))
                || self.by.iter().any(f)
                || self.value.iter().any(f)
        };
        let traces = view.trace_count as usize;
        let form = col(page::TRACE_FORM, &mut out)?;
        let trace_start = col(page::TRACE_START, &mut out)?;
        let trace_rs = col(page::TRACE_RS, &mut out)?;
        // The resource and the dictionary are read only when a field needs them: `{ } |
        // rate()` reads counts and starts only.
        let wants_resource = reads(&|f| matches!(f, ColField::Resource(_) | ColField::Unscoped(_)));
        let wants_dict =
            wants_resource || reads(&|f| matches!(f, ColField::Name | ColField::Span(_)));
        let rs_resource = if wants_resource {
            Some(col(page::RS_RESOURCE, &mut out)?)
        } else {
            None
        };
        // `service.name` from `RS_SERVICE` where the page builder found it unambiguous.
        let wants_service = reads(
            &|f| matches!(f, ColField::Resource(k) | ColField::Unscoped(k) if k == SERVICE_NAME),
        );
        let rs_service = if wants_service {
            Some(col(page::RS_SERVICE, &mut out)?)
        } else {
            None
        };
        let rs_scopes = col(page::RS_SCOPES, &mut out)?;
        let ss_spans = col(page::SS_SPANS, &mut out)?;
        let (dict_lens, dict_bytes) = if wants_dict {
            (
                col(page::DICT_LENS, &mut out)?,
                col(page::DICT_BYTES, &mut out)?,
            )
        } else {
            (Default::default(), Default::default())
        };
        let dict = Dict::decode(&dict_lens, &dict_bytes)?;
        let columns = SpanColumns::read(
            view,
            SpanWants {
                status: reads(&|f| *f == ColField::Status),
                kind: reads(&|f| *f == ColField::Kind),
                name: reads(&|f| *f == ColField::Name),
                start: true,
                duration: reads(&|f| *f == ColField::Duration),
                parent: false,
                attrs: reads(&|f| matches!(f, ColField::Span(_) | ColField::Unscoped(_))),
            },
            &mut out.bytes,
        )?;
        let mut span_rows = columns.rows();
        let mut trace_start = Varints::new(&trace_start, page::TRACE_START);
        let mut trace_rs = Varints::new(&trace_rs, page::TRACE_RS);
        let mut rs_resource = rs_resource
            .as_ref()
            .map(|c| Varints::new(c, page::RS_RESOURCE));
        let mut rs_service = rs_service
            .as_ref()
            .map(|c| Varints::new(c, page::RS_SERVICE));
        let mut rs_scopes = Varints::new(&rs_scopes, page::RS_SCOPES);
        let mut ss_spans = Varints::new(&ss_spans, page::SS_SPANS);

        let mut ctx = PageCtx::new(&self.plan, &dict);
        let mut values = Values::new(self, &dict);
        let filter = self.plan.filters.first();
        let mut groups: crate::hash::IdMap<Codes, usize> = Default::default();
        let mut last_group: Option<(Codes, usize)> = None;
        let mut previous_start = 0u64;
        // This trace's resource rows and their resource-level grouping codes.
        let mut rs_codes: Vec<(u64, [Option<u64>; CODES_MAX])> = Vec::new();
        let mut rows: Vec<SpanRow> = Vec::new();
        let mut attrs: Vec<(u64, u64)> = Vec::new();
        // This trace's counted spans, kept until the trace is judged whole.
        let mut counted: Vec<(Codes, Observation)> = Vec::new();
        for index in 0..traces {
            match form.get(index) {
                Some(0) => {}
                Some(1) => {
                    // Raw traces have no rows.
                    if !skip(index) {
                        out.exact.push(index);
                    }
                    continue;
                }
                _ => return Err(BlockError::Malformed("trace form".into())),
            }
            let delta = page::unzigzag(trace_start.next()?);
            let start = previous_start.wrapping_add(delta as u64);
            previous_start = start;
            rows.clear();
            attrs.clear();
            rs_codes.clear();
            for _ in 0..trace_rs.next()? {
                let resource = match &mut rs_resource {
                    Some(r) => r.next()?,
                    None => 0,
                };
                let service = match &mut rs_service {
                    Some(r) => r.next()?,
                    None => 0,
                };
                // Resource-level grouping codes, once per resource row.
                let mut codes = [None::<u64>; CODES_MAX];
                for (field, code) in self.by.iter().zip(codes.iter_mut()) {
                    if let ColField::Resource(key) | ColField::Unscoped(key) = field {
                        *code = if service != 0 && key == SERVICE_NAME {
                            Some(service | SERVICE_CODE)
                        } else {
                            values.resource_code(key, resource)
                        };
                    }
                }
                rs_codes.push((resource, codes));
                for _ in 0..rs_scopes.next()? {
                    for _ in 0..ss_spans.next()? {
                        let mut span = span_rows.next(resource, &mut attrs)?;
                        span.start = start.wrapping_add(span.start);
                        rows.push(span);
                    }
                }
            }
            out.spans += rows.len() as u64;
            if skip(index) {
                continue;
            }
            let info = TraceInfo::new(&rows);
            counted.clear();
            let mut exact = false;
            for span in &rows {
                let verdict = match filter {
                    Some(cond) => ctx.eval(&self.plan, cond, span, &attrs, &info, &dict),
                    None => Tri::True,
                };
                match verdict {
                    Tri::False => continue,
                    Tri::Maybe => {
                        exact = true;
                        break;
                    }
                    Tri::True => {}
                }
                if span.start < start_ns || span.start >= end_ns {
                    continue;
                }
                let span_rs = rs_codes
                    .iter()
                    .find(|(r, _)| *r == span.resource)
                    .map(|(_, c)| *c)
                    .unwrap_or_default();
                let mut codes = [0u64; CODES_MAX];
                for ((code, field), rs_code) in codes.iter_mut().zip(&self.by).zip(&span_rs) {
                    let c = match field {
                        ColField::Resource(_) => *rs_code,
                        ColField::Unscoped(key) => {
                            values.unscoped_code(key, span, &attrs, *rs_code)
                        }
                        _ => values.code(field, span, &attrs),
                    };
                    match c {
                        Some(c) => *code = c,
                        None => {
                            exact = true;
                            break;
                        }
                    }
                }
                if exact {
                    break;
                }
                let value = match &self.value {
                    None => Value::Nil,
                    Some(field) => match values.number(field, span, &attrs) {
                        Some(v) => v,
                        None => {
                            exact = true;
                            break;
                        }
                    },
                };
                counted.push((
                    codes,
                    Observation {
                        trace: index as u32,
                        start_ns: span.start,
                        value,
                    },
                ));
            }
            if exact {
                out.exact.push(index);
                continue;
            }
            for (codes, observation) in counted.drain(..) {
                // Element by element: `==` on the array calls memcmp.
                let cached = last_group
                    .filter(|(c, _)| c.iter().zip(&codes).all(|(a, b)| a == b))
                    .map(|(_, g)| g);
                let group = match cached.or_else(|| groups.get(&codes).copied()) {
                    Some(g) => g,
                    None => {
                        let by = self
                            .by
                            .iter()
                            .zip(codes)
                            .map(|(field, code)| values.value(field, code))
                            .collect::<Option<Vec<Value>>>()
                            .ok_or_else(|| {
                                BlockError::Malformed("a grouping value does not decode".into())
                            })?;
                        out.groups.push(Group {
                            by,
                            observations: Vec::new(),
                        });
                        groups.insert(codes, out.groups.len() - 1);
                        out.groups.len() - 1
                    }
                };
                last_group = Some((codes, group));
                if let Some(g) = out.groups.get_mut(group) {
                    g.observations.push(observation);
                }
            }
        }
        Ok(out)
    }
}

/// Reads grouping and measured values, decoding each distinct code once.
struct Values<'d> {
    dict: &'d Dict<'d>,
    /// Per span-attribute key named by a field: its `d+1` in this page (`None`: absent).
    /// A handful of keys: a linear search beats hashing the key per span.
    keys: Vec<(String, Option<u64>)>,
    /// Resources decoded, by `d+1`.
    resources: HashMap<u64, Option<Resource>>,
    /// Per resource key a field names: the code of each resource `d+1` asked for (a
    /// resource's value is read once per page, not per span).
    resource_codes: Vec<(String, crate::hash::IdMap<u64, u64>)>,
    /// Attribute values decoded, by `d+1`.
    any: HashMap<u64, Option<Value>>,
}

/// Code spaces: an unscoped field's code says whether it came from the span or the
/// resource (top bit set).
const RESOURCE_CODE: u64 = 1 << 63;
/// Codes of `service.name` values read from `RS_SERVICE` (a string's `d+1`).
const SERVICE_CODE: u64 = 1 << 62;
const SERVICE_NAME: &str = "service.name";

impl<'d> Values<'d> {
    fn new(scan: &MetricsScan, dict: &'d Dict<'d>) -> Values<'d> {
        let mut keys: Vec<(String, Option<u64>)> = Vec::new();
        for field in scan.by.iter().chain(scan.value.iter()) {
            if let ColField::Span(k) | ColField::Unscoped(k) = field {
                if !keys.iter().any(|(known, _)| known == k) {
                    keys.push((k.clone(), dict.find(k.as_bytes())));
                }
            }
        }
        Values {
            dict,
            keys,
            resources: HashMap::new(),
            resource_codes: Vec::new(),
            any: HashMap::new(),
        }
    }

    /// The `d+1` of the span's first attribute `key` (0: none); `None` when a KeyValue of
    /// unusual shape could be it.
    fn span_code(&self, key: &str, span: &SpanRow, attrs: &[(u64, u64)]) -> Option<u64> {
        let wanted = self
            .keys
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, code)| *code);
        let rows = attrs
            .get(span.attrs_start..span.attrs_end)
            .unwrap_or_default();
        for &(k, v) in rows {
            if k == 0 {
                return None;
            }
            if Some(k) == wanted {
                return Some(v);
            }
        }
        Some(0)
    }

    /// A span's grouping code for `field`; `None`: the columns cannot say.
    fn code(&mut self, field: &ColField, span: &SpanRow, attrs: &[(u64, u64)]) -> Option<u64> {
        match field {
            ColField::Name => Some(span.name),
            ColField::Status => Some(u64::from(span.status)),
            ColField::Kind => Some(u64::from(span.kind)),
            ColField::Duration => Some(span.duration as u64),
            ColField::Span(key) => {
                let code = self.span_code(key, span, attrs)?;
                // An absent value and a nil one group together.
                Some(if self.attr_value(code)?.is_nil() {
                    0
                } else {
                    code
                })
            }
            ColField::Resource(key) => self.resource_code(key, span.resource),
            ColField::Unscoped(key) => {
                let code = self.span_code(key, span, attrs)?;
                if code != 0 && !self.attr_value(code)?.is_nil() {
                    return Some(code);
                }
                self.resource_code(key, span.resource)
            }
            _ => None,
        }
    }

    /// An unscoped field: the span's attribute, else the resource's (`rs_code`, from
    /// [`Self::resource_code`]).
    fn unscoped_code(
        &mut self,
        key: &str,
        span: &SpanRow,
        attrs: &[(u64, u64)],
        rs_code: Option<u64>,
    ) -> Option<u64> {
        let code = self.span_code(key, span, attrs)?;
        if code != 0 && !self.attr_value(code)?.is_nil() {
            return Some(code);
        }
        rs_code
    }

    /// Resources group by their `d+1` when they hold the key (the value is read once per
    /// resource), else as nil (0).
    fn resource_code(&mut self, key: &str, resource: u64) -> Option<u64> {
        let slot = match self.resource_codes.iter().position(|(k, _)| k == key) {
            Some(slot) => slot,
            None => {
                self.resource_codes
                    .push((key.to_string(), Default::default()));
                self.resource_codes.len() - 1
            }
        };
        if let Some(code) = self
            .resource_codes
            .get(slot)
            .and_then(|(_, codes)| codes.get(&resource))
        {
            return Some(*code);
        }
        let value = self.resource_value(key, resource)?;
        let code = if value.is_nil() {
            0
        } else {
            resource | RESOURCE_CODE
        };
        if let Some((_, codes)) = self.resource_codes.get_mut(slot) {
            codes.insert(resource, code);
        }
        Some(code)
    }

    fn resource_value(&mut self, key: &str, resource: u64) -> Option<Value> {
        if !self.resources.contains_key(&resource) {
            let decoded = match self.dict.optional(resource).ok()? {
                None => None,
                Some(bytes) => Some(Resource::decode(bytes).ok()?),
            };
            self.resources.insert(resource, decoded);
        }
        let r = self.resources.get(&resource)?;
        Some(r.as_ref().map_or(Value::Nil, |r| {
            r.attributes
                .iter()
                .find(|kv| kv.key == key)
                .map_or(Value::Nil, |kv| any_value(kv.value.as_ref()))
        }))
    }

    fn attr_value(&mut self, code: u64) -> Option<Value> {
        if code == 0 {
            return Some(Value::Nil);
        }
        if let Some(v) = self.any.get(&code) {
            return v.clone();
        }
        let v = match self.dict.optional(code) {
            Ok(None) => Some(Value::Nil),
            Ok(Some(bytes)) => AnyValue::decode(bytes)
                .ok()
                .map(|any| any_value(Some(&any))),
            Err(_) => None,
        };
        self.any.insert(code, v.clone());
        v
    }

    /// The value of a code from [`Self::code`].
    fn value(&mut self, field: &ColField, code: u64) -> Option<Value> {
        match field {
            ColField::Name => {
                let bytes = self.dict.optional(code).ok()?.unwrap_or_default();
                Some(Value::Str(std::str::from_utf8(bytes).ok()?.to_string()))
            }
            ColField::Status => Some(Value::Status(match code {
                1 => Status::Ok,
                2 => Status::Error,
                _ => Status::Unset,
            })),
            ColField::Kind => Some(Value::Kind(kind_from_code(code as i32))),
            ColField::Duration => Some(Value::Duration(code as i64)),
            ColField::Span(_) => self.attr_value(code),
            ColField::Resource(key) | ColField::Unscoped(key) => {
                if code == 0 {
                    Some(Value::Nil)
                } else if code & SERVICE_CODE != 0 {
                    let bytes = self.dict.optional(code & !SERVICE_CODE).ok()??;
                    Some(Value::Str(std::str::from_utf8(bytes).ok()?.to_string()))
                } else if code & RESOURCE_CODE != 0 {
                    self.resource_value(key, code & !RESOURCE_CODE)
                } else {
                    self.attr_value(code)
                }
            }
            _ => None,
        }
    }

    /// The measured value of a span: numbers only (strings and booleans read as nil).
    fn number(&mut self, field: &ColField, span: &SpanRow, attrs: &[(u64, u64)]) -> Option<Value> {
        let code = self.code(field, span, attrs)?;
        let v = match field {
            ColField::Duration => Value::Duration(span.duration),
            _ => self.value(field, code)?,
        };
        Some(match v {
            Value::Int(_) | Value::Float(_) | Value::Duration(_) => v,
            _ => Value::Nil,
        })
    }
}

/// A field these scans read for grouping or measuring.
fn value_field(f: &Field) -> Option<ColField> {
    let field = super::col_field(f)?;
    span_local(&field).then_some(field)
}

/// Fields whose value on a span depends on that span (and its resource) only.
fn span_local(f: &ColField) -> bool {
    !matches!(
        f,
        ColField::RootService | ColField::RootName | ColField::TraceDuration
    )
}

/// A condition with a part the columns cannot judge (a `maybe` constant).
fn models_nothing(c: &Cond) -> bool {
    match c {
        Cond::Const(t) => *t == Tri::Maybe,
        Cond::Atom(_) => false,
        Cond::And(l, r) | Cond::Or(l, r) => models_nothing(l) || models_nothing(r),
        Cond::Not(e) => models_nothing(e),
    }
}
