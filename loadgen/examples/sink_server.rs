//! A do-nothing OTLP/gRPC Export endpoint for measuring the loadgen's own send ceiling over
//! loopback: it reads each request body, discards it and answers OK with an empty
//! `ExportTraceServiceResponse`. Nothing is decoded or stored.
//!
//! ```text
//! cargo run --release -p allegro-loadgen --example sink_server -- 127.0.0.1:4319 [threads]
//! taskset -c 1 target/release/loadgen --endpoint 127.0.0.1:4319 --duration 10s
//! ```

use bytes::Bytes;
use http::Response;

async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    let mut body = request.into_body();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let response = Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())
        .expect("static response");
    let Ok(mut stream) = respond.send_response(response, false) else {
        return;
    };
    // One empty ExportTraceServiceResponse: flag 0, length 0.
    let _ = stream.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), false);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let _ = stream.send_trailers(trailers);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:4319".to_string());
    let threads: usize = args.next().map(|t| t.parse()).transpose()?.unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!("sink_server: listening on {addr}");
        loop {
            let (socket, _) = listener.accept().await?;
            socket.set_nodelay(true)?;
            tokio::spawn(async move {
                let mut builder = h2::server::Builder::new();
                builder
                    .initial_window_size(4 << 20)
                    .initial_connection_window_size(16 << 20)
                    .max_frame_size(1 << 20)
                    .max_concurrent_streams(1024);
                let Ok(mut connection) = builder.handshake(socket).await else {
                    return;
                };
                while let Some(Ok((request, respond))) = connection.accept().await {
                    tokio::spawn(answer(request, respond));
                }
            });
        }
    })
}
