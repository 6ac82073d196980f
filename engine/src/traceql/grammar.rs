//! TraceQL's grammar (Tempo 2.7) as data, and the LALR(1) automaton built from it.
//!
//! Tempo parses with a goyacc LALR(1) parser. Which prefixes are accepted, the token at which a
//! syntax error is detected, and the `expecting ...` list in the message all follow from that
//! automaton, so Allegro builds the same automaton from the same grammar (yacc's precedence and
//! associativity rules for shift/reduce conflicts, the earlier rule for reduce/reduce, and
//! goyacc's default reductions) instead of imitating it with a hand-written parser.
//!
//! Terminals are declared in Tempo's token order: goyacc lists expected tokens in that order.

use std::collections::HashMap;
use std::sync::OnceLock;

macro_rules! tokens {
    ($($name:ident = $text:expr,)*) => {
        /// Terminal symbols, in declaration order. `End` is goyacc's `$end`.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        #[repr(u8)]
        pub(super) enum Tok { $($name,)* }

        const TOK_ALL: &[Tok] = &[$(Tok::$name,)*];

        impl Tok {
            /// The name goyacc prints for the token (Tempo maps token constants to their text).
            pub(super) fn name(self) -> &'static str {
                match self { $(Tok::$name => $text,)* }
            }
        }
    };
}

tokens! {
    Identifier = "IDENTIFIER",
    String = "STRING",
    Integer = "INTEGER",
    Float = "FLOAT",
    Duration = "DURATION",
    Dot = ".",
    OpenBrace = "{",
    CloseBrace = "}",
    OpenParens = "(",
    CloseParens = ")",
    Comma = ",",
    Nil = "nil",
    True = "true",
    False = "false",
    StatusError = "error",
    StatusOk = "ok",
    StatusUnset = "unset",
    KindUnspecified = "unspecified",
    KindInternal = "internal",
    KindServer = "server",
    KindClient = "client",
    KindProducer = "producer",
    KindConsumer = "consumer",
    IDuration = "duration",
    ChildCount = "childCount",
    Name = "name",
    Status = "status",
    StatusMessage = "statusMessage",
    Parent = "parent",
    Kind = "kind",
    RootName = "rootName",
    RootServiceName = "rootServiceName",
    RootService = "rootService",
    TraceDuration = "traceDuration",
    NestedSetLeft = "nestedSetLeft",
    NestedSetRight = "nestedSetRight",
    NestedSetParent = "nestedSetParent",
    Id = "id",
    TraceId = "traceID",
    SpanId = "spanID",
    TimeSinceStart = "timeSinceStart",
    Version = "version",
    ParentDot = "parent.",
    ResourceDot = "resource.",
    SpanDot = "span.",
    TraceColon = "trace:",
    SpanColon = "span:",
    EventColon = "event:",
    EventDot = "event.",
    LinkColon = "link:",
    LinkDot = "link.",
    InstrumentationColon = "instrumentation:",
    InstrumentationDot = "instrumentation.",
    Count = "count",
    Avg = "avg",
    Max = "max",
    Min = "min",
    Sum = "sum",
    By = "by",
    Coalesce = "coalesce",
    Select = "select",
    EndAttribute = "END_ATTRIBUTE",
    Rate = "rate",
    CountOverTime = "count_over_time",
    MinOverTime = "min_over_time",
    MaxOverTime = "max_over_time",
    AvgOverTime = "avg_over_time",
    SumOverTime = "sum_over_time",
    QuantileOverTime = "quantile_over_time",
    HistogramOverTime = "histogram_over_time",
    Compare = "compare",
    With = "with",
    Pipe = "|",
    And = "&&",
    Or = "||",
    Eq = "=",
    Neq = "!=",
    Lt = "<",
    Lte = "<=",
    Gt = ">",
    Gte = ">=",
    Nre = "!~",
    Re = "=~",
    Desc = ">>",
    Ance = "<<",
    Sibl = "~",
    NotChild = "!>",
    NotParent = "!<",
    NotDesc = "!>>",
    NotAnce = "!<<",
    UnionChild = "&>",
    UnionParent = "&<",
    UnionDesc = "&>>",
    UnionAnce = "&<<",
    UnionSibl = "&~",
    Add = "+",
    Sub = "-",
    Not = "!",
    Mul = "*",
    Div = "/",
    Mod = "%",
    Pow = "^",
    End = "$end",
}

