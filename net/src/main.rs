//! `allegro`: a drop-in replacement for the Grafana Tempo binary.
//!
//! `allegro -config.file=tempo.yaml` reads the user's Tempo config, replays the WAL, then
//! serves OTLP gRPC, the Tempo query API (HTTP) and Tempo's gRPC API
//! (`server.grpc_listen_port`) until SIGTERM/SIGINT.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use allegro_config::{Backend, Config, Endpoint, Loaded, WalFsync};
use allegro_engine::{Engine, EngineConfig, FsyncPolicy};
use allegro_net::limits::RateLimiters;
use allegro_net::metrics::NetMetrics;
use allegro_net::server::{self, ThreadListeners};
use allegro_net::shared::{ReceiverSettings, Settings, Shared};

/// mimalloc instead of glibc's malloc: the hot path allocates a payload per trace batch and
/// frees it on another thread (the builder); glibc's `_int_malloc`/`_int_free` were ~13% of
/// the server's CPU at full load (bench/PROFILE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = match allegro_config::parse_args(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(err) => {
            eprintln!("{err}");
            eprintln!("{}", allegro_config::usage());
            return ExitCode::from(2);
        }
    };
    if cli.help {
        println!("{}", allegro_config::usage());
        return ExitCode::SUCCESS;
    }
    if cli.version {
        println!(
            "allegro, version {} (Tempo 2.7.2 compatible; HTTP/2, gRPC and the WAL in Rust)",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    init_logging();
    abort_on_panic();
    let loaded = match &cli.config_file {
        Some(path) => allegro_config::load_file(path, cli.config_expand_env),
        None => {
            log::info!(
                "no -config.file given: using the embedded default config (data under ./data/)"
            );
            Ok(Loaded {
                config: Config::embedded_default(),
                warnings: Vec::new(),
            })
        }
    };
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("error loading config: {err}");
            return ExitCode::FAILURE;
        }
    };
    for warning in &loaded.warnings {
        log::warn!("{warning}");
    }
    match run(loaded.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A panic is a bug (STYLE.md: assert and crash). A panicking shard thread must not leave
/// the process up and silent: print the panic, then abort; a restart replays the WAL.
fn abort_on_panic() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        eprintln!("allegro: a thread panicked; aborting so that a restart recovers from the WAL");
        std::process::abort();
    }));
}

fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_target(false)
        .init();
}

fn resolve(endpoint: &Endpoint, what: &str) -> Result<SocketAddr, String> {
    let host = if endpoint.host.is_empty() {
        "0.0.0.0"
    } else {
        endpoint.host.as_str()
    };
    (host, endpoint.port)
        .to_socket_addrs()
        .map_err(|err| format!("{what}: cannot resolve {host}:{}: {err}", endpoint.port))?
        .next()
        .ok_or_else(|| format!("{what}: {host}:{} resolves to no address", endpoint.port))
}

