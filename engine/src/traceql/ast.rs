//! The TraceQL syntax tree. `Display` renders nodes the way Tempo's `String()` does, because
//! validation messages quote them (`binary operations must operate on the same type: 1 = `foo``).

use std::fmt;

/// A parsed query: a spanset pipeline, optionally ending in a metrics function, and hints.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub pipeline: Pipeline,
    pub metrics: Option<MetricsAggregate>,
    pub hints: Vec<Hint>,
}

/// Stages separated by `|`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub elements: Vec<PipelineElement>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PipelineElement {
    Spanset(SpansetExpr),
    ScalarFilter(ScalarFilter),
    /// `by(expr)`.
    GroupBy(FieldExpr),
    /// `coalesce()`.
    Coalesce,
    /// `select(a, b)`.
    Select(Vec<Field>),
    /// The final `count()`/`avg(x)`/... of a parenthesised scalar pipeline.
    Aggregate(Aggregate),
}

#[derive(Clone, Debug, PartialEq)]
pub enum SpansetExpr {
    /// `{ expr }`; `{}` is `{ true }`.
    Filter(FieldExpr),
    Operation {
        op: SpansetOp,
        lhs: Box<SpansetExpr>,
        rhs: Box<SpansetExpr>,
    },
    /// `( pipeline )` used as an operand of a spanset operator.
    Pipeline(Box<Pipeline>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpansetOp {
    And,
    Union,
    Child,
    Parent,
    Descendant,
    Ancestor,
    Sibling,
    NotChild,
    NotParent,
    NotDescendant,
    NotAncestor,
    NotSibling,
    UnionChild,
    UnionParent,
    UnionDescendant,
    UnionAncestor,
    UnionSibling,
}

/// `lhs op rhs` over scalars, e.g. `count() > 3`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarFilter {
    pub op: BinaryOp,
    pub lhs: ScalarExpr,
    pub rhs: ScalarExpr,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ScalarExpr {
    Static(Static),
    Aggregate(Aggregate),
    Operation {
        op: BinaryOp,
        lhs: Box<ScalarExpr>,
        rhs: Box<ScalarExpr>,
    },
    /// `( spansetPipeline | aggregate )`.
    Pipeline(Box<Pipeline>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub op: AggregateOp,
    /// `None` for `count()`.
    pub expr: Option<FieldExpr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateOp {
    Count,
    Max,
    Min,
    Avg,
    Sum,
}

/// An expression over one span.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldExpr {
    Static(Static),
    Field(Field),
    Binary {
        op: BinaryOp,
        lhs: Box<FieldExpr>,
        rhs: Box<FieldExpr>,
    },
    Unary {
        op: UnaryOp,
        expr: Box<FieldExpr>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Regex,
    NotRegex,
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `!x`
    Not,
}

/// Something read from a span: an intrinsic or an attribute.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Intrinsic(Intrinsic),
    Attribute(Attribute),
}

/// A span, resource, event, link or instrumentation-scope attribute; `.name` has scope `None`
/// (any scope). `parent` is `parent.` (parsed, not executed by Tempo 2.7).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attribute {
    pub scope: Scope,
    pub parent: bool,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    None,
    Span,
    Resource,
    Event,
    Link,
    Instrumentation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Intrinsic {
    Duration,
    ChildCount,
    Name,
    Status,
    StatusMessage,
    Kind,
    Parent,
    /// `rootName`, `trace:rootName`
    TraceRootSpan,
    /// `rootServiceName`, `trace:rootService`
    TraceRootService,
    /// `traceDuration`, `trace:duration`
    TraceDuration,
    NestedSetLeft,
    NestedSetRight,
    NestedSetParent,
    TraceId,
    SpanId,
    EventName,
    EventTimeSinceStart,
    LinkTraceId,
    LinkSpanId,
    InstrumentationName,
    InstrumentationVersion,
}

impl Intrinsic {
    /// Tempo's name for the intrinsic (used in messages, `select()` and `by()` labels).
    pub fn as_str(self) -> &'static str {
        match self {
            Intrinsic::Duration => "duration",
            Intrinsic::ChildCount => "childCount",
            Intrinsic::Name => "name",
            Intrinsic::Status => "status",
            Intrinsic::StatusMessage => "statusMessage",
            Intrinsic::Kind => "kind",
            Intrinsic::Parent => "parent",
            Intrinsic::TraceRootSpan => "rootName",
            Intrinsic::TraceRootService => "rootServiceName",
            Intrinsic::TraceDuration => "traceDuration",
            Intrinsic::NestedSetLeft => "nestedSetLeft",
            Intrinsic::NestedSetRight => "nestedSetRight",
            Intrinsic::NestedSetParent => "nestedSetParent",
            Intrinsic::TraceId => "trace:id",
            Intrinsic::SpanId => "span:id",
            Intrinsic::EventName => "event:name",
            Intrinsic::EventTimeSinceStart => "event:timeSinceStart",
            Intrinsic::LinkTraceId => "link:traceID",
            Intrinsic::LinkSpanId => "link:spanID",
            Intrinsic::InstrumentationName => "instrumentation:name",
            Intrinsic::InstrumentationVersion => "instrumentation:version",
        }
    }

    /// The type the intrinsic evaluates to.
    pub fn static_type(self) -> StaticType {
        match self {
            Intrinsic::Duration | Intrinsic::TraceDuration | Intrinsic::EventTimeSinceStart => {
                StaticType::Duration
            }
            Intrinsic::ChildCount
            | Intrinsic::NestedSetLeft
            | Intrinsic::NestedSetRight
            | Intrinsic::NestedSetParent => StaticType::Int,
            Intrinsic::Status => StaticType::Status,
            Intrinsic::Kind => StaticType::Kind,
            Intrinsic::Parent => StaticType::Nil,
            Intrinsic::Name
            | Intrinsic::StatusMessage
            | Intrinsic::TraceRootSpan
            | Intrinsic::TraceRootService
            | Intrinsic::TraceId
            | Intrinsic::SpanId
            | Intrinsic::EventName
            | Intrinsic::LinkTraceId
            | Intrinsic::LinkSpanId
            | Intrinsic::InstrumentationName
            | Intrinsic::InstrumentationVersion => StaticType::String,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Error,
    Ok,
    Unset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Unspecified,
    Internal,
    Client,
    Server,
    Producer,
    Consumer,
}

/// A literal.
#[derive(Clone, Debug, PartialEq)]
pub enum Static {
    Nil,
    Int(i64),
    Float(f64),
    String(String),
    Bool(bool),
    /// Nanoseconds.
    Duration(i64),
    Status(Status),
    Kind(Kind),
}

/// Tempo's `StaticType`: what an expression evaluates to; `Attribute` is "known at run time".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaticType {
    Nil,
    Spanset,
    Attribute,
    Int,
    Float,
    String,
    Boolean,
    Duration,
    Status,
    Kind,
}

impl StaticType {
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            StaticType::Int | StaticType::Float | StaticType::Duration
        )
    }
}

impl Static {
    pub fn static_type(&self) -> StaticType {
        match self {
            Static::Nil => StaticType::Nil,
            Static::Int(_) => StaticType::Int,
            Static::Float(_) => StaticType::Float,
            Static::String(_) => StaticType::String,
            Static::Bool(_) => StaticType::Boolean,
            Static::Duration(_) => StaticType::Duration,
            Static::Status(_) => StaticType::Status,
            Static::Kind(_) => StaticType::Kind,
        }
    }

