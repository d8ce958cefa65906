#!/usr/bin/env bash
# The whole test suite: sets up the Python 9P peers (venvs under target/peers), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/peers/setup.sh
# Benchmarks are not tests: they run (optimised, printing figures) with `cargo bench`.
cargo test --workspace --lib --bins --tests --examples --locked "$@"
cargo test --workspace --doc --locked "$@"
