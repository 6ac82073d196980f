//! The metrics answers in JSON, as Tempo's frontend writes them with jsonpb (see
//! [`crate::jsonpb`]): `timestampMs` as a string, a zero `value` left out, `"series":[]` for
//! an empty range answer (Tempo's combiner allocates the list) but no `series` for an empty
//! instant one (its translation appends to a nil list).

use crate::jsonpb::{search_metrics, Json};
use crate::tempopb;

/// `{"series":[{"labels":[...],"samples":[...],"promLabels":"...","exemplars":[...]}],
/// "metrics":{...}}`.
pub(super) fn range_json(r: &tempopb::QueryRangeResponse) -> Vec<u8> {
    let mut j = Json::new();
    j.open('{');
    j.key("series");
    j.open('[');
    for s in &r.series {
        j.comma();
        j.open('{');
        // `ToProto` allocates the labels (and each exemplar's) even when there are none.
        j.key_values_always("labels", &s.labels);
        if !s.samples.is_empty() {
            j.key("samples");
            j.open('[');
            for sample in &s.samples {
                j.comma();
                j.open('{');
                j.i64_string_field("timestampMs", sample.timestamp_ms);
                j.f64_field("value", sample.value);
                j.close('}');
            }
            j.close(']');
        }
        j.str_field("promLabels", &s.prom_labels);
        if !s.exemplars.is_empty() {
            j.key("exemplars");
            j.open('[');
            for e in &s.exemplars {
                j.comma();
                j.open('{');
                j.key_values_always("labels", &e.labels);
                j.f64_field("value", e.value);
                j.i64_string_field("timestampMs", e.timestamp_ms);
                j.close('}');
            }
            j.close(']');
        }
        j.close('}');
    }
    j.close(']');
    search_metrics(&mut j, r.metrics.as_ref());
    j.close('}');
    j.finish()
}

/// `{"series":[{"labels":[...],"value":1.5,"promLabels":"..."}],"metrics":{...}}`.
pub(super) fn instant_json(r: &tempopb::QueryInstantResponse) -> Vec<u8> {
    let mut j = Json::new();
    j.open('{');
    if !r.series.is_empty() {
        j.key("series");
        j.open('[');
        for s in &r.series {
            j.comma();
            j.open('{');
            j.key_values("labels", &s.labels);
            j.f64_field("value", s.value);
            j.str_field("promLabels", &s.prom_labels);
            j.close('}');
        }
        j.close(']');
    }
    search_metrics(&mut j, r.metrics.as_ref());
    j.close('}');
    j.finish()
}
