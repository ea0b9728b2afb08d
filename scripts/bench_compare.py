#!/usr/bin/env python3
"""Two (or more) iap-ssh binaries side by side: file size, the proxy's
time from process start to the first echoed byte, and raw download
throughput, through the same local fake relay, runs interleaved so the
machine's noise falls on all alike. For "is this change no worse" questions.

    scripts/bench-compare.sh OLD_BINARY [NEW_BINARY]   (NEW defaults to this tree's release build)

BENCH_START_RUNS (default 200) sets the start runs per binary,
BENCH_COMPARE_MIB (default 256) and BENCH_COMPARE_RUNS (default 5) the
download.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import drain, fake_env, start_fake

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE = os.path.join(ROOT, "target", "release", "fake-gcp")
RUNS = int(os.environ.get("BENCH_START_RUNS", "200"))
MIB = int(os.environ.get("BENCH_COMPARE_MIB", "256"))
TP_RUNS = int(os.environ.get("BENCH_COMPARE_RUNS", "5"))
PROJECT, ZONE, VM = "bench-proj", "us-central1-a", "bench-vm"


def first_byte_ms(binary, env):
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "proxy", f"{VM}.{ZONE}.{PROJECT}", "7"], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    p.stdin.write(b"x")
    got = p.stdout.read(1)
    ms = (time.monotonic() - t0) * 1000
    p.stdin.close()
    p.wait(30)
    if got != b"x":
        sys.exit(f"{binary}: no echo")
    return ms


def download_mib_s(binary, env):
    """MIB MiB from an `exec head -c` source; stdin held open so only the
    source ends the session; timed to the last byte."""
    n = MIB * 1024 * 1024
    hold = subprocess.Popen(["sleep", "3600"], stdout=subprocess.PIPE)
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "proxy", f"{VM}.{ZONE}.{PROJECT}", "19"], env=env, stdin=hold.stdout,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    got = drain(p.stdout, n)
    wall = time.monotonic() - t0
    hold.kill()
    hold.wait()
    p.wait(60)
    if got != n:
        sys.exit(f"{binary}: received {got} of {n} bytes")
    return MIB / wall


def main():
    bins = sys.argv[1:]
    if not bins:
        sys.exit(__doc__)
    d = tempfile.mkdtemp(prefix="iap-bench-start-")
    config = {"instances": [{"project": PROJECT, "zone": ZONE, "name": VM, "id": "1",
                             "ports": {"7": {"exec": ["cat"]},
                                       "19": {"exec": ["sh", "-c", f"head -c {MIB * 1024 * 1024} /dev/zero"]}}}]}
    fake, info = start_fake(FAKE, d, config)
    os.makedirs(f"{d}/home")
    env = fake_env(info, f"{d}/home")
    times = {b: [] for b in bins}
    rates = {b: [] for b in bins}
    try:
        for b in bins:  # warm the page cache and the token cache
            first_byte_ms(b, env)
        for _ in range(RUNS):
            for b in bins:
                times[b].append(first_byte_ms(b, env))
        for _ in range(TP_RUNS):
            for b in bins:
                rates[b].append(download_mib_s(b, env))
    finally:
        fake.terminate()
        fake.wait(5)
    print(f"\n{RUNS} start runs and {TP_RUNS} downloads of {MIB} MiB each, interleaved; machine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}\n")
    print("| binary | size (bytes) | start to first echoed byte, median | p90 | download, median |")
    print("|---|---|---|---|---|")
    for b in bins:
        t = sorted(times[b])
        print(f"| {b} | {os.path.getsize(b):,} | {statistics.median(t):.2f} ms | {t[int(0.9 * len(t))]:.2f} ms | "
              f"{statistics.median(rates[b]):.0f} MiB/s |")


if __name__ == "__main__":
    main()
