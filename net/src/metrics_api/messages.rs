//! Answers as `tempopb` messages: the engine's series as `TimeSeries` (or `InstantSeries`,
//! Tempo's `translateQueryRangeToInstant`), the job statistics as `SearchMetrics`, and the
//! diffs a stream sends while shards are still working (Tempo's `QueryRangeCombiner.Diff`).

use std::collections::{BTreeMap, HashMap};

use allegro_engine::metrics::{self, Label, LabelValue, MetricsRequest, Series};
use allegro_engine::search::{Found, ShardAnswer};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

use crate::tempopb;

/// The job statistics of an answer, from the shards' final answers (a shard's partial
/// answers count what it has inspected so far, so only its last one is added).
///
/// Tempo's frontend counts a job as its querier answers it, adding its inspected bytes and
/// spans; here a job is a shard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Stats {
    total_jobs: u32,
    completed_jobs: u32,
    total_blocks: u32,
    inspected_bytes: u64,
    inspected_spans: u64,
}

impl Stats {
    pub(super) fn new(total_jobs: u32) -> Stats {
        Stats {
            total_jobs,
            ..Stats::default()
        }
    }

    /// Counts a shard's answer in when it is the shard's final one.
    pub(super) fn add(&mut self, answer: &ShardAnswer) {
        if answer.partial {
            return;
        }
        self.completed_jobs += 1;
        self.total_blocks = self.total_blocks.saturating_add(answer.blocks);
        self.inspected_bytes = self.inspected_bytes.saturating_add(answer.inspected_bytes);
        self.inspected_spans = self.inspected_spans.saturating_add(answer.inspected_spans);
    }

    fn message(&self) -> tempopb::SearchMetrics {
        tempopb::SearchMetrics {
            inspected_traces: 0,
            inspected_bytes: self.inspected_bytes,
            total_blocks: self.total_blocks,
            completed_jobs: self.completed_jobs,
            total_jobs: self.total_jobs,
            total_block_bytes: 0,
            inspected_spans: self.inspected_spans,
        }
    }
}

/// The final series of a merged answer.
pub(super) fn final_series(request: &MetricsRequest, merged: &ShardAnswer) -> Vec<Series> {
    match &merged.found {
        Found::Metrics(partial) => metrics::finish(request, partial),
        other => unreachable!("a metrics job answered {other:?}"),
    }
}

fn key_value(label: &Label) -> KeyValue {
    let value = match &label.value {
        LabelValue::Str(s) => any_value::Value::StringValue(s.clone()),
        LabelValue::Int(i) => any_value::Value::IntValue(*i),
        LabelValue::Float(f) => any_value::Value::DoubleValue(*f),
        LabelValue::Bool(b) => any_value::Value::BoolValue(*b),
    };
    KeyValue {
        key: label.name.clone(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn time_series(series: &Series) -> tempopb::TimeSeries {
    tempopb::TimeSeries {
        labels: series.labels.iter().map(key_value).collect(),
        samples: series
            .samples
            .iter()
            .map(|s| tempopb::Sample {
                timestamp_ms: s.timestamp_ms,
                value: s.value,
            })
            .collect(),
        prom_labels: series.prom_labels.clone(),
        exemplars: series
            .exemplars
            .iter()
            .map(|e| tempopb::Exemplar {
                labels: e.labels.iter().map(key_value).collect(),
                value: e.value,
                timestamp_ms: e.timestamp_ms,
            })
            .collect(),
    }
}

pub(super) fn range_response(series: &[Series], stats: &Stats) -> tempopb::QueryRangeResponse {
    tempopb::QueryRangeResponse {
        series: series.iter().map(time_series).collect(),
        metrics: Some(stats.message()),
    }
}

/// Tempo's `translateQueryRangeToInstant`: each series with samples, by its first value.
pub(super) fn instant_response(series: &[Series], stats: &Stats) -> tempopb::QueryInstantResponse {
    tempopb::QueryInstantResponse {
        series: series
            .iter()
            .filter_map(|s| {
                let first = s.samples.first()?;
                Some(tempopb::InstantSeries {
                    labels: s.labels.iter().map(key_value).collect(),
                    value: first.value,
                    prom_labels: s.prom_labels.clone(),
                })
            })
            .collect(),
        metrics: Some(stats.message()),
    }
}

/// What a stream has sent of each series: sample values (their bits) by timestamp.
#[derive(Debug, Default)]
pub(super) struct Diffs {
    sent: HashMap<String, BTreeMap<i64, u64>>,
}

impl Diffs {
    /// The series as they should be sent now: those with a sample that is new or changed
    /// since the last call, each with its samples between the first and the last change
    /// (Tempo's per-series updated range) and all its exemplars. Marks them sent.
    pub(super) fn changed(&mut self, series: &[Series]) -> Vec<Series> {
        let mut out = Vec::new();
        for s in series {
            let sent = self.sent.entry(s.prom_labels.clone()).or_default();
            let mut range: Option<(i64, i64)> = None;
            for sample in &s.samples {
                let bits = sample.value.to_bits();
                if sent.insert(sample.timestamp_ms, bits) != Some(bits) {
                    let t = sample.timestamp_ms;
                    range = Some(range.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
                }
            }
            if let Some((lo, hi)) = range {
                let mut changed = s.clone();
                changed
                    .samples
                    .retain(|sample| (lo..=hi).contains(&sample.timestamp_ms));
                out.push(changed);
            }
        }
        out
    }
}