    /// The value as a float (numbers and durations in nanoseconds).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Static::Int(i) | Static::Duration(i) => Some(*i as f64),
            Static::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// A metrics function closing the pipeline, with its `by(...)` labels.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsAggregate {
    pub function: MetricsFunction,
    pub by: Vec<Field>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum MetricsFunction {
    Rate,
    CountOverTime,
    MinOverTime(Field),
    MaxOverTime(Field),
    AvgOverTime(Field),
    SumOverTime(Field),
    QuantileOverTime(Field, Vec<f64>),
    HistogramOverTime(Field),
    /// `compare({filter}, topN, start, end)`; `start`/`end` are 0 when not given.
    Compare {
        filter: FieldExpr,
        top_n: i64,
        start: i64,
        end: i64,
    },
}

impl MetricsFunction {
    pub fn name(&self) -> &'static str {
        match self {
            MetricsFunction::Rate => "rate",
            MetricsFunction::CountOverTime => "count_over_time",
            MetricsFunction::MinOverTime(_) => "min_over_time",
            MetricsFunction::MaxOverTime(_) => "max_over_time",
            MetricsFunction::AvgOverTime(_) => "avg_over_time",
            MetricsFunction::SumOverTime(_) => "sum_over_time",
            MetricsFunction::QuantileOverTime(..) => "quantile_over_time",
            MetricsFunction::HistogramOverTime(_) => "histogram_over_time",
            MetricsFunction::Compare { .. } => "compare",
        }
    }
}

/// `with(name = value)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Hint {
    pub name: String,
    pub value: Static,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Eq => "=",
            BinaryOp::Neq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Lte => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Gte => ">=",
            BinaryOp::Regex => "=~",
            BinaryOp::NotRegex => "!~",
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
        }
    }

    /// Operators whose result is a boolean.
    pub fn is_boolean(self) -> bool {
        !matches!(
            self,
            BinaryOp::Add
                | BinaryOp::Sub
                | BinaryOp::Mul
                | BinaryOp::Div
                | BinaryOp::Mod
                | BinaryOp::Pow
        )
    }

    /// Tempo's `binaryTypesValid` for one operand type.
    pub fn accepts(self, t: StaticType) -> bool {
        use BinaryOp::*;
        match t {
            StaticType::Attribute => true,
            StaticType::Boolean => matches!(self, And | Or | Eq | Neq),
            StaticType::Int | StaticType::Float | StaticType::Duration => matches!(
                self,
                Add | Sub | Mul | Div | Mod | Pow | Eq | Neq | Gt | Gte | Lt | Lte
            ),
            StaticType::String => matches!(self, Eq | Neq | Regex | NotRegex | Gt | Gte | Lt | Lte),
            StaticType::Nil | StaticType::Status | StaticType::Kind => matches!(self, Eq | Neq),
            StaticType::Spanset => false,
        }
    }
}

