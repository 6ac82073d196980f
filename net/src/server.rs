//! The thin monoio shell: one thread per shard, each running a monoio runtime that owns one
//! engine shard and accepts connections on its own `SO_REUSEPORT` listeners. Connections are
//! served by the sans-IO codecs (`allegro-h2`, [`crate::http1`]); this module only moves bytes
//! and dispatches requests.
//!
//! **Architecture Invariant:** nothing here parses a protocol. Bytes go into a codec, events
//! come out, and handlers answer them through the codec.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use allegro_engine::{ShardTask, Tenant};
use allegro_h2::{Connection, ErrorCode, Event, ServerConfig};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
use monoio::net::TcpStream;

use crate::api;
use crate::grpc::{self, Code, Status};
use crate::http1;
use crate::ingest::{self, Receiver};
use crate::metrics;
use crate::shared::Shared;

/// The OTLP trace export method.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const EXPORT_SERVICE: &str = "opentelemetry.proto.collector.trace.v1.TraceService";
/// How often a thread looks at the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);
/// Bytes read from a socket at once.
const READ_BUFFER_BYTES: usize = 64 << 10;
/// Output a connection may queue before its reader stops taking input.
const OUTPUT_PENDING_BYTES_MAX: usize = 4 << 20;

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// OTLP gRPC (`:4317`): HTTP/2 only, `TraceService/Export`.
    OtlpGrpc,
    /// The query port (`:3200`): HTTP/1.1, or h2c detected by its preface; the
    /// `StreamingQuerier` too with `stream_over_http_enabled`.
    Http,
    /// Tempo's gRPC API port (`server.grpc_listen_port`, `:9095`): HTTP/2 only,
    /// `tempopb.StreamingQuerier` (what `tempo-cli query api ... --use-grpc` calls).
    GrpcApi,
    /// OTLP/HTTP (`:4318`): HTTP/1.1 or h2c, `POST /v1/traces`.
    OtlpHttp,
    /// Zipkin (`:9411`): HTTP/1.1 or h2c.
    Zipkin,
    /// Jaeger `thrift_http` (`:14268`): HTTP/1.1 or h2c, `POST /api/traces`.
    JaegerThriftHttp,
    /// Jaeger `grpc` (`:14250`): HTTP/2 only, `CollectorService/PostSpans`.
    JaegerGrpc,
}

impl Port {
    /// Ports that take HTTP/1.1 as well as h2c (told apart by the HTTP/2 preface).
    fn speaks_http1(self) -> bool {
        match self {
            Port::Http | Port::OtlpHttp | Port::Zipkin | Port::JaegerThriftHttp => true,
            Port::OtlpGrpc | Port::GrpcApi | Port::JaegerGrpc => false,
        }
    }
}

/// Listeners of one thread.
pub struct ThreadListeners {
    /// OTLP gRPC, when a receiver is configured.
    pub grpc: Option<std::net::TcpListener>,
    pub http: std::net::TcpListener,
    /// `server.grpc_listen_port`.
    pub grpc_api: std::net::TcpListener,
    /// The other TCP receivers that are configured, each with its port's protocol.
    pub receivers: Vec<(std::net::TcpListener, Port)>,
    /// The Jaeger agent UDP sockets that are configured.
    pub udp: Vec<(
        std::net::UdpSocket,
        allegro_receivers::jaeger::AgentProtocol,
    )>,
}

