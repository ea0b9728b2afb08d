#!/usr/bin/env python3
"""`ssh VM true`, three ways, side by side through the same fake Google
endpoints (Compute, OS Login, relay) and a private sshd: plain `ssh VM`
with the Host block `iap-ssh setup` wrote (and the one `setup --control-master`
wrote, its master kept up by the first run); `iap-ssh ssh VM` (no setup:
instances.get + projects.get + tunnel); and `gcloud compute ssh VM
--tunnel-through-iap`. Each is run once to publish keys, then timed.
Run through scripts/bench-ssh.sh. Prints a Markdown table."""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import fake_env, start_fake

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
RUNS = int(os.environ.get("BENCH_SSH_RUNS", "10"))
PROJECT, ZONE, VM = "bench-project", "us-central1-a", "bench-vm"
GCLOUD = shutil.which("gcloud")


def main():
    d = tempfile.mkdtemp(prefix="iap-bench-ssh-")
    os.makedirs("/run/sshd", exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/hostkey"], check=True)
    with open(f"{d}/sshd_config", "w") as f:
        f.write(f"HostKey {d}/hostkey\nPidFile none\nAuthorizedKeysFile {d}/keys/%u\n"
                "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n")
    host_key = " ".join(open(f"{d}/hostkey.pub").read().split()[:2])
    cfg = {"instances": [{"project": PROJECT, "zone": ZONE, "name": VM, "id": "4000000000000000001",
                          "host_keys": [host_key], "guest_keys_dir": f"{d}/keys",
                          "ports": {"22": {"exec": ["/usr/sbin/sshd", "-i", "-e", "-f", f"{d}/sshd_config"]}}}],
           "projects": [{"id": PROJECT, "metadata": {"enable-guest-attributes": "TRUE"}}],
           "guest_delay_ms": 200}
    fake, ready = start_fake(f"{REL}/fake-gcp", d, cfg)
    home = f"{d}/home"
    os.makedirs(home)
    env = fake_env(ready, home, gcloud_dir=f"{d}/gcloud")
    env.update({"USER": "root", "LOGNAME": "root", "CLOUDSDK_CORE_ACCOUNT": "alice@example.com"})
    iap = f"{REL}/iap-ssh"
    ways = [
        ("ssh VM (Host block from iap-ssh setup)", ["ssh", "-F", f"{home}/.ssh/config", "-o", "BatchMode=yes", VM, "true"]),
        ("ssh VM (Host block from `setup --control-master`, master up)",
         ["ssh", "-F", f"{home}/.ssh/config-cm", "-o", "BatchMode=yes", VM, "true"]),
        ("iap-ssh ssh VM (no setup)", [iap, "ssh", "--project", PROJECT, VM, "true"]),
    ]
    if GCLOUD:
        ways.append(("gcloud compute ssh VM --tunnel-through-iap", [
            GCLOUD, "compute", "ssh", VM, "--project", PROJECT, "--zone", ZONE, "--tunnel-through-iap",
            "--quiet", f"--iap-tunnel-url-override={ready['tunnel_url']}", "--command", "true"]))
    rows = []
    try:
        subprocess.run([iap, "-q", "setup", "--project", PROJECT], env=env, check=True)
        subprocess.run([iap, "-q", "setup", "--project", PROJECT, "--control-master",
                        "--ssh-config", f"{home}/.ssh/config-cm"], env=env, check=True)
        # Steady state: `iap-ssh ssh` checks quietly (one extra `ssh true`)
        # that a key written in the last 60 s by another run has reached
        # the VM; setup wrote it just now, so wait that minute out.
        time.sleep(61)
        for label, cmd in ways:
            first = subprocess.run(cmd, env=env, capture_output=True, text=True)  # publishes, pins
            if first.returncode != 0:
                sys.exit(f"{label} failed: {first.stderr}")
            times = []
            for _ in range(RUNS):
                t = time.perf_counter()
                subprocess.run(cmd, env=env, check=True, capture_output=True)
                times.append(time.perf_counter() - t)
            rows.append((label, statistics.median(times), min(times), max(times)))
    finally:
        subprocess.run(["ssh", "-F", f"{home}/.ssh/config-cm", "-O", "exit", VM], env=env, capture_output=True)
        fake.terminate()
        shutil.rmtree(d, ignore_errors=True)
    print(f"`ssh … true` through the fake relay, {RUNS} runs each after a first run that publishes keys\n")
    print("| command | median ms | min ms | max ms |")
    print("|---|---:|---:|---:|")
    for label, med, lo, hi in rows:
        print(f"| {label} | {med * 1000:.0f} | {lo * 1000:.0f} | {hi * 1000:.0f} |")


if __name__ == "__main__":
    main()