impl SpansetOp {
    pub fn as_str(self) -> &'static str {
        match self {
            SpansetOp::And => "&&",
            SpansetOp::Union => "||",
            SpansetOp::Child => ">",
            SpansetOp::Parent => "<",
            SpansetOp::Descendant => ">>",
            SpansetOp::Ancestor => "<<",
            SpansetOp::Sibling => "~",
            SpansetOp::NotChild => "!>",
            SpansetOp::NotParent => "!<",
            SpansetOp::NotDescendant => "!>>",
            SpansetOp::NotAncestor => "!<<",
            SpansetOp::NotSibling => "!~",
            SpansetOp::UnionChild => "&>",
            SpansetOp::UnionParent => "&<",
            SpansetOp::UnionDescendant => "&>>",
            SpansetOp::UnionAncestor => "&<<",
            SpansetOp::UnionSibling => "&~",
        }
    }
}

impl AggregateOp {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Count => "count",
            AggregateOp::Max => "max",
            AggregateOp::Min => "min",
            AggregateOp::Avg => "avg",
            AggregateOp::Sum => "sum",
        }
    }
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Error => "error",
            Status::Ok => "ok",
            Status::Unset => "unset",
        }
    }
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Unspecified => "unspecified",
            Kind::Internal => "internal",
            Kind::Client => "client",
            Kind::Server => "server",
            Kind::Producer => "producer",
            Kind::Consumer => "consumer",
        }
    }
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::None => "none",
            Scope::Span => "span",
            Scope::Resource => "resource",
            Scope::Event => "event",
            Scope::Link => "link",
            Scope::Instrumentation => "instrumentation",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Display: Tempo's String().

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`.
pub(crate) fn format_go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{f:e}"); // shortest round-trip digits, e.g. "1.234e6"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        return format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    }
    format!("{f}")
}

/// Go's `time.Duration.String()`.
pub fn format_go_duration(ns: i64) -> String {
    fn frac(buf: &mut Vec<u8>, mut v: u64, prec: u32) -> u64 {
        let mut print = false;
        let mut digits = Vec::new();
        for _ in 0..prec {
            let digit = v % 10;
            print = print || digit != 0;
            if print {
                digits.push(b'0' + digit as u8);
            }
            v /= 10;
        }
        if print {
            digits.push(b'.');
        }
        buf.extend(digits);
        v
    }
    fn int(buf: &mut Vec<u8>, mut v: u64) {
        if v == 0 {
            buf.push(b'0');
        }
        while v > 0 {
            buf.push(b'0' + (v % 10) as u8);
            v /= 10;
        }
    }
    // Built backwards, like Go's.
    let mut buf: Vec<u8> = Vec::new();
    let neg = ns < 0;
    let mut u = ns.unsigned_abs();
    if u < 1_000_000_000 {
        buf.push(b's');
        let prec = match u {
            0 => return "0s".into(),
            1..=999 => {
                buf.push(b'n');
                0
            }
            1_000..=999_999 => {
                buf.extend("µ".bytes().rev());
                3
            }
            _ => {
                buf.push(b'm');
                6
            }
        };
        u = frac(&mut buf, u, prec);
        int(&mut buf, u);
    } else {
        buf.push(b's');
        u = frac(&mut buf, u, 9);
        int(&mut buf, u % 60);
        u /= 60;
        if u > 0 {
            buf.push(b'm');
            int(&mut buf, u % 60);
            u /= 60;
            if u > 0 {
                buf.push(b'h');
                int(&mut buf, u);
            }
        }
    }
    if neg {
        buf.push(b'-');
    }
    buf.reverse();
    String::from_utf8_lossy(&buf).into_owned()
}

impl fmt::Display for Static {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Static::Nil => f.write_str("nil"),
            Static::Int(i) => write!(f, "{i}"),
            Static::Float(x) => {
                let s = format_go_float(*x);
                if s.contains(['e', '.']) || !x.is_finite() {
                    f.write_str(&s)
                } else {
                    write!(f, "{s}.0")
                }
            }
            Static::String(s) => write!(f, "`{s}`"),
            Static::Bool(b) => write!(f, "{b}"),
            Static::Duration(d) => f.write_str(&format_go_duration(*d)),
            Static::Status(s) => f.write_str(s.as_str()),
            Static::Kind(k) => f.write_str(k.as_str()),
        }
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut scope = String::new();
        if self.parent {
            scope.push_str("parent.");
        }
        if self.scope != Scope::None {
            scope.push_str(self.scope.as_str());
            scope.push('.');
        }
        if scope.is_empty() && !self.name.is_empty() {
            scope.push('.');
        }
        let needs_quotes = self
            .name
            .chars()
            .any(|c| !super::lexer::is_attribute_rune(c as i32));
        if needs_quotes {
            write!(f, "{scope}\"{}\"", self.name)
        } else {
            write!(f, "{scope}{}", self.name)
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Intrinsic(i) => f.write_str(i.as_str()),
            Field::Attribute(a) => a.fmt(f),
        }
    }
}

/// Tempo's `wrapElement`: statics and attributes bare, everything else in parentheses.
struct Wrap<'a, T>(&'a T);

impl fmt::Display for Wrap<'_, FieldExpr> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            FieldExpr::Static(_) | FieldExpr::Field(_) => self.0.fmt(f),
            other => write!(f, "({other})"),
        }
    }
}

impl fmt::Display for Wrap<'_, ScalarExpr> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ScalarExpr::Static(_) => self.0.fmt(f),
            other => write!(f, "({other})"),
        }
    }
}

impl fmt::Display for Wrap<'_, SpansetExpr> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({})", self.0)
    }
}

impl fmt::Display for FieldExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldExpr::Static(s) => s.fmt(f),
            FieldExpr::Field(a) => a.fmt(f),
            FieldExpr::Binary { op, lhs, rhs } => {
                write!(f, "{} {} {}", Wrap(&**lhs), op.as_str(), Wrap(&**rhs))
            }
            FieldExpr::Unary { op, expr } => {
                let op = match op {
                    UnaryOp::Neg => "-",
                    UnaryOp::Not => "!",
                };
                write!(f, "{op}{}", Wrap(&**expr))
            }
        }
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expr {
            None => write!(f, "{}()", self.op.as_str()),
            Some(e) => write!(f, "{}({e})", self.op.as_str()),
        }
    }
}

impl fmt::Display for ScalarExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScalarExpr::Static(s) => s.fmt(f),
            ScalarExpr::Aggregate(a) => a.fmt(f),
            ScalarExpr::Operation { op, lhs, rhs } => {
                write!(f, "{} {} {}", Wrap(&**lhs), op.as_str(), Wrap(&**rhs))
            }
            ScalarExpr::Pipeline(p) => p.fmt(f),
        }
    }
}

impl fmt::Display for ScalarFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            Wrap(&self.lhs),
            self.op.as_str(),
            Wrap(&self.rhs)
        )
    }
}

impl fmt::Display for SpansetExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpansetExpr::Filter(e) => write!(f, "{{ {e} }}"),
            SpansetExpr::Operation { op, lhs, rhs } => {
                write!(f, "{} {} {}", Wrap(&**lhs), op.as_str(), Wrap(&**rhs))
            }
            SpansetExpr::Pipeline(p) => p.fmt(f),
        }
    }
}

impl fmt::Display for PipelineElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineElement::Spanset(s) => s.fmt(f),
            PipelineElement::ScalarFilter(s) => s.fmt(f),
            PipelineElement::GroupBy(e) => write!(f, "by({e})"),
            PipelineElement::Coalesce => f.write_str("coalesce()"),
            PipelineElement::Select(attrs) => {
                f.write_str("select(")?;
                for (i, a) in attrs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    a.fmt(f)?;
                }
                f.write_str(")")
            }
            PipelineElement::Aggregate(a) => a.fmt(f),
        }
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.elements.iter().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            e.fmt(f)?;
        }
        Ok(())
    }
}

impl fmt::Display for MetricsAggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.function.name())?;
        match &self.function {
            MetricsFunction::Rate | MetricsFunction::CountOverTime => {}
            MetricsFunction::MinOverTime(a)
            | MetricsFunction::MaxOverTime(a)
            | MetricsFunction::AvgOverTime(a)
            | MetricsFunction::SumOverTime(a)
            | MetricsFunction::HistogramOverTime(a) => a.fmt(f)?,
            MetricsFunction::QuantileOverTime(a, qs) => {
                a.fmt(f)?;
                f.write_str(",")?;
                for (i, q) in qs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{q:.5}")?;
                }
            }
            MetricsFunction::Compare {
                filter,
                top_n,
                start,
                end,
            } => write!(f, "{{ {filter} }},{top_n},{start},{end}")?,
        }
        f.write_str(")")?;
        if !self.by.is_empty() {
            f.write_str("by(")?;
            for (i, b) in self.by.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                b.fmt(f)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pipeline.fmt(f)?;
        if let Some(m) = &self.metrics {
            write!(f, " | {m}")?;
        }
        if !self.hints.is_empty() {
            f.write_str(" with(")?;
            for (i, h) in self.hints.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{}={}", h.name, h.value)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(format_go_duration(0), "0s");
        assert_eq!(format_go_duration(1_000_000), "1ms");
        assert_eq!(format_go_duration(1_500), "1.5µs");
        assert_eq!(format_go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(format_go_duration(1_500_000_000), "1.5s");
        assert_eq!(format_go_duration(-2_000_000_000), "-2s");
        assert_eq!(format_go_float(1.5), "1.5");
        assert_eq!(format_go_float(1e21), "1e+21");
        assert_eq!(format_go_float(1e6), "1e+06");
        assert_eq!(format_go_float(123456.0), "123456");
        assert_eq!(Static::Float(3.0).to_string(), "3.0");
        assert_eq!(Static::Float(0.1).to_string(), "0.1");
    }
}