fn run(config: Config) -> Result<(), String> {
    if config.storage.backend != Backend::Local {
        return Err(format!(
            "storage.trace.backend: {} is not supported by Allegro yet; use \"local\"",
            config.storage.backend.as_str()
        ));
    }
    let shards = config.allegro.shards;
    let uring = monoio::utils::detect_uring();
    if !uring {
        log::warn!("io_uring is not available here: falling back to monoio's epoll driver");
    }
    let engine_config = EngineConfig {
        wal_dir: config.storage.wal_path.clone(),
        shards,
        fsync: match config.allegro.wal_fsync {
            WalFsync::Always => FsyncPolicy::Always,
            WalFsync::Interval => FsyncPolicy::Interval,
            WalFsync::Never => FsyncPolicy::Never,
        },
        fsync_interval: config.allegro.wal_fsync_interval,
        wal_segment_bytes_max: config.allegro.wal_segment_bytes_max,
        trace_bytes_max: config.overrides.max_bytes_per_trace,
        // Tempo bounds an ingester's memory by counting live traces
        // (`max_traces_per_user`); a shard bounds it in bytes, and holds each trace until its
        // head block is cut (no idle period: `trace_idle_period` is not needed to bound memory).
        live_bytes_max: config.allegro.live_traces_bytes_max,
        block_dir: config.storage.local_path.clone(),
        max_block_duration: config.ingester.max_block_duration,
        max_block_bytes: config.ingester.max_block_bytes,
        block_retention: config.compactor.block_retention,
        compaction_window: config.compactor.compaction_window,
    };
    std::fs::create_dir_all(&engine_config.wal_dir).map_err(|err| {
        format!(
            "storage.trace.wal.path: cannot create {}: {err}",
            engine_config.wal_dir.display()
        )
    })?;
    std::fs::create_dir_all(&config.storage.local_path).map_err(|err| {
        format!(
            "storage.trace.local.path: cannot create {}: {err}",
            config.storage.local_path.display()
        )
    })?;

    let http_addr = resolve(&config.server.http_endpoint(), "server.http_listen_port")?;
    let grpc_api_addr = resolve(&config.server.grpc_endpoint(), "server.grpc_listen_port")?;
    let grpc_addr = match &config.distributor.otlp_grpc_endpoint {
        Some(endpoint) => Some(resolve(
            endpoint,
            "distributor.receivers.otlp.protocols.grpc.endpoint",
        )?),
        None => None,
    };
    let http_listeners = server::bind_reuseport(http_addr, shards)
        .map_err(|err| format!("cannot listen on {http_addr} (server.http_listen_port): {err}"))?;
    let grpc_listeners = match grpc_addr {
        Some(addr) => Some(server::bind_reuseport(addr, shards).map_err(|err| {
            format!("cannot listen on {addr} (distributor.receivers.otlp.protocols.grpc.endpoint): {err}")
        })?),
        None => None,
    };
    // Tempo's gRPC API (`tempopb.StreamingQuerier`); Tempo always serves it.
    let grpc_api_listeners = server::bind_reuseport(grpc_api_addr, shards).map_err(|err| {
        format!("cannot listen on {grpc_api_addr} (server.grpc_listen_port): {err}")
    })?;
    let receivers = bind_receivers(&config, shards)?;
    let http_bound = http_listeners[0].local_addr().map_err(|e| e.to_string())?;
    let grpc_api_bound = grpc_api_listeners[0]
        .local_addr()
        .map_err(|e| e.to_string())?;
    let grpc_bound = match &grpc_listeners {
        Some(l) => Some(l[0].local_addr().map_err(|e| e.to_string())?),
        None => None,
    };
    let listener_fds: Vec<i32> = {
        use std::os::fd::AsRawFd;
        http_listeners
            .iter()
            .chain(grpc_listeners.iter().flatten())
            .chain(grpc_api_listeners.iter())
            .map(|l| l.as_raw_fd())
            .chain(
                receivers
                    .tcp
                    .iter()
                    .flat_map(|(listeners, _)| listeners.iter().map(|l| l.as_raw_fd())),
            )
            .collect()
    };

    let (engine, tasks) = Engine::new(&engine_config);
    let shared = Arc::new(Shared {
        engine: engine.clone(),
        settings: Settings {
            multitenancy: config.multitenancy_enabled,
            stream_over_http: config.stream_over_http_enabled,
            grpc_message_bytes_max: grpc_message_bytes_max(config.allegro.grpc_max_recv_msg_bytes),
            rate_limit_bytes: config.overrides.ingestion_rate_limit_bytes,
            burst_bytes: config.overrides.ingestion_burst_size_bytes,
            shutdown_timeout: config.allegro.shutdown_timeout,
            http1: allegro_net::http1::Limits::default(),
            search_timeout: config.querier.search_query_timeout,
            trace_by_id_timeout: config.querier.trace_by_id_query_timeout,
            search: allegro_net::search_api::SearchLimits::from_config(&config),
            metrics: allegro_net::metrics_api::MetricsLimits::from_config(&config),
            receivers: ReceiverSettings {
                otlp_http_cors: config.distributor.otlp_http_cors.clone(),
                zipkin_parse_string_tags: config.distributor.zipkin_parse_string_tags,
            },
        },
        shutting_down: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        limiter: RateLimiters::new(
            config.overrides.ingestion_rate_limit_bytes,
            config.overrides.ingestion_burst_size_bytes,
        ),
        metrics: NetMetrics::default(),
        started: Instant::now(),
        uring,
    });

    // Signals are taken by `sigwait` on this thread only: block them before any thread
    // starts so that every thread inherits the mask.
    let signals = block_termination_signals();

    let mut grpc_listeners = grpc_listeners.map(|l| l.into_iter());
    let receivers_bound = receivers.bound.join(" ");
    let mut tcp_receivers: Vec<_> = receivers
        .tcp
        .into_iter()
        .map(|(listeners, port)| (listeners.into_iter(), port))
        .collect();
    let mut udp_receivers: Vec<_> = receivers
        .udp
        .into_iter()
        .map(|(sockets, protocol)| (sockets.into_iter(), protocol))
        .collect();
    let mut threads = Vec::with_capacity(shards);
    for ((task, http), grpc_api) in tasks
        .into_iter()
        .zip(http_listeners)
        .zip(grpc_api_listeners)
    {
        let id = task.id();
        let listeners = ThreadListeners {
            grpc: grpc_listeners.as_mut().and_then(Iterator::next),
            http,
            grpc_api,
            receivers: tcp_receivers
                .iter_mut()
                .filter_map(|(listeners, port)| listeners.next().map(|l| (l, *port)))
                .collect(),
            udp: udp_receivers
                .iter_mut()
                .filter_map(|(sockets, protocol)| sockets.next().map(|s| (s, *protocol)))
                .collect(),
        };
        let shared = shared.clone();
        let pin = shards <= available_cores();
        let thread = std::thread::Builder::new()
            .name(format!("allegro-shard-{id}"))
            .spawn(move || server::run_thread(id, task, shared, listeners, pin))
            .map_err(|err| format!("cannot start shard thread {id}: {err}"))?;
        threads.push(thread);
    }
    let otlp_grpc = grpc_bound.map_or_else(|| "off".to_string(), |addr| addr.to_string());
    log::info!(
        "allegro {} listening otlp_grpc={otlp_grpc} http={http_bound} grpc={grpc_api_bound}{receivers_bound} shards={shards} wal={} fsync={:?} io_uring={uring}",
        env!("CARGO_PKG_VERSION"),
        engine_config.wal_dir.display(),
        engine_config.fsync
    );
    for (key, timeout) in [
        (
            "querier.search.query_timeout",
            config.querier.search_query_timeout,
        ),
        (
            "querier.trace_by_id.query_timeout",
            config.querier.trace_by_id_query_timeout,
        ),
    ] {
        if timeout.is_zero() {
            log::warn!("{key} is 0s: every such query fails with \"context deadline exceeded\", as in Tempo");
        }
    }

    let signal = wait_for_signal(&signals);
    log::info!("received {signal}: shutting down");
    shared.shutting_down.store(true, Ordering::Release);
    for fd in listener_fds {
        // SAFETY: the fds belong to listeners that live until the process exits; shutting
        // them down wakes the accept loops and refuses new connections.
        unsafe {
            libc::shutdown(fd, libc::SHUT_RDWR);
        }
    }
    let deadline = Instant::now() + shared.settings.shutdown_timeout;
    while shared.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = shared.in_flight.load(Ordering::Acquire);
    if left > 0 {
        log::warn!("{left} requests still in flight after the shutdown timeout");
    }
    // Give the writers a moment to put the last answers on the wire.
    std::thread::sleep(Duration::from_millis(50));
    engine.shutdown_blocking();
    for thread in threads {
        let _ = thread.join();
    }
    log::info!("stopped");
    Ok(())
}

