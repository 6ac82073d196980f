//! The network edge: HTTP/1.1, gRPC over our HTTP/2 (`allegro-h2`), the Tempo query API and
//! the wire protobufs. Only this crate knows HTTP and gRPC.

pub mod api;
pub mod grpc;
pub mod http1;
pub mod http_response;
pub mod ingest;
pub mod jsonpb;
pub mod limits;
pub mod metrics;
pub mod metrics_api;
pub mod otlp_json;
pub mod receivers;
pub mod search_api;
pub mod server;
pub mod shards;
pub mod shared;
pub mod tempopb;
