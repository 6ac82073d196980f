//! The trace model: builds realistic `ExportTraceServiceRequest`s with placeholder IDs and
//! relative times, for [`crate::template`] to encode once and patch per request.
//!
//! A trace is a tree: a root SERVER span on the first service (the "frontend"), and children
//! that are CLIENT calls to other services (answered by a SERVER span on the callee), database
//! CLIENT calls, INTERNAL work and PRODUCER sends. Durations are log-normal (long-tailed) and
//! every child lies inside its parent. Spans carry semantic-convention attributes of mixed types
//! (string, int, bool, double), some carry events, and `error_rate` of them fail with status ERROR
//! and an `exception` event. Spans are grouped the way an SDK/collector batches them: one
//! `ResourceSpans` per service, one `ScopeSpans` per instrumentation library.
//!
//! Placeholders (replaced by the patcher, recognised by [`placeholder_trace_index`] and
//! [`placeholder_span_index`]):
//!
//! ```text
//! trace_id = 7a 7a 7a 7a | 00 x 8 | trace index (u32 BE)      (index within the request)
//! span_id  = 5b 5b 5b 5b | span index (u32 BE)                 (index within the request)
//! times    = (now-relative nanoseconds as i64) as u64, never 0 (0 would not be encoded)
//! ```
//!
//! No IO; deterministic for a given [`Rng`].

use crate::limits;
use crate::rng::Rng;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

const TRACE_MARK: [u8; 4] = [0x7a; 4];
const SPAN_MARK: [u8; 4] = [0x5b; 4];

pub fn placeholder_trace_id(index: u32) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&TRACE_MARK);
    id[12..].copy_from_slice(&index.to_be_bytes());
    id
}

pub fn placeholder_span_id(index: u32) -> [u8; 8] {
    let mut id = [0u8; 8];
    id[..4].copy_from_slice(&SPAN_MARK);
    id[4..].copy_from_slice(&index.to_be_bytes());
    id
}

pub fn placeholder_trace_index(id: &[u8]) -> Option<u32> {
    let id: &[u8; 16] = id.try_into().ok()?;
    if id[..4] != TRACE_MARK || id[4..12] != [0u8; 8] {
        return None;
    }
    Some(u32::from_be_bytes([id[12], id[13], id[14], id[15]]))
}

pub fn placeholder_span_index(id: &[u8]) -> Option<u32> {
    let id: &[u8; 8] = id.try_into().ok()?;
    if id[..4] != SPAN_MARK {
        return None;
    }
    Some(u32::from_be_bytes([id[4], id[5], id[6], id[7]]))
}

/// What to generate. Validated once by [`Shape::validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    pub services: usize,
    pub spans_per_trace: usize,
    pub traces_per_request: usize,
    pub attributes: usize,
    pub events_per_span: f64,
    pub error_rate: f64,
}

impl Default for Shape {
    fn default() -> Shape {
        Shape {
            services: 5,
            spans_per_trace: 10,
            traces_per_request: 10,
            attributes: 8,
            events_per_span: 0.3,
            error_rate: 0.05,
        }
    }
}

impl Shape {
    pub fn spans_per_request(&self) -> usize {
        self.spans_per_trace * self.traces_per_request
    }

    pub fn validate(&self) -> Result<(), String> {
        let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
        check(
            (1..=limits::SERVICES_MAX).contains(&self.services),
            &format!("--services must be 1..={}", limits::SERVICES_MAX),
        )?;
        check(
            (1..=limits::SPANS_PER_TRACE_MAX).contains(&self.spans_per_trace),
            &format!(
                "--spans-per-trace must be 1..={}",
                limits::SPANS_PER_TRACE_MAX
            ),
        )?;
        check(
            (1..=limits::TRACES_PER_REQUEST_MAX).contains(&self.traces_per_request),
            &format!(
                "--traces-per-request must be 1..={}",
                limits::TRACES_PER_REQUEST_MAX
            ),
        )?;
        check(
            self.spans_per_request() <= limits::SPANS_PER_REQUEST_MAX,
            &format!(
                "--spans-per-trace x --traces-per-request must be at most {}",
                limits::SPANS_PER_REQUEST_MAX
            ),
        )?;
        check(
            self.attributes <= limits::ATTRIBUTES_MAX,
            &format!("--attributes must be 0..={}", limits::ATTRIBUTES_MAX),
        )?;
        check(
            (0.0..=limits::EVENTS_PER_SPAN_MAX).contains(&self.events_per_span),
            &format!(
                "--events-per-span must be 0..={}",
                limits::EVENTS_PER_SPAN_MAX
            ),
        )?;
        check(
            (0.0..=1.0).contains(&self.error_rate),
            "--error-rate must be 0..=1",
        )?;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Grpc,
    Http,
}

#[derive(Clone, Debug)]
struct Instance {
    id: String,
    host: String,
    container_id: String,
    pid: i64,
}

#[derive(Clone, Debug)]
struct Service {
    name: String,
    pascal: String,
    version: String,
    language: &'static str,
    sdk_version: &'static str,
    protocol: Protocol,
    instances: Vec<Instance>,
}

/// The services and their instances: fixed for a seed, shared by every template.
#[derive(Clone, Debug)]
pub struct Topology {
    services: Vec<Service>,
}

const SERVICE_NAMES: [&str; 16] = [
    "frontend",
    "checkout",
    "cart",
    "product-catalog",
    "payment",
    "shipping",
    "currency",
    "recommendation",
    "email",
    "ad",
    "quote",
    "accounting",
    "fraud-detection",
    "inventory",
    "user",
    "search",
];

const LANGUAGES: [(&str, &str); 7] = [
    ("go", "1.34.0"),
    ("java", "1.46.0"),
    ("nodejs", "1.30.1"),
    ("python", "1.31.1"),
    ("dotnet", "1.11.2"),
    ("rust", "0.28.0"),
    ("cpp", "1.19.0"),
];

const INSTANCES_PER_SERVICE: usize = 3;

fn pascal_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn hex_string(rng: &mut Rng, len: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..len).map(|_| char::from(HEX[rng.index(16)])).collect()
}

