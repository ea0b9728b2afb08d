#!/usr/bin/env bash
# The benchmark of BENCHMARKS.md: direct path vs iap-ssh vs gcloud through
# the same local fake relay and private sshd. Installs its tools, builds the
# release binaries, prints one table. BENCH_MIB=64 for a quick run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
need=()
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --workspace --bins --locked -q
exec python3 -B scripts/bench.py
