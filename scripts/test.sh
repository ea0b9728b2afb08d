#!/usr/bin/env bash
# The whole test suite, as the README documents it and CI runs it:
# fails if a generated file is tracked, installs the test dependencies,
# checks formatting and lints, then runs every test (unit, property, end to
# end with a real sshd, gcloud fidelity, the layer check of src/, the
# runnable blocks of docs/), then a short fuzzing run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/check-tracked.sh
bash scripts/install-test-deps.sh
export RUST_BACKTRACE=0
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# Fuzzing: a few seconds per target where nightly is installed (its
# absence is no failure); the corpus replay runs above on stable anyway.
if rustup run nightly rustc --version >/dev/null 2>&1; then
  FUZZ_BUILD=dev FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/iap-ssh/fuzz-target-dev}" \
    bash scripts/fuzz.sh "${FUZZ_SECONDS:-2}"
else
  echo "fuzz: no nightly toolchain; fuzzing skipped (tests/fuzz_corpus.rs replayed the corpus)"
fi
