//! The LR driver: runs the automaton from [`super::grammar`] over the lexer's tokens and builds
//! the AST. Errors are Tempo's: the first lexer error if there was one, else goyacc's
//! `syntax error: unexpected X[, expecting A or B]` at the scanner position of the lookahead.

use std::fmt;

use super::ast::*;
use super::grammar::{Act, Action, Nt, Sym, Tables, Tok};
use super::lexer::{decode, Lexer, TokVal};
use super::{PARSER_STACK_MAX, QUERY_BYTES_MAX, QUERY_DEPTH_MAX};

/// A query that does not parse. `Display` is Tempo's text, e.g.
/// `parse error at line 1, col 22: syntax error: unexpected }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based; 0 where Go's scanner had invalidated its position (Tempo reports it as is).
    pub line: u32,
    /// 1-based, in characters.
    pub col: u32,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 && self.col == 0 {
            write!(f, "parse error : {}", self.message)
        } else {
            write!(
                f,
                "parse error at line {}, col {}: {}",
                self.line, self.col, self.message
            )
        }
    }
}

impl std::error::Error for ParseError {}

/// A semantic value on the parser stack.
enum Val {
    None,
    Tok(Tok, TokVal),
    Root(Query),
    Pipeline(Pipeline),
    Spanset(SpansetExpr),
    ScalarFilter(ScalarFilter),
    Cmp(BinaryOp),
    Scalar(ScalarExpr),
    Aggregate(Aggregate),
    Field(FieldExpr),
    Static(Static),
    Attr(Field),
    Attrs(Vec<Field>),
    Nums(Vec<f64>),
    Element(PipelineElement),
    Metrics(MetricsAggregate),
    Hint(Hint),
    Hints(Vec<Hint>),
}

struct Entry {
    state: u16,
    val: Val,
    depth: u32,
}

/// Why a reduction could not build its node.
enum Fail {
    /// Tempo panics (and recovers into a position-less parse error) on integer division by
    /// zero while folding constants.
    DivideByZero,
    /// A grammar/action mismatch: a bug, reported instead of panicking on user input.
    Internal(&'static str),
}

/// Parses a TraceQL query.
pub fn parse(query: &str) -> Result<Query, ParseError> {
    parse_bytes(query.as_bytes())
}

/// Parses a query given as bytes; invalid UTF-8 is reported like Go's scanner does.
pub fn parse_bytes(query: &[u8]) -> Result<Query, ParseError> {
    if query.len() > QUERY_BYTES_MAX {
        return Err(ParseError {
            line: 0,
            col: 0,
            message: format!(
                "query is {} bytes, longer than the limit of {QUERY_BYTES_MAX} bytes",
                query.len()
            ),
        });
    }
    let units = decode(query);
    let mut lexer = Lexer::new(&units);
    let tables = Tables::get();
    let mut stack = vec![Entry {
        state: 0,
        val: Val::None,
        depth: 0,
    }];
    let mut look: Option<(Tok, TokVal)> = None;
    let first_error = |lexer: &mut Lexer<'_>| {
        lexer.take_errors().into_iter().next().map(|e| ParseError {
            line: e.line,
            col: e.col,
            message: e.message,
        })
    };
    loop {
        let state = stack.last().map_or(0, |e| e.state);
        let (tok, _) = look.get_or_insert_with(|| lexer.lex());
        let tok = *tok;
        match tables.action(state, tok) {
            Action::Shift(to) => {
                let (tok, val) = look.take().unwrap_or((tok, TokVal::None));
                if stack.len() >= PARSER_STACK_MAX {
                    return Err(first_error(&mut lexer).unwrap_or_else(|| too_deep(&lexer)));
                }
                stack.push(Entry {
                    state: to,
                    val: Val::Tok(tok, val),
                    depth: 0,
                });
            }
            Action::Reduce(p) => {
                let prod = &tables.prods[p as usize];
                let n = prod.rhs.len();
                let children: Vec<Entry> = stack.split_off(stack.len().saturating_sub(n));
                let depth = 1 + children.iter().map(|e| e.depth).max().unwrap_or(0);
                if depth > QUERY_DEPTH_MAX {
                    return Err(first_error(&mut lexer).unwrap_or_else(|| too_deep(&lexer)));
                }
                let vals: Vec<Val> = children.into_iter().map(|e| e.val).collect();
                let val = match reduce(prod.act, &prod.rhs, vals) {
                    Ok(v) => v,
                    Err(Fail::DivideByZero) => {
                        return Err(ParseError {
                            line: 0,
                            col: 0,
                            message: "runtime error: integer divide by zero".into(),
                        })
                    }
                    Err(Fail::Internal(what)) => {
                        let (line, col) = lexer.position();
                        return Err(ParseError {
                            line,
                            col,
                            message: format!("internal parser error: {what}"),
                        });
                    }
                };
                let top = stack.last().map_or(0, |e| e.state);
                let Some(to) = tables.goto(top, prod.lhs) else {
                    let (line, col) = lexer.position();
                    return Err(ParseError {
                        line,
                        col,
                        message: "internal parser error: missing goto".into(),
                    });
                };
                stack.push(Entry {
                    state: to,
                    val,
                    depth,
                });
            }
            Action::Accept => {
                if let Some(e) = first_error(&mut lexer) {
                    return Err(e);
                }
                return match stack.pop().map(|e| e.val) {
                    Some(Val::Root(q)) => Ok(q),
                    _ => Err(ParseError {
                        line: 0,
                        col: 0,
                        message: "internal parser error: no root".into(),
                    }),
                };
            }
            Action::Error => {
                let (line, col) = lexer.position();
                if let Some(e) = first_error(&mut lexer) {
                    return Err(e);
                }
                let mut message = format!("syntax error: unexpected {}", tok.name());
                for (i, t) in tables.expected(state).iter().enumerate() {
                    message.push_str(if i == 0 { ", expecting " } else { " or " });
                    message.push_str(t.name());
                }
                return Err(ParseError { line, col, message });
            }
        }
    }
}

