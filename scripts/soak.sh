#!/usr/bin/env bash
# Soak runs (a benchmark, not a test): `iap-ssh proxy` carrying bytes both
# ways, and `iap-ssh forward` opening and closing 50 connections at a time,
# each for SOAK_SECONDS (default 600), through fake-gcp injecting drops,
# 4004 re-authentications, 429s on reconnect and stalls at random times.
# Every byte is checked; RSS, open descriptors and threads are sampled
# every second and must stay flat. Settings: see scripts/soak.py.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null 2>&1 || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
}
cargo build --release --workspace --bins --locked -q
exec python3 -B scripts/soak.py
