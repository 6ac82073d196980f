"""Exports traces to Allegro with the OpenTelemetry Python SDK and one of its exporters.

Usage: export_traces.py HOST:PORT [TRACES] [grpc|http|zipkin]

grpc (the default): OTLP/gRPC. http: OTLP/HTTP with protobuf bodies, gzip-compressed, to
/v1/traces. zipkin: the Zipkin JSON (v2) exporter, to /api/v2/spans.

Each trace has a root server span in service `py-frontend`, a database client span below it,
and a `payment.charge` span in service `py-payments`; every second trace's charge fails with
an exception event and an error status. Prints the hex trace ids, one per line, on stdout.
Exits 1 when any export did not succeed. net/tests/python_sdk.rs checks what comes back.
"""

import sys

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as OTLPHTTPSpanExporter,
)
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode


class Checking(SpanExporter):
    """Wraps an exporter and counts what it exported and what failed."""

    def __init__(self, inner):
        self.inner = inner
        self.exported = 0
        self.failures = 0

    def export(self, spans):
        result = self.inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failures += 1
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


def make_exporter(kind, endpoint):
    if kind == "grpc":
        return OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10)
    if kind == "http":
        return OTLPHTTPSpanExporter(
            endpoint=f"http://{endpoint}/v1/traces",
            timeout=10,
            compression=Compression.Gzip,
        )
    if kind == "zipkin":
        return ZipkinExporter(endpoint=f"http://{endpoint}/api/v2/spans", timeout=10)
    raise SystemExit(f"unknown exporter {kind!r}")


def provider(service, endpoint, batch, kind):
    exporter = Checking(make_exporter(kind, endpoint))
    resource = Resource.create(
        {
            "service.name": service,
            "service.namespace": "allegro-it",
            "deployment.environment": "test",
        }
    )
    tracer_provider = TracerProvider(resource=resource)
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    tracer_provider.add_span_processor(processor)
    return tracer_provider, exporter


def main():
    endpoint = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    kind = sys.argv[3] if len(sys.argv) > 3 else "grpc"
    # The frontend batches; the payments service exports each span on its own.
    frontend, frontend_exporter = provider("py-frontend", endpoint, True, kind)
    payments, payments_exporter = provider("py-payments", endpoint, False, kind)
    front = frontend.get_tracer("allegro.it.frontend", "0.1.0")
    pay = payments.get_tracer("allegro.it.payments", "0.2.0")

    ids = []
    for order in range(count):
        with front.start_as_current_span(
            "GET /api/orders/{id}",
            kind=SpanKind.SERVER,
            attributes={
                "http.method": "GET",
                "http.route": "/api/orders/{id}",
                "http.status_code": 200,
                "order.id": order,
                "sample.ratio": 0.25,
                "cache.hit": order % 2 == 0,
                "tags": ["a", "b"],
                "sizes": [1, 2, 3],
            },
        ) as root:
            ids.append(format(root.get_span_context().trace_id, "032x"))
            with front.start_as_current_span(
                "SELECT orders",
                kind=SpanKind.CLIENT,
                attributes={
                    "db.system": "postgresql",
                    "db.statement": "SELECT * FROM orders WHERE id=$1",
                },
            ) as db:
                db.add_event("rows", {"db.rows": 1})
            with pay.start_as_current_span(
                "payment.charge",
                kind=SpanKind.CLIENT,
                record_exception=False,
                set_status_on_exception=False,
            ) as charge:
                charge.set_attribute("payment.provider", "acme")
                if order % 2 == 1:
                    charge.set_attribute("http.status_code", 500)
                    charge.record_exception(
                        ValueError(f"card declined for order {order}")
                    )
                    charge.set_status(Status(StatusCode.ERROR, "card declined"))
                else:
                    charge.set_attribute("http.status_code", 200)

    ok = frontend.force_flush(30000) and payments.force_flush(30000)
    frontend.shutdown()
    payments.shutdown()
    exported = frontend_exporter.exported + payments_exporter.exported
    failures = frontend_exporter.failures + payments_exporter.failures
    if not ok or failures or exported != 3 * count:
        print(
            f"export failed: flushed={ok} failures={failures} exported={exported} "
            f"of {3 * count} spans",
            file=sys.stderr,
        )
        return 1
    for trace_id in ids:
        print(trace_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