fn uuid(rng: &mut Rng) -> String {
    format!(
        "{}-{}-4{}-a{}-{}",
        hex_string(rng, 8),
        hex_string(rng, 4),
        hex_string(rng, 3),
        hex_string(rng, 3),
        hex_string(rng, 12)
    )
}

impl Topology {
    pub fn new(services: usize, rng: &mut Rng) -> Topology {
        assert!((1..=limits::SERVICES_MAX).contains(&services));
        let services = (0..services)
            .map(|i| {
                let name = match SERVICE_NAMES.get(i) {
                    Some(name) => name.to_string(),
                    None => format!("service-{i}"),
                };
                let (language, sdk_version) = LANGUAGES[i % LANGUAGES.len()];
                let instances = (0..INSTANCES_PER_SERVICE)
                    .map(|_| Instance {
                        id: uuid(rng),
                        host: format!("{name}-{}-{}", hex_string(rng, 10), hex_string(rng, 5)),
                        container_id: hex_string(rng, 64),
                        pid: rng.range(1, 60) as i64,
                    })
                    .collect();
                Service {
                    pascal: pascal_case(&name),
                    version: format!("1.{}.{}", rng.below(12), rng.below(30)),
                    language,
                    sdk_version,
                    protocol: if i % 2 == 0 {
                        Protocol::Grpc
                    } else {
                        Protocol::Http
                    },
                    instances,
                    name,
                }
            })
            .collect();
        Topology { services }
    }

    pub fn service_count(&self) -> usize {
        self.services.len()
    }
}

/// One generated request with the facts the template needs to check its offsets.
#[derive(Clone, Debug)]
pub struct GeneratedRequest {
    pub request: ExportTraceServiceRequest,
    /// Spans of each trace, by trace index.
    pub trace_span_counts: Vec<u32>,
    /// Trace index of each span, by span index.
    pub span_trace: Vec<u32>,
    /// Parent span index of each span (None for roots), by span index.
    pub span_parent: Vec<Option<u32>>,
}

#[derive(Clone, Copy, Debug)]
struct Route {
    method: &'static str,
    route: &'static str,
    path_prefix: &'static str,
}

const ROUTES: [Route; 8] = [
    Route {
        method: "GET",
        route: "/api/products/{productId}",
        path_prefix: "/api/products/",
    },
    Route {
        method: "GET",
        route: "/api/recommendations",
        path_prefix: "/api/recommendations?productIds=",
    },
    Route {
        method: "POST",
        route: "/api/cart",
        path_prefix: "/api/cart?sessionId=",
    },
    Route {
        method: "POST",
        route: "/api/checkout",
        path_prefix: "/api/checkout?currencyCode=USD&sessionId=",
    },
    Route {
        method: "GET",
        route: "/api/currency",
        path_prefix: "/api/currency?from=USD&to=",
    },
    Route {
        method: "GET",
        route: "/api/shipping",
        path_prefix: "/api/shipping?itemList=",
    },
    Route {
        method: "GET",
        route: "/api/data",
        path_prefix: "/api/data?contextKeys=",
    },
    Route {
        method: "DELETE",
        route: "/api/cart/{itemId}",
        path_prefix: "/api/cart/",
    },
];

const RPC_METHODS: [&str; 12] = [
    "GetProduct",
    "ListProducts",
    "GetCart",
    "AddItem",
    "PlaceOrder",
    "Charge",
    "ShipOrder",
    "GetQuote",
    "Convert",
    "ListRecommendations",
    "GetAds",
    "SendOrderConfirmation",
];

#[derive(Clone, Copy, Debug)]
struct DbCall {
    system: &'static str,
    name: &'static str,
    operation: &'static str,
    table: &'static str,
    statement: &'static str,
    port: i64,
}

