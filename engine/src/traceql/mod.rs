//! TraceQL as spoken by Tempo 2.7: lexer, parser, validator and [`eval`] (a search query on
//! one whole decoded trace). Sans-IO: a query string in, a typed [`Query`] or Tempo's error
//! text out; a trace in, its spansets out.
//!
//! - [`parse`] returns [`ParseError`], whose `Display` is Tempo's text byte for byte
//!   (`parse error at line 1, col 22: syntax error: unexpected }`); the HTTP layer prefixes it
//!   with `invalid TraceQL query: `.
//! - [`validate`] type-checks like Tempo's `validate()`; [`ValidateErrorKind::Unsupported`]
//!   marks what Tempo 2.7 parses but does not run (`parent.`, `nil`, `childCount`, ...).
//! - [`Query::fields`] lists what a query reads (for column pruning); [`Query::is_metrics`]
//!   tells metrics queries (`| rate()`, `| quantile_over_time(...)`) from searches.
//!
//! How it matches Tempo: the lexer emulates Go's `text/scanner` (positions included) under
//! Tempo's token rules, and the parser runs an LALR(1) automaton built from Tempo's grammar
//! with yacc's conflict rules and goyacc's default reductions, so the accepted language, the
//! token where an error is detected and goyacc's `expecting ...` lists agree.
//!
//! **Architecture Invariant:** no panics on any input: every limit below is checked and every
//! failure is a typed error.

mod ast;
pub mod eval;
mod fold;
mod grammar;
mod lexer;
mod parser;
mod regex_syntax;
mod validate;

pub use ast::*;
pub use fold::static_equals;
pub use parser::{parse, parse_bytes, ParseError};
pub use validate::{
    field_type, references_span, scalar_type, validate, ValidateError, ValidateErrorKind,
    METRICS_GROUP_BYS_MAX,
};

/// Longest query accepted, in bytes.
pub const QUERY_BYTES_MAX: usize = 1 << 20;
/// Deepest syntax tree accepted (the validator, `Display` and `Drop` recurse over it).
pub const QUERY_DEPTH_MAX: u32 = 400;
/// Most entries on the LR parser stack (bounds unreduced nesting like `((((`).
pub const PARSER_STACK_MAX: usize = 1024;

const _: () = assert!(PARSER_STACK_MAX >= 2 * QUERY_DEPTH_MAX as usize);

/// Parses and validates: what the query API runs before evaluating.
pub fn compile(query: &str) -> Result<Query, CompileError> {
    let q = parse(query).map_err(CompileError::Parse)?;
    validate(&q).map_err(CompileError::Validate)?;
    Ok(q)
}

/// Either stage's error; `Display` is the stage's own text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileError {
    Parse(ParseError),
    Validate(ValidateError),
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompileError::Parse(e) => e.fmt(f),
            CompileError::Validate(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CompileError {}

impl Query {
    /// Whether the query ends in a metrics function (`rate()`, `*_over_time()`, `compare()`).
    pub fn is_metrics(&self) -> bool {
        self.metrics.is_some()
    }

    /// Every intrinsic and attribute the query reads, sorted and de-duplicated: the columns
    /// an evaluator has to fetch. Includes `select()`, `by()` and metrics arguments.
    pub fn fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        collect_pipeline(&self.pipeline, &mut out);
        if let Some(m) = &self.metrics {
            match &m.function {
                MetricsFunction::Rate | MetricsFunction::CountOverTime => {}
                MetricsFunction::MinOverTime(a)
                | MetricsFunction::MaxOverTime(a)
                | MetricsFunction::AvgOverTime(a)
                | MetricsFunction::SumOverTime(a)
                | MetricsFunction::HistogramOverTime(a)
                | MetricsFunction::QuantileOverTime(a, _) => out.push(a.clone()),
                MetricsFunction::Compare { filter, .. } => collect_field(filter, &mut out),
            }
            out.extend(m.by.iter().cloned());
        }
        out.sort();
        out.dedup();
        out
    }
}

fn collect_pipeline(p: &Pipeline, out: &mut Vec<Field>) {
    for e in &p.elements {
        match e {
            PipelineElement::Spanset(s) => collect_spanset(s, out),
            PipelineElement::ScalarFilter(f) => {
                collect_scalar(&f.lhs, out);
                collect_scalar(&f.rhs, out);
            }
            PipelineElement::GroupBy(e) => collect_field(e, out),
            PipelineElement::Coalesce => {}
            PipelineElement::Select(fields) => out.extend(fields.iter().cloned()),
            PipelineElement::Aggregate(a) => collect_aggregate(a, out),
        }
    }
}

fn collect_spanset(s: &SpansetExpr, out: &mut Vec<Field>) {
    match s {
        SpansetExpr::Filter(e) => collect_field(e, out),
        SpansetExpr::Operation { lhs, rhs, .. } => {
            collect_spanset(lhs, out);
            collect_spanset(rhs, out);
        }
        SpansetExpr::Pipeline(p) => collect_pipeline(p, out),
    }
}

fn collect_scalar(s: &ScalarExpr, out: &mut Vec<Field>) {
    match s {
        ScalarExpr::Static(_) => {}
        ScalarExpr::Aggregate(a) => collect_aggregate(a, out),
        ScalarExpr::Operation { lhs, rhs, .. } => {
            collect_scalar(lhs, out);
            collect_scalar(rhs, out);
        }
        ScalarExpr::Pipeline(p) => collect_pipeline(p, out),
    }
}

fn collect_aggregate(a: &Aggregate, out: &mut Vec<Field>) {
    if let Some(e) = &a.expr {
        collect_field(e, out);
    }
}

fn collect_field(e: &FieldExpr, out: &mut Vec<Field>) {
    match e {
        FieldExpr::Static(_) => {}
        FieldExpr::Field(f) => out.push(f.clone()),
        FieldExpr::Binary { lhs, rhs, .. } => {
            collect_field(lhs, out);
            collect_field(rhs, out);
        }
        FieldExpr::Unary { expr, .. } => collect_field(expr, out),
    }
}

/// Fuzz entry point: parse, validate, render and collect fields of arbitrary bytes; must never
/// panic.
pub fn fuzz_parse(data: &[u8]) {
    if let Ok(q) = parse_bytes(data) {
        let _ = validate(&q);
        let _ = q.fields();
        let _ = q.is_metrics();
        let _ = q.to_string();
    }
}
