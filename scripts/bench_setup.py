"""Driver for scripts/bench-setup.sh: a generated fleet on fake-gcp, then
timed `iap-ssh setup` runs. Prints a Markdown table."""

import os
import subprocess
import sys
import tempfile

from benchlib import fake_env, start_fake

PROJECTS = int(os.environ.get("BENCH_PROJECTS", "20"))
PER = int(os.environ.get("BENCH_PER_PROJECT", "250"))
LATENCY = int(os.environ.get("BENCH_LATENCY_MS", "0"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
ZONES = ["us-central1-a", "us-central1-b", "europe-west1-b", "asia-east1-a", "us-east1-c"]


def fleet(host_key):
    projects, instances = [], []
    n = 0
    for p in range(PROJECTS):
        pid = f"bench-project-{p:02d}"
        projects.append({"id": pid, "metadata": {"enable-guest-attributes": "TRUE"}})
        for i in range(PER):
            n += 1
            meta = {}
            if i % 10 == 1:
                meta["enable-oslogin"] = "TRUE"
            elif i % 10 == 2:
                meta["block-project-ssh-keys"] = "true"
            instances.append({
                "project": pid, "zone": ZONES[i % len(ZONES)], "name": f"vm-{p:02d}-{i:04d}",
                "id": str(5000000000000000000 + n), "metadata": meta, "host_keys": [host_key],
            })
    return {"projects": projects, "instances": instances, "guest_delay_ms": 0, "api_latency_ms": LATENCY,
            "account": {"email": "bench.user@example.com"}}


def main():
    d = tempfile.mkdtemp(prefix="bench-setup-")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/hk"], check=True)
    host_key = " ".join(open(f"{d}/hk.pub").read().split()[:2])
    fake, ready = start_fake(f"{REL}/fake-gcp", d, fleet(host_key))
    env = fake_env(ready, f"{d}/home")
    env.update({"USER": "bench", "LOGNAME": "bench"})
    os.makedirs(f"{d}/home", exist_ok=True)
    args = ["/usr/bin/time", "-f", "%e %U %S %M", f"{REL}/iap-ssh", "setup"]
    for p in range(PROJECTS):
        args += ["--project", f"bench-project-{p:02d}"]
    rows = []
    try:
        for label, extra in [("first run", []), ("second run (nothing to do)", []),
                             ("dry run", ["--dry-run"])]:
            out = subprocess.run(args + extra, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"{label} failed: {out.stderr}")
            *summary, last = out.stderr.strip().splitlines()
            wall, user, sys_, rss_kib = last.split()
            rows.append((label, float(wall), float(user) + float(sys_), int(rss_kib) / 1024))
            if label == "first run":
                first_summary = "\n".join(summary)
        cfg = open(f"{d}/home/.ssh/config").read()
        kh = open(f"{d}/home/.ssh/google_compute_known_hosts").read()
    finally:
        fake.terminate()
    n = PROJECTS * PER
    print(f"setup over {n} instances in {PROJECTS} projects, {LATENCY} ms per API call "
          f"({cfg.count('HostKeyAlias ')} Host blocks, {len(kh.splitlines())} known-hosts lines, "
          f"{len(cfg) // 1024} KiB config)\n")
    print(first_summary + "\n")
    print("| run | wall s | iap-ssh CPU s | iap-ssh peak RSS MiB |")
    print("|---|---:|---:|---:|")
    for label, wall, cpu, rss in rows:
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {rss:.1f} |")


if __name__ == "__main__":
    main()