/// How long a fixed port that is in use is retried at startup (see [`bind_reuseport`]).
pub const BIND_IN_USE_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// Binds `count` listeners on one address with `SO_REUSEPORT`. With port 0 the first one
/// picks the port and the rest share it.
///
/// `SO_REUSEPORT` would also let this process share a port that another process of the same
/// user holds with `SO_REUSEPORT` (another Allegro): both would take connections, each with its
/// own WAL. So a fixed port is first bound once without it, which fails with `EADDRINUSE` when
/// anything listens there, as Tempo's listeners fail.
///
/// A process killed with `kill -9` keeps its listeners until the kernel has torn it down,
/// which takes a while when it had io_uring requests in flight: a server restarted straight
/// away would find its own port taken. So `EADDRINUSE` is retried for
/// [`BIND_IN_USE_RETRY`] before it is an error.
pub fn bind_reuseport(
    addr: SocketAddr,
    count: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    probe_exclusive(addr, socket2::Type::STREAM, socket2::Protocol::TCP)?;
    let mut listeners = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count {
        let domain = socket2::Domain::for_address(addr);
        let socket =
            socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        let listener: std::net::TcpListener = socket.into();
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Binds a fixed port once without `SO_REUSEPORT` (see [`bind_reuseport`]), retrying
/// `EADDRINUSE` for [`BIND_IN_USE_RETRY`], then lets it go. Port 0 needs no probe.
fn probe_exclusive(
    addr: SocketAddr,
    kind: socket2::Type,
    protocol: socket2::Protocol,
) -> std::io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = socket2::Socket::new(socket2::Domain::for_address(addr), kind, Some(protocol))?;
    if kind == socket2::Type::STREAM {
        probe.set_reuse_address(true)?;
    }
    let started = std::time::Instant::now();
    loop {
        match probe.bind(&addr.into()) {
            Ok(()) => return Ok(()),
            Err(err)
                if err.kind() == std::io::ErrorKind::AddrInUse
                    && started.elapsed() < BIND_IN_USE_RETRY =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(err) => return Err(err),
        }
    }
}

/// Binds `count` UDP sockets on one address with `SO_REUSEPORT` (the kernel spreads
/// datagrams over them by sender), after the same exclusive probe as [`bind_reuseport`].
pub fn bind_reuseport_udp(
    addr: SocketAddr,
    count: usize,
) -> std::io::Result<Vec<std::net::UdpSocket>> {
    let domain = socket2::Domain::for_address(addr);
    probe_exclusive(addr, socket2::Type::DGRAM, socket2::Protocol::UDP)?;
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count {
        let socket =
            socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        // Room for bursts while the thread is busy: 4 MiB (capped by net.core.rmem_max).
        let _ = socket.set_recv_buffer_size(4 << 20);
        socket.bind(&addr.into())?;
        let socket: std::net::UdpSocket = socket.into();
        addr = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// Runs one shard thread until its shard stops.
pub fn run_thread(
    id: usize,
    task: ShardTask,
    shared: Arc<Shared>,
    listeners: ThreadListeners,
    pin: bool,
) {
    if pin {
        if let Err(err) = monoio::utils::bind_to_cpu_set(Some(id)) {
            log::debug!("shard {id}: cannot pin to core {id}: {err}");
        }
    }
    let runtime = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build();
    let mut runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            log::error!("shard {id}: cannot start the monoio runtime: {err}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        if let Some(listener) = listeners.grpc {
            monoio::spawn(accept_loop(listener, Port::OtlpGrpc, shared.clone()));
        }
        monoio::spawn(accept_loop(listeners.http, Port::Http, shared.clone()));
        monoio::spawn(accept_loop(
            listeners.grpc_api,
            Port::GrpcApi,
            shared.clone(),
        ));
        for (listener, port) in listeners.receivers {
            monoio::spawn(accept_loop(listener, port, shared.clone()));
        }
        for (socket, protocol) in listeners.udp {
            monoio::spawn(crate::receivers::jaeger::serve_udp(
                socket,
                protocol,
                shared.clone(),
            ));
        }
        monoio::spawn(watch_shutdown(shared.clone()));
        task.run().await;
    });
}

thread_local! {
    /// HTTP/2 connections of this thread, told to send GOAWAY at shutdown.
    static CONNECTIONS: RefCell<Vec<Weak<H2Conn>>> = const { RefCell::new(Vec::new()) };
}

async fn watch_shutdown(shared: Arc<Shared>) {
    loop {
        monoio::time::sleep(SHUTDOWN_POLL).await;
        if shared.shutting_down.load(Ordering::Acquire) {
            break;
        }
    }
    let connections: Vec<Rc<H2Conn>> =
        CONNECTIONS.with(|c| c.borrow().iter().filter_map(Weak::upgrade).collect());
    for conn in connections {
        conn.codec.borrow_mut().shutdown();
        conn.wake_writer();
    }
}

async fn accept_loop(listener: std::net::TcpListener, port: Port, shared: Arc<Shared>) {
    let listener = match monoio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            log::error!("cannot register listener: {err}");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                if shared.shutting_down.load(Ordering::Acquire) {
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                shared
                    .metrics
                    .connections_accepted
                    .fetch_add(1, Ordering::Relaxed);
                monoio::spawn(serve_connection(stream, port, shared.clone()));
            }
            Err(err) => {
                if shared.shutting_down.load(Ordering::Acquire) {
                    return;
                }
                log::warn!("accept failed: {err}");
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve_connection(mut stream: TcpStream, port: Port, shared: Arc<Shared>) {
    match port {
        _ if !port.speaks_http1() => serve_h2(stream, Vec::new(), port, shared).await,
        _ => {
            // Tell HTTP/1.1 from the HTTP/2 prior-knowledge preface.
            let mut initial = Vec::new();
            loop {
                let (result, buf) = stream.read(Vec::with_capacity(READ_BUFFER_BYTES)).await;
                match result {
                    Ok(0) | Err(_) => return,
                    Ok(_) => initial.extend_from_slice(&buf),
                }
                match http1::h2_preface_check(&initial) {
                    http1::PrefaceCheck::NeedMore => continue,
                    http1::PrefaceCheck::IsH2 => {
                        return serve_h2(stream, initial, port, shared).await
                    }
                    http1::PrefaceCheck::NotH2 => {
                        return serve_http1(stream, initial, port, shared).await
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP/1.1

async fn serve_http1(mut stream: TcpStream, mut buffer: Vec<u8>, port: Port, shared: Arc<Shared>) {
    let mut out = Vec::new();
    loop {
        match http1::parse_request(&buffer, &shared.settings.http1) {
            Ok(Some((request, consumed))) => {
                buffer.drain(..consumed);
                let keep_alive =
                    request.keep_alive && !shared.shutting_down.load(Ordering::Acquire);
                let head = request.method == "HEAD";
                shared.in_flight.fetch_add(1, Ordering::AcqRel);
                let response = handle_http(port, request, &shared).await;
                shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                out.clear();
                http1::write_response(&response, keep_alive, head, &mut out);
                let (result, written) = stream.write_all(out).await;
                out = written;
                if result.is_err() || !keep_alive {
                    return;
                }
            }
            Ok(None) => {
                let (result, buf) = stream.read(Vec::with_capacity(READ_BUFFER_BYTES)).await;
                match result {
                    Ok(0) | Err(_) => return,
                    Ok(_) => buffer.extend_from_slice(&buf),
                }
            }
            Err(err) => {
                let response = err.to_response();
                out.clear();
                http1::write_response(&response, false, false, &mut out);
                let _ = stream.write_all(out).await;
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP/2

/// One HTTP/2 connection: the codec, and a way to wake its writer task.
struct H2Conn {
    codec: RefCell<Connection>,
    wake: flume::Sender<()>,
}

impl H2Conn {
    fn wake_writer(&self) {
        let _ = self.wake.try_send(());
    }
}

/// A request being received on one stream.
struct PendingStream {
    method: String,
    path: String,
    authority: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// Set once the body grew past the limit: the stream has been answered already.
    refused: bool,
}

fn h2_config(shared: &Shared) -> ServerConfig {
    ServerConfig {
        max_request_body_bytes: shared.settings.grpc_message_bytes_max + grpc::PREFIX_BYTES,
        ..ServerConfig::default()
    }
}

async fn serve_h2(stream: TcpStream, initial: Vec<u8>, port: Port, shared: Arc<Shared>) {
    let (wake, woken) = flume::bounded::<()>(1);
    let conn = Rc::new(H2Conn {
        codec: RefCell::new(Connection::new(h2_config(&shared))),
        wake,
    });
    CONNECTIONS.with(|c| {
        let mut list = c.borrow_mut();
        list.retain(|w| w.strong_count() > 0);
        list.push(Rc::downgrade(&conn));
    });
    if shared.shutting_down.load(Ordering::Acquire) {
        conn.codec.borrow_mut().shutdown();
    }
    let (mut reader, writer) = stream.into_split();
    let (drained_tx, drained_rx) = flume::bounded::<()>(1);
    let writer_task = monoio::spawn(write_h2(conn.clone(), writer, woken, drained_tx));
    conn.wake_writer();

    let mut streams: HashMap<u32, PendingStream> = HashMap::new();
    let mut input = initial;
    loop {
        if !input.is_empty() {
            let result = conn.codec.borrow_mut().recv(&input);
            input.clear();
            if let Err(err) = result {
                log::debug!("HTTP/2 connection error: {err:?}");
                conn.wake_writer();
                break;
            }
            process_events(&conn, &mut streams, port, &shared);
            conn.wake_writer();
        }
        if conn.codec.borrow().wants_close() {
            break;
        }
        // Backpressure: a peer that does not read its responses gets no more input read.
        while conn.codec.borrow().output_pending_bytes() > OUTPUT_PENDING_BYTES_MAX {
            if drained_rx.recv_async().await.is_err() {
                break;
            }
        }
        let (result, buf) = reader.read(Vec::with_capacity(READ_BUFFER_BYTES)).await;
        match result {
            Ok(0) | Err(_) => break,
            Ok(_) => input = buf,
        }
    }
    // Let queued output (a GOAWAY, final responses) go out, then close.
    conn.wake_writer();
    drop(reader);
    let _ = writer_task.await;
}

async fn write_h2(
    conn: Rc<H2Conn>,
    mut writer: monoio::io::OwnedWriteHalf<TcpStream>,
    woken: flume::Receiver<()>,
    drained: flume::Sender<()>,
) {
    let mut out = Vec::with_capacity(READ_BUFFER_BYTES);
    loop {
        loop {
            out.clear();
            conn.codec.borrow_mut().take_output(&mut out);
            if out.is_empty() {
                break;
            }
            let (result, buf) = writer.write_all(out).await;
            out = buf;
            if result.is_err() {
                return;
            }
            let _ = drained.try_send(());
        }
        if conn.codec.borrow().wants_close() {
            let _ = writer.shutdown().await;
            return;
        }
        if woken.recv_async().await.is_err() {
            return;
        }
    }
}

fn process_events(
    conn: &Rc<H2Conn>,
    streams: &mut HashMap<u32, PendingStream>,
    port: Port,
    shared: &Arc<Shared>,
) {
    loop {
        let event = conn.codec.borrow_mut().poll_event();
        let Some(event) = event else { break };
        match event {
            Event::Headers {
                stream_id,
                method,
                path,
                authority,
                headers,
                end_stream,
            } => {
                streams.insert(
                    stream_id,
                    PendingStream {
                        method,
                        path,
                        authority,
                        headers,
                        body: Vec::new(),
                        refused: false,
                    },
                );
                if end_stream {
                    if let Some(pending) = streams.remove(&stream_id) {
                        dispatch(conn, stream_id, pending, port, shared);
                    }
                }
            }
            Event::Data {
                stream_id,
                data,
                end_stream,
            } => {
                let limit = shared.settings.grpc_message_bytes_max + grpc::PREFIX_BYTES;
                if let Some(pending) = streams.get_mut(&stream_id) {
                    if !pending.refused {
                        if pending.body.len() + data.len() > limit {
                            pending.refused = true;
                            let status = Status::new(
                                Code::ResourceExhausted,
                                format!(
                                    "grpc: received message larger than max ({} vs. {})",
                                    pending.body.len() + data.len(),
                                    shared.settings.grpc_message_bytes_max
                                ),
                            );
                            if is_grpc(&pending.headers) {
                                send_grpc_status(conn, stream_id, &status);
                            } else {
                                let response = api::text_response(413, "request body too large\n");
                                send_api_response(conn, stream_id, &response);
                            }
                            conn.codec
                                .borrow_mut()
                                .reset_stream(stream_id, ErrorCode::NoError);
                        } else {
                            pending.body.extend_from_slice(&data);
                        }
                    }
                }
                if end_stream {
                    if let Some(pending) = streams.remove(&stream_id) {
                        if !pending.refused {
                            dispatch(conn, stream_id, pending, port, shared);
                        }
                    }
                }
            }
            Event::Trailers { stream_id, .. } => {
                if let Some(pending) = streams.remove(&stream_id) {
                    if !pending.refused {
                        dispatch(conn, stream_id, pending, port, shared);
                    }
                }
            }
            Event::StreamReset { stream_id, .. } => {
                streams.remove(&stream_id);
            }
        }
    }
}

fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

fn is_grpc(headers: &[(String, Vec<u8>)]) -> bool {
    header(headers, "content-type").is_some_and(|v| v.starts_with(b"application/grpc"))
}

/// Starts the handler of a complete request on this thread.
fn dispatch(
    conn: &Rc<H2Conn>,
    stream_id: u32,
    pending: PendingStream,
    port: Port,
    shared: &Arc<Shared>,
) {
    let conn = conn.clone();
    let shared = shared.clone();
    shared.in_flight.fetch_add(1, Ordering::AcqRel);
    monoio::spawn(async move {
        let querier_port = match port {
            Port::GrpcApi => true,
            Port::Http => shared.settings.stream_over_http,
            _ => false,
        };
        let streaming = querier_port
            && grpc::split_path(&pending.path)
                .is_some_and(|(service, _)| service == crate::tempopb::STREAMING_SERVICE);
        if is_grpc(&pending.headers) && streaming {
            serve_streaming(&conn, stream_id, &pending, &shared).await;
        } else if is_grpc(&pending.headers) {
            let (status, message) = handle_grpc(&pending, port, &shared).await;
            match status {
                None => {
                    let mut codec = conn.codec.borrow_mut();
                    codec.send_headers(
                        stream_id,
                        200,
                        &[("content-type", b"application/grpc")],
                        false,
                    );
                    let mut framed = Vec::with_capacity(message.len() + grpc::PREFIX_BYTES);
                    grpc::encode_message(&message, &mut framed);
                    codec.send_data(stream_id, &framed, false);
                    codec.send_trailers(stream_id, &[("grpc-status", b"0")]);
                }
                Some(status) => send_grpc_status(&conn, stream_id, &status),
            }
        } else if !port.speaks_http1() {
            // grpc-go answers a request without `application/grpc` with 415 too.
            let response = api::text_response(
                415,
                "invalid gRPC request content-type: expected application/grpc\n",
            );
            send_api_response(&conn, stream_id, &response);
        } else {
            let request = api::Request {
                method: pending.method,
                path: pending.path.split('?').next().unwrap_or("").to_string(),
                query: pending
                    .path
                    .split_once('?')
                    .map(|(_, q)| q.to_string())
                    .unwrap_or_default(),
                headers: pending
                    .headers
                    .into_iter()
                    .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
                    .chain(pending.authority.map(|a| ("host".to_string(), a)))
                    .collect(),
                body: pending.body,
                keep_alive: true,
            };
            let response = handle_http(port, request, &shared).await;
            send_api_response(&conn, stream_id, &response);
        }
        shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        conn.wake_writer();
    });
}

fn send_api_response(conn: &Rc<H2Conn>, stream_id: u32, response: &api::Response) {
    // HTTP/2 wants lowercase names and no connection-specific headers (RFC 9113 8.2.2).
    let lowercase: Vec<(String, &[u8])> = response
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes()))
        .filter(|(n, _)| n != "connection" && n != "transfer-encoding" && n != "keep-alive")
        .collect();
    let refs: Vec<(&str, &[u8])> = lowercase.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let mut codec = conn.codec.borrow_mut();
    let empty = response.body.is_empty();
    codec.send_headers(stream_id, response.status, &refs, empty);
    if !empty {
        codec.send_data(stream_id, &response.body, true);
    }
    drop(codec);
    conn.wake_writer();
}

/// A "trailers-only" gRPC error response.
fn send_grpc_status(conn: &Rc<H2Conn>, stream_id: u32, status: &Status) {
    let message = grpc::percent_encode_message(&status.message);
    conn.codec.borrow_mut().send_headers(
        stream_id,
        200,
        &[
            ("content-type", b"application/grpc"),
            ("grpc-status", status.code.as_header()),
            ("grpc-message", &message),
        ],
        true,
    );
    conn.wake_writer();
}

/// A `tempopb.StreamingQuerier` call: a search-side one or a TraceQL metrics one.
enum StreamingCall {
    Search(crate::search_api::Call),
    Metrics(crate::metrics_api::Call),
}

/// Serves one server-streaming `tempopb.StreamingQuerier` call (on the gRPC API port, and on
/// the HTTP port with `stream_over_http_enabled`): headers, partial messages while shards
/// work and a final one with everything, then `grpc-status` in the trailers. Bad requests
/// get a trailers-only status.
async fn serve_streaming(
    conn: &Rc<H2Conn>,
    stream_id: u32,
    pending: &PendingStream,
    shared: &Arc<Shared>,
) {
    let prepared = (|| -> Result<_, Status> {
        if pending.method != "POST" {
            return Err(Status::new(
                Code::Unimplemented,
                format!("gRPC requires POST, got {}", pending.method),
            ));
        }
        let method = grpc::split_path(&pending.path).map_or("", |(_, method)| method);
        let tenant = grpc_tenant(&pending.headers, shared)?;
        let encoding = grpc::Encoding::parse(header(&pending.headers, "grpc-encoding"))?;
        let message = grpc::decode_unary(
            &pending.body,
            encoding,
            shared.settings.grpc_message_bytes_max,
        )?;
        let call = if crate::metrics_api::METRICS_METHODS.contains(&method) {
            StreamingCall::Metrics(crate::metrics_api::grpc_call(
                method,
                &message,
                &shared.settings.metrics,
            )?)
        } else {
            StreamingCall::Search(crate::search_api::grpc_call(
                method,
                &message,
                &shared.settings.search,
            )?)
        };
        Ok((tenant, call))
    })();
    let (tenant, call) = match prepared {
        Ok(prepared) => prepared,
        Err(status) => {
            shared.metrics.count_grpc_error(status.code);
            send_grpc_status(conn, stream_id, &status);
            return;
        }
    };
    // The query's deadline: `querier.search.query_timeout`, or the client's own when shorter
    // (then the status is DEADLINE_EXCEEDED, as the client's gRPC library would report it).
    let configured = shared.settings.search_timeout;
    let (timeout, code) =
        match header(&pending.headers, "grpc-timeout").and_then(grpc::parse_timeout) {
            Some(client) if client < configured => (client, Code::DeadlineExceeded),
            _ => (configured, Code::Internal),
        };
    conn.codec.borrow_mut().send_headers(
        stream_id,
        200,
        &[("content-type", b"application/grpc")],
        false,
    );
    conn.wake_writer();
    let send = |message: Vec<u8>| {
        let mut framed = Vec::with_capacity(message.len() + grpc::PREFIX_BYTES);
        grpc::encode_message(&message, &mut framed);
        conn.codec.borrow_mut().send_data(stream_id, &framed, false);
        conn.wake_writer();
    };
    let outcome = match &call {
        StreamingCall::Search(call) => {
            crate::search_api::stream(&shared.engine, &tenant, call, timeout, send).await
        }
        StreamingCall::Metrics(call) => {
            crate::metrics_api::stream(&shared.engine, &tenant, call, timeout, send).await
        }
    };
    match outcome {
        Ok(()) => conn
            .codec
            .borrow_mut()
            .send_trailers(stream_id, &[("grpc-status", b"0")]),
        Err(_) => {
            shared.metrics.count_grpc_error(code);
            let message = grpc::percent_encode_message(crate::shards::DEADLINE_EXCEEDED);
            conn.codec.borrow_mut().send_trailers(
                stream_id,
                &[
                    ("grpc-status", code.as_header()),
                    ("grpc-message", &message),
                ],
            );
        }
    }
    conn.wake_writer();
}

/// Serves one unary gRPC call. `Ok` answers carry `None` and the response message.
async fn handle_grpc(
    pending: &PendingStream,
    port: Port,
    shared: &Arc<Shared>,
) -> (Option<Status>, Vec<u8>) {
    match handle_export(pending, port, shared).await {
        Ok(message) => (None, message),
        Err(status) => {
            shared.metrics.count_grpc_error(status.code);
            (Some(status), Vec::new())
        }
    }
}

async fn handle_export(
    pending: &PendingStream,
    port: Port,
    shared: &Arc<Shared>,
) -> Result<Vec<u8>, Status> {
    if pending.method != "POST" {
        return Err(Status::new(
            Code::Unimplemented,
            format!("gRPC requires POST, got {}", pending.method),
        ));
    }
    let Some((service, method)) = grpc::split_path(&pending.path) else {
        return Err(Status::new(
            Code::Unimplemented,
            format!("malformed method name: {:?}", pending.path),
        ));
    };
    if port == Port::Http && service == crate::tempopb::STREAMING_SERVICE {
        return Err(Status::new(
            Code::Unimplemented,
            format!(
                "{service} is not served on the HTTP port: stream_over_http_enabled is false \
                 (set it to true, or call the gRPC port server.grpc_listen_port)"
            ),
        ));
    }
    if port == Port::JaegerGrpc && pending.path == crate::receivers::jaeger::POST_SPANS_PATH {
        let tenant = grpc_tenant(&pending.headers, shared)?;
        let encoding = grpc::Encoding::parse(header(&pending.headers, "grpc-encoding"))?;
        let deadline = header(&pending.headers, "grpc-timeout").and_then(grpc::parse_timeout);
        let message = grpc::decode_unary(
            &pending.body,
            encoding,
            shared.settings.grpc_message_bytes_max,
        )?;
        return crate::receivers::jaeger::post_spans(shared, &tenant, &message, deadline).await;
    }
    if port != Port::OtlpGrpc || service != EXPORT_SERVICE {
        return Err(Status::new(
            Code::Unimplemented,
            format!("unknown service {service}"),
        ));
    }
    if method != "Export" {
        return Err(Status::new(
            Code::Unimplemented,
            format!("unknown method {method} for service {service}"),
        ));
    }
    let tenant = grpc_tenant(&pending.headers, shared)?;
    let encoding = grpc::Encoding::parse(header(&pending.headers, "grpc-encoding"))?;
    let deadline = header(&pending.headers, "grpc-timeout").and_then(grpc::parse_timeout);
    let message = grpc::decode_unary(
        &pending.body,
        encoding,
        shared.settings.grpc_message_bytes_max,
    )?;
    let accepted = ingest::ingest(shared, &tenant, Receiver::OtlpGrpc, &message, deadline)
        .await
        .map_err(|err| err.grpc_status())?;
    Ok(ingest::encode_export_response(&accepted))
}

fn grpc_tenant(headers: &[(String, Vec<u8>)], shared: &Shared) -> Result<Tenant, Status> {
    if !shared.settings.multitenancy {
        return Ok(Tenant::single());
    }
    let Some(value) = header(headers, "x-scope-orgid") else {
        return Err(Status::new(
            Code::Unauthenticated,
            "no org id: multitenancy_enabled is true and the request has no X-Scope-OrgID header",
        ));
    };
    let text = std::str::from_utf8(value)
        .map_err(|_| Status::new(Code::InvalidArgument, "X-Scope-OrgID is not valid UTF-8"))?;
    Tenant::parse(text).map_err(|err| {
        Status::new(
            Code::InvalidArgument,
            format!("invalid X-Scope-OrgID {text:?}: {err}"),
        )
    })
}

fn http_tenant(request: &api::Request, shared: &Shared) -> Result<Tenant, api::Response> {
    if !shared.settings.multitenancy {
        return Ok(Tenant::single());
    }
    let Some((_, value)) = request.headers.iter().find(|(n, _)| n == "x-scope-orgid") else {
        return Err(api::text_response(401, "no org id\n"));
    };
    Tenant::parse(value).map_err(|err| {
        api::text_response(400, &format!("invalid X-Scope-OrgID {value:?}: {err}\n"))
    })
}

// ---------------------------------------------------------------------------------------
// The query API, shared by HTTP/1.1 and HTTP/2.

/// Answers an HTTP request (HTTP/1.1 or h2c) on `port`.
async fn handle_http(port: Port, request: api::Request, shared: &Arc<Shared>) -> api::Response {
    let receiver = match port {
        Port::Http => return handle_api(request, shared).await,
        Port::OtlpHttp => Receiver::OtlpHttp,
        Port::Zipkin => Receiver::Zipkin,
        Port::JaegerThriftHttp => Receiver::JaegerThriftHttp,
        Port::OtlpGrpc => Receiver::OtlpGrpc,
        Port::GrpcApi => return api::not_found(),
        Port::JaegerGrpc => Receiver::JaegerGrpc,
    };
    shared.metrics.http_requests.fetch_add(1, Ordering::Relaxed);
    crate::receivers::handle_http(receiver, request, shared).await
}

/// Set by `/shutdown`; the main thread acts on it like on SIGTERM.
pub static SHUTDOWN_REQUESTED: AtomicBool = AtomicBool::new(false);

async fn handle_api(request: api::Request, shared: &Arc<Shared>) -> api::Response {
    shared.metrics.http_requests.fetch_add(1, Ordering::Relaxed);
    match api::route(&request, &shared.settings.search, &shared.settings.metrics) {
        api::Route::Echo => api::echo_response(),
        api::Route::Ready => {
            if shared.engine.is_ready() {
                api::ready_response(true, "")
            } else {
                api::ready_response(false, "WAL replay in progress")
            }
        }
        api::Route::BuildInfo => api::buildinfo_response(),
        api::Route::StatusVersion => api::status_version_response(),
        api::Route::Metrics => api::metrics_response(metrics::render(
            &shared.engine,
            &shared.metrics,
            shared.uring,
            shared.started,
        )),
        api::Route::Flush => {
            // Every shard cuts its head blocks; answered once they are published.
            match shared.engine.flush().await {
                Ok(()) => api::flush_response(),
                Err(err) => {
                    log::error!("flush: {err}");
                    api::text_response(500, &format!("flush failed: {err}\n"))
                }
            }
        }
        api::Route::Shutdown => {
            // Tempo's /shutdown flushes the ingester's blocks, then exits.
            if let Err(err) = shared.engine.flush().await {
                log::error!("shutdown: flush failed (the WAL still holds the data): {err}");
            }
            SHUTDOWN_REQUESTED.store(true, Ordering::Release);
            // SAFETY: raising a signal at our own process; the main thread waits for it.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGTERM);
            }
            api::shutdown_response()
        }
        api::Route::TraceById(query) => {
            let tenant = match http_tenant(&request, shared) {
                Ok(tenant) => tenant,
                Err(response) => return response,
            };
            // `start`/`end` (unix seconds) narrow the blocks searched, as in Tempo; live
            // traces and the WAL are always searched.
            let range = match (query.start_unix_secs, query.end_unix_secs) {
                (None, None) => None,
                (start, end) => Some((
                    start.unwrap_or(0).saturating_mul(1_000_000_000),
                    end.map_or(u64::MAX, |e| {
                        e.saturating_add(1).saturating_mul(1_000_000_000)
                    }),
                )),
            };
            // `querier.trace_by_id.query_timeout`: past it, Tempo's querier fails the lookup
            // with `context deadline exceeded` (500). Zero has passed already.
            let timeout = shared.settings.trace_by_id_timeout;
            let lookup = shared.engine.get_trace_in(&tenant, query.trace_id, range);
            let found = if timeout.is_zero() {
                None
            } else {
                monoio::select! {
                    found = lookup => Some(found),
                    _ = monoio::time::sleep(timeout) => None,
                }
            };
            let Some(found) = found else {
                log::warn!(
                    "trace {}: no answer within {} (querier.trace_by_id.query_timeout)",
                    query.trace_id,
                    allegro_config::format_duration(timeout)
                );
                return api::go_http_error_vary(500, crate::shards::DEADLINE_EXCEEDED);
            };
            match found {
                Ok(trace) => api::trace_response(&query, trace.as_deref()),
                Err(err) => {
                    log::error!("trace {}: {err}", query.trace_id);
                    api::text_response(500, &format!("{err}\n"))
                }
            }
        }
        api::Route::Search(call) => {
            let tenant = match http_tenant(&request, shared) {
                Ok(tenant) => tenant,
                Err(response) => return response,
            };
            let gzip = api::accepts_gzip(&request);
            crate::search_api::answer_http(
                &shared.engine,
                &tenant,
                &call,
                gzip,
                shared.settings.search_timeout,
            )
            .await
        }
        api::Route::MetricsQuery(call) => {
            let tenant = match http_tenant(&request, shared) {
                Ok(tenant) => tenant,
                Err(response) => return response,
            };
            let gzip = api::accepts_gzip(&request);
            crate::metrics_api::answer_http(
                &shared.engine,
                &tenant,
                &call,
                gzip,
                shared.settings.search_timeout,
            )
            .await
        }
        api::Route::Immediate(response) => response,
    }
}
