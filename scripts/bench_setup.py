"""Driver for scripts/bench-setup.sh: a generated fleet on fake-gcp, then
timed `iap-ssh setup` runs. Prints a Markdown table."""

import os
import subprocess
import sys
import tempfile

from benchlib import fake_env, start_fake

PROJECTS = int(os.environ.get("BENCH_PROJECTS", "200"))
PER = int(os.environ.get("BENCH_PER_PROJECT", "250"))
# Each latency is a fresh fleet and home (comma-separated, ms per API call).
LATENCIES = [int(x) for x in os.environ.get("BENCH_LATENCIES_MS", "0,50").split(",") if x]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
# BENCH_SETUP_BINARIES="old=PATH,new=PATH": several iap-ssh builds side by
# side, each on its own fresh fleet, taking turns (default: this tree's).
BINARIES = [tuple(x.split("=", 1)) for x in
            os.environ.get("BENCH_SETUP_BINARIES", f"iap-ssh={REL}/iap-ssh").split(",") if x]
ZONES = ["us-central1-a", "us-central1-b", "europe-west1-b", "asia-east1-a", "us-east1-c"]


def fleet(host_key, latency):
    projects, instances = [], []
    n = 0
    for p in range(PROJECTS):
        pid = f"bench-project-{p:03d}"
        projects.append({"id": pid, "metadata": {"enable-guest-attributes": "TRUE"}})
        for i in range(PER):
            n += 1
            meta = {}
            if i % 10 == 1:
                meta["enable-oslogin"] = "TRUE"
            elif i % 10 == 2:
                meta["block-project-ssh-keys"] = "true"
            instances.append({
                "project": pid, "zone": ZONES[i % len(ZONES)], "name": f"vm-{p:03d}-{i:04d}",
                "id": str(5000000000000000000 + n), "metadata": meta, "host_keys": [host_key],
            })
    return {"projects": projects, "instances": instances, "guest_delay_ms": 0, "api_latency_ms": latency,
            "account": {"email": "bench.user@example.com"}}


def bench(latency, iap):
    d = tempfile.mkdtemp(prefix="bench-setup-")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/hk"], check=True)
    host_key = " ".join(open(f"{d}/hk.pub").read().split()[:2])
    fake, ready = start_fake(f"{REL}/fake-gcp", d, fleet(host_key, latency))
    env = fake_env(ready, f"{d}/home")
    env.update({"USER": "bench", "LOGNAME": "bench"})
    os.makedirs(f"{d}/home", exist_ok=True)
    # Every project the caller sees, through Cloud Resource Manager.
    args = ["/usr/bin/time", "-f", "%e %U %S %M", iap, "setup", "--all-projects"]
    rows = []
    try:
        for label, extra in [("first run", []), ("second run (nothing to do)", []),
                             ("dry run", ["--dry-run"])]:
            out = subprocess.run(args + extra, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"{label} failed: {out.stderr}")
            *summary, last = out.stderr.strip().splitlines()
            wall, user, sys_, rss_kib = last.split()
            rows.append((label, latency, float(wall), float(user) + float(sys_), int(rss_kib) / 1024))
            if label == "first run":
                first_summary = "\n".join(summary)
        cfg = open(f"{d}/home/.ssh/config").read()
        kh = open(f"{d}/home/.ssh/google_compute_known_hosts").read()
    finally:
        fake.terminate()
    facts = (f"{cfg.count('HostKeyAlias ')} Host blocks, {len(kh.splitlines())} known-hosts lines, "
             f"{len(cfg) // 1024} KiB config")
    return rows, first_summary, facts


def main():
    n = PROJECTS * PER
    rows, summary, facts = [], None, None
    for latency in LATENCIES:
        for label, iap in BINARIES:
            r, s1, f1 = bench(latency, iap)
            rows += [(label,) + row for row in r]
            summary, facts = summary or s1, facts or f1
    print(f"setup --all-projects over {n} instances in {PROJECTS} projects ({facts})\n")
    lines = summary.splitlines()
    if len(lines) > 12:
        # One line per project: the first and last few.
        lines = lines[:6] + [f"  … {len(lines) - 10} more lines …"] + lines[-4:]
    print("\n".join(lines) + "\n")
    print("| build | run | API latency | wall s | iap-ssh CPU s | iap-ssh peak RSS MiB |")
    print("|---|---|---:|---:|---:|---:|")
    for build, label, latency, wall, cpu, rss in rows:
        print(f"| {build} | {label} | {latency} ms | {wall:.2f} | {cpu:.2f} | {rss:.1f} |")


if __name__ == "__main__":
    main()
