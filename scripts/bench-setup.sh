#!/usr/bin/env bash
# `iap-ssh setup --all-projects` over a large fleet on the fake:
# BENCH_PROJECTS projects (default 200) x BENCH_PER_PROJECT instances
# (default 250) = 50,000 VMs. Times the first run (project listing, key
# generation, OS Login import, metadata writes, one host-key fetch per VM,
# config written), a second run (nothing to do), and a dry run, once per
# API latency in BENCH_LATENCIES_MS (default "0,50": a delay added to
# every API answer; real calls take tens to hundreds of ms), each on a
# fresh fleet. BENCH_SETUP_BINARIES="old=PATH,new=PATH" compares builds
# side by side. A benchmark, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
{ command -v python3 && [ -x /usr/bin/time ]; } >/dev/null 2>&1 || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 time >/dev/null
}
cargo build --release --workspace --bins --locked -q
exec python3 -B scripts/bench_setup.py
