#!/usr/bin/env bash
# Creates the Python environments the interop tests use, from PyPI. Idempotent: does nothing
# when they are already there.
#
# target/pyenv: the OpenTelemetry Python SDK with its OTLP exporters (gRPC, and HTTP with
#   protobuf) and its Zipkin JSON exporter (net/tests/python_sdk.rs, net/tests/receivers.rs).
# target/pyenv-jaeger: the SDK's last Jaeger exporters (1.21.0: thrift over UDP to the agent
#   port and over HTTP to the collector, protobuf over gRPC), which need the SDK and protobuf
#   of their time, so they live apart (net/tests/receivers.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
pip_install() {
  "$1/bin/pip" install --quiet --disable-pip-version-check "${@:2}"
}
venv=target/pyenv
stamp="$venv/.allegro-ready-2"
if [ ! -f "$stamp" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  pip_install "$venv" \
    "opentelemetry-sdk==1.45.2" "opentelemetry-exporter-otlp-proto-grpc==1.45.2" \
    "opentelemetry-exporter-otlp-proto-http==1.45.2" "opentelemetry-exporter-zipkin-json==1.39.1"
  touch "$stamp"
fi
venv=target/pyenv-jaeger
stamp="$venv/.allegro-ready-1"
if [ ! -f "$stamp" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  pip_install "$venv" \
    "opentelemetry-sdk==1.21.0" "opentelemetry-exporter-jaeger-thrift==1.21.0" \
    "opentelemetry-exporter-jaeger-proto-grpc==1.21.0" "protobuf==3.20.3"
  touch "$stamp"
fi
