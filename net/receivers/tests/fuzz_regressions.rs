//! Replays every saved input of the receivers' fuzz targets (`fuzz/regressions/<target>/`:
//! real client payloads as seeds, and crashes once found) through `allegro_receivers::fuzz`,
//! then a deterministic run of mutations of them, so that plain `cargo test` keeps them fixed.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 3] = [
    ("otlp_json", allegro_receivers::fuzz::otlp_json),
    ("zipkin", allegro_receivers::fuzz::zipkin),
    ("jaeger", allegro_receivers::fuzz::jaeger),
];

fn saved_inputs(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no inputs in {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let data =
                std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            (path, data)
        })
        .collect()
}

#[test]
fn saved_inputs_replay() {
    for (target, run) in TARGETS {
        for (path, data) in saved_inputs(target) {
            eprintln!("replaying {}", path.display());
            run(&data);
        }
    }
}

/// Byte flips, overwrites with bytes that matter to JSON, protobuf and thrift framing,
/// insertions, deletions and truncations of the saved inputs.
#[test]
fn mutations_of_saved_inputs() {
    let alphabet = b"{}[]\":,.-+eE0123456789abcdefnulltrue\\\x00\x01\x08\x0b\x0c\x0f\x15\x16\x18\x19\x1c\x7f\x80\xff";
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize
    };
    for (target, run) in TARGETS {
        let seeds: Vec<Vec<u8>> = saved_inputs(target).into_iter().map(|(_, d)| d).collect();
        for _ in 0..3_000 {
            let mut data = seeds[next() % seeds.len()].clone();
            for _ in 0..1 + next() % 4 {
                if data.is_empty() {
                    data.push(alphabet[next() % alphabet.len()]);
                }
                let at = next() % data.len();
                match next() % 5 {
                    0 => data[at] ^= 1 << (next() % 8),
                    1 => data[at] = alphabet[next() % alphabet.len()],
                    2 => data.insert(at, alphabet[next() % alphabet.len()]),
                    3 => {
                        data.remove(at);
                    }
                    _ => data.truncate(at),
                }
            }
            run(&data);
        }
    }
}

/// The Jaeger seeds were written by Apache Thrift's Python library and Google's protobuf
/// runtime (the client side of the SDK's Jaeger exporters): each decodes with its decoder.
#[test]
fn jaeger_seeds_from_the_python_clients_decode() {
    use allegro_receivers::jaeger::{self, AgentProtocol};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/jaeger");
    let read = |name: &str| std::fs::read(dir.join(name)).expect(name);
    let service = |request: &allegro_receivers::ExportTraceServiceRequest| {
        let resource = request.resource_spans[0]
            .resource
            .as_ref()
            .expect("resource");
        let kv = resource
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .expect("service.name");
        format!("{:?}", kv.value)
    };
    let spans = |request: &allegro_receivers::ExportTraceServiceRequest| -> usize {
        request
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum()
    };
    for (name, decoded) in [
        (
            "agent-compact.bin",
            jaeger::decode_agent_datagram(&read("agent-compact.bin"), AgentProtocol::Compact),
        ),
        (
            "agent-binary.bin",
            jaeger::decode_agent_datagram(&read("agent-binary.bin"), AgentProtocol::Binary),
        ),
        (
            "thrift-http-batch.bin",
            jaeger::decode_thrift_batch(&read("thrift-http-batch.bin")),
        ),
    ] {
        let request = decoded.unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(spans(&request), 2, "{name}");
        assert!(service(&request).contains("\"seed\""), "{name}");
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            span.trace_id,
            [1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88],
            "{name}"
        );
    }
    let request = jaeger::decode_grpc_post_spans(&read("grpc-post-spans.bin")).expect("grpc");
    assert_eq!(spans(&request), 1);
    assert!(service(&request).contains("seed-grpc"));
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.trace_id, (0..16).collect::<Vec<u8>>());
    assert_eq!(span.parent_span_id, (1..9).collect::<Vec<u8>>());
}
