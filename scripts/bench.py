#!/usr/bin/env python3
"""Side-by-side benchmark: the direct path, iap-ssh proxy (straight to the
relay, and through a local HTTP proxy, Debian's tinyproxy) and gcloud's
start-iap-tunnel, through the same local fake relay and a private sshd.

Run through scripts/bench.sh (which installs what it needs and builds the
release binaries). Prints one Markdown table. Sizes can be reduced with
BENCH_MIB (default 512) for a quick look; BENCHMARKS.md uses the default.
BENCH_NO_GCLOUD=1 leaves gcloud out.
"""

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import drain, fake_env, start_fake

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
IAP = os.path.join(REL, "iap-ssh")
FAKE = os.path.join(REL, "fake-gcp")
MIB = int(os.environ.get("BENCH_MIB", "512"))
N = MIB * 1024 * 1024
SSH_RUNS = int(os.environ.get("BENCH_SSH_RUNS", "20"))
RTT_RUNS = int(os.environ.get("BENCH_RTT_RUNS", "1000"))
FIRST_RUNS = int(os.environ.get("BENCH_FIRST_RUNS", "7"))
PROJECT, ZONE, VM = "bench-proj", "us-central1-a", "bench-vm"
GCLOUD = None if os.environ.get("BENCH_NO_GCLOUD") else shutil.which("gcloud")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


