#!/usr/bin/env bash
# Creates target/pyenv with the OpenTelemetry Python SDK and its OTLP gRPC exporter, used by
# the interop test (net/tests/python_sdk.rs). Idempotent: does nothing when already there.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/pyenv
stamp="$venv/.allegro-ready-1"
[ -f "$stamp" ] && exit 0
mkdir -p target
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  "opentelemetry-sdk==1.45.2" "opentelemetry-exporter-otlp-proto-grpc==1.45.2"
touch "$stamp"
