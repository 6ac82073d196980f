"""Exports traces to Allegro with the OpenTelemetry Python SDK's Jaeger exporters (1.21.0, the
last release that had them), run from target/pyenv-jaeger.

Usage: export_jaeger.py MODE HOST:PORT [TRACES]

MODE: agent-compact (thrift compact over UDP, the exporter's agent mode), agent-binary (the
same client with thrift's binary protocol, as jaeger-client libraries send to :6832),
collector (thrift binary over HTTP to /api/traces), grpc (jaeger.api_v2 protobuf over gRPC).

Each trace: a server span `GET /checkout` in service `jg-frontend` with a client child
`SELECT carts` holding an event, and a `charge` span in service `jg-payments` that fails in
every second trace. Prints the hex trace ids, one per line. Exits 1 when an export failed.
"""

import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode


class Checking(SpanExporter):
    """Counts what an exporter exported; for the thrift collector, checks the HTTP status too
    (the exporter only logs a failed upload)."""

    def __init__(self, inner):
        self.inner = inner
        self.exported = 0
        self.failures = 0

    def export(self, spans):
        result = self.inner.export(spans)
        collector = getattr(self.inner, "_collector", None)
        if collector is not None and not 200 <= collector.http_transport.code < 300:
            result = SpanExportResult.FAILURE
        if result == SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failures += 1
        return result

    def shutdown(self):
        self.inner.shutdown()


def make_exporter(mode, endpoint):
    host, port = endpoint.rsplit(":", 1)
    if mode in ("agent-compact", "agent-binary"):
        from opentelemetry.exporter.jaeger.thrift import JaegerExporter

        exporter = JaegerExporter(agent_host_name=host, agent_port=int(port))
        if mode == "agent-binary":
            from thrift.protocol import TBinaryProtocol

            from opentelemetry.exporter.jaeger.thrift.gen.agent import Agent

            agent = exporter._agent_client  # pylint: disable=protected-access
            agent.client = Agent.Client(
                iprot=TBinaryProtocol.TBinaryProtocol(trans=agent.buffer)
            )
        return exporter
    if mode == "collector":
        from opentelemetry.exporter.jaeger.thrift import JaegerExporter

        return JaegerExporter(collector_endpoint=f"http://{endpoint}/api/traces?format=jaeger.thrift")
    if mode == "grpc":
        from opentelemetry.exporter.jaeger.proto.grpc import JaegerExporter

        return JaegerExporter(collector_endpoint=endpoint, insecure=True, timeout=10)
    raise SystemExit(f"unknown mode {mode!r}")


def provider(service, mode, endpoint):
    exporter = Checking(make_exporter(mode, endpoint))
    tracer_provider = TracerProvider(
        resource=Resource.create({"service.name": service, "deployment.environment": "test"})
    )
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider, exporter


def main():
    mode = sys.argv[1]
    endpoint = sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    frontend, frontend_exporter = provider("jg-frontend", mode, endpoint)
    payments, payments_exporter = provider("jg-payments", mode, endpoint)
    front = frontend.get_tracer("allegro.it.jaeger", "0.3.0")
    pay = payments.get_tracer("allegro.it.jaeger.payments", "0.4.0")
    ids = []
    for order in range(count):
        with front.start_as_current_span(
            "GET /checkout",
            kind=SpanKind.SERVER,
            attributes={"http.method": "GET", "order.id": order, "ratio": 0.5, "cached": True},
        ) as root:
            ids.append(format(root.get_span_context().trace_id, "032x"))
            with front.start_as_current_span(
                "SELECT carts", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}
            ) as db:
                db.add_event("rows", {"db.rows": 2})
            with pay.start_as_current_span(
                "charge",
                kind=SpanKind.CLIENT,
                record_exception=False,
                set_status_on_exception=False,
            ) as charge:
                if order % 2 == 1:
                    charge.set_status(Status(StatusCode.ERROR, "card declined"))
    frontend.shutdown()
    payments.shutdown()
    exported = frontend_exporter.exported + payments_exporter.exported
    failures = frontend_exporter.failures + payments_exporter.failures
    if failures or exported != 3 * count:
        print(f"export failed: failures={failures} exported={exported} of {3 * count}", file=sys.stderr)
        return 1
    for trace_id in ids:
        print(trace_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
