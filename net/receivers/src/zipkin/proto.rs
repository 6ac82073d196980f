//! Zipkin v2 protobuf (`POST /api/v2/spans` with `Content-Type: application/x-protobuf`): the
//! `zipkin.proto3` messages, and their decoding into [`ZipkinSpan`]s with the checks of
//! zipkin-go v0.4.3's `zipkin_proto3.ParseSpans`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use prost::Message;

use super::v2::{self, Kind, ZipkinSpan};
use crate::DecodeError;

/// `zipkin.proto3.ListOfSpans`: the request body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListOfSpans {
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<Span>,
}

/// `zipkin.proto3.Span`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    /// 16 bytes (8 accepted too, left-padded).
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    /// Empty or 8 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub parent_id: Vec<u8>,
    /// 8 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub id: Vec<u8>,
    /// `Span.Kind`: one of the `KIND_*` constants.
    #[prost(int32, tag = "4")]
    pub kind: i32,
    #[prost(string, tag = "5")]
    pub name: String,
    /// Epoch microseconds.
    #[prost(fixed64, tag = "6")]
    pub timestamp: u64,
    /// Microseconds.
    #[prost(uint64, tag = "7")]
    pub duration: u64,
    #[prost(message, optional, tag = "8")]
    pub local_endpoint: Option<Endpoint>,
    #[prost(message, optional, tag = "9")]
    pub remote_endpoint: Option<Endpoint>,
    #[prost(message, repeated, tag = "10")]
    pub annotations: Vec<Annotation>,
    #[prost(btree_map = "string, string", tag = "11")]
    pub tags: BTreeMap<String, String>,
    #[prost(bool, tag = "12")]
    pub debug: bool,
    #[prost(bool, tag = "13")]
    pub shared: bool,
}

pub const KIND_UNSPECIFIED: i32 = 0;
pub const KIND_CLIENT: i32 = 1;
pub const KIND_SERVER: i32 = 2;
pub const KIND_PRODUCER: i32 = 3;
pub const KIND_CONSUMER: i32 = 4;

/// `zipkin.proto3.Endpoint`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Endpoint {
    #[prost(string, tag = "1")]
    pub service_name: String,
    /// Empty or 4 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub ipv4: Vec<u8>,
    /// Empty or 16 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub ipv6: Vec<u8>,
    #[prost(int32, tag = "4")]
    pub port: i32,
}

/// `zipkin.proto3.Annotation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Annotation {
    /// Epoch microseconds.
    #[prost(fixed64, tag = "1")]
    pub timestamp: u64,
    #[prost(string, tag = "2")]
    pub value: String,
}

pub(super) fn parse(body: &[u8]) -> Result<Vec<ZipkinSpan>, DecodeError> {
    let list = ListOfSpans::decode(body)
        .map_err(|e| DecodeError::new(format!("body is not a zipkin.proto3 ListOfSpans: {e}")))?;
    let mut spans = Vec::with_capacity(list.spans.len());
    for (index, span) in list.spans.into_iter().enumerate() {
        spans.push(
            convert(index, span).map_err(|e| DecodeError::new(format!("span {index}: {e}")))?,
        );
    }
    Ok(spans)
}

fn convert(index: usize, span: Span) -> Result<ZipkinSpan, String> {
    let mut trace_id = [0u8; 16];
    match span.trace_id.len() {
        16 => trace_id.copy_from_slice(&span.trace_id),
        // zipkin-go rejects 8 bytes though zipkin.proto allows them; accepted here, left-padded.
        8 => {
            if let Some(low) = trace_id.get_mut(8..) {
                low.copy_from_slice(&span.trace_id);
            }
        }
        0 => return Err("traceId: missing".to_owned()),
        n => return Err(format!("traceId: {n} bytes, want 16 (or 8)")),
    }
    if trace_id == [0; 16] {
        return Err("traceId: is zero".to_owned());
    }
    let id = match span_id(&span.id).map_err(|e| format!("id: {e}"))? {
        None => return Err("id: missing".to_owned()),
        Some(id) if id == [0; 8] => return Err("id: is zero".to_owned()),
        Some(id) => id,
    };
    let parent_id = span_id(&span.parent_id).map_err(|e| format!("parentId: {e}"))?;
    let kind = match span.kind {
        KIND_CLIENT => Kind::Client,
        KIND_SERVER => Kind::Server,
        KIND_PRODUCER => Kind::Producer,
        KIND_CONSUMER => Kind::Consumer,
        _ => Kind::Unspecified,
    };
    let local_endpoint = span
        .local_endpoint
        .map(|e| endpoint(e).map_err(|err| format!("localEndpoint.{err}")))
        .transpose()?;
    let remote_endpoint = span
        .remote_endpoint
        .map(|e| endpoint(e).map_err(|err| format!("remoteEndpoint.{err}")))
        .transpose()?;
    Ok(ZipkinSpan {
        index,
        trace_id,
        id,
        parent_id,
        name: span.name,
        kind,
        timestamp_us: span.timestamp,
        // zipkin-go turns a 0 timestamp into time.Unix(0, 0), which is not Go's zero time:
        // no absent-start marker on this path.
        timestamp_absent: false,
        duration_us: span.duration,
        local_endpoint,
        remote_endpoint,
        annotations: span
            .annotations
            .into_iter()
            .map(|a| v2::Annotation {
                timestamp_us: a.timestamp,
                value: a.value,
            })
            .collect(),
        tags: span.tags,
    })
}

fn span_id(bytes: &[u8]) -> Result<Option<[u8; 8]>, String> {
    match <[u8; 8]>::try_from(bytes) {
        Ok(id) => Ok(Some(id)),
        Err(_) if bytes.is_empty() => Ok(None),
        Err(_) => Err(format!("{} bytes, want 8", bytes.len())),
    }
}

fn endpoint(e: Endpoint) -> Result<v2::Endpoint, String> {
    // zipkin-go truncates the port with uint16(); out of range is refused here instead.
    let port = u16::try_from(e.port).map_err(|_| format!("port: {} is not 0 to 65535", e.port))?;
    Ok(v2::Endpoint {
        service_name: e.service_name,
        ipv4: ip(&e.ipv4).map_err(|err| format!("ipv4: {err}"))?,
        ipv6: ip(&e.ipv6).map_err(|err| format!("ipv6: {err}"))?,
        port,
    })
}

/// Go's `net.IP(bytes)`: 4 bytes IPv4, 16 bytes IPv6; any other length the collector would
/// print as `?<hex>`, refused here.
fn ip(bytes: &[u8]) -> Result<Option<IpAddr>, String> {
    if bytes.is_empty() {
        return Ok(None);
    }
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Ok(Some(IpAddr::V4(Ipv4Addr::from(v4))));
    }
    if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        return Ok(Some(IpAddr::V6(Ipv6Addr::from(v6))));
    }
    Err(format!("{} bytes, want 4 or 16", bytes.len()))
}
