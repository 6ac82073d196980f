//! Constant folding at parse time, as Tempo does when it builds operations: an operation that
//! references no span and validates is replaced by its value (`{ 1 + 1 }` is `{ 2 }`). This
//! shows in validation messages and spares the evaluator work.

use std::cmp::Ordering;

use super::ast::{BinaryOp, FieldExpr, Static, StaticType, Status, UnaryOp};
use super::validate::{check_field, references_span};

/// Tempo's fold of an integer division by zero panics; its parser turns that into an error.
pub(super) struct DivideByZero;

pub(super) fn binary(
    op: BinaryOp,
    lhs: FieldExpr,
    rhs: FieldExpr,
) -> Result<FieldExpr, DivideByZero> {
    let expr = FieldExpr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    };
    if references_span(&expr) || check_field(&expr).is_err() {
        return Ok(expr);
    }
    let FieldExpr::Binary { lhs, rhs, .. } = &expr else {
        return Ok(expr);
    };
    let (FieldExpr::Static(l), FieldExpr::Static(r)) = (&**lhs, &**rhs) else {
        return Ok(expr);
    };
    Ok(match execute_binary(op, l, r)? {
        Some(value) => FieldExpr::Static(value),
        None => expr,
    })
}

pub(super) fn unary(op: UnaryOp, expr: FieldExpr) -> FieldExpr {
    let node = FieldExpr::Unary {
        op,
        expr: Box::new(expr),
    };
    if references_span(&node) || check_field(&node).is_err() {
        return node;
    }
    let FieldExpr::Unary { expr, .. } = &node else {
        return node;
    };
    let FieldExpr::Static(s) = &**expr else {
        return node;
    };
    let value = match (op, s) {
        (UnaryOp::Not, Static::Bool(b)) => Static::Bool(!b),
        (UnaryOp::Neg, Static::Int(i)) => Static::Int(i.wrapping_neg()),
        (UnaryOp::Neg, Static::Float(f)) => Static::Float(-f),
        (UnaryOp::Neg, Static::Duration(d)) => Static::Duration(d.wrapping_neg()),
        _ => return node,
    };
    FieldExpr::Static(value)
}

/// Tempo's `Static.Equals`: numbers compare by value across int/float/duration, a status
/// equals its integer code, nil equals nothing.
pub fn static_equals(a: &Static, b: &Static) -> bool {
    match (a, b) {
        (Static::Nil, _) | (_, Static::Nil) => false,
        (Static::Int(x), Static::Int(y)) | (Static::Duration(x), Static::Duration(y)) => x == y,
        (Static::Int(x), Static::Duration(y)) | (Static::Duration(x), Static::Int(y)) => x == y,
        (Static::Status(s), Static::Int(i)) | (Static::Int(i), Static::Status(s)) => {
            status_code(*s) == *i
        }
        _ if a.static_type().is_numeric() && b.static_type().is_numeric() => {
            a.as_f64() == b.as_f64()
        }
        _ => a == b,
    }
}

fn status_code(s: Status) -> i64 {
    match s {
        Status::Error => 0,
        Status::Ok => 1,
        Status::Unset => 2,
    }
}

fn compare(op: BinaryOp, ord: Option<Ordering>) -> Option<Static> {
    let ord = ord?;
    Some(Static::Bool(match op {
        BinaryOp::Gt => ord == Ordering::Greater,
        BinaryOp::Gte => ord != Ordering::Less,
        BinaryOp::Lt => ord == Ordering::Less,
        BinaryOp::Lte => ord != Ordering::Greater,
        _ => return None,
    }))
}

/// Evaluates `l op r` over statics; `None` where folding is left to the evaluator (regexes,
/// integer powers).
fn execute_binary(op: BinaryOp, l: &Static, r: &Static) -> Result<Option<Static>, DivideByZero> {
    use BinaryOp::*;
    let (lt, rt) = (l.static_type(), r.static_type());
    if let (Static::String(a), Static::String(b)) = (l, r) {
        return Ok(match op {
            Eq => Some(Static::Bool(a == b)),
            Neq => Some(Static::Bool(a != b)),
            Gt | Gte | Lt | Lte => compare(op, Some(a.cmp(b))),
            _ => None,
        });
    }
    if let (Static::Int(a), Static::Int(b)) = (l, r) {
        let (a, b) = (*a, *b);
        return Ok(match op {
            Add => Some(Static::Int(a.wrapping_add(b))),
            Sub => Some(Static::Int(a.wrapping_sub(b))),
            Mul => Some(Static::Int(a.wrapping_mul(b))),
            Div if b == 0 => return Err(DivideByZero),
            Div => Some(Static::Int(a.wrapping_div(b))),
            Mod if b == 0 => return Err(DivideByZero),
            Mod => Some(Static::Int(a.wrapping_rem(b))),
            Eq => Some(Static::Bool(a == b)),
            Neq => Some(Static::Bool(a != b)),
            Gt | Gte | Lt | Lte => compare(op, Some(a.cmp(&b))),
            _ => None,
        });
    }
    let floats = lt.is_numeric() && rt.is_numeric();
    let (a, b) = (
        l.as_f64().unwrap_or(f64::NAN),
        r.as_f64().unwrap_or(f64::NAN),
    );
    Ok(match op {
        Add if floats => Some(Static::Float(a + b)),
        Sub if floats => Some(Static::Float(a - b)),
        Mul if floats => Some(Static::Float(a * b)),
        Div if floats => Some(Static::Float(a / b)),
        Mod if floats => Some(Static::Float(a % b)),
        Pow if floats => Some(Static::Float(a.powf(b))),
        Gt | Gte | Lt | Lte if floats => {
            compare(op, a.partial_cmp(&b)).or(Some(Static::Bool(false)))
        }
        Eq => Some(Static::Bool(static_equals(l, r))),
        Neq => Some(Static::Bool(!static_equals(l, r))),
        And | Or => match (l, r) {
            (Static::Bool(x), Static::Bool(y)) => {
                Some(Static::Bool(if op == And { *x && *y } else { *x || *y }))
            }
            _ => None,
        },
        _ if lt == StaticType::Nil || rt == StaticType::Nil => None,
        _ => None,
    })
}