const DB_CALLS: [DbCall; 6] = [
    DbCall {
        system: "postgresql",
        name: "catalog",
        operation: "SELECT",
        table: "products",
        statement:
            "SELECT id, name, description, price_usd, categories FROM products WHERE id = $1",
        port: 5432,
    },
    DbCall {
        system: "postgresql",
        name: "orders",
        operation: "INSERT",
        table: "order_items",
        statement: "INSERT INTO order_items (order_id, product_id, quantity) VALUES ($1, $2, $3)",
        port: 5432,
    },
    DbCall {
        system: "redis",
        name: "0",
        operation: "HGET",
        table: "cart",
        statement: "HGET cart:session items",
        port: 6379,
    },
    DbCall {
        system: "redis",
        name: "0",
        operation: "EXPIRE",
        table: "cart",
        statement: "EXPIRE cart:session 3600",
        port: 6379,
    },
    DbCall {
        system: "mysql",
        name: "accounts",
        operation: "SELECT",
        table: "users",
        statement: "SELECT id, email, currency FROM users WHERE session_id = ? LIMIT 1",
        port: 3306,
    },
    DbCall {
        system: "mongodb",
        name: "ads",
        operation: "find",
        table: "campaigns",
        statement: "{\"find\":\"campaigns\",\"filter\":{\"context\":\"?\"}}",
        port: 27017,
    },
];

const FUNCTIONS: [(&str, &str); 8] = [
    ("getProduct", "ProductCatalogService"),
    ("calculateTotal", "CheckoutService"),
    ("prepareOrderItems", "CheckoutService"),
    ("convertCurrency", "CurrencyService"),
    ("renderTemplate", "EmailService"),
    ("validateCard", "PaymentService"),
    ("loadRecommendations", "RecommendationEngine"),
    ("serializeResponse", "ResponseWriter"),
];

const TOPICS: [&str; 3] = ["orders", "payments", "notifications"];

const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "python-requests/2.31.0",
];

const EXCEPTIONS: [(&str, &str); 4] = [
    (
        "TimeoutError",
        "deadline exceeded after 500ms waiting for upstream",
    ),
    ("ConnectionResetError", "connection reset by peer"),
    (
        "ValueError",
        "invalid product id: expected 10 alphanumeric characters",
    ),
    ("PaymentDeclined", "card declined for insufficient funds"),
];

#[derive(Clone, Copy, Debug)]
enum Call {
    Root(Route),
    HttpServer(Route),
    RpcServer {
        method: &'static str,
    },
    HttpClient {
        target: usize,
        route: Route,
    },
    RpcClient {
        target: usize,
        method: &'static str,
    },
    Db(DbCall),
    Internal {
        function: &'static str,
        namespace: &'static str,
    },
    Producer {
        topic: &'static str,
    },
}

/// Instrumentation libraries; each becomes one `ScopeSpans` per service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Http,
    Rpc,
    Db,
    Manual,
    Messaging,
}

const SCOPES: [(Scope, &str, &str); 5] = [
    (Scope::Http, "opentelemetry.instrumentation.http", "0.52.0"),
    (Scope::Rpc, "opentelemetry.instrumentation.grpc", "0.52.0"),
    (Scope::Db, "opentelemetry.instrumentation.sql", "0.49.1"),
    (Scope::Manual, "shop", "1.0.0"),
    (
        Scope::Messaging,
        "opentelemetry.instrumentation.kafka",
        "0.47.0",
    ),
];

impl Call {
    fn kind(&self) -> SpanKind {
        match self {
            Call::Root(_) | Call::HttpServer(_) | Call::RpcServer { .. } => SpanKind::Server,
            Call::HttpClient { .. } | Call::RpcClient { .. } | Call::Db(_) => SpanKind::Client,
            Call::Internal { .. } => SpanKind::Internal,
            Call::Producer { .. } => SpanKind::Producer,
        }
    }

    fn scope(&self) -> Scope {
        match self {
            Call::Root(_) | Call::HttpServer(_) | Call::HttpClient { .. } => Scope::Http,
            Call::RpcServer { .. } | Call::RpcClient { .. } => Scope::Rpc,
            Call::Db(_) => Scope::Db,
            Call::Internal { .. } => Scope::Manual,
            Call::Producer { .. } => Scope::Messaging,
        }
    }

    /// Whether a span of this call may get children.
    fn can_parent(&self) -> bool {
        !matches!(self, Call::Db(_) | Call::Producer { .. })
    }
}

#[derive(Clone, Debug)]
struct Planned {
    parent: Option<usize>,
    service: usize,
    call: Call,
    /// For outgoing calls: whether the callee's SERVER span exists yet.
    answered: bool,
    start_ns: i64,
    end_ns: i64,
    error: bool,
}

const NS_PER_US: i64 = 1_000;
const NS_PER_MS: i64 = 1_000_000;
/// Shortest span we generate.
const SPAN_NS_MIN: i64 = 2 * NS_PER_US;
/// Longest root span we generate (the log-normal tail is clamped here).
const ROOT_NS_MAX: i64 = 30_000 * NS_PER_MS;

