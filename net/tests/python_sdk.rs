//! Interop with the OpenTelemetry Python SDK (opentelemetry-sdk and
//! opentelemetry-exporter-otlp-proto-grpc 1.45.2, which use grpcio): traces it exports over
//! OTLP gRPC come back through the Tempo query API, and grpcio's own client finds them through
//! `tempopb.StreamingQuerier` as tempo-cli's `query api search --use-grpc` would.
//!
//! The interpreter is `$ALLEGRO_TEST_PYTHON`; without it the test runs
//! `scripts/python-env.sh` (a venv in `target/pyenv`) and uses that.

mod common;

use common::*;
use serde_json::Value;

const TRACES: usize = 4;

/// Runs `tests/python/{script}` with the SDK's interpreter; see [`common::run_python`].
fn run_python(script: &str, args: &[String]) -> String {
    common::run_python(&python(PythonEnv::Sdk), script, args)
}

/// Runs the export script against `addr` with the exporter `kind` (`grpc`, `http`, `zipkin`)
/// and returns the trace ids it printed.
fn run_script_with(addr: std::net::SocketAddr, kind: &str) -> Vec<String> {
    let stdout = run_python(
        "export_traces.py",
        &[addr.to_string(), TRACES.to_string(), kind.to_string()],
    );
    let ids: Vec<String> = stdout.lines().map(str::to_string).collect();
    assert_eq!(ids.len(), TRACES, "trace ids on stdout:\n{stdout}");
    for id in &ids {
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "not a trace id: {id:?}"
        );
    }
    ids
}

fn run_script(grpc: std::net::SocketAddr) -> Vec<String> {
    run_script_with(grpc, "grpc")
}