fn too_deep(lexer: &Lexer<'_>) -> ParseError {
    let (line, col) = lexer.position();
    ParseError {
        line,
        col,
        message: format!("syntax error: query nested more than {QUERY_DEPTH_MAX} levels deep"),
    }
}

const BUG: Fail = Fail::Internal("unexpected value for production");

fn take(vals: &mut [Val], i: usize) -> Val {
    vals.get_mut(i)
        .map_or(Val::None, |v| std::mem::replace(v, Val::None))
}

fn tok_at(vals: &[Val], i: usize) -> Option<Tok> {
    match vals.get(i) {
        Some(Val::Tok(t, _)) => Some(*t),
        _ => None,
    }
}

fn into_spanset(v: Val) -> Result<SpansetExpr, Fail> {
    match v {
        Val::Spanset(s) => Ok(s),
        Val::Pipeline(p) => Ok(SpansetExpr::Pipeline(Box::new(p))),
        _ => Err(BUG),
    }
}

fn into_scalar(v: Val) -> Result<ScalarExpr, Fail> {
    match v {
        Val::Scalar(s) => Ok(s),
        Val::Aggregate(a) => Ok(ScalarExpr::Aggregate(a)),
        Val::Pipeline(p) => Ok(ScalarExpr::Pipeline(Box::new(p))),
        Val::Static(s) => Ok(ScalarExpr::Static(s)),
        _ => Err(BUG),
    }
}

fn into_field_expr(v: Val) -> Result<FieldExpr, Fail> {
    match v {
        Val::Field(f) => Ok(f),
        Val::Static(s) => Ok(FieldExpr::Static(s)),
        Val::Attr(a) => Ok(FieldExpr::Field(a)),
        _ => Err(BUG),
    }
}

fn into_attr(v: Val) -> Result<Field, Fail> {
    match v {
        Val::Attr(a) => Ok(a),
        _ => Err(BUG),
    }
}

fn into_element(v: Val) -> Result<PipelineElement, Fail> {
    match v {
        Val::Spanset(s) => Ok(PipelineElement::Spanset(s)),
        Val::ScalarFilter(f) => Ok(PipelineElement::ScalarFilter(f)),
        Val::Element(e) => Ok(e),
        _ => Err(BUG),
    }
}

