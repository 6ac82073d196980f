//! Pre-encoded request templates and the in-place patcher.
//!
//! A [`Template`] is a gRPC frame (5-byte header + encoded `ExportTraceServiceRequest`) built once
//! from a [`GeneratedRequest`], plus the byte offsets of every trace ID, span ID, parent span ID
//! and time field. Per request, [`Template::patch_into`] copies the frame and stamps fresh IDs
//! (from the caller's PRNG) and times (`now + relative offset`) in place. Every patched field has
//! a fixed width (16-byte and 8-byte `bytes`, `fixed64` times), so lengths never change and the
//! copy stays a valid protobuf message.
//!
//! ```text
//! frame:  [flag=0][len u32 BE][ ExportTraceServiceRequest ... trace_id ... span_id ... ]
//!                              ^ offsets below are relative to the frame start
//! trace_id_at: (offset, trace index)     span_id_at:   (offset, span index)
//! parent_id_at: (offset, parent index)   time_at:      (offset, now-relative ns as u64)
//! ```
//!
//! No IO.

use crate::grpc;
use crate::limits;
use crate::model::{self, GeneratedRequest, Shape, Topology};
use crate::protowalk::{self, SPAN_ID_BYTES, TRACE_ID_BYTES};
use crate::rng::Rng;
use prost::Message;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IdPatch {
    offset: u32,
    index: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TimePatch {
    offset: u32,
    rel_ns: u64,
}

#[derive(Clone, Debug)]
pub struct Template {
    frame: Vec<u8>,
    trace_span_counts: Vec<u32>,
    span_count: u32,
    trace_id_at: Vec<IdPatch>,
    span_id_at: Vec<IdPatch>,
    parent_id_at: Vec<IdPatch>,
    time_at: Vec<TimePatch>,
}

/// Why a generated request could not become a template. Always a bug in the model or the
/// walker, reported with enough detail to find it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateError {
    Walk(protowalk::WalkError),
    TooLarge { bytes: usize },
    SpanCount { walked: usize, generated: usize },
    MissingField { span: usize, field: &'static str },
    BadPlaceholder { span: usize, field: &'static str },
    DuplicateSpan { index: u32 },
    WrongParent { index: u32 },
    WrongTrace { index: u32 },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Walk(e) => write!(f, "walking the encoded request: {e}"),
            TemplateError::TooLarge { bytes } => write!(
                f,
                "request of {bytes} bytes exceeds {} bytes",
                limits::REQUEST_BYTES_MAX
            ),
            TemplateError::SpanCount { walked, generated } => {
                write!(f, "walked {walked} spans, generated {generated}")
            }
            TemplateError::MissingField { span, field } => {
                write!(f, "span #{span} (encoding order) lacks {field}")
            }
            TemplateError::BadPlaceholder { span, field } => {
                write!(f, "span #{span} (encoding order) has a foreign {field}")
            }
            TemplateError::DuplicateSpan { index } => write!(f, "span index {index} twice"),
            TemplateError::WrongParent { index } => write!(f, "span {index} has the wrong parent"),
            TemplateError::WrongTrace { index } => write!(f, "span {index} is in the wrong trace"),
        }
    }
}

impl std::error::Error for TemplateError {}

fn u32_offset(offset: usize) -> u32 {
    u32::try_from(offset).expect("frames are limited by REQUEST_BYTES_MAX < 4 GiB")
}

fn read_u64_le(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(word)
}

/// Fresh IDs of one patched request; reused between requests to avoid allocation.
#[derive(Clone, Debug, Default)]
pub struct RequestIds {
    pub trace_ids: Vec<[u8; 16]>,
    span_ids: Vec<[u8; 8]>,
}

