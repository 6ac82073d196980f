//! A valid TraceQL metrics call ([`Call`]) from what either transport gives (HTTP parameters
//! or `StreamingQuerier` messages), checked in the order of Tempo 2.7's frontend with its
//! texts: first its combiner (`traceql.CompileMetricsQueryRangeNonRaw`: the range, the step,
//! the query), then its sharder (`metrics_query_range_sharder.go`: the range's width, the
//! exemplars), with the frontend's limits from the configuration ([`MetricsLimits`]).

use std::sync::Arc;
use std::time::Duration;

use allegro_engine::metrics::{MetricsRequest, EXEMPLARS_MAX};
use allegro_engine::search::Job;
use allegro_engine::traceql::{self, format_go_duration};

/// What a metrics query may ask for: Tempo's frontend limits, from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsLimits {
    /// `query_frontend.metrics.max_exemplars`, within [`EXEMPLARS_MAX`]; 0 = no exemplars.
    pub max_exemplars: u32,
    /// The widest `[start, end]`: `overrides…read.max_metrics_duration` when set, else
    /// `query_frontend.metrics.max_duration`; zero = none.
    pub max_duration: Duration,
}

impl MetricsLimits {
    pub fn from_config(config: &allegro_config::Config) -> MetricsLimits {
        let max_exemplars = config.query_frontend.metrics_max_exemplars;
        if max_exemplars > EXEMPLARS_MAX {
            log::warn!(
                "query_frontend.metrics.max_exemplars: {max_exemplars} is more than Allegro \
                 computes; using {EXEMPLARS_MAX}"
            );
        }
        let overridden = config.overrides.max_metrics_duration;
        MetricsLimits {
            max_exemplars: max_exemplars.min(EXEMPLARS_MAX),
            max_duration: if overridden.is_zero() {
                config.query_frontend.metrics_max_duration
            } else {
                overridden
            },
        }
    }

    /// The sharder's exemplars: none for instant queries or with `max_exemplars: 0`; the
    /// maximum when none (0) or more are asked for.
    fn exemplars(&self, asked: u32, instant: bool) -> u32 {
        if instant || self.max_exemplars == 0 {
            0
        } else if asked == 0 || asked > self.max_exemplars {
            self.max_exemplars
        } else {
            asked
        }
    }
}

impl Default for MetricsLimits {
    /// Tempo's defaults.
    fn default() -> MetricsLimits {
        MetricsLimits::from_config(&allegro_config::Config::default())
    }
}

/// A valid metrics call: the engine job and the shape of its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Always `Job::Metrics`.
    job: Arc<Job>,
    /// Asked on the instant endpoint (`/api/metrics/query`, `MetricsQueryInstant`): one
    /// value per series.
    instant: bool,
}

impl Call {
    pub fn job(&self) -> &Arc<Job> {
        &self.job
    }

    pub fn request(&self) -> &MetricsRequest {
        match &*self.job {
            Job::Metrics(request) => request,
            other => unreachable!("a metrics call holds a metrics job, not {other:?}"),
        }
    }

    pub fn is_instant(&self) -> bool {
        self.instant
    }
}

/// Why a metrics request was refused, by the part of Tempo's frontend that refuses it: that
/// decides the gRPC status (over HTTP both are a 400 with the text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The combiner, built before the pipeline runs: its error is a plain Go error returned
    /// from the gRPC handler, which grpc-go sends as `Unknown`.
    Query(String),
    /// The sharder, inside the pipeline: a 400 job answer, which the gRPC collector turns
    /// into `InvalidArgument`.
    Limit(String),
}

impl CallError {
    pub fn text(&self) -> &str {
        match self {
            CallError::Query(text) | CallError::Limit(text) => text,
        }
    }
}

/// A range request as both transports give it, in Unix nanoseconds, not yet aligned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RangeParams<'q> {
    pub(super) query: &'q str,
    pub(super) start_ns: u64,
    pub(super) end_ns: u64,
    pub(super) step_ns: u64,
    pub(super) exemplars: u32,
    pub(super) instant: bool,
}

/// A metrics call from its parameters, with the frontend's checks in Tempo's order.
pub(super) fn metrics_call(p: RangeParams<'_>, limits: &MetricsLimits) -> Result<Call, CallError> {
    let query_error = |text: &str| CallError::Query(text.to_string());
    // The combiner (`CompileMetricsQueryRangeNonRaw`).
    if p.start_ns == 0 {
        return Err(query_error("start required"));
    }
    if p.end_ns == 0 {
        return Err(query_error("end required"));
    }
    if p.end_ns <= p.start_ns {
        return Err(query_error("end must be greater than start"));
    }
    if p.step_ns == 0 {
        return Err(query_error("step required"));
    }
    let query =
        traceql::compile(p.query).map_err(|e| CallError::Query(format!("compiling query: {e}")))?;
    if !query.is_metrics() {
        return Err(query_error("not a metrics query"));
    }
    // The sharder: the width before alignment, as `time.Duration(end - start)`.
    let width_ns = (p.end_ns - p.start_ns) as i64;
    let max_ns = i64::try_from(limits.max_duration.as_nanos()).unwrap_or(i64::MAX);
    if max_ns != 0 && width_ns > max_ns {
        return Err(CallError::Limit(format!(
            "range specified by start and end ({}) exceeds {}. received start={} end={}",
            format_go_duration(width_ns),
            format_go_duration(max_ns),
            p.start_ns,
            p.end_ns
        )));
    }
    let exemplars = limits.exemplars(p.exemplars, p.instant);
    // Tempo's checks again, its alignment, and the engine's bound on the intervals
    // (`metrics::INTERVALS_MAX`, which Tempo 2.7 does not have).
    let request = MetricsRequest::new(query, p.start_ns, p.end_ns, p.step_ns, exemplars)
        .map_err(CallError::Query)?;
    Ok(Call {
        job: Arc::new(Job::Metrics(request)),
        instant: p.instant,
    })
}
