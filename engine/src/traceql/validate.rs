//! Type checking, as Tempo 2.7's `validate()`: a query that parses can still be invalid
//! (`{ 1 = "foo" }`) or use a feature Tempo parses but does not execute (`parent.`, `nil`,
//! `childCount`, scalar filters other than `aggregate op static`): those are `Unsupported`.

use std::fmt;

use super::ast::*;

/// Tempo groups by at most this many labels in metrics queries.
pub const METRICS_GROUP_BYS_MAX: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidateErrorKind {
    /// The query is wrong: types do not match, a filter is not boolean, a bad regex.
    Invalid,
    /// Tempo 2.7 parses this but does not execute it; the message ends in `not yet supported`.
    Unsupported,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidateError {
    pub kind: ValidateErrorKind,
    pub message: String,
}

impl ValidateError {
    fn invalid(message: String) -> Self {
        ValidateError {
            kind: ValidateErrorKind::Invalid,
            message,
        }
    }

    fn unsupported(feature: impl fmt::Display) -> Self {
        ValidateError {
            kind: ValidateErrorKind::Unsupported,
            message: format!("{feature} not yet supported"),
        }
    }

    pub fn is_unsupported(&self) -> bool {
        self.kind == ValidateErrorKind::Unsupported
    }
}

impl fmt::Display for ValidateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ValidateError {}

type Result<T = ()> = std::result::Result<T, ValidateError>;

/// Validates a parsed query.
pub fn validate(query: &Query) -> Result {
    check_pipeline(&query.pipeline)?;
    if let Some(m) = &query.metrics {
        check_metrics(m)?;
    }
    Ok(())
}

fn check_pipeline(p: &Pipeline) -> Result {
    p.elements.iter().try_for_each(check_element)
}

fn check_element(e: &PipelineElement) -> Result {
    match e {
        PipelineElement::Spanset(s) => check_spanset(s),
        PipelineElement::ScalarFilter(f) => check_scalar_filter(f),
        PipelineElement::GroupBy(expr) => {
            if !references_span(expr) {
                return Err(ValidateError::invalid(format!(
                    "grouping field expressions must reference the span: {e}"
                )));
            }
            check_field(expr)
        }
        PipelineElement::Coalesce => Ok(()),
        PipelineElement::Select(fields) => fields.iter().try_for_each(check_attribute),
        PipelineElement::Aggregate(a) => check_aggregate(a),
    }
}

fn check_spanset(s: &SpansetExpr) -> Result {
    match s {
        SpansetExpr::Filter(expr) => {
            check_field(expr)?;
            let t = field_type(expr);
            if t != StaticType::Attribute && t != StaticType::Boolean {
                return Err(ValidateError::invalid(format!(
                    "span filter field expressions must resolve to a boolean: {s}"
                )));
            }
            Ok(())
        }
        SpansetExpr::Operation { lhs, rhs, .. } => {
            check_spanset(lhs)?;
            check_spanset(rhs)
        }
        SpansetExpr::Pipeline(p) => check_pipeline(p),
    }
}

fn matching_operands(a: StaticType, b: StaticType) -> bool {
    a == StaticType::Attribute
        || b == StaticType::Attribute
        || a == b
        || (a.is_numeric() && b.is_numeric())
        || a == StaticType::Nil
        || b == StaticType::Nil
}

fn check_operands(
    op: BinaryOp,
    lhs: StaticType,
    rhs: StaticType,
    node: &dyn fmt::Display,
) -> Result {
    if !matching_operands(lhs, rhs) {
        return Err(ValidateError::invalid(format!(
            "binary operations must operate on the same type: {node}"
        )));
    }
    if !op.accepts(lhs) || !op.accepts(rhs) {
        return Err(ValidateError::invalid(format!(
            "illegal operation for the given types: {node}"
        )));
    }
    Ok(())
}

fn check_scalar_filter(f: &ScalarFilter) -> Result {
    check_scalar(&f.lhs)?;
    check_scalar(&f.rhs)?;
    check_operands(f.op, scalar_type(&f.lhs), scalar_type(&f.rhs), f)?;
    if !matches!(f.lhs, ScalarExpr::Aggregate(_)) {
        return Err(ValidateError::unsupported("scalar filter lhs of type (%v)"));
    }
    if !matches!(f.rhs, ScalarExpr::Static(_)) {
        return Err(ValidateError::unsupported("scalar filter rhs of type (%v)"));
    }
    Ok(())
}

fn check_scalar(e: &ScalarExpr) -> Result {
    match e {
        ScalarExpr::Static(s) => check_static(s),
        ScalarExpr::Aggregate(a) => check_aggregate(a),
        ScalarExpr::Operation { op, lhs, rhs } => {
            check_scalar(lhs)?;
            check_scalar(rhs)?;
            check_operands(*op, scalar_type(lhs), scalar_type(rhs), e)
        }
        ScalarExpr::Pipeline(p) => check_pipeline(p),
    }
}

fn check_aggregate(a: &Aggregate) -> Result {
    let Some(expr) = &a.expr else {
        return Ok(());
    };
    check_field(expr)?;
    let t = field_type(expr);
    if t != StaticType::Attribute && !t.is_numeric() {
        return Err(ValidateError::invalid(format!(
            "aggregate field expressions must resolve to a number type: {a}"
        )));
    }
    if !references_span(expr) {
        return Err(ValidateError::invalid(format!(
            "aggregate field expressions must reference the span: {a}"
        )));
    }
    Ok(())
}

fn check_static(s: &Static) -> Result {
    if *s == Static::Nil {
        return Err(ValidateError::unsupported("nil"));
    }
    Ok(())
}

fn check_attribute(f: &Field) -> Result {
    match f {
        Field::Attribute(a) if a.parent => Err(ValidateError::unsupported("parent")),
        Field::Intrinsic(i @ (Intrinsic::Parent | Intrinsic::ChildCount)) => Err(
            ValidateError::unsupported(format_args!("intrinsic ({})", i.as_str())),
        ),
        _ => Ok(()),
    }
}

/// Validates a field expression (also used by constant folding).
pub(super) fn check_field(e: &FieldExpr) -> Result {
    match e {
        FieldExpr::Static(s) => check_static(s),
        FieldExpr::Field(f) => check_attribute(f),
        FieldExpr::Binary { op, lhs, rhs } => {
            check_field(lhs)?;
            check_field(rhs)?;
            check_operands(*op, field_type(lhs), field_type(rhs), e)?;
            if matches!(op, BinaryOp::Regex | BinaryOp::NotRegex) {
                if let FieldExpr::Static(Static::String(pattern)) = &**rhs {
                    if super::regex_syntax::check(pattern).is_err() {
                        return Err(ValidateError::invalid(format!("invalid regex: {rhs}")));
                    }
                }
            }
            Ok(())
        }
        FieldExpr::Unary { op, expr } => {
            check_field(expr)?;
            let t = field_type(expr);
            let ok = match op {
                _ if t == StaticType::Attribute => true,
                UnaryOp::Neg => t.is_numeric(),
                UnaryOp::Not => t == StaticType::Boolean,
            };
            if !ok {
                return Err(ValidateError::invalid(format!(
                    "illegal operation for the given type: {e}"
                )));
            }
            Ok(())
        }
    }
}

fn check_metrics(m: &MetricsAggregate) -> Result {
    let attr = match &m.function {
        MetricsFunction::Rate | MetricsFunction::CountOverTime => None,
        MetricsFunction::MinOverTime(a)
        | MetricsFunction::MaxOverTime(a)
        | MetricsFunction::SumOverTime(a) => Some(a),
        MetricsFunction::AvgOverTime(a)
        | MetricsFunction::HistogramOverTime(a)
        | MetricsFunction::QuantileOverTime(a, _) => {
            // One label is taken by the bucket (by the count series for averages).
            if m.by.len() >= METRICS_GROUP_BYS_MAX {
                return Err(ValidateError::unsupported(format_args!(
                    "metrics group by {} values",
                    m.by.len()
                )));
            }
            Some(a)
        }
        MetricsFunction::Compare {
            filter,
            top_n,
            start,
            end,
        } => {
            check_spanset(&SpansetExpr::Filter(filter.clone()))?;
            if *top_n <= 0 {
                return Err(ValidateError::invalid(
                    "compare() top number of values must be integer greater than 0".to_string(),
                ));
            }
            if *start == 0 && *end == 0 {
                return Ok(());
            }
            if *start <= 0 || *end <= 0 {
                return Err(ValidateError::invalid(
                    "compare() timestamps must be positive integer unix nanoseconds".to_string(),
                ));
            }
            if end <= start {
                return Err(ValidateError::invalid(
                    "compare() end timestamp must be greater than start timestamp".to_string(),
                ));
            }
            return Ok(());
        }
    };
    if let MetricsFunction::QuantileOverTime(_, qs) = &m.function {
        if let Some(q) = qs.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            return Err(ValidateError::invalid(format!(
                "quantile must be between 0 and 1: {}",
                format_go_float(*q)
            )));
        }
    }
    if m.by.len() > METRICS_GROUP_BYS_MAX {
        return Err(ValidateError::unsupported(format_args!(
            "metrics group by {} values",
            m.by.len()
        )));
    }
    attr.into_iter().chain(&m.by).try_for_each(check_attribute)
}