class Env:
    def __init__(self):
        self.d = tempfile.mkdtemp(prefix="iap-bench-")
        d = self.d
        os.makedirs("/run/sshd", exist_ok=True)
        for name in ("hostkey", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/{name}"], check=True)
        shutil.copy(f"{d}/client.pub", f"{d}/authorized_keys")
        self.sshd_port = free_port()
        with open(f"{d}/sshd_config", "w") as f:
            f.write(
                f"Port {self.sshd_port}\nListenAddress 127.0.0.1\nHostKey {d}/hostkey\nPidFile none\n"
                f"AuthorizedKeysFile {d}/authorized_keys\nPubkeyAuthentication yes\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                "PermitRootLogin prohibit-password\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
            )
        self.procs = []
        self.procs.append(subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", f"{d}/sshd_config"],
                                           stderr=open(f"{d}/sshd.log", "w")))
        # Backends shared by the direct path (socat) and the fake relay (exec).
        self.backends = {
            "sink": f"head -c {N} >/dev/null",
            "source": f"head -c {N} /dev/zero",
            "echo": "cat",
        }
        self.direct = {}
        for name, cmd in self.backends.items():
            p = free_port()
            self.procs.append(subprocess.Popen(
                ["socat", f"TCP-LISTEN:{p},bind=127.0.0.1,reuseaddr,fork", f"SYSTEM:{cmd}"],
                stderr=subprocess.DEVNULL))
            self.direct[name] = p
        ports = {"22": {"tcp": f"127.0.0.1:{self.sshd_port}"},
                 "9": {"exec": ["sh", "-c", self.backends["sink"]]},
                 "19": {"exec": ["sh", "-c", self.backends["source"]]},
                 "7": {"exec": ["cat"]}}
        config = {"instances": [{"project": PROJECT, "zone": ZONE, "name": VM, "id": "1", "ports": ports}]}
        self.fake, self.info = start_fake(FAKE, d, config)
        self.procs.append(self.fake)
        self.env = fake_env(self.info, f"{d}/home", gcloud_dir=f"{d}/gcloud")
        # A local HTTP proxy for the "iap-ssh via proxy" column.
        self.http_proxy_port = free_port()
        with open(f"{d}/tinyproxy.conf", "w") as f:
            f.write(f"Port {self.http_proxy_port}\nListen 127.0.0.1\nTimeout 600\nMaxClients 100\n"
                    f"Allow 127.0.0.1\nLogLevel Error\nLogFile \"{d}/tinyproxy.log\"\n")
        self.procs.append(subprocess.Popen(["tinyproxy", "-d", "-c", f"{d}/tinyproxy.conf"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.env["CLOUDSDK_CORE_PROJECT"] = PROJECT
        os.makedirs(f"{d}/home", exist_ok=True)
        os.makedirs(f"{d}/gcloud", exist_ok=True)
        time.sleep(0.3)

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.d, ignore_errors=True)

    def env_for(self, path):
        """The environment of a path's commands (the proxy column's has https_proxy)."""
        if path != "via-proxy":
            return self.env
        return dict(self.env, https_proxy=f"http://127.0.0.1:{self.http_proxy_port}")

    # The ways to reach a VM port, as argv for a given port.
    def proxy_argv(self, path, port_name):
        relay_port = {"ssh": "22", "sink": "9", "source": "19", "echo": "7"}[port_name]
        if path == "direct":
            p = self.sshd_port if port_name == "ssh" else self.direct[port_name]
            return ["nc", "127.0.0.1", str(p)]
        if path in ("iap-ssh", "via-proxy"):
            return [IAP, "proxy", f"{VM}.{ZONE}.{PROJECT}", relay_port]
        return [GCLOUD, "compute", "start-iap-tunnel", VM, relay_port, f"--zone={ZONE}", f"--project={PROJECT}",
                f"--iap-tunnel-url-override={self.info['tunnel_url']}", "--listen-on-stdin", "--verbosity=error"]

    def proxy_command(self, path):
        argv = self.proxy_argv(path, "ssh")
        return " ".join(argv)

    def ssh_opts(self, path):
        d = self.d
        return ["-F", "/dev/null", "-i", f"{d}/client", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                "-o", f"UserKnownHostsFile={d}/known_hosts", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                "-o", f"ProxyCommand={self.proxy_command(path)}"]


def timed(argv, env, stdin=None, stdout=subprocess.DEVNULL, fake_pid=None):
    """Runs argv under /usr/bin/time; returns (wall s, cpu s, peak RSS KiB, fake cpu s)."""
    out = tempfile.NamedTemporaryFile(delete=False)
    out.close()
    f0 = cpu_seconds(fake_pid) if fake_pid else 0.0
    t0 = time.monotonic()
    subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%e %U %S %M"] + argv, env=env,
                   stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL, check=True, timeout=1800)
    wall = time.monotonic() - t0
    f1 = cpu_seconds(fake_pid) if fake_pid else 0.0
    e, u, s, m = open(out.name).read().split()[-4:]
    os.unlink(out.name)
    return wall, float(u) + float(s), int(m), f1 - f0


def raw(env, path, direction):
    """512 MiB through the tunnel to a sink (up) or from a source (down)."""
    name = "sink" if direction == "up" else "source"
    argv = env.proxy_argv(path, name)
    if path == "direct":
        argv = ["socat", "-u", "STDIN", f"TCP:127.0.0.1:{env.direct[name]}"] if direction == "up" else \
               ["socat", "-u", f"TCP:127.0.0.1:{env.direct[name]}", "STDOUT"]
    if direction == "up":
        src = subprocess.Popen(["head", "-c", str(N), "/dev/zero"], stdout=subprocess.PIPE)
        r = timed(argv, env.env_for(path), stdin=src.stdout, fake_pid=env.fake.pid)
        src.wait()
    else:
        # Keep stdin open (no EOF) so no client ends the session early, and
        # time the last byte, not the client's exit (gcloud lingers).
        hold = subprocess.Popen(["sleep", "3600"], stdout=subprocess.PIPE)
        out = tempfile.NamedTemporaryFile(delete=False)
        out.close()
        f0 = cpu_seconds(env.fake.pid)
        t0 = time.monotonic()
        p = subprocess.Popen(["/usr/bin/time", "-o", out.name, "-f", "%e %U %S %M"] + argv, env=env.env_for(path),
                             stdin=hold.stdout, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        got = drain(p.stdout, N)
        wall = time.monotonic() - t0
        f1 = cpu_seconds(env.fake.pid)
        p.stdout.close()
        hold.kill()
        hold.wait()
        p.wait(120)
        if got != N:
            sys.exit(f"{path}: received {got} of {N} bytes")
        e, u, s_, m = open(out.name).read().split()[-4:]
        os.unlink(out.name)
        r = (wall, float(u) + float(s_), int(m), f1 - f0)
    return r


def scp(env, path, direction, src_file):
    remote = f"{env.d}/remote.bin"
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    if direction == "up":
        argv = ["scp", "-q"] + env.ssh_opts(path) + [src_file, f"{user}@{VM}:{remote}"]
    else:
        argv = ["scp", "-q"] + env.ssh_opts(path) + [f"{user}@{VM}:{remote}", f"{env.d}/back.bin"]
    return timed(argv, env.env_for(path), fake_pid=env.fake.pid)


def ssh_true(env, path):
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    times = []
    for _ in range(SSH_RUNS):
        t0 = time.monotonic()
        subprocess.run(["ssh"] + env.ssh_opts(path) + [f"{user}@{VM}", "true"], env=env.env_for(path), check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        times.append((time.monotonic() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]


def first_byte(env, path):
    """Process start to the first echoed byte (ms), one fresh process."""
    argv = env.proxy_argv(path, "echo")
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env.env_for(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         bufsize=0)
    p.stdin.write(b"x")
    p.stdout.read(1)
    first = (time.monotonic() - t0) * 1000
    return first, p


def rtt(env, path):
    """Time to the first echoed byte from process start (median of
    FIRST_RUNS fresh processes), then 1-byte round trips on the last."""
    firsts = []
    for i in range(FIRST_RUNS):
        f, p = first_byte(env, path)
        firsts.append(f)
        if i + 1 < FIRST_RUNS:
            p.stdin.close()
            p.send_signal(signal.SIGTERM)
            p.wait(30)
    first = statistics.median(firsts)
    samples = []
    for _ in range(RTT_RUNS):
        t = time.monotonic()
        p.stdin.write(b"x")
        p.stdout.read(1)
        samples.append((time.monotonic() - t) * 1000)
    p.stdin.close()
    p.send_signal(signal.SIGTERM)
    p.wait(30)
    samples.sort()
    return first, statistics.median(samples), samples[int(0.99 * len(samples)) - 1]


def main():
    if not os.path.exists(IAP) or not os.path.exists(FAKE):
        sys.exit("build first: cargo build --release --workspace --bins")
    paths = ["direct", "iap-ssh", "via-proxy"] + (["gcloud"] if GCLOUD else [])
    env = Env()
    rows = {}
    try:
        src_file = f"{env.d}/file.bin"
        with open(src_file, "wb") as f:
            f.write(os.urandom(N))
        for path in paths:
            r = {}
            print(f"measuring {path} …", file=sys.stderr)
            for d in ("down", "up"):
                wall, cpu, rss, fake_cpu = raw(env, path, d)
                r[f"raw_{d}"] = MIB / wall
                r[f"cpu_{d}"] = cpu / (MIB / 1024)
                r[f"rss_{d}"] = rss
                r[f"fake_{d}"] = fake_cpu / wall
            for d in ("up", "down"):
                wall, _, _, _ = scp(env, path, d, src_file)
                r[f"scp_{d}"] = MIB / wall
            r["ssh_p50"], r["ssh_p90"] = ssh_true(env, path)
            r["first"], r["rtt_p50"], r["rtt_p99"] = rtt(env, path)
            rows[path] = r
    finally:
        env.close()

    def fmt(v, unit):
        return f"{v:.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}" if v >= 10 else f"{v:.2f} {unit}"

    metrics = [
        (f"raw throughput down ({MIB} MiB from a source)", "raw_down", "MiB/s", True),
        (f"raw throughput up ({MIB} MiB to a sink)", "raw_up", "MiB/s", True),
        ("scp up", "scp_up", "MiB/s", True),
        ("scp down", "scp_down", "MiB/s", True),
        (f"`ssh HOST true`, median of {SSH_RUNS}", "ssh_p50", "ms", False),
        (f"`ssh HOST true`, p90 of {SSH_RUNS}", "ssh_p90", "ms", False),
        (f"start to first echoed byte, median of {FIRST_RUNS}", "first", "ms", False),
        (f"1-byte echo round trip p50 ({RTT_RUNS} runs)", "rtt_p50", "ms", False),
        ("1-byte echo round trip p99", "rtt_p99", "ms", False),
        ("proxy CPU per GiB, down", "cpu_down", "s", False),
        ("proxy CPU per GiB, up", "cpu_up", "s", False),
        ("proxy peak RSS, down", "rss_down", "KiB", False),
        ("proxy peak RSS, up", "rss_up", "KiB", False),
        ("fake relay CPU share during raw down", "fake_down", "cores", False),
        ("fake relay CPU share during raw up", "fake_up", "cores", False),
    ]
    label = lambda p: {"direct": "direct (nc)", "via-proxy": "iap-ssh via HTTP proxy"}.get(p, p)
    head = ["metric"] + [label(p) for p in paths] + ["iap-ssh / direct", "via proxy / iap-ssh"] + \
        (["iap-ssh / gcloud"] if GCLOUD else [])
    print(f"\nSizes: {MIB} MiB; machine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for title, key, unit, higher in metrics:
        cells = [title] + [fmt(rows[p][key], unit) for p in paths]
        i = rows["iap-ssh"][key]
        dr = rows["direct"][key]
        cells.append(f"{i / dr:.2f}×" if dr else "–")
        cells.append(f"{rows['via-proxy'][key] / i:.2f}×" if i else "–")
        if GCLOUD:
            g = rows["gcloud"][key]
            cells.append(f"{i / g:.2f}×" if g else "–")
        print("| " + " | ".join(cells) + " |")
    print("\nRatios are iap-ssh's value divided by the other's (for times and sizes, lower is better).")
    print("Direct path: no relay, so its fake-relay CPU share is 0.")
    print(json.dumps(rows), file=open(os.path.join(ROOT, "target", "bench.json"), "w"))


if __name__ == "__main__":
    main()