fn token_static(tok: Tok, val: TokVal) -> Option<Static> {
    Some(match (tok, val) {
        (Tok::String, TokVal::Str(s)) => Static::String(s),
        (Tok::Integer, TokVal::Int(i)) => Static::Int(i),
        (Tok::Float, TokVal::Float(f)) => Static::Float(f),
        (Tok::Duration, TokVal::Duration(d)) => Static::Duration(d),
        (Tok::True, _) => Static::Bool(true),
        (Tok::False, _) => Static::Bool(false),
        (Tok::Nil, _) => Static::Nil,
        (Tok::StatusOk, _) => Static::Status(Status::Ok),
        (Tok::StatusError, _) => Static::Status(Status::Error),
        (Tok::StatusUnset, _) => Static::Status(Status::Unset),
        (Tok::KindUnspecified, _) => Static::Kind(Kind::Unspecified),
        (Tok::KindInternal, _) => Static::Kind(Kind::Internal),
        (Tok::KindServer, _) => Static::Kind(Kind::Server),
        (Tok::KindClient, _) => Static::Kind(Kind::Client),
        (Tok::KindProducer, _) => Static::Kind(Kind::Producer),
        (Tok::KindConsumer, _) => Static::Kind(Kind::Consumer),
        _ => return None,
    })
}

fn binary_op(tok: Tok) -> Option<BinaryOp> {
    Some(match tok {
        Tok::Add => BinaryOp::Add,
        Tok::Sub => BinaryOp::Sub,
        Tok::Mul => BinaryOp::Mul,
        Tok::Div => BinaryOp::Div,
        Tok::Mod => BinaryOp::Mod,
        Tok::Pow => BinaryOp::Pow,
        Tok::Eq => BinaryOp::Eq,
        Tok::Neq => BinaryOp::Neq,
        Tok::Lt => BinaryOp::Lt,
        Tok::Lte => BinaryOp::Lte,
        Tok::Gt => BinaryOp::Gt,
        Tok::Gte => BinaryOp::Gte,
        Tok::Re => BinaryOp::Regex,
        Tok::Nre => BinaryOp::NotRegex,
        Tok::And => BinaryOp::And,
        Tok::Or => BinaryOp::Or,
        _ => return None,
    })
}

fn spanset_op(tok: Tok) -> Option<SpansetOp> {
    Some(match tok {
        Tok::And => SpansetOp::And,
        Tok::Or => SpansetOp::Union,
        Tok::Gt => SpansetOp::Child,
        Tok::Lt => SpansetOp::Parent,
        Tok::Desc => SpansetOp::Descendant,
        Tok::Ance => SpansetOp::Ancestor,
        Tok::Sibl => SpansetOp::Sibling,
        Tok::NotChild => SpansetOp::NotChild,
        Tok::NotParent => SpansetOp::NotParent,
        Tok::NotDesc => SpansetOp::NotDescendant,
        Tok::NotAnce => SpansetOp::NotAncestor,
        Tok::Nre => SpansetOp::NotSibling,
        Tok::UnionChild => SpansetOp::UnionChild,
        Tok::UnionParent => SpansetOp::UnionParent,
        Tok::UnionDesc => SpansetOp::UnionDescendant,
        Tok::UnionAnce => SpansetOp::UnionAncestor,
        Tok::UnionSibl => SpansetOp::UnionSibling,
        _ => return None,
    })
}

fn intrinsic(tok: Tok) -> Option<Intrinsic> {
    Some(match tok {
        Tok::IDuration => Intrinsic::Duration,
        Tok::ChildCount => Intrinsic::ChildCount,
        Tok::Name => Intrinsic::Name,
        Tok::Status => Intrinsic::Status,
        Tok::StatusMessage => Intrinsic::StatusMessage,
        Tok::Kind => Intrinsic::Kind,
        Tok::Parent => Intrinsic::Parent,
        Tok::RootName => Intrinsic::TraceRootSpan,
        Tok::RootServiceName => Intrinsic::TraceRootService,
        Tok::TraceDuration => Intrinsic::TraceDuration,
        Tok::NestedSetLeft => Intrinsic::NestedSetLeft,
        Tok::NestedSetRight => Intrinsic::NestedSetRight,
        Tok::NestedSetParent => Intrinsic::NestedSetParent,
        _ => return None,
    })
}

