//! Jaeger (`distributor.receivers.jaeger`), as the Collector's jaeger receiver serves it:
//!
//! - `thrift_http` (`:14268`): `POST /api/traces` with a binary-protocol thrift `Batch`
//!   (`Content-Type: application/x-thrift` or `application/vnd.apache.thrift.binary`);
//!   202 Accepted once durable, 400 with the reason for a bad body.
//! - `grpc` (`:14250`): `jaeger.api_v2.CollectorService/PostSpans`, answered with an empty
//!   `PostSpansResponse`; other methods get UNIMPLEMENTED.
//! - `thrift_compact` / `thrift_binary` (UDP `:6831` / `:6832`): one `Agent.emitBatch` per
//!   datagram. UDP has no answer: a datagram that cannot be decoded or ingested is counted
//!   (`allegro_receiver_malformed_requests_total`, `allegro_receiver_refused_spans_total`)
//!   and logged at debug level, as the agent protocol gives the sender no way to know.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use allegro_engine::Tenant;
use allegro_receivers::jaeger::{self, AgentProtocol};
use prost::Message;

use crate::api;
use crate::grpc::{Code, Status};
use crate::ingest::{self, Receiver};
use crate::receivers::{text_error, text_preamble};
use crate::shared::Shared;

/// The thrift_http path.
pub const TRACES_PATH: &str = "/api/traces";
/// The gRPC method.
pub const POST_SPANS_PATH: &str = jaeger::POST_SPANS_PATH;
/// Bytes read per datagram: the largest UDP payload fits, so a datagram over the agent's
/// limit (`jaeger::AGENT_DATAGRAM_BYTES_MAX`) is refused by the decoder, not cut short here.
pub const DATAGRAM_BUFFER_BYTES: usize = 64 << 10;
const _: () = assert!(DATAGRAM_BUFFER_BYTES > jaeger::AGENT_DATAGRAM_BYTES_MAX);
/// Datagrams of one socket being ingested at once; past it the socket is read only as
/// ingests finish (the kernel's socket buffer queues, then drops, the rest).
pub const DATAGRAMS_IN_FLIGHT_MAX: usize = 256;

pub async fn handle_thrift_http(request: api::Request, shared: &Shared) -> api::Response {
    if request.path != TRACES_PATH {
        return api::not_found();
    }
    let (tenant, body) = match text_preamble(&request, shared, Receiver::JaegerThriftHttp) {
        Ok(taken) => taken,
        Err(response) => return response,
    };
    if let Err(err) =
        jaeger::check_thrift_content_type(request.header("content-type").unwrap_or(""))
    {
        return text_error(400, &err.message, false);
    }
    let decoded = match jaeger::decode_thrift_batch(&body) {
        Ok(decoded) => decoded,
        Err(err) => {
            shared
                .metrics
                .receivers
                .count_malformed(Receiver::JaegerThriftHttp);
            return text_error(
                400,
                &format!("Unable to process request body: {}", err.message),
                false,
            );
        }
    };
    let message = decoded.encode_to_vec();
    match ingest::ingest(shared, &tenant, Receiver::JaegerThriftHttp, &message, None).await {
        Ok(_) => api::text_response(202, ""),
        Err(err) => text_error(err.http_status(), &err.message(), err.retryable()),
    }
}

/// `PostSpans`: the decoded request message in, the response message out.
pub async fn post_spans(
    shared: &Shared,
    tenant: &Tenant,
    message: &[u8],
    deadline: Option<std::time::Duration>,
) -> Result<Vec<u8>, Status> {
    let decoded = jaeger::decode_grpc_post_spans(message).map_err(|err| {
        shared
            .metrics
            .receivers
            .count_malformed(Receiver::JaegerGrpc);
        Status::new(
            Code::InvalidArgument,
            format!("invalid PostSpansRequest: {}", err.message),
        )
    })?;
    let message = decoded.encode_to_vec();
    ingest::ingest(shared, tenant, Receiver::JaegerGrpc, &message, deadline)
        .await
        .map_err(|err| err.grpc_status())?;
    // `PostSpansResponse` has no fields.
    Ok(Vec::new())
}

fn receiver(protocol: AgentProtocol) -> Receiver {
    match protocol {
        AgentProtocol::Compact => Receiver::JaegerThriftCompact,
        AgentProtocol::Binary => Receiver::JaegerThriftBinary,
    }
}

/// Reads agent datagrams from one socket of this thread. Datagrams carry no
/// tenant: they go to the single tenant (with `multitenancy_enabled` they are refused and
/// counted, as Tempo has no org id for them either).
pub async fn serve_udp(socket: std::net::UdpSocket, protocol: AgentProtocol, shared: Arc<Shared>) {
    let socket = match monoio::net::udp::UdpSocket::from_std(socket) {
        Ok(socket) => socket,
        Err(err) => {
            log::error!("cannot register the jaeger UDP socket: {err}");
            return;
        }
    };
    let receiver = receiver(protocol);
    let in_flight = Rc::new(Cell::new(0usize));
    let mut buffer = vec![0u8; DATAGRAM_BUFFER_BYTES];
    // Runs until the thread's runtime stops; datagrams taken while shutting down are refused
    // by `ingest`.
    loop {
        let (result, buf) = socket.recv_from(buffer).await;
        buffer = buf;
        let length = match result {
            Ok((length, _peer)) => length,
            Err(err) => {
                log::debug!("jaeger UDP receive failed: {err}");
                continue;
            }
        };
        let datagram = buffer.get(..length).unwrap_or_default().to_vec();
        if shared.settings.multitenancy {
            shared.metrics.receivers.count_malformed(receiver);
            log::debug!("jaeger UDP datagram dropped: multitenancy_enabled and no X-Scope-OrgID");
            continue;
        }
        let shared = shared.clone();
        if in_flight.get() >= DATAGRAMS_IN_FLIGHT_MAX {
            ingest_datagram(&shared, protocol, &datagram).await;
        } else {
            in_flight.set(in_flight.get() + 1);
            let in_flight = in_flight.clone();
            monoio::spawn(async move {
                ingest_datagram(&shared, protocol, &datagram).await;
                in_flight.set(in_flight.get() - 1);
            });
        }
    }
}

async fn ingest_datagram(shared: &Shared, protocol: AgentProtocol, datagram: &[u8]) {
    let receiver = receiver(protocol);
    let decoded = match jaeger::decode_agent_datagram(datagram, protocol) {
        Ok(decoded) => decoded,
        Err(err) => {
            shared.metrics.receivers.count_malformed(receiver);
            log::debug!(
                "jaeger UDP datagram of {} bytes dropped: {err}",
                datagram.len()
            );
            return;
        }
    };
    let message = decoded.encode_to_vec();
    shared.in_flight.fetch_add(1, Ordering::AcqRel);
    if let Err(err) = ingest::ingest(shared, &Tenant::single(), receiver, &message, None).await {
        log::debug!("jaeger UDP datagram refused: {}", err.message());
    }
    shared.in_flight.fetch_sub(1, Ordering::AcqRel);
}