const TOK_COUNT: usize = TOK_ALL.len();
/// Lookahead sets are `u128` bitsets with one spare bit for the propagation marker.
const _: () = assert!(TOK_COUNT < 127);
const MARK: u128 = 1 << 127;

impl Tok {
    /// The token Tempo's lexer makes of `text`, if any (keywords and operators).
    pub(super) fn from_text(text: &str) -> Option<Tok> {
        match self::Tok::name_lookup(text) {
            Some(Tok::Identifier | Tok::String | Tok::Integer | Tok::Float | Tok::Duration)
            | Some(Tok::EndAttribute | Tok::End)
            | None => None,
            some => some,
        }
    }

    fn name_lookup(text: &str) -> Option<Tok> {
        static MAP: OnceLock<HashMap<&'static str, Tok>> = OnceLock::new();
        MAP.get_or_init(|| TOK_ALL.iter().map(|t| (t.name(), *t)).collect())
            .get(text)
            .copied()
    }

    /// Tokens after which the lexer reads an attribute name.
    pub(super) fn starts_attribute(self) -> bool {
        matches!(
            self,
            Tok::Dot
                | Tok::ResourceDot
                | Tok::SpanDot
                | Tok::ParentDot
                | Tok::EventDot
                | Tok::LinkDot
                | Tok::InstrumentationDot
        )
    }

    /// Scope tokens the lexer remembers (Tempo's `currentScope`).
    pub(super) fn is_scope(self) -> bool {
        matches!(
            self,
            Tok::ParentDot
                | Tok::SpanDot
                | Tok::ResourceDot
                | Tok::SpanColon
                | Tok::TraceColon
                | Tok::EventColon
                | Tok::LinkColon
                | Tok::InstrumentationColon
                | Tok::EventDot
                | Tok::LinkDot
                | Tok::InstrumentationDot
        )
    }

    fn index(self) -> usize {
        self as usize
    }

    /// yacc precedence level (0: none) and right-associativity.
    fn precedence(self) -> (u8, bool) {
        use Tok::*;
        match self {
            Pipe => (1, false),
            And | Or => (2, false),
            Eq | Neq | Lt | Lte | Gt | Gte | Nre | Re | Desc | Ance | Sibl | NotChild
            | NotParent | NotDesc | NotAnce | UnionChild | UnionParent | UnionDesc | UnionAnce
            | UnionSibl => (3, false),
            Add | Sub => (4, false),
            Not => (5, false),
            Mul | Div | Mod => (6, false),
            Pow => (7, true),
            _ => (0, false),
        }
    }
}

/// Nonterminal symbols.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub(super) enum Nt {
    Accept,
    Root,
    SpansetPipelineExpression,
    WrappedSpansetPipeline,
    SpansetPipeline,
    GroupOperation,
    CoalesceOperation,
    SelectOperation,
    Attribute,
    AttributeList,
    NumericList,
    SpansetExpression,
    SpansetFilter,
    ScalarFilter,
    ScalarFilterOperation,
    ScalarPipelineExpressionFilter,
    ScalarPipelineExpression,
    WrappedScalarPipeline,
    ScalarPipeline,
    ScalarExpression,
    Aggregate,
    MetricsAggregation,
    Hint,
    Hints,
    HintList,
    FieldExpression,
    Static,
    IntrinsicField,
    ScopedIntrinsicField,
    AttributeField,
}

const NT_COUNT: usize = Nt::AttributeField as usize + 1;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Sym {
    T(Tok),
    N(Nt),
}

/// What a reduction builds; interpreted by the parser.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Act {
    /// `$$ = $n` (1-based).
    Pass(u8),
    RootPipeline,
    RootExpression,
    RootScalarFilter,
    RootMetrics,
    RootHints,
    SpansetOp,
    PipelineNew,
    PipelineAdd,
    Group,
    Coalesce,
    Select,
    ListNew,
    ListAdd,
    NumNew,
    NumAdd,
    FilterEmpty,
    Filter,
    ScalarFilter,
    /// A scalar filter operator: the token is at `$1`.
    CmpOp,
    ScalarOp,
    ScalarPipeline,
    /// `INTEGER`, `FLOAT`, `DURATION` as a scalar static.
    ScalarNumber,
    /// `SUB INTEGER` and friends.
    ScalarNegNumber,
    AggregateCount,
    AggregateExpr,
    /// A metrics function: `$1` names it; `attr`: `$3` is its attribute; `by`: index of the
    /// `by(...)` list; `nums`: `$5` is the quantile list.
    Metrics {
        attr: bool,
        by: u8,
        nums: bool,
    },
    Compare(u8),
    Hint,
    Hints,
    HintNew,
    HintAdd,
    BinaryOp,
    UnaryOp,
    StaticTok,
    Intrinsic,
    ScopedIntrinsic,
    /// Attribute with the given scope token position and name position.
    AttributeField,
}

