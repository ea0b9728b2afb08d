#!/usr/bin/env bash
# The whole test suite, as the README documents it and CI runs it:
# fails if a generated file is tracked, installs the test dependencies,
# checks formatting and lints, then runs every test (unit, property, end to
# end with a real sshd, gcloud fidelity).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/check-tracked.sh
bash scripts/install-test-deps.sh
export RUST_BACKTRACE=0
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