/// Calls `query_grpc.py` (grpcio) against `addr`: the streamed messages as JSON, and the
/// call's final status line.
fn query_grpc(addr: std::net::SocketAddr, args: &[&str]) -> (Vec<Value>, Value) {
    let mut argv = vec![addr.to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let stdout = run_python("query_grpc.py", &argv);
    let mut lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let status = lines.pop().unwrap_or_else(|| panic!("no output: {stdout}"));
    assert!(status.get("status").is_some(), "last line: {status}");
    (lines, status)
}

/// The value of attribute `key` in an OTLP JSON attribute list.
fn attr(holder: &Value, key: &str) -> Value {
    holder["attributes"]
        .as_array()
        .and_then(|list| list.iter().find(|kv| kv["key"] == key))
        .map(|kv| kv["value"].clone())
        .unwrap_or_else(|| panic!("no attribute {key} in {holder}"))
}

/// (service.name, span) of every span in JSON batches.
fn spans_with_service(batches: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for batch in batches.as_array().expect("batches") {
        let service = attr(&batch["resource"], "service.name")["stringValue"]
            .as_str()
            .expect("service.name is a string")
            .to_string();
        for ss in batch["scopeSpans"].as_array().expect("scopeSpans") {
            for span in ss["spans"].as_array().expect("spans") {
                out.push((service.clone(), span.clone()));
            }
        }
    }
    out
}

fn check_trace(order: usize, trace_id: &str, batches: &Value, api: &str) {
    let spans = spans_with_service(batches);
    assert_eq!(spans.len(), 3, "{api} {trace_id}: spans {batches}");
    let find = |name: &str| -> (String, Value) {
        spans
            .iter()
            .find(|(_, span)| span["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{api} {trace_id}: no span {name:?} in {batches}"))
    };
    let id_b64 = b64(&(0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect::<Vec<u8>>());
    for (_, span) in &spans {
        assert_eq!(
            span["traceId"],
            Value::String(id_b64.clone()),
            "{api}: {span}"
        );
        // The SDK always sends a status message; Tempo shows it, `{}` when unset.
        assert!(
            span["status"].is_object(),
            "{api}: `status` missing: {span}"
        );
    }

    let (service, root) = find("GET /api/orders/{id}");
    assert_eq!(service, "py-frontend");
    assert_eq!(root["kind"], "SPAN_KIND_SERVER");
    assert!(
        root.get("parentSpanId").is_none_or(|p| p == ""),
        "root has no parent: {root}"
    );
    assert_eq!(
        attr(&root, "http.method"),
        serde_json::json!({"stringValue": "GET"})
    );
    assert_eq!(
        attr(&root, "http.status_code"),
        serde_json::json!({"intValue": "200"})
    );
    assert_eq!(
        attr(&root, "order.id"),
        serde_json::json!({"intValue": order.to_string()})
    );
    assert_eq!(
        attr(&root, "sample.ratio")["doubleValue"].as_f64(),
        Some(0.25)
    );
    assert_eq!(
        attr(&root, "cache.hit")["boolValue"]
            .as_bool()
            .unwrap_or(false),
        order.is_multiple_of(2),
        "{root}"
    );
    assert_eq!(
        attr(&root, "tags"),
        serde_json::json!({"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}})
    );
    assert_eq!(
        attr(&root, "sizes"),
        serde_json::json!({"arrayValue": {"values": [{"intValue": "1"}, {"intValue": "2"}, {"intValue": "3"}]}})
    );

    let (service, db) = find("SELECT orders");
    assert_eq!(service, "py-frontend");
    assert_eq!(db["kind"], "SPAN_KIND_CLIENT");
    assert_eq!(db["parentSpanId"], root["spanId"]);
    assert_eq!(
        attr(&db, "db.system"),
        serde_json::json!({"stringValue": "postgresql"})
    );
    let events = db["events"].as_array().expect("events of the db span");
    assert_eq!(events.len(), 1, "{db}");
    assert_eq!(events[0]["name"], "rows");
    assert_eq!(
        attr(&events[0], "db.rows"),
        serde_json::json!({"intValue": "1"})
    );

    let (service, charge) = find("payment.charge");
    assert_eq!(service, "py-payments");
    assert_eq!(charge["parentSpanId"], root["spanId"]);
    assert_eq!(
        attr(&charge, "payment.provider"),
        serde_json::json!({"stringValue": "acme"})
    );
    if order % 2 == 1 {
        assert_eq!(
            attr(&charge, "http.status_code"),
            serde_json::json!({"intValue": "500"})
        );
        assert_eq!(
            charge["status"],
            serde_json::json!({"code": "STATUS_CODE_ERROR", "message": "card declined"}),
            "{charge}"
        );
        let exception = charge["events"]
            .as_array()
            .and_then(|events| events.iter().find(|e| e["name"] == "exception"))
            .unwrap_or_else(|| panic!("no exception event: {charge}"));
        assert_eq!(
            attr(exception, "exception.type"),
            serde_json::json!({"stringValue": "ValueError"})
        );
        assert_eq!(
            attr(exception, "exception.message"),
            serde_json::json!({"stringValue": format!("card declined for order {order}")})
        );
    } else {
        assert_eq!(
            attr(&charge, "http.status_code"),
            serde_json::json!({"intValue": "200"})
        );
        let code = charge["status"].get("code").cloned().unwrap_or(Value::Null);
        assert!(code.is_null() || code == "STATUS_CODE_UNSET", "{charge}");
    }
}

#[test]
fn python_sdk_exports_come_back_through_the_query_api() {
    let server = Server::start("");
    check_exported(&server, &run_script(server.grpc_addr()));
}

/// The same traces through the SDK's OTLP/HTTP exporter (protobuf, gzip) on the OTLP/HTTP
/// receiver come back identical.
#[test]
fn python_sdk_otlp_http_exports_come_back_through_the_query_api() {
    let server = Server::start("");
    check_exported(&server, &run_script_with(server.otlp_http_addr(), "http"));
}

fn check_exported(server: &Server, ids: &[String]) {
    let http = server.http_addr();
    for (order, id) in ids.iter().enumerate() {
        let v1 = get_v1_json(http, id, None).unwrap_or_else(|| panic!("trace {id}: 404"));
        check_trace(order, id, &v1, "v1");
        let v2 = get_v2_json(http, id, None);
        check_trace(order, id, &v2, "v2");
        assert_eq!(
            flatten_json(&v1),
            flatten_json(&v2),
            "{id}: v1 and v2 differ"
        );

        let proto = get_v1_proto(http, id, None).expect("v1 protobuf");
        let spans = flatten(&proto);
        assert_eq!(spans.len(), 3);
        for flat in &spans {
            assert_eq!(hex(&flat.span.trace_id), *id);
        }
    }
}

/// grpcio (gRPC C-core, an independent implementation) calls `tempopb.StreamingQuerier` the way
/// tempo-cli's `query api search --use-grpc` does, on the HTTP port (h2c, Grafana's streaming)
/// and on the gRPC API port: the error traces the SDK acknowledged come back, a bad query is
/// INVALID_ARGUMENT with Tempo's parse error, and tag values are typed.
#[test]
fn grpcio_streams_search_and_tag_values_from_both_query_ports() {
    let server = Server::start("");
    let ids = run_script(server.grpc_addr());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (start, end) = ((now - 3600).to_string(), (now + 60).to_string());
    // Every second trace's charge failed (export_traces.py); search IDs have no leading zeros.
    let mut failed: Vec<String> = ids
        .iter()
        .skip(1)
        .step_by(2)
        .map(|id| id.trim_start_matches('0').to_string())
        .collect();
    failed.sort();
    for addr in [server.http_addr(), server.grpc_api_addr()] {
        let query = r#"{ resource.service.name = "py-payments" && status = error }"#;
        let (messages, status) = query_grpc(addr, &["search", query, &start, &end]);
        assert_eq!(status, serde_json::json!({"status": "OK"}), "{addr}");
        assert!(!messages.is_empty(), "{addr}: no message");
        assert!(
            messages.last().unwrap()["metrics"].is_object(),
            "{addr}: the last message carries the metrics: {messages:?}"
        );
        let mut found: Vec<String> = Vec::new();
        for message in &messages {
            for trace in message["traces"].as_array().unwrap() {
                assert_eq!(trace["rootServiceName"], "py-frontend", "{trace}");
                assert_eq!(trace["rootTraceName"], "GET /api/orders/{id}", "{trace}");
                let id = trace["traceID"].as_str().unwrap().to_string();
                if !found.contains(&id) {
                    found.push(id);
                }
            }
        }
        found.sort();
        assert_eq!(found, failed, "{addr}: {messages:?}");

        let (messages, status) = query_grpc(addr, &["search", "{ .a = }", &start, &end]);
        assert!(messages.is_empty(), "{addr}: {messages:?}");
        assert_eq!(status["status"], "INVALID_ARGUMENT", "{addr}: {status}");
        let details = status["details"].as_str().unwrap();
        assert!(
            details.contains("parse error at line 1, col"),
            "{addr}: {details}"
        );

        let (messages, status) = query_grpc(addr, &["tag-values", "resource.service.name", "{}"]);
        assert_eq!(status, serde_json::json!({"status": "OK"}), "{addr}");
        let mut values: Vec<Value> = messages
            .iter()
            .flat_map(|m| m["tagValues"].as_array().unwrap().clone())
            .collect();
        values.sort_by_key(|v| v.to_string());
        values.dedup();
        assert_eq!(
            values,
            vec![
                serde_json::json!({"type": "string", "value": "py-frontend"}),
                serde_json::json!({"type": "string", "value": "py-payments"}),
            ],
            "{addr}"
        );
    }
}