pub(super) struct Prod {
    pub lhs: Nt,
    pub rhs: Vec<Sym>,
    pub act: Act,
}

fn grammar() -> Vec<Prod> {
    use Nt::*;
    use Sym::{N, T};
    let mut g: Vec<Prod> = Vec::new();
    let mut p = |lhs: Nt, rhs: &[Sym], act: Act| {
        g.push(Prod {
            lhs,
            rhs: rhs.to_vec(),
            act,
        })
    };
    let spanset_ops = [
        Tok::And,
        Tok::Gt,
        Tok::Lt,
        Tok::Desc,
        Tok::Ance,
        Tok::Or,
        Tok::Sibl,
        Tok::NotChild,
        Tok::NotParent,
        Tok::NotDesc,
        Tok::NotAnce,
        Tok::Nre,
        Tok::UnionChild,
        Tok::UnionParent,
        Tok::UnionDesc,
        Tok::UnionAnce,
        Tok::UnionSibl,
    ];
    let scalar_ops = [Tok::Add, Tok::Sub, Tok::Mul, Tok::Div, Tok::Mod, Tok::Pow];

    p(Accept, &[N(Root)], Act::Pass(1));

    p(Root, &[N(SpansetPipeline)], Act::RootPipeline);
    p(Root, &[N(SpansetPipelineExpression)], Act::RootExpression);
    p(
        Root,
        &[N(ScalarPipelineExpressionFilter)],
        Act::RootScalarFilter,
    );
    p(
        Root,
        &[N(SpansetPipeline), T(Tok::Pipe), N(MetricsAggregation)],
        Act::RootMetrics,
    );
    p(Root, &[N(Root), N(Hints)], Act::RootHints);

    p(
        SpansetPipelineExpression,
        &[
            T(Tok::OpenParens),
            N(SpansetPipelineExpression),
            T(Tok::CloseParens),
        ],
        Act::Pass(2),
    );
    for op in spanset_ops {
        p(
            SpansetPipelineExpression,
            &[
                N(SpansetPipelineExpression),
                T(op),
                N(SpansetPipelineExpression),
            ],
            Act::SpansetOp,
        );
    }
    p(
        SpansetPipelineExpression,
        &[N(WrappedSpansetPipeline)],
        Act::Pass(1),
    );

    p(
        WrappedSpansetPipeline,
        &[T(Tok::OpenParens), N(SpansetPipeline), T(Tok::CloseParens)],
        Act::Pass(2),
    );

    for first in [
        SpansetExpression,
        ScalarFilter,
        GroupOperation,
        SelectOperation,
    ] {
        p(SpansetPipeline, &[N(first)], Act::PipelineNew);
    }
    for next in [
        SpansetExpression,
        ScalarFilter,
        GroupOperation,
        CoalesceOperation,
        SelectOperation,
    ] {
        p(
            SpansetPipeline,
            &[N(SpansetPipeline), T(Tok::Pipe), N(next)],
            Act::PipelineAdd,
        );
    }

    p(
        GroupOperation,
        &[
            T(Tok::By),
            T(Tok::OpenParens),
            N(FieldExpression),
            T(Tok::CloseParens),
        ],
        Act::Group,
    );
    p(
        CoalesceOperation,
        &[T(Tok::Coalesce), T(Tok::OpenParens), T(Tok::CloseParens)],
        Act::Coalesce,
    );
    p(
        SelectOperation,
        &[
            T(Tok::Select),
            T(Tok::OpenParens),
            N(AttributeList),
            T(Tok::CloseParens),
        ],
        Act::Select,
    );

    p(Attribute, &[N(IntrinsicField)], Act::Pass(1));
    p(Attribute, &[N(AttributeField)], Act::Pass(1));
    p(Attribute, &[N(ScopedIntrinsicField)], Act::Pass(1));

    p(AttributeList, &[N(Attribute)], Act::ListNew);
    p(
        AttributeList,
        &[N(AttributeList), T(Tok::Comma), N(Attribute)],
        Act::ListAdd,
    );

    p(NumericList, &[T(Tok::Float)], Act::NumNew);
    p(NumericList, &[T(Tok::Integer)], Act::NumNew);
    p(
        NumericList,
        &[N(NumericList), T(Tok::Comma), T(Tok::Float)],
        Act::NumAdd,
    );
    p(
        NumericList,
        &[N(NumericList), T(Tok::Comma), T(Tok::Integer)],
        Act::NumAdd,
    );

    p(
        SpansetExpression,
        &[
            T(Tok::OpenParens),
            N(SpansetExpression),
            T(Tok::CloseParens),
        ],
        Act::Pass(2),
    );
    for op in spanset_ops {
        p(
            SpansetExpression,
            &[N(SpansetExpression), T(op), N(SpansetExpression)],
            Act::SpansetOp,
        );
    }
    p(SpansetExpression, &[N(SpansetFilter)], Act::Pass(1));

    p(
        SpansetFilter,
        &[T(Tok::OpenBrace), T(Tok::CloseBrace)],
        Act::FilterEmpty,
    );
    p(
        SpansetFilter,
        &[T(Tok::OpenBrace), N(FieldExpression), T(Tok::CloseBrace)],
        Act::Filter,
    );

    p(
        ScalarFilter,
        &[
            N(ScalarExpression),
            N(ScalarFilterOperation),
            N(ScalarExpression),
        ],
        Act::ScalarFilter,
    );
    for op in [Tok::Eq, Tok::Neq, Tok::Lt, Tok::Lte, Tok::Gt, Tok::Gte] {
        p(ScalarFilterOperation, &[T(op)], Act::CmpOp);
    }

    p(
        ScalarPipelineExpressionFilter,
        &[
            N(ScalarPipelineExpression),
            N(ScalarFilterOperation),
            N(ScalarPipelineExpression),
        ],
        Act::ScalarFilter,
    );
    p(
        ScalarPipelineExpressionFilter,
        &[
            N(ScalarPipelineExpression),
            N(ScalarFilterOperation),
            N(Static),
        ],
        Act::ScalarFilter,
    );

    p(
        ScalarPipelineExpression,
        &[
            T(Tok::OpenParens),
            N(ScalarPipelineExpression),
            T(Tok::CloseParens),
        ],
        Act::Pass(2),
    );
    for op in scalar_ops {
        p(
            ScalarPipelineExpression,
            &[
                N(ScalarPipelineExpression),
                T(op),
                N(ScalarPipelineExpression),
            ],
            Act::ScalarOp,
        );
    }
    p(
        ScalarPipelineExpression,
        &[N(WrappedScalarPipeline)],
        Act::Pass(1),
    );

    p(
        WrappedScalarPipeline,
        &[T(Tok::OpenParens), N(ScalarPipeline), T(Tok::CloseParens)],
        Act::Pass(2),
    );
    p(
        ScalarPipeline,
        &[N(SpansetPipeline), T(Tok::Pipe), N(Aggregate)],
        Act::ScalarPipeline,
    );

    p(
        ScalarExpression,
        &[T(Tok::OpenParens), N(ScalarExpression), T(Tok::CloseParens)],
        Act::Pass(2),
    );
    for op in scalar_ops {
        p(
            ScalarExpression,
            &[N(ScalarExpression), T(op), N(ScalarExpression)],
            Act::ScalarOp,
        );
    }
    p(ScalarExpression, &[N(Aggregate)], Act::Pass(1));
    for t in [Tok::Integer, Tok::Float, Tok::Duration] {
        p(ScalarExpression, &[T(t)], Act::ScalarNumber);
    }
    for t in [Tok::Integer, Tok::Float, Tok::Duration] {
        p(ScalarExpression, &[T(Tok::Sub), T(t)], Act::ScalarNegNumber);
    }

    p(
        Aggregate,
        &[T(Tok::Count), T(Tok::OpenParens), T(Tok::CloseParens)],
        Act::AggregateCount,
    );
    for t in [Tok::Max, Tok::Min, Tok::Avg, Tok::Sum] {
        p(
            Aggregate,
            &[
                T(t),
                T(Tok::OpenParens),
                N(FieldExpression),
                T(Tok::CloseParens),
            ],
            Act::AggregateExpr,
        );
    }

    let by = [
        T(Tok::By),
        T(Tok::OpenParens),
        N(AttributeList),
        T(Tok::CloseParens),
    ];
    for t in [Tok::Rate, Tok::CountOverTime] {
        let base = [T(t), T(Tok::OpenParens), T(Tok::CloseParens)];
        let metrics = |by_at: u8| Act::Metrics {
            attr: false,
            by: by_at,
            nums: false,
        };
        p(MetricsAggregation, &base, metrics(0));
        p(
            MetricsAggregation,
            &[&base[..], &by[..]].concat(),
            metrics(6),
        );
    }
    for t in [
        Tok::MinOverTime,
        Tok::MaxOverTime,
        Tok::SumOverTime,
        Tok::AvgOverTime,
        Tok::HistogramOverTime,
    ] {
        let base = [T(t), T(Tok::OpenParens), N(Attribute), T(Tok::CloseParens)];
        let metrics = |by_at: u8| Act::Metrics {
            attr: true,
            by: by_at,
            nums: false,
        };
        p(MetricsAggregation, &base, metrics(0));
        p(
            MetricsAggregation,
            &[&base[..], &by[..]].concat(),
            metrics(7),
        );
    }
    let quantile = [
        T(Tok::QuantileOverTime),
        T(Tok::OpenParens),
        N(Attribute),
        T(Tok::Comma),
        N(NumericList),
        T(Tok::CloseParens),
    ];
    let metrics = |by_at: u8| Act::Metrics {
        attr: true,
        by: by_at,
        nums: true,
    };
    p(MetricsAggregation, &quantile, metrics(0));
    p(
        MetricsAggregation,
        &[&quantile[..], &by[..]].concat(),
        metrics(9),
    );
    let compare = [T(Tok::Compare), T(Tok::OpenParens), N(SpansetFilter)];
    p(
        MetricsAggregation,
        &[&compare[..], &[T(Tok::CloseParens)]].concat(),
        Act::Compare(0),
    );
    p(
        MetricsAggregation,
        &[
            &compare[..],
            &[T(Tok::Comma), T(Tok::Integer), T(Tok::CloseParens)],
        ]
        .concat(),
        Act::Compare(1),
    );
    p(
        MetricsAggregation,
        &[
            &compare[..],
            &[
                T(Tok::Comma),
                T(Tok::Integer),
                T(Tok::Comma),
                T(Tok::Integer),
                T(Tok::Comma),
                T(Tok::Integer),
                T(Tok::CloseParens),
            ],
        ]
        .concat(),
        Act::Compare(3),
    );

    p(
        Hint,
        &[T(Tok::Identifier), T(Tok::Eq), N(Static)],
        Act::Hint,
    );
    p(
        Hints,
        &[
            T(Tok::With),
            T(Tok::OpenParens),
            N(HintList),
            T(Tok::CloseParens),
        ],
        Act::Hints,
    );
    p(HintList, &[N(Hint)], Act::HintNew);
    p(
        HintList,
        &[N(HintList), T(Tok::Comma), N(Hint)],
        Act::HintAdd,
    );

    p(
        FieldExpression,
        &[T(Tok::OpenParens), N(FieldExpression), T(Tok::CloseParens)],
        Act::Pass(2),
    );
    for op in [
        Tok::Add,
        Tok::Sub,
        Tok::Mul,
        Tok::Div,
        Tok::Mod,
        Tok::Eq,
        Tok::Neq,
        Tok::Lt,
        Tok::Lte,
        Tok::Gt,
        Tok::Gte,
        Tok::Re,
        Tok::Nre,
        Tok::Pow,
        Tok::And,
        Tok::Or,
    ] {
        p(
            FieldExpression,
            &[N(FieldExpression), T(op), N(FieldExpression)],
            Act::BinaryOp,
        );
    }
    p(
        FieldExpression,
        &[T(Tok::Sub), N(FieldExpression)],
        Act::UnaryOp,
    );
    p(
        FieldExpression,
        &[T(Tok::Not), N(FieldExpression)],
        Act::UnaryOp,
    );
    p(FieldExpression, &[N(Static)], Act::Pass(1));
    p(FieldExpression, &[N(IntrinsicField)], Act::Pass(1));
    p(FieldExpression, &[N(AttributeField)], Act::Pass(1));
    p(FieldExpression, &[N(ScopedIntrinsicField)], Act::Pass(1));

    for t in [
        Tok::String,
        Tok::Integer,
        Tok::Float,
        Tok::True,
        Tok::False,
        Tok::Nil,
        Tok::Duration,
        Tok::StatusOk,
        Tok::StatusError,
        Tok::StatusUnset,
        Tok::KindUnspecified,
        Tok::KindInternal,
        Tok::KindServer,
        Tok::KindClient,
        Tok::KindProducer,
        Tok::KindConsumer,
    ] {
        p(Static, &[T(t)], Act::StaticTok);
    }

    for t in [
        Tok::IDuration,
        Tok::ChildCount,
        Tok::Name,
        Tok::Status,
        Tok::StatusMessage,
        Tok::Kind,
        Tok::Parent,
        Tok::RootName,
        Tok::RootServiceName,
        Tok::TraceDuration,
        Tok::NestedSetLeft,
        Tok::NestedSetRight,
        Tok::NestedSetParent,
    ] {
        p(IntrinsicField, &[T(t)], Act::Intrinsic);
    }

    let scoped: [(Tok, &[Tok]); 5] = [
        (
            Tok::TraceColon,
            &[Tok::IDuration, Tok::RootName, Tok::RootService, Tok::Id],
        ),
        (
            Tok::SpanColon,
            &[
                Tok::IDuration,
                Tok::Name,
                Tok::Kind,
                Tok::Status,
                Tok::StatusMessage,
                Tok::Id,
            ],
        ),
        (Tok::EventColon, &[Tok::Name, Tok::TimeSinceStart]),
        (Tok::LinkColon, &[Tok::TraceId, Tok::SpanId]),
        (Tok::InstrumentationColon, &[Tok::Name, Tok::Version]),
    ];
    for (scope, names) in scoped {
        for name in names {
            p(
                ScopedIntrinsicField,
                &[T(scope), T(*name)],
                Act::ScopedIntrinsic,
            );
        }
    }

    let attr = |scope: &[Tok]| -> Vec<Sym> {
        let mut v: Vec<Sym> = scope.iter().map(|t| T(*t)).collect();
        v.push(T(Tok::Identifier));
        v.push(T(Tok::EndAttribute));
        v
    };
    for scope in [
        &[Tok::Dot][..],
        &[Tok::ResourceDot],
        &[Tok::SpanDot],
        &[Tok::ParentDot],
        &[Tok::ParentDot, Tok::ResourceDot],
        &[Tok::ParentDot, Tok::SpanDot],
        &[Tok::EventDot],
        &[Tok::LinkDot],
        &[Tok::InstrumentationDot],
    ] {
        p(AttributeField, &attr(scope), Act::AttributeField);
    }
    g
}

