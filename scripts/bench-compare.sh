#!/usr/bin/env bash
# Binary size, the proxy's start-to-first-byte and download throughput,
# OLD vs NEW side by side (see scripts/bench_compare.py). A benchmark, not a test.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: scripts/bench-compare.sh OLD_BINARY [NEW_BINARY]" >&2; exit 2; }
old=$(realpath "$1")
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins --locked -q
exec python3 -B scripts/bench_compare.py "$old" "$(realpath "${2:-target/release/iap-ssh}")"