/// Whether an expression reads anything from the span.
pub fn references_span(e: &FieldExpr) -> bool {
    match e {
        FieldExpr::Static(_) => false,
        FieldExpr::Field(_) => true,
        FieldExpr::Binary { lhs, rhs, .. } => references_span(lhs) || references_span(rhs),
        FieldExpr::Unary { expr, .. } => references_span(expr),
    }
}

/// Tempo's `impliedType` of a field expression.
pub fn field_type(e: &FieldExpr) -> StaticType {
    match e {
        FieldExpr::Static(s) => s.static_type(),
        FieldExpr::Field(Field::Intrinsic(i)) => i.static_type(),
        FieldExpr::Field(Field::Attribute(_)) => StaticType::Attribute,
        FieldExpr::Binary { op, lhs, rhs } => {
            if op.is_boolean() {
                return StaticType::Boolean;
            }
            match field_type(lhs) {
                StaticType::Attribute => field_type(rhs),
                t => t,
            }
        }
        FieldExpr::Unary { expr, .. } => field_type(expr),
    }
}

/// Tempo's `impliedType` of a scalar expression.
pub fn scalar_type(e: &ScalarExpr) -> StaticType {
    match e {
        ScalarExpr::Static(s) => s.static_type(),
        ScalarExpr::Aggregate(a) => aggregate_type(a),
        ScalarExpr::Operation { op, lhs, rhs } => {
            if op.is_boolean() {
                return StaticType::Boolean;
            }
            match scalar_type(lhs) {
                StaticType::Attribute => scalar_type(rhs),
                t => t,
            }
        }
        ScalarExpr::Pipeline(p) => match p.elements.last() {
            Some(PipelineElement::Aggregate(a)) => aggregate_type(a),
            _ => StaticType::Spanset,
        },
    }
}

fn aggregate_type(a: &Aggregate) -> StaticType {
    match (&a.op, &a.expr) {
        (AggregateOp::Count, _) | (_, None) => StaticType::Int,
        (_, Some(e)) => field_type(e),
    }
}