impl Template {
    /// Encodes `generated` and locates its patchable fields, checking every placeholder.
    pub fn build(generated: &GeneratedRequest) -> Result<Template, TemplateError> {
        let message = generated.request.encode_to_vec();
        if message.len() > limits::REQUEST_BYTES_MAX {
            return Err(TemplateError::TooLarge {
                bytes: message.len(),
            });
        }
        let spans = protowalk::request_span_offsets(&message).map_err(TemplateError::Walk)?;
        let span_count = generated.span_trace.len();
        if spans.len() != span_count {
            return Err(TemplateError::SpanCount {
                walked: spans.len(),
                generated: span_count,
            });
        }
        let header = grpc::FRAME_HEADER_BYTES;
        let mut frame = Vec::with_capacity(header + message.len());
        grpc::encode_frame(false, &message, &mut frame);

        let mut seen = vec![false; span_count];
        let mut trace_id_at = Vec::with_capacity(span_count);
        let mut span_id_at = Vec::with_capacity(span_count);
        let mut parent_id_at = Vec::with_capacity(span_count);
        let mut time_at = Vec::with_capacity(span_count * 2);
        for (n, span) in spans.iter().enumerate() {
            let missing = |field| TemplateError::MissingField { span: n, field };
            let foreign = |field| TemplateError::BadPlaceholder { span: n, field };

            let at = span.span_id.ok_or(missing("span_id"))?;
            let index = model::placeholder_span_index(&message[at..at + SPAN_ID_BYTES])
                .filter(|&i| (i as usize) < span_count)
                .ok_or(foreign("span_id"))?;
            if std::mem::replace(&mut seen[index as usize], true) {
                return Err(TemplateError::DuplicateSpan { index });
            }
            span_id_at.push(IdPatch {
                offset: u32_offset(header + at),
                index,
            });

            let at = span.trace_id.ok_or(missing("trace_id"))?;
            let trace = model::placeholder_trace_index(&message[at..at + TRACE_ID_BYTES])
                .ok_or(foreign("trace_id"))?;
            if generated.span_trace[index as usize] != trace {
                return Err(TemplateError::WrongTrace { index });
            }
            trace_id_at.push(IdPatch {
                offset: u32_offset(header + at),
                index: trace,
            });

            let parent = match span.parent_span_id {
                None => None,
                Some(at) => {
                    let parent = model::placeholder_span_index(&message[at..at + SPAN_ID_BYTES])
                        .ok_or(foreign("parent_span_id"))?;
                    parent_id_at.push(IdPatch {
                        offset: u32_offset(header + at),
                        index: parent,
                    });
                    Some(parent)
                }
            };
            if generated.span_parent[index as usize] != parent {
                return Err(TemplateError::WrongParent { index });
            }

            let start = span.start_time.ok_or(missing("start_time_unix_nano"))?;
            let end = span.end_time.ok_or(missing("end_time_unix_nano"))?;
            for at in [start, end]
                .into_iter()
                .chain(span.event_times.iter().copied())
            {
                time_at.push(TimePatch {
                    offset: u32_offset(header + at),
                    rel_ns: read_u64_le(&message, at),
                });
            }
        }
        // Patch in offset order: the writes then walk the frame front to back.
        for patches in [&mut trace_id_at, &mut span_id_at, &mut parent_id_at] {
            patches.sort_by_key(|p| p.offset);
        }
        time_at.sort_by_key(|p| p.offset);
        let template = Template {
            frame,
            trace_span_counts: generated.trace_span_counts.clone(),
            span_count: u32::try_from(span_count).expect("limited by SPANS_PER_REQUEST_MAX"),
            trace_id_at,
            span_id_at,
            parent_id_at,
            time_at,
        };
        assert_eq!(
            template
                .trace_span_counts
                .iter()
                .map(|&c| c as usize)
                .sum::<usize>(),
            span_count
        );
        Ok(template)
    }

    /// Bytes of the protobuf message (without the gRPC frame header).
    pub fn message_bytes(&self) -> usize {
        self.frame.len() - grpc::FRAME_HEADER_BYTES
    }

    pub fn span_count(&self) -> u32 {
        self.span_count
    }

    pub fn trace_count(&self) -> usize {
        self.trace_span_counts.len()
    }

    /// Spans of each trace, by trace index (the order of [`RequestIds::trace_ids`]).
    pub fn trace_span_counts(&self) -> &[u32] {
        &self.trace_span_counts
    }

