#!/usr/bin/env bash
# `ssh VM true` three ways through the same fake: the Host block written by
# `iap-ssh setup`, `iap-ssh ssh VM` without setup, and `gcloud compute ssh
# --tunnel-through-iap` (when gcloud is installed). A benchmark, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo build --release --workspace --bins --locked -q
exec python3 -B scripts/bench_ssh.py
