#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, every unit and integration
# test against the real binary. Installs what the tests need (a Python venv with the
# OpenTelemetry SDK from PyPI) on its own. Needs only the Rust toolchain and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== python: the OpenTelemetry SDK and its exporters for the interop tests"
scripts/python-env.sh
export ALLEGRO_TEST_PYTHON="$PWD/target/pyenv/bin/python"
export ALLEGRO_TEST_PYTHON_JAEGER="$PWD/target/pyenv-jaeger/bin/python"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test"
cargo test --workspace

echo "== fuzz targets build (type-checked on stable; run them with scripts/fuzz.sh)"
for crate in net/hpack/fuzz net/h2/fuzz net/fuzz net/receivers/fuzz engine/fuzz; do
  CARGO_TARGET_DIR=target/fuzz-check cargo check --quiet --bins --manifest-path "$crate/Cargo.toml"
done
echo "fuzz targets: ok"