/// A parser action for a (state, terminal) pair.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Action {
    Shift(u16),
    Reduce(u16),
    Accept,
    Error,
}

pub(super) struct Tables {
    pub prods: Vec<Prod>,
    /// Per state: explicit actions by terminal index (`None`: use the default).
    actions: Vec<Vec<Option<Action>>>,
    /// Per state: goyacc's default reduction (the most frequent one), if any.
    defaults: Vec<Option<u16>>,
    gotos: Vec<HashMap<u8, u16>>,
    /// Conflicts resolved without precedence (yacc's warnings), for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    pub unresolved_conflicts: usize,
}

impl Tables {
    pub(super) fn get() -> &'static Tables {
        static TABLES: OnceLock<Tables> = OnceLock::new();
        TABLES.get_or_init(build)
    }

    pub(super) fn action(&self, state: u16, tok: Tok) -> Action {
        let explicit = self
            .actions
            .get(state as usize)
            .and_then(|row| row.get(tok.index()))
            .copied()
            .flatten();
        match explicit {
            Some(a) => a,
            None => match self.defaults.get(state as usize).copied().flatten() {
                Some(p) => Action::Reduce(p),
                None => Action::Error,
            },
        }
    }

    pub(super) fn goto(&self, state: u16, nt: Nt) -> Option<u16> {
        self.gotos
            .get(state as usize)
            .and_then(|m| m.get(&(nt as u8)))
            .copied()
    }

    /// goyacc's "expecting" list: the shiftable tokens, in declaration order, if at most four.
    pub(super) fn expected(&self, state: u16) -> Vec<Tok> {
        let Some(row) = self.actions.get(state as usize) else {
            return Vec::new();
        };
        let shifts: Vec<Tok> = TOK_ALL
            .iter()
            .copied()
            .filter(|t| matches!(row.get(t.index()), Some(Some(Action::Shift(_)))))
            .collect();
        if shifts.len() > 4 {
            return Vec::new();
        }
        shifts
    }
}