    /// Writes a copy of the frame into `out` (replacing its contents) with fresh IDs from `rng`
    /// and times `now_unix_ns + relative offset`. The fresh trace IDs are left in `ids`.
    pub fn patch_into(
        &self,
        out: &mut Vec<u8>,
        ids: &mut RequestIds,
        rng: &mut Rng,
        now_unix_ns: u64,
    ) {
        out.clear();
        out.extend_from_slice(&self.frame);

        ids.trace_ids.clear();
        ids.trace_ids
            .extend((0..self.trace_span_counts.len()).map(|_| rng.trace_id()));
        ids.span_ids.clear();
        ids.span_ids
            .extend((0..self.span_count).map(|_| rng.span_id()));

        for p in &self.trace_id_at {
            let at = p.offset as usize;
            out[at..at + TRACE_ID_BYTES].copy_from_slice(&ids.trace_ids[p.index as usize]);
        }
        for p in &self.span_id_at {
            let at = p.offset as usize;
            out[at..at + SPAN_ID_BYTES].copy_from_slice(&ids.span_ids[p.index as usize]);
        }
        for p in &self.parent_id_at {
            let at = p.offset as usize;
            out[at..at + SPAN_ID_BYTES].copy_from_slice(&ids.span_ids[p.index as usize]);
        }
        for p in &self.time_at {
            let at = p.offset as usize;
            out[at..at + 8].copy_from_slice(&now_unix_ns.wrapping_add(p.rel_ns).to_le_bytes());
        }
    }
}

/// The templates of a run: `count` shapes generated from one seed.
#[derive(Clone, Debug)]
pub struct TemplateSet {
    pub templates: Vec<Template>,
}

