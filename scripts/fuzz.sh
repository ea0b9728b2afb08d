#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/, one per iap_ssh::fuzzing::TARGETS
# entry) for SECONDS each (default 60) and prints the executions per
# target. Needs the nightly toolchain and cargo-fuzz (installed here when
# missing); without nightly it says so and exits 0 (FUZZ_REQUIRED=1 makes
# that a failure). FUZZ_TARGETS=a,b runs only those.
#
# The committed corpus (fuzz/corpus/TARGET: seeds from the tests' vectors
# and kept finds) is read, never written: new inputs go to
# fuzz/target/corpus/TARGET. A crash leaves its input in
# fuzz/artifacts/TARGET/ and fails the run; fix it, then copy the input
# into fuzz/corpus/TARGET/ so that tests/fuzz_corpus.rs replays it on
# stable from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain here; skipped" >&2
  [ "${FUZZ_REQUIRED:-0}" = 1 ] && exit 1
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked -q
fi
# FUZZ_TARGET_DIR: where the (slow, nightly, sanitizer) build goes; CI
# keeps it outside the clone so that a run rebuilds only what changed.
# FUZZ_BUILD=dev: an unoptimised build (sanitizer and coverage still on),
# much quicker to compile and slower to run: for CI's few seconds per target.
dir=(-O)
[ "${FUZZ_BUILD:-release}" = dev ] && dir=(--dev)
dir+=(--debug-assertions)
[ -n "${FUZZ_TARGET_DIR:-}" ] && dir+=(--target-dir "$FUZZ_TARGET_DIR")
targets=${FUZZ_TARGETS:-$(sed -n 's/^name = "\([a-z0-9_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^iap-ssh-fuzz$')}
targets=${targets//,/ }
cd fuzz
# One build for every target (debug assertions on).
cargo +nightly fuzz build "${dir[@]}" >/dev/null 2>&1 ||
  cargo +nightly fuzz build "${dir[@]}"
printf '| target | seconds | executions | exec/s | corpus in | result |\n|---|---:|---:|---:|---:|---|\n'
failed=0
for t in $targets; do
  mkdir -p "target/corpus/$t"
  log="target/fuzz-$t.log"
  in=$(ls "corpus/$t" | wc -l)
  if cargo +nightly fuzz run "${dir[@]}" "$t" "target/corpus/$t" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result="CRASH (see fuzz/$log, fuzz/artifacts/$t/)"
    failed=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "$secs" "${runs:-?}" "${rate:-?}" "$in" "$result"
done
exit $failed