type Item = (u16, u16); // (production, dot)

fn build() -> Tables {
    let prods = grammar();
    let mut by_lhs: Vec<Vec<u16>> = vec![Vec::new(); NT_COUNT];
    for (i, p) in prods.iter().enumerate() {
        by_lhs[p.lhs as usize].push(i as u16);
    }
    // FIRST sets; the grammar has no empty productions.
    let mut first = vec![0u128; NT_COUNT];
    loop {
        let mut changed = false;
        for p in &prods {
            let add = match p.rhs.first() {
                Some(Sym::T(t)) => 1u128 << t.index(),
                Some(Sym::N(n)) => first[*n as usize],
                None => 0,
            };
            let cur = &mut first[p.lhs as usize];
            if *cur | add != *cur {
                *cur |= add;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let sym_after = |(p, d): Item| prods[p as usize].rhs.get(d as usize).copied();

    // LR(0) automaton over kernels.
    let closure0 = |kernel: &[Item]| -> Vec<Item> {
        let mut items = kernel.to_vec();
        let mut seen = [false; NT_COUNT];
        let mut i = 0;
        while i < items.len() {
            if let Some(Sym::N(n)) = sym_after(items[i]) {
                if !seen[n as usize] {
                    seen[n as usize] = true;
                    items.extend(by_lhs[n as usize].iter().map(|&p| (p, 0)));
                }
            }
            i += 1;
        }
        items
    };
    let mut kernels: Vec<Vec<Item>> = vec![vec![(0, 0)]];
    let mut index: HashMap<Vec<Item>, u16> = HashMap::new();
    index.insert(vec![(0, 0)], 0);
    let mut transitions: Vec<Vec<(Sym, u16)>> = Vec::new();
    let mut s = 0;
    while s < kernels.len() {
        let items = closure0(&kernels[s]);
        let mut next: Vec<(Sym, Vec<Item>)> = Vec::new();
        for &it in &items {
            if let Some(x) = sym_after(it) {
                let moved = (it.0, it.1 + 1);
                match next.iter_mut().find(|(y, _)| *y == x) {
                    Some((_, k)) => k.push(moved),
                    None => next.push((x, vec![moved])),
                }
            }
        }
        let mut row = Vec::new();
        for (x, mut k) in next {
            k.sort_unstable();
            k.dedup();
            let id = match index.get(&k) {
                Some(&id) => id,
                None => {
                    let id = kernels.len() as u16;
                    index.insert(k.clone(), id);
                    kernels.push(k);
                    id
                }
            };
            row.push((x, id));
        }
        transitions.push(row);
        s += 1;
    }

    // LALR(1) lookaheads: spontaneous generation and propagation (dragon book 4.7.5).
    let n_states = kernels.len();
    let mut la: Vec<Vec<u128>> = kernels.iter().map(|k| vec![0u128; k.len()]).collect();
    la[0][0] = 1u128 << Tok::End.index();
    let mut propagate: Vec<Vec<(u16, usize, u16, usize)>> = Vec::new();
    let mut links = Vec::new();
    let target_of = |state: usize, x: Sym, item: Item, kernels: &Vec<Vec<Item>>| {
        let to = transitions[state]
            .iter()
            .find(|(y, _)| *y == x)
            .map(|(_, t)| *t)
            .unwrap_or(0);
        let pos = kernels[to as usize]
            .iter()
            .position(|&k| k == (item.0, item.1 + 1))
            .unwrap_or(0);
        (to, pos)
    };
    for s in 0..n_states {
        for ki in 0..kernels[s].len() {
            let kitem = kernels[s][ki];
            // LR(1) closure of [kitem, MARK], lookaheads per nonterminal.
            let mut la_nt = [0u128; NT_COUNT];
            let seed = |item: Item, look: u128, la_nt: &mut [u128; NT_COUNT]| {
                if let Some(Sym::N(b)) = sym_after(item) {
                    let beta = match sym_after((item.0, item.1 + 1)) {
                        Some(Sym::T(t)) => 1u128 << t.index(),
                        Some(Sym::N(n)) => first[n as usize],
                        None => look,
                    };
                    la_nt[b as usize] |= beta;
                }
            };
            seed(kitem, MARK, &mut la_nt);
            loop {
                let mut changed = false;
                for n in 0..NT_COUNT {
                    if la_nt[n] == 0 {
                        continue;
                    }
                    for &p in &by_lhs[n] {
                        let before = la_nt;
                        seed((p, 0), la_nt[n], &mut la_nt);
                        if before != la_nt {
                            changed = true;
                        }
                    }
                }
                if !changed {
                    break;
                }
            }
            let mut visit = |item: Item, look: u128| {
                if let Some(x) = sym_after(item) {
                    let (to, pos) = target_of(s, x, item, &kernels);
                    if look & MARK != 0 {
                        links.push((s as u16, ki, to, pos));
                    }
                    let spont = look & !MARK;
                    if spont != 0 {
                        la[to as usize][pos] |= spont;
                    }
                }
            };
            visit(kitem, MARK);
            for n in 0..NT_COUNT {
                if la_nt[n] != 0 {
                    for &p in &by_lhs[n] {
                        visit((p, 0), la_nt[n]);
                    }
                }
            }
        }
    }
    propagate.push(links);
    let links = propagate.pop().unwrap_or_default();
    loop {
        let mut changed = false;
        for &(from, fi, to, ti) in &links {
            let add = la[from as usize][fi];
            let cur = &mut la[to as usize][ti];
            if *cur | add != *cur {
                *cur |= add;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    // Action tables with yacc conflict resolution.
    let rule_prec = |p: usize| -> (u8, bool) {
        prods[p]
            .rhs
            .iter()
            .rev()
            .find_map(|s| match s {
                Sym::T(t) => Some(t.precedence()),
                Sym::N(_) => None,
            })
            .unwrap_or((0, false))
    };
    let mut actions = vec![vec![None; TOK_COUNT]; n_states];
    let mut gotos = vec![HashMap::new(); n_states];
    let mut defaults = vec![None; n_states];
    let mut unresolved = 0;
    for s in 0..n_states {
        for &(x, to) in &transitions[s] {
            match x {
                Sym::T(t) => actions[s][t.index()] = Some(Action::Shift(to)),
                Sym::N(n) => {
                    gotos[s].insert(n as u8, to);
                }
            }
        }
        for (ki, &(p, d)) in kernels[s].iter().enumerate() {
            if (d as usize) < prods[p as usize].rhs.len() {
                continue;
            }
            if p == 0 {
                actions[s][Tok::End.index()] = Some(Action::Accept);
                continue;
            }
            for t in TOK_ALL {
                if la[s][ki] & (1u128 << t.index()) == 0 {
                    continue;
                }
                let slot = &mut actions[s][t.index()];
                match *slot {
                    None => *slot = Some(Action::Reduce(p)),
                    Some(Action::Reduce(q)) => {
                        unresolved += 1;
                        *slot = Some(Action::Reduce(q.min(p)));
                    }
                    Some(Action::Shift(_)) => {
                        let (lp, _) = rule_prec(p as usize);
                        let (lt, right) = t.precedence();
                        if lp == 0 || lt == 0 {
                            unresolved += 1;
                        } else if lt == lp {
                            if !right {
                                *slot = Some(Action::Reduce(p));
                            }
                        } else if lt < lp {
                            *slot = Some(Action::Reduce(p));
                        }
                    }
                    Some(Action::Accept | Action::Error) => {}
                }
            }
        }
        // goyacc's default reduction: the most frequent reduce of the state.
        let mut best: Option<(u16, usize)> = None;
        for t in TOK_ALL {
            if let Some(Action::Reduce(p)) = actions[s][t.index()] {
                if best.is_some_and(|(b, _)| b == p) {
                    continue;
                }
                let count = actions[s]
                    .iter()
                    .filter(|a| **a == Some(Action::Reduce(p)))
                    .count();
                if best.is_none_or(|(_, c)| count > c) {
                    best = Some((p, count));
                }
            }
        }
        if let Some((p, _)) = best {
            defaults[s] = Some(p);
            for a in actions[s].iter_mut() {
                if *a == Some(Action::Reduce(p)) {
                    *a = None;
                }
            }
        }
    }
    Tables {
        prods,
        actions,
        defaults,
        gotos,
        unresolved_conflicts: unresolved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_build() {
        let t = Tables::get();
        assert!(t.actions.len() > 100);
        assert!(t.prods.len() > 150);
        // yacc resolves these by shifting, as goyacc does for Tempo's grammar.
        println!(
            "states {} unresolved conflicts {}",
            t.actions.len(),
            t.unresolved_conflicts
        );
    }
}