/// The listeners of the receivers besides OTLP/gRPC, `shards` of each.
struct ReceiverListeners {
    tcp: Vec<(Vec<std::net::TcpListener>, server::Port)>,
    udp: Vec<(
        Vec<std::net::UdpSocket>,
        allegro_receivers::jaeger::AgentProtocol,
    )>,
    /// ` name=addr` per receiver, for the startup line.
    bound: Vec<String>,
}

fn bind_receivers(config: &Config, shards: usize) -> Result<ReceiverListeners, String> {
    use allegro_receivers::jaeger::AgentProtocol;
    use server::Port;
    let d = &config.distributor;
    let mut out = ReceiverListeners {
        tcp: Vec::new(),
        udp: Vec::new(),
        bound: Vec::new(),
    };
    let tcp = [
        (
            &d.otlp_http_endpoint,
            Port::OtlpHttp,
            "otlp_http",
            "distributor.receivers.otlp.protocols.http.endpoint",
        ),
        (
            &d.zipkin_endpoint,
            Port::Zipkin,
            "zipkin",
            "distributor.receivers.zipkin.endpoint",
        ),
        (
            &d.jaeger_thrift_http_endpoint,
            Port::JaegerThriftHttp,
            "jaeger_thrift_http",
            "distributor.receivers.jaeger.protocols.thrift_http.endpoint",
        ),
        (
            &d.jaeger_grpc_endpoint,
            Port::JaegerGrpc,
            "jaeger_grpc",
            "distributor.receivers.jaeger.protocols.grpc.endpoint",
        ),
    ];
    for (endpoint, port, name, key) in tcp {
        let Some(endpoint) = endpoint else { continue };
        let addr = resolve(endpoint, key)?;
        let listeners = server::bind_reuseport(addr, shards)
            .map_err(|err| format!("cannot listen on {addr} ({key}): {err}"))?;
        let bound = listeners[0].local_addr().map_err(|e| e.to_string())?;
        out.bound.push(format!(" {name}={bound}"));
        out.tcp.push((listeners, port));
    }
    let udp = [
        (
            &d.jaeger_thrift_compact_endpoint,
            AgentProtocol::Compact,
            "jaeger_thrift_compact",
            "distributor.receivers.jaeger.protocols.thrift_compact.endpoint",
        ),
        (
            &d.jaeger_thrift_binary_endpoint,
            AgentProtocol::Binary,
            "jaeger_thrift_binary",
            "distributor.receivers.jaeger.protocols.thrift_binary.endpoint",
        ),
    ];
    for (endpoint, protocol, name, key) in udp {
        let Some(endpoint) = endpoint else { continue };
        let addr = resolve(endpoint, key)?;
        let sockets = server::bind_reuseport_udp(addr, shards)
            .map_err(|err| format!("cannot listen on udp {addr} ({key}): {err}"))?;
        let bound = sockets[0].local_addr().map_err(|e| e.to_string())?;
        out.bound.push(format!(" {name}=udp:{bound}"));
        out.udp.push((sockets, protocol));
    }
    Ok(out)
}