/// Plans one trace: structure, calls and times relative to "now" (all negative).
fn plan_trace(shape: &Shape, topology: &Topology, rng: &mut Rng) -> Vec<Planned> {
    let services = topology.service_count();
    let mut spans: Vec<Planned> = Vec::with_capacity(shape.spans_per_trace);
    // The root ends a little before "now" (the exporter's batching delay) and lasts a
    // log-normal time with a median of 25 ms.
    let root_ns = (rng.log_normal(25.0 * NS_PER_MS as f64, 1.1) as i64)
        .clamp(50 * NS_PER_US * shape.spans_per_trace as i64, ROOT_NS_MAX);
    let end_ns = -(rng.range(NS_PER_MS as u64, 2_000 * NS_PER_MS as u64) as i64);
    spans.push(Planned {
        parent: None,
        service: 0,
        call: Call::Root(*rng.pick(&ROUTES)),
        answered: true,
        start_ns: end_ns - root_ns,
        end_ns,
        error: false,
    });
    while spans.len() < shape.spans_per_trace {
        // Prefer an unanswered outgoing call: the callee's SERVER span follows its CLIENT span.
        let pending = spans
            .iter()
            .rposition(|s| !s.answered && s.call.kind() == SpanKind::Client);
        let parent = match pending {
            Some(p) if rng.chance(0.8) => p,
            _ => {
                let candidates: Vec<usize> = (0..spans.len())
                    .filter(|&i| spans[i].call.can_parent() && spans[i].answered)
                    .collect();
                // The root can always parent, so candidates is never empty.
                assert!(!candidates.is_empty());
                // Favour recent spans: deeper trees, like real call chains.
                let pick = candidates.len()
                    - 1
                    - rng.index(candidates.len()).min(rng.index(candidates.len()));
                candidates[pick]
            }
        };
        let parent_span = &spans[parent];
        let service = parent_span.service;
        let call = match parent_span.call {
            Call::RpcClient { method, .. } if !parent_span.answered => Call::RpcServer { method },
            Call::HttpClient { route, .. } if !parent_span.answered => Call::HttpServer(route),
            _ => {
                let r = rng.f64();
                // Callees are any service but the frontend and the caller itself.
                let callees = services - 1 - usize::from(service != 0);
                if r < 0.40 && callees > 0 {
                    let mut target = 1 + rng.index(callees);
                    if service != 0 && target >= service {
                        target += 1;
                    }
                    match topology.services[target].protocol {
                        Protocol::Grpc => Call::RpcClient {
                            target,
                            method: RPC_METHODS[rng.index(RPC_METHODS.len())],
                        },
                        Protocol::Http => Call::HttpClient {
                            target,
                            route: *rng.pick(&ROUTES),
                        },
                    }
                } else if r < 0.62 {
                    Call::Db(*rng.pick(&DB_CALLS))
                } else if r < 0.95 {
                    let (function, namespace) = *rng.pick(&FUNCTIONS);
                    Call::Internal {
                        function,
                        namespace,
                    }
                } else {
                    Call::Producer {
                        topic: TOPICS[rng.index(TOPICS.len())],
                    }
                }
            }
        };
        let (p_start, p_end) = (parent_span.start_ns, parent_span.end_ns);
        let p_len = p_end - p_start;
        assert!(p_len >= 0);
        let is_callee = matches!(call, Call::RpcServer { .. } | Call::HttpServer(_));
        let (start_ns, end_ns, service) = if is_callee {
            // The callee runs inside the client span, minus network time on each side.
            let net = (p_len / 20).min(2 * NS_PER_MS);
            let callee = match parent_span.call {
                Call::RpcClient { target, .. } | Call::HttpClient { target, .. } => target,
                _ => service,
            };
            (p_start + net, p_end - net, callee)
        } else {
            let start = p_start + (rng.f64() * 0.6 * p_len as f64) as i64;
            let room = p_end - start;
            let median = (room as f64 * 0.3).max(SPAN_NS_MIN as f64);
            let len = (rng.log_normal(median, 0.9) as i64).clamp(room.min(SPAN_NS_MIN), room);
            (start, start + len, service)
        };
        if is_callee {
            spans[parent].answered = true;
        }
        let answered = !matches!(call, Call::RpcClient { .. } | Call::HttpClient { .. });
        spans.push(Planned {
            parent: Some(parent),
            service,
            call,
            answered,
            start_ns,
            end_ns,
            error: rng.chance(shape.error_rate),
        });
    }
    spans
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, value: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn i(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

fn b(key: &str, value: bool) -> KeyValue {
    kv(key, any_value::Value::BoolValue(value))
}

fn d(key: &str, value: f64) -> KeyValue {
    kv(key, any_value::Value::DoubleValue(value))
}

fn ip(rng: &mut Rng) -> String {
    format!(
        "10.{}.{}.{}",
        rng.below(256),
        rng.below(256),
        rng.range(1, 254)
    )
}

fn product_id(rng: &mut Rng) -> String {
    const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..10)
        .map(|_| char::from(ALPHABET[rng.index(36)]))
        .collect()
}

fn http_status(rng: &mut Rng, error: bool) -> i64 {
    if error {
        *rng.pick(&[500, 502, 503, 504])
    } else {
        *rng.pick(&[200, 200, 200, 200, 200, 201, 204, 304, 404])
    }
}

/// The attribute at position `index` of a span's attribute list; positions past the semantic
/// pool get generic `app.attr_NN` attributes of rotating types.
fn attribute(index: usize, span: &Planned, topology: &Topology, rng: &mut Rng) -> KeyValue {
    let service = &topology.services[span.service];
    let named = match span.call {
        Call::Root(route) | Call::HttpServer(route) => match index {
            0 => Some(s("http.method", route.method)),
            1 => Some(s(
                "url.path",
                format!("{}{}", route.path_prefix, product_id(rng)),
            )),
            2 => Some(s("http.route", route.route)),
            3 => Some(i("http.status_code", http_status(rng, span.error))),
            4 => Some(s("user_agent.original", *rng.pick(&USER_AGENTS))),
            5 => Some(s("client.address", ip(rng))),
            6 => Some(b("app.authenticated", rng.chance(0.6))),
            7 => Some(d("app.cart.total", (rng.f64() * 50_000.0).round() / 100.0)),
            8 => Some(s("server.address", service.name.clone())),
            9 => Some(i("server.port", 8080)),
            10 => Some(s("url.scheme", "http")),
            11 => Some(s("network.protocol.version", "1.1")),
            12 => Some(i(
                "http.response_content_length",
                rng.range(120, 40_000) as i64,
            )),
            _ => None,
        },
        Call::RpcServer { method } => match index {
            0 => Some(s("rpc.system", "grpc")),
            1 => Some(s(
                "rpc.service",
                format!("oteldemo.{}Service", service.pascal),
            )),
            2 => Some(s("rpc.method", method)),
            3 => Some(i("rpc.grpc.status_code", if span.error { 14 } else { 0 })),
            4 => Some(s("client.address", ip(rng))),
            5 => Some(i("server.port", 50051)),
            6 => Some(b("app.authenticated", rng.chance(0.6))),
            7 => Some(d(
                "app.queue_time_ms",
                (rng.f64() * 5_000.0).round() / 1_000.0,
            )),
            8 => Some(s("network.transport", "tcp")),
            9 => Some(i("thread.id", rng.range(1, 64) as i64)),
            _ => None,
        },
        Call::RpcClient { target, method } => match index {
            0 => Some(s("rpc.system", "grpc")),
            1 => Some(s(
                "rpc.service",
                format!("oteldemo.{}Service", topology.services[target].pascal),
            )),
            2 => Some(s("rpc.method", method)),
            3 => Some(i("rpc.grpc.status_code", if span.error { 14 } else { 0 })),
            4 => Some(s("server.address", topology.services[target].name.clone())),
            5 => Some(i("server.port", 50051)),
            6 => Some(b("app.retry", rng.chance(0.05))),
            7 => Some(d("app.deadline_s", *rng.pick(&[0.5, 1.0, 2.5, 5.0]))),
            8 => Some(s("network.peer.address", ip(rng))),
            9 => Some(s("network.transport", "tcp")),
            _ => None,
        },
        Call::HttpClient { target, route } => match index {
            0 => Some(s("http.method", route.method)),
            1 => Some(s(
                "url.full",
                format!(
                    "http://{}:8080{}{}",
                    topology.services[target].name,
                    route.path_prefix,
                    product_id(rng)
                ),
            )),
            2 => Some(i("http.status_code", http_status(rng, span.error))),
            3 => Some(s("server.address", topology.services[target].name.clone())),
            4 => Some(i("server.port", 8080)),
            5 => Some(s("network.peer.address", ip(rng))),
            6 => Some(b("app.retry", rng.chance(0.05))),
            7 => Some(d("app.deadline_s", *rng.pick(&[0.5, 1.0, 2.5, 5.0]))),
            8 => Some(s("network.protocol.version", "1.1")),
            _ => None,
        },
        Call::Db(db) => match index {
            0 => Some(s("db.system", db.system)),
            1 => Some(s("db.name", db.name)),
            2 => Some(s("db.statement", db.statement)),
            3 => Some(s("db.operation", db.operation)),
            4 => Some(s("server.address", format!("{}-{}", db.system, db.name))),
            5 => Some(i("server.port", db.port)),
            6 => Some(b("db.statement.prepared", rng.chance(0.7))),
            7 => Some(i("db.response.returned_rows", rng.below(50) as i64)),
            8 => Some(s("db.sql.table", db.table)),
            9 => Some(s("db.user", "app")),
            _ => None,
        },
        Call::Internal {
            function,
            namespace,
        } => match index {
            0 => Some(s("code.function", function)),
            1 => Some(s("code.namespace", namespace)),
            2 => Some(i("code.lineno", rng.range(20, 900) as i64)),
            3 => Some(s("app.product.id", product_id(rng))),
            4 => Some(i("app.items.count", rng.range(1, 12) as i64)),
            5 => Some(b("app.cache_hit", rng.chance(0.8))),
            6 => Some(d(
                "app.product.price",
                (rng.f64() * 20_000.0).round() / 100.0,
            )),
            7 => Some(s("thread.name", format!("worker-{}", rng.below(16)))),
            8 => Some(s("app.currency", *rng.pick(&["USD", "EUR", "JPY", "GBP"]))),
            9 => Some(i("thread.id", rng.range(1, 64) as i64)),
            _ => None,
        },
        Call::Producer { topic } => match index {
            0 => Some(s("messaging.system", "kafka")),
            1 => Some(s("messaging.destination.name", topic)),
            2 => Some(s("messaging.operation", "publish")),
            3 => Some(i(
                "messaging.kafka.destination.partition",
                rng.below(12) as i64,
            )),
            4 => Some(i(
                "messaging.message.body.size",
                rng.range(200, 4_000) as i64,
            )),
            5 => Some(b("messaging.kafka.message.tombstone", false)),
            6 => Some(d("app.payload.compression_ratio", 0.2 + rng.f64() * 0.6)),
            7 => Some(s(
                "messaging.client_id",
                format!("{}-producer", service.name),
            )),
            _ => None,
        },
    };
    named.unwrap_or_else(|| {
        let key = format!("app.attr_{index:02}");
        match index % 4 {
            0 => s(&key, format!("value-{}", rng.below(1_000))),
            1 => i(&key, rng.below(100_000) as i64),
            2 => b(&key, rng.chance(0.5)),
            _ => d(&key, rng.f64() * 100.0),
        }
    })
}

fn event(span: &Planned, rng: &mut Rng) -> Event {
    let len = (span.end_ns - span.start_ns).max(1) as u64;
    let time_ns = span.start_ns + rng.below(len) as i64;
    let (name, attributes) = match rng.below(4) {
        0 => (
            "message",
            vec![
                s("message.type", *rng.pick(&["SENT", "RECEIVED"])),
                i("message.id", rng.range(1, 20) as i64),
                i("message.uncompressed_size", rng.range(40, 9_000) as i64),
            ],
        ),
        1 => (
            "cache.miss",
            vec![s("cache.key", format!("product:{}", product_id(rng)))],
        ),
        2 => (
            "retry",
            vec![
                i("retry.attempt", rng.range(1, 3) as i64),
                d("retry.delay_ms", (rng.f64() * 2_000.0).round() / 10.0),
            ],
        ),
        _ => (
            "log",
            vec![
                s("log.severity", *rng.pick(&["INFO", "WARN", "DEBUG"])),
                s("log.message", "order state transitioned to PAID"),
            ],
        ),
    };
    Event {
        time_unix_nano: encode_rel_ns(time_ns),
        name: name.to_string(),
        attributes,
        dropped_attributes_count: 0,
    }
}

fn exception_event(span: &Planned, rng: &mut Rng) -> (Event, String) {
    let (kind, message) = *rng.pick(&EXCEPTIONS);
    let stack = format!(
        "{kind}: {message}\n  at handle (src/server/handler.rs:{})\n  at call (src/client/pool.rs:{})\n  at serve (src/server/mod.rs:{})\n  at main (src/main.rs:42)",
        rng.range(10, 400),
        rng.range(10, 400),
        rng.range(10, 400)
    );
    let event = Event {
        // Exceptions are recorded just before the span ends.
        time_unix_nano: encode_rel_ns((span.end_ns - 1).max(span.start_ns)),
        name: "exception".to_string(),
        attributes: vec![
            s("exception.type", kind),
            s("exception.message", message),
            s("exception.stacktrace", stack),
            b("exception.escaped", false),
        ],
        dropped_attributes_count: 0,
    };
    (event, message.to_string())
}

/// Encodes a now-relative time for the template: never 0, so prost always emits the field.
fn encode_rel_ns(rel_ns: i64) -> u64 {
    assert!(rel_ns < 0, "generated times lie in the past");
    rel_ns as u64
}

fn span_name(span: &Planned, topology: &Topology) -> String {
    match span.call {
        Call::Root(route) | Call::HttpServer(route) => format!("{} {}", route.method, route.route),
        Call::RpcServer { method } => format!(
            "oteldemo.{}Service/{method}",
            topology.services[span.service].pascal
        ),
        Call::RpcClient { target, method } => {
            format!(
                "oteldemo.{}Service/{method}",
                topology.services[target].pascal
            )
        }
        Call::HttpClient { route, .. } => route.method.to_string(),
        Call::Db(db) => format!("{} {}.{}", db.operation, db.name, db.table),
        Call::Internal {
            function,
            namespace,
        } => format!("{namespace}.{function}"),
        Call::Producer { topic } => format!("{topic} publish"),
    }
}

fn resource(service: &Service, instance: &Instance) -> Resource {
    Resource {
        attributes: vec![
            s("service.name", service.name.clone()),
            s("service.namespace", "shop"),
            s("service.version", service.version.clone()),
            s("service.instance.id", instance.id.clone()),
            s("host.name", instance.host.clone()),
            s("k8s.pod.name", instance.host.clone()),
            s("k8s.namespace.name", "shop"),
            s("container.id", instance.container_id.clone()),
            i("process.pid", instance.pid),
            s("deployment.environment.name", "production"),
            s("telemetry.sdk.name", "opentelemetry"),
            s("telemetry.sdk.language", service.language),
            s("telemetry.sdk.version", service.sdk_version),
        ],
        ..Default::default()
    }
}

/// Generates one request of `shape.traces_per_request` traces with placeholder IDs and
/// now-relative times.
pub fn generate_request(shape: &Shape, topology: &Topology, rng: &mut Rng) -> GeneratedRequest {
    assert!(shape.validate().is_ok());
    assert_eq!(topology.service_count(), shape.services);
    let instance: Vec<usize> = topology
        .services
        .iter()
        .map(|s| rng.index(s.instances.len()))
        .collect();
    // (service, scope) -> spans, in first-seen order within each bucket.
    let mut buckets: std::collections::BTreeMap<(usize, Scope), Vec<Span>> =
        std::collections::BTreeMap::new();
    let mut trace_span_counts = Vec::with_capacity(shape.traces_per_request);
    let mut span_trace = Vec::with_capacity(shape.spans_per_request());
    let mut span_parent = Vec::with_capacity(shape.spans_per_request());
    for trace_index in 0..shape.traces_per_request {
        let trace_index = u32::try_from(trace_index).expect("limited by TRACES_PER_REQUEST_MAX");
        let base = u32::try_from(span_trace.len()).expect("limited by SPANS_PER_REQUEST_MAX");
        let planned = plan_trace(shape, topology, rng);
        trace_span_counts.push(u32::try_from(planned.len()).expect("limited"));
        for (local, span) in planned.iter().enumerate() {
            let index = base + u32::try_from(local).expect("limited");
            let parent = span
                .parent
                .map(|p| base + u32::try_from(p).expect("limited"));
            span_trace.push(trace_index);
            span_parent.push(parent);
            let attributes = (0..shape.attributes)
                .map(|k| attribute(k, span, topology, rng))
                .collect();
            let mut events: Vec<Event> = (0..rng.count_with_mean(shape.events_per_span))
                .map(|_| event(span, rng))
                .collect();
            let status = if span.error {
                let (exception, message) = exception_event(span, rng);
                events.push(exception);
                Some(Status {
                    message,
                    code: StatusCode::Error as i32,
                })
            } else {
                None
            };
            events.sort_by_key(|e| e.time_unix_nano as i64);
            let proto = Span {
                trace_id: placeholder_trace_id(trace_index).to_vec(),
                span_id: placeholder_span_id(index).to_vec(),
                trace_state: String::new(),
                parent_span_id: parent
                    .map(|p| placeholder_span_id(p).to_vec())
                    .unwrap_or_default(),
                flags: 0x101, // sampled; is_remote known (SDK >= 1.0 behaviour)
                name: span_name(span, topology),
                kind: span.call.kind() as i32,
                start_time_unix_nano: encode_rel_ns(span.start_ns),
                end_time_unix_nano: encode_rel_ns(span.end_ns),
                attributes,
                dropped_attributes_count: 0,
                events,
                dropped_events_count: 0,
                links: Vec::new(),
                dropped_links_count: 0,
                status,
            };
            buckets
                .entry((span.service, span.call.scope()))
                .or_default()
                .push(proto);
        }
    }
    let mut resource_spans: Vec<ResourceSpans> = Vec::new();
    for ((service_index, scope), spans) in buckets {
        let service = &topology.services[service_index];
        let (_, scope_name, scope_version) = SCOPES
            .iter()
            .find(|(s, _, _)| *s == scope)
            .expect("every scope is listed");
        let scope_spans = ScopeSpans {
            scope: Some(InstrumentationScope {
                name: scope_name.to_string(),
                version: scope_version.to_string(),
                ..Default::default()
            }),
            spans,
            schema_url: String::new(),
        };
        match resource_spans.last_mut() {
            Some(last) if last_service(last) == Some(service.name.as_str()) => {
                last.scope_spans.push(scope_spans)
            }
            _ => resource_spans.push(ResourceSpans {
                resource: Some(resource(
                    service,
                    &service.instances[instance[service_index]],
                )),
                scope_spans: vec![scope_spans],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".to_string(),
            }),
        }
    }
    GeneratedRequest {
        request: ExportTraceServiceRequest { resource_spans },
        trace_span_counts,
        span_trace,
        span_parent,
    }
}

fn last_service(resource_spans: &ResourceSpans) -> Option<&str> {
    let resource = resource_spans.resource.as_ref()?;
    resource.attributes.iter().find_map(|kv| {
        if kv.key != "service.name" {
            return None;
        }
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(name) => Some(name.as_str()),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(shape: &Shape, seed: u64) -> GeneratedRequest {
        let mut rng = Rng::new(seed);
        let topology = Topology::new(shape.services, &mut rng);
        generate_request(shape, &topology, &mut rng)
    }

    fn all_spans(req: &ExportTraceServiceRequest) -> Vec<&Span> {
        req.resource_spans
            .iter()
            .flat_map(|rs| rs.scope_spans.iter())
            .flat_map(|ss| ss.spans.iter())
            .collect()
    }

    #[test]
    fn placeholders_round_trip() {
        assert_eq!(placeholder_trace_index(&placeholder_trace_id(77)), Some(77));
        assert_eq!(placeholder_span_index(&placeholder_span_id(5)), Some(5));
        assert_eq!(placeholder_span_index(&[0; 8]), None);
        assert_eq!(placeholder_trace_index(&[0; 15]), None);
    }

    #[test]
    fn every_trace_is_a_tree_with_one_server_root() {
        let shape = Shape::default();
        let generated = generate(&shape, 1);
        let spans = all_spans(&generated.request);
        assert_eq!(spans.len(), shape.spans_per_request());
        let mut roots = 0;
        for span in &spans {
            let index = placeholder_span_index(&span.span_id).expect("placeholder") as usize;
            assert!(span.start_time_unix_nano as i64 <= span.end_time_unix_nano as i64);
            match generated.span_parent[index] {
                None => {
                    roots += 1;
                    assert_eq!(span.kind, SpanKind::Server as i32);
                    assert!(span.parent_span_id.is_empty());
                }
                Some(parent) => {
                    assert_eq!(placeholder_span_index(&span.parent_span_id), Some(parent));
                    assert_eq!(
                        generated.span_trace[parent as usize],
                        generated.span_trace[index]
                    );
                    let parent_span = spans
                        .iter()
                        .find(|s| placeholder_span_index(&s.span_id) == Some(parent))
                        .expect("parent present");
                    assert!(
                        parent_span.start_time_unix_nano as i64 <= span.start_time_unix_nano as i64
                    );
                    assert!(
                        span.end_time_unix_nano as i64 <= parent_span.end_time_unix_nano as i64
                    );
                }
            }
            assert_eq!(span.attributes.len(), shape.attributes);
        }
        assert_eq!(roots, shape.traces_per_request);
        assert!(generated.trace_span_counts.iter().all(|&c| c == 10));
    }

    #[test]
    fn deterministic_for_a_seed() {
        let shape = Shape::default();
        assert_eq!(generate(&shape, 5).request, generate(&shape, 5).request);
        assert_ne!(generate(&shape, 5).request, generate(&shape, 6).request);
    }

    #[test]
    fn attribute_types_are_mixed_and_errors_carry_exceptions() {
        let shape = Shape {
            error_rate: 0.5,
            attributes: 12,
            ..Shape::default()
        };
        let generated = generate(&shape, 3);
        let spans = all_spans(&generated.request);
        let mut kinds = [false; 4];
        for kv in spans.iter().flat_map(|s| s.attributes.iter()) {
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(_)) => kinds[0] = true,
                Some(any_value::Value::IntValue(_)) => kinds[1] = true,
                Some(any_value::Value::BoolValue(_)) => kinds[2] = true,
                Some(any_value::Value::DoubleValue(_)) => kinds[3] = true,
                _ => panic!("unexpected attribute type"),
            }
        }
        assert_eq!(kinds, [true; 4]);
        let errors: Vec<_> = spans
            .iter()
            .filter(|s| s.status.as_ref().map(|st| st.code) == Some(StatusCode::Error as i32))
            .collect();
        assert!(!errors.is_empty());
        for span in errors {
            assert!(span.events.iter().any(|e| e.name == "exception"));
        }
    }

    #[test]
    fn one_resource_per_service_with_its_attributes() {
        let generated = generate(&Shape::default(), 4);
        let mut names: Vec<&str> = generated
            .request
            .resource_spans
            .iter()
            .map(|rs| last_service(rs).expect("service.name"))
            .collect();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before);
        assert_eq!(names.first(), Some(&"frontend"));
    }

    #[test]
    fn shape_limits_are_enforced() {
        assert!(Shape::default().validate().is_ok());
        for bad in [
            Shape {
                services: 0,
                ..Shape::default()
            },
            Shape {
                spans_per_trace: 0,
                ..Shape::default()
            },
            Shape {
                error_rate: 1.5,
                ..Shape::default()
            },
            Shape {
                attributes: limits::ATTRIBUTES_MAX + 1,
                ..Shape::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