fn scoped_intrinsic(scope: Tok, name: Tok) -> Option<Intrinsic> {
    Some(match (scope, name) {
        (Tok::TraceColon, Tok::IDuration) => Intrinsic::TraceDuration,
        (Tok::TraceColon, Tok::RootName) => Intrinsic::TraceRootSpan,
        (Tok::TraceColon, Tok::RootService) => Intrinsic::TraceRootService,
        (Tok::TraceColon, Tok::Id) => Intrinsic::TraceId,
        (Tok::SpanColon, Tok::IDuration) => Intrinsic::Duration,
        (Tok::SpanColon, Tok::Name) => Intrinsic::Name,
        (Tok::SpanColon, Tok::Kind) => Intrinsic::Kind,
        (Tok::SpanColon, Tok::Status) => Intrinsic::Status,
        (Tok::SpanColon, Tok::StatusMessage) => Intrinsic::StatusMessage,
        (Tok::SpanColon, Tok::Id) => Intrinsic::SpanId,
        (Tok::EventColon, Tok::Name) => Intrinsic::EventName,
        (Tok::EventColon, Tok::TimeSinceStart) => Intrinsic::EventTimeSinceStart,
        (Tok::LinkColon, Tok::TraceId) => Intrinsic::LinkTraceId,
        (Tok::LinkColon, Tok::SpanId) => Intrinsic::LinkSpanId,
        (Tok::InstrumentationColon, Tok::Name) => Intrinsic::InstrumentationName,
        (Tok::InstrumentationColon, Tok::Version) => Intrinsic::InstrumentationVersion,
        _ => return None,
    })
}