impl TemplateSet {
    pub fn build(shape: &Shape, count: usize, seed: u64) -> Result<TemplateSet, TemplateError> {
        assert!((1..=limits::TEMPLATES_MAX).contains(&count));
        let mut rng = Rng::derive(seed, u64::MAX);
        let topology = Topology::new(shape.services, &mut rng);
        let templates = (0..count)
            .map(|i| {
                let mut rng = Rng::derive(seed, i as u64);
                Template::build(&model::generate_request(shape, &topology, &mut rng))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TemplateSet { templates })
    }

    pub fn spans(&self) -> u64 {
        self.templates
            .iter()
            .map(|t| u64::from(t.span_count()))
            .sum()
    }

    pub fn message_bytes(&self) -> u64 {
        self.templates
            .iter()
            .map(|t| t.message_bytes() as u64)
            .sum()
    }

    /// Average encoded bytes per span over all templates.
    pub fn bytes_per_span(&self) -> f64 {
        self.message_bytes() as f64 / self.spans() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use std::collections::{HashMap, HashSet};

    const NOW_NS: u64 = 1_760_000_000_000_000_000;

    fn decode(frame: &[u8]) -> ExportTraceServiceRequest {
        assert_eq!(frame[0], 0, "uncompressed");
        let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
        assert_eq!(len, frame.len() - 5);
        ExportTraceServiceRequest::decode(&frame[5..]).expect("patched request decodes")
    }

    fn spans(req: &ExportTraceServiceRequest) -> Vec<&Span> {
        req.resource_spans
            .iter()
            .flat_map(|rs| rs.scope_spans.iter())
            .flat_map(|ss| ss.spans.iter())
            .collect()
    }

    fn check(shape: Shape) {
        let set = TemplateSet::build(&shape, 4, 11).expect("templates build");
        let mut rng = Rng::new(1);
        let mut out = Vec::new();
        let mut ids = RequestIds::default();
        let mut seen_spans = HashSet::new();
        let mut seen_traces = HashSet::new();
        for round in 0..3 {
            for template in &set.templates {
                let now = NOW_NS + round * 1_000_000_000;
                template.patch_into(&mut out, &mut ids, &mut rng, now);
                let req = decode(&out);
                let spans = spans(&req);
                assert_eq!(spans.len(), shape.spans_per_request());
                assert_eq!(template.span_count() as usize, spans.len());
                assert_eq!(ids.trace_ids.len(), shape.traces_per_request);

                let by_id: HashMap<&[u8], &Span> =
                    spans.iter().map(|s| (s.span_id.as_slice(), *s)).collect();
                assert_eq!(by_id.len(), spans.len(), "span IDs unique in a request");
                let mut per_trace: HashMap<&[u8], u32> = HashMap::new();
                for span in &spans {
                    assert!(
                        seen_spans.insert(span.span_id.clone()),
                        "span IDs unique across requests"
                    );
                    assert!(model::placeholder_span_index(&span.span_id).is_none());
                    *per_trace.entry(span.trace_id.as_slice()).or_default() += 1;
                    assert!(span.start_time_unix_nano <= span.end_time_unix_nano);
                    assert!(span.end_time_unix_nano < now);
                    assert!(span.start_time_unix_nano > now - 60 * 1_000_000_000);
                    for event in &span.events {
                        assert!(event.time_unix_nano >= span.start_time_unix_nano);
                        assert!(event.time_unix_nano <= span.end_time_unix_nano);
                    }
                    if span.parent_span_id.is_empty() {
                        continue;
                    }
                    let parent = by_id
                        .get(span.parent_span_id.as_slice())
                        .expect("parent link intact");
                    assert_eq!(parent.trace_id, span.trace_id, "parent in the same trace");
                    assert!(parent.start_time_unix_nano <= span.start_time_unix_nano);
                    assert!(span.end_time_unix_nano <= parent.end_time_unix_nano);
                }
                // Span counts per trace match what the template reports, in trace-ID order.
                for (trace_id, &count) in ids.trace_ids.iter().zip(template.trace_span_counts()) {
                    assert_eq!(per_trace.get(trace_id.as_slice()), Some(&count));
                    assert!(seen_traces.insert(*trace_id), "trace IDs unique");
                }
                assert_eq!(per_trace.len(), shape.traces_per_request);
                let roots = spans.iter().filter(|s| s.parent_span_id.is_empty()).count();
                assert_eq!(roots, shape.traces_per_request, "one root per trace");
            }
        }
    }

    #[test]
    fn patched_requests_decode_with_fresh_ids_and_intact_links() {
        check(Shape::default());
    }

    #[test]
    fn odd_shapes_patch_correctly() {
        check(Shape {
            services: 1,
            spans_per_trace: 1,
            traces_per_request: 1,
            attributes: 0,
            events_per_span: 0.0,
            error_rate: 0.0,
        });
        check(Shape {
            services: 40,
            spans_per_trace: 57,
            traces_per_request: 3,
            attributes: 20,
            events_per_span: 2.5,
            error_rate: 1.0,
        });
    }

    #[test]
    fn patching_changes_only_ids_and_times() {
        let set = TemplateSet::build(&Shape::default(), 1, 2).expect("builds");
        let template = &set.templates[0];
        let mut out = Vec::new();
        template.patch_into(
            &mut out,
            &mut RequestIds::default(),
            &mut Rng::new(3),
            NOW_NS,
        );
        assert_eq!(out.len(), template.frame.len());
        let mut patched = vec![false; out.len()];
        for p in template.trace_id_at.iter() {
            patched[p.offset as usize..][..16].fill(true);
        }
        for p in template.span_id_at.iter().chain(&template.parent_id_at) {
            patched[p.offset as usize..][..8].fill(true);
        }
        for p in &template.time_at {
            patched[p.offset as usize..][..8].fill(true);
        }
        for (i, (a, b)) in out.iter().zip(&template.frame).enumerate() {
            if !patched[i] {
                assert_eq!(a, b, "byte {i} changed but is not a patched field");
            }
        }
    }

    #[test]
    fn default_shape_is_about_430_bytes_per_span() {
        let set = TemplateSet::build(&Shape::default(), 16, 1).expect("builds");
        let per_span = set.bytes_per_span();
        assert!((380.0..=480.0).contains(&per_span), "{per_span} bytes/span");
    }

    #[test]
    fn templates_vary_and_are_deterministic() {
        let a = TemplateSet::build(&Shape::default(), 4, 9).expect("builds");
        let b = TemplateSet::build(&Shape::default(), 4, 9).expect("builds");
        for (x, y) in a.templates.iter().zip(&b.templates) {
            assert_eq!(x.frame, y.frame);
        }
        assert_ne!(a.templates[0].frame, a.templates[1].frame);
    }
}