/// `allegro.grpc_max_recv_msg_bytes`, capped so that one request always fits a WAL record.
fn grpc_message_bytes_max(configured: u64) -> usize {
    let cap = allegro_engine::wal::RECORD_PAYLOAD_BYTES_MAX;
    let configured = usize::try_from(configured).unwrap_or(usize::MAX);
    if configured > cap {
        log::warn!(
            "allegro.grpc_max_recv_msg_bytes: {configured} is over the WAL record limit; using {cap}"
        );
        return cap;
    }
    configured
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Opts the process out of transparent huge pages before the server allocates much. mimalloc
/// asks for them on its arenas (`MADV_HUGEPAGE`), so every first touch of a 2 MiB region
/// faults in and zeroes the whole of it on the thread that touched it: a fresh server's shard
/// spent 30% of its first two seconds in `clear_page_erms`, 400 of that second's 1,500
/// exports took over 10 ms, and RSS counted the untouched rest of each huge page
/// (bench/PROFILE.md). With 4 KiB pages the same bytes are zeroed a page at a time.
fn disable_transparent_huge_pages() {
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    let result = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if result != 0 {
        // Before logging is set up; nothing is lost but the latency of first touches.
        eprintln!(
            "cannot opt out of transparent huge pages: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn block_termination_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-mask calls on a zeroed sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> &'static str {
    loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: `set` is a valid, initialised signal set blocked on this thread.
        let rc = unsafe { libc::sigwait(set, &mut signal) };
        if rc == 0 {
            return match signal {
                libc::SIGTERM => "SIGTERM",
                libc::SIGINT => "SIGINT",
                _ => "a signal",
            };
        }
    }
}