fn reduce(act: Act, rhs: &[Sym], mut v: Vec<Val>) -> Result<Val, Fail> {
    Ok(match act {
        Act::Pass(i) => take(&mut v, usize::from(i) - 1),
        Act::RootPipeline => match take(&mut v, 0) {
            Val::Pipeline(pipeline) => Val::Root(Query {
                pipeline,
                metrics: None,
                hints: Vec::new(),
            }),
            _ => return Err(BUG),
        },
        Act::RootExpression => {
            let pipeline = match take(&mut v, 0) {
                Val::Pipeline(p) => p,
                Val::Spanset(SpansetExpr::Pipeline(p)) => *p,
                Val::Spanset(s) => Pipeline {
                    elements: vec![PipelineElement::Spanset(s)],
                },
                _ => return Err(BUG),
            };
            Val::Root(Query {
                pipeline,
                metrics: None,
                hints: Vec::new(),
            })
        }
        Act::RootScalarFilter => match take(&mut v, 0) {
            Val::ScalarFilter(f) => Val::Root(Query {
                pipeline: Pipeline {
                    elements: vec![PipelineElement::ScalarFilter(f)],
                },
                metrics: None,
                hints: Vec::new(),
            }),
            _ => return Err(BUG),
        },
        Act::RootMetrics => match (take(&mut v, 0), take(&mut v, 2)) {
            (Val::Pipeline(pipeline), Val::Metrics(m)) => Val::Root(Query {
                pipeline,
                metrics: Some(m),
                hints: Vec::new(),
            }),
            _ => return Err(BUG),
        },
        Act::RootHints => match (take(&mut v, 0), take(&mut v, 1)) {
            (Val::Root(mut q), Val::Hints(h)) => {
                q.hints = h;
                Val::Root(q)
            }
            _ => return Err(BUG),
        },
        Act::SpansetOp => {
            let op = tok_at(&v, 1).and_then(spanset_op).ok_or(BUG)?;
            let lhs = into_spanset(take(&mut v, 0))?;
            let rhs = into_spanset(take(&mut v, 2))?;
            Val::Spanset(SpansetExpr::Operation {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            })
        }
        Act::PipelineNew => Val::Pipeline(Pipeline {
            elements: vec![into_element(take(&mut v, 0))?],
        }),
        Act::PipelineAdd => match take(&mut v, 0) {
            Val::Pipeline(mut p) => {
                p.elements.push(into_element(take(&mut v, 2))?);
                Val::Pipeline(p)
            }
            _ => return Err(BUG),
        },
        Act::Group => Val::Element(PipelineElement::GroupBy(into_field_expr(take(&mut v, 2))?)),
        Act::Coalesce => Val::Element(PipelineElement::Coalesce),
        Act::Select => match take(&mut v, 2) {
            Val::Attrs(a) => Val::Element(PipelineElement::Select(a)),
            _ => return Err(BUG),
        },
        Act::ListNew => Val::Attrs(vec![into_attr(take(&mut v, 0))?]),
        Act::ListAdd => match take(&mut v, 0) {
            Val::Attrs(mut list) => {
                list.push(into_attr(take(&mut v, 2))?);
                Val::Attrs(list)
            }
            _ => return Err(BUG),
        },
        Act::NumNew => Val::Nums(vec![number(take(&mut v, 0))?]),
        Act::NumAdd => match take(&mut v, 0) {
            Val::Nums(mut list) => {
                list.push(number(take(&mut v, 2))?);
                Val::Nums(list)
            }
            _ => return Err(BUG),
        },
        Act::FilterEmpty => {
            Val::Spanset(SpansetExpr::Filter(FieldExpr::Static(Static::Bool(true))))
        }
        Act::Filter => Val::Spanset(SpansetExpr::Filter(into_field_expr(take(&mut v, 1))?)),
        Act::ScalarFilter => {
            let op = match take(&mut v, 1) {
                Val::Cmp(op) => op,
                _ => return Err(BUG),
            };
            Val::ScalarFilter(ScalarFilter {
                op,
                lhs: into_scalar(take(&mut v, 0))?,
                rhs: into_scalar(take(&mut v, 2))?,
            })
        }
        Act::CmpOp => Val::Cmp(tok_at(&v, 0).and_then(binary_op).ok_or(BUG)?),
        Act::ScalarOp => {
            let op = tok_at(&v, 1).and_then(binary_op).ok_or(BUG)?;
            Val::Scalar(ScalarExpr::Operation {
                op,
                lhs: Box::new(into_scalar(take(&mut v, 0))?),
                rhs: Box::new(into_scalar(take(&mut v, 2))?),
            })
        }
        Act::ScalarPipeline => match (take(&mut v, 0), take(&mut v, 2)) {
            (Val::Pipeline(mut p), Val::Aggregate(a)) => {
                p.elements.push(PipelineElement::Aggregate(a));
                Val::Pipeline(p)
            }
            _ => return Err(BUG),
        },
        Act::ScalarNumber => match take(&mut v, 0) {
            Val::Tok(t, val) => Val::Scalar(ScalarExpr::Static(token_static(t, val).ok_or(BUG)?)),
            _ => return Err(BUG),
        },
        Act::ScalarNegNumber => match take(&mut v, 1) {
            Val::Tok(t, val) => {
                let s = match token_static(t, val).ok_or(BUG)? {
                    Static::Int(i) => Static::Int(i.wrapping_neg()),
                    Static::Float(f) => Static::Float(-f),
                    Static::Duration(d) => Static::Duration(d.wrapping_neg()),
                    _ => return Err(BUG),
                };
                Val::Scalar(ScalarExpr::Static(s))
            }
            _ => return Err(BUG),
        },
        Act::AggregateCount => Val::Aggregate(Aggregate {
            op: AggregateOp::Count,
            expr: None,
        }),
        Act::AggregateExpr => {
            let op = match tok_at(&v, 0) {
                Some(Tok::Max) => AggregateOp::Max,
                Some(Tok::Min) => AggregateOp::Min,
                Some(Tok::Avg) => AggregateOp::Avg,
                Some(Tok::Sum) => AggregateOp::Sum,
                _ => return Err(BUG),
            };
            Val::Aggregate(Aggregate {
                op,
                expr: Some(into_field_expr(take(&mut v, 2))?),
            })
        }
        Act::Metrics { attr, by, nums } => {
            let name = tok_at(&v, 0).ok_or(BUG)?;
            let by = if by == 0 {
                Vec::new()
            } else {
                match take(&mut v, usize::from(by) - 1) {
                    Val::Attrs(a) => a,
                    _ => return Err(BUG),
                }
            };
            let attr = if attr {
                Some(into_attr(take(&mut v, 2))?)
            } else {
                None
            };
            let quantiles = if nums {
                match take(&mut v, 4) {
                    Val::Nums(n) => n,
                    _ => return Err(BUG),
                }
            } else {
                Vec::new()
            };
            let function = match (name, attr) {
                (Tok::Rate, None) => MetricsFunction::Rate,
                (Tok::CountOverTime, None) => MetricsFunction::CountOverTime,
                (Tok::MinOverTime, Some(a)) => MetricsFunction::MinOverTime(a),
                (Tok::MaxOverTime, Some(a)) => MetricsFunction::MaxOverTime(a),
                (Tok::AvgOverTime, Some(a)) => MetricsFunction::AvgOverTime(a),
                (Tok::SumOverTime, Some(a)) => MetricsFunction::SumOverTime(a),
                (Tok::HistogramOverTime, Some(a)) => MetricsFunction::HistogramOverTime(a),
                (Tok::QuantileOverTime, Some(a)) => MetricsFunction::QuantileOverTime(a, quantiles),
                _ => return Err(BUG),
            };
            Val::Metrics(MetricsAggregate { function, by })
        }
        Act::Compare(ints) => {
            let filter = match take(&mut v, 2) {
                Val::Spanset(SpansetExpr::Filter(e)) => e,
                _ => return Err(BUG),
            };
            let int = |v: &mut Vec<Val>, i: usize| match take(v, i) {
                Val::Tok(_, TokVal::Int(n)) => Ok(n),
                _ => Err(BUG),
            };
            let (top_n, start, end) = match ints {
                0 => (10, 0, 0),
                1 => (int(&mut v, 4)?, 0, 0),
                _ => (int(&mut v, 4)?, int(&mut v, 6)?, int(&mut v, 8)?),
            };
            Val::Metrics(MetricsAggregate {
                function: MetricsFunction::Compare {
                    filter,
                    top_n,
                    start,
                    end,
                },
                by: Vec::new(),
            })
        }
        Act::Hint => match (take(&mut v, 0), take(&mut v, 2)) {
            (Val::Tok(_, TokVal::Str(name)), Val::Static(value)) => Val::Hint(Hint { name, value }),
            _ => return Err(BUG),
        },
        Act::Hints => take(&mut v, 2),
        Act::HintNew => match take(&mut v, 0) {
            Val::Hint(h) => Val::Hints(vec![h]),
            _ => return Err(BUG),
        },
        Act::HintAdd => match (take(&mut v, 0), take(&mut v, 2)) {
            (Val::Hints(mut list), Val::Hint(h)) => {
                list.push(h);
                Val::Hints(list)
            }
            _ => return Err(BUG),
        },
        Act::BinaryOp => {
            let op = tok_at(&v, 1).and_then(binary_op).ok_or(BUG)?;
            let lhs = into_field_expr(take(&mut v, 0))?;
            let rhs = into_field_expr(take(&mut v, 2))?;
            Val::Field(super::fold::binary(op, lhs, rhs).map_err(|_| Fail::DivideByZero)?)
        }
        Act::UnaryOp => {
            let op = match tok_at(&v, 0) {
                Some(Tok::Sub) => UnaryOp::Neg,
                Some(Tok::Not) => UnaryOp::Not,
                _ => return Err(BUG),
            };
            let expr = into_field_expr(take(&mut v, 1))?;
            Val::Field(super::fold::unary(op, expr))
        }
        Act::StaticTok => match take(&mut v, 0) {
            Val::Tok(t, val) => Val::Static(token_static(t, val).ok_or(BUG)?),
            _ => return Err(BUG),
        },
        Act::Intrinsic => Val::Attr(Field::Intrinsic(
            tok_at(&v, 0).and_then(intrinsic).ok_or(BUG)?,
        )),
        Act::ScopedIntrinsic => {
            let (scope, name) = (tok_at(&v, 0).ok_or(BUG)?, tok_at(&v, 1).ok_or(BUG)?);
            Val::Attr(Field::Intrinsic(scoped_intrinsic(scope, name).ok_or(BUG)?))
        }
        Act::AttributeField => {
            let scopes: Vec<Tok> = rhs
                .iter()
                .filter_map(|s| match s {
                    Sym::T(t) if t.starts_attribute() => Some(*t),
                    _ => None,
                })
                .collect();
            let name = match take(&mut v, rhs.len().saturating_sub(2)) {
                Val::Tok(Tok::Identifier, TokVal::Str(s)) => s,
                _ => return Err(BUG),
            };
            let parent = scopes.first() == Some(&Tok::ParentDot);
            let scope = match scopes.last() {
                Some(Tok::ResourceDot) => Scope::Resource,
                Some(Tok::SpanDot) => Scope::Span,
                Some(Tok::EventDot) => Scope::Event,
                Some(Tok::LinkDot) => Scope::Link,
                Some(Tok::InstrumentationDot) => Scope::Instrumentation,
                _ => Scope::None,
            };
            Val::Attr(Field::Attribute(Attribute {
                scope,
                parent,
                name,
            }))
        }
    })
}

fn number(v: Val) -> Result<f64, Fail> {
    match v {
        Val::Tok(_, TokVal::Int(i)) => Ok(i as f64),
        Val::Tok(_, TokVal::Float(f)) => Ok(f),
        _ => Err(BUG),
    }
}

// Keep the nonterminal enum referenced for readers of the grammar module.
const _: Nt = Nt::Root;
