"""Driver for scripts/soak.sh: long runs of `iap-ssh proxy` and
`iap-ssh forward` through fake-gcp's `chaos` fault (drops, 4004
re-authentications, 429s on reconnect, stalls, at random times), every byte
checked, the process's RSS, open file descriptors and threads sampled every
second. Exits non-zero when a byte is lost or wrong, the stream does not end
cleanly, or RSS / descriptors / threads trend upwards (the median of the last
fifth of the run against the median just after the warm-up). A benchmark, not a test: its figures go
to BENCHMARKS.md.

Settings (environment):
  SOAK_SECONDS     length of each soak (default 600)
  SOAK_MODES       which soaks: "proxy,forward" (default both)
  SOAK_RATE_MIB    MiB/s each way for the proxy soak (default 8; 0: as fast
                   as it goes)
  SOAK_FAULT_MS    "MIN,MAX": a fault every MIN..MAX ms per link (default
                   "5000,30000")
  SOAK_KINDS       fault kinds (default "drop,4004,429,stall")
  SOAK_STALL_MS    how long a stall lasts (default 12000, beyond the
                   proxy's --stall-timeout 10 so that stalls are detected
                   and resumed; shorter stalls are ridden out)
  SOAK_SEED        seed of the fault sequence (default: random, printed)
  SOAK_CONNS       concurrent connections in the forward soak (default 50)
  SOAK_BIN_DIR     where iap-ssh and fake-gcp are (default target/release)
  SOAK_OUT         directory for the samples and logs (default: a new
                   temporary directory, printed)
"""

import json
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import fake_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.environ.get("SOAK_BIN_DIR") or os.path.join(ROOT, "target", "release")
IAP = os.path.join(REL, "iap-ssh")
FAKE = os.path.join(REL, "fake-gcp")
SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
MODES = os.environ.get("SOAK_MODES", "proxy,forward").split(",")
RATE = float(os.environ.get("SOAK_RATE_MIB", "8")) * 1024 * 1024
FAULT_MIN, FAULT_MAX = (int(x) for x in os.environ.get("SOAK_FAULT_MS", "5000,30000").split(","))
KINDS = os.environ.get("SOAK_KINDS", "drop,4004,429,stall").split(",")
STALL_MS = int(os.environ.get("SOAK_STALL_MS", "12000"))
SEED = int(os.environ.get("SOAK_SEED", str(random.randrange(1 << 32))))
CONNS = int(os.environ.get("SOAK_CONNS", "50"))
PROJECT, ZONE, VM = "soak-proj", "us-central1-a", "soak-vm"

BLOCK = 64 * 1024
_PATTERNS = {}


def patterns(stream):
    """16 pseudo-random 64 KiB blocks per stream; block i of a stream is
    its index (8 bytes) followed by pattern i % 16, so a lost, repeated or
    reordered block never matches."""
    if stream not in _PATTERNS:
        r = random.Random(f"{SEED}-{stream}")
        _PATTERNS[stream] = [r.randbytes(BLOCK) for _ in range(16)]
    return _PATTERNS[stream]


def block(stream, i):
    return struct.pack(">Q", i) + patterns(stream)[i % 16][8:]


class Writer:
    """Sends stream `name` at RATE until told to stop; counts bytes."""

    def __init__(self, name, write, rate):
        self.name, self.write, self.rate = name, write, rate
        self.sent, self.stop, self.error = 0, threading.Event(), None

    def run(self):
        t0, i = time.monotonic(), 0
        try:
            while not self.stop.is_set():
                self.write(block(self.name, i))
                i += 1
                self.sent += BLOCK
                if self.rate:
                    ahead = self.sent / self.rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        except Exception as e:  # noqa: BLE001 - reported at the end
            self.error = f"{self.name} writer: {e}"


class Checker:
    """Reads stream `name` and compares every byte; counts what matched."""

    def __init__(self, name, read):
        self.name, self.read = name, read
        self.got, self.error, self.eof = 0, None, threading.Event()

    def run(self):
        buf, i = b"", 0
        try:
            while True:
                chunk = self.read(1 << 20)
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= BLOCK:
                    if buf[:BLOCK] != block(self.name, i):
                        self.error = f"{self.name}: block {i} (offset {i * BLOCK}) differs"
                        return
                    buf, i = buf[BLOCK:], i + 1
                    self.got += BLOCK
            self.got += len(buf)
            if buf and buf != block(self.name, i)[:len(buf)]:
                self.error = f"{self.name}: tail at offset {i * BLOCK} differs"
        except Exception as e:  # noqa: BLE001
            self.error = f"{self.name} checker: {e}"
        finally:
            self.eof.set()


class Sampler:
    """RSS, open descriptors and threads of `pid`, every second."""

    def __init__(self, pid, path):
        self.pid, self.path, self.rows, self.stop = pid, path, [], threading.Event()

    def run(self):
        t0 = time.monotonic()
        with open(self.path, "w") as out:
            out.write("seconds,rss_kib,fds,threads\n")
            while not self.stop.wait(1.0):
                try:
                    with open(f"/proc/{self.pid}/status") as f:
                        st = dict(line.split(":", 1) for line in f if ":" in line)
                    rss = int(st["VmRSS"].split()[0])
                    threads = int(st["Threads"])
                    fds = len(os.listdir(f"/proc/{self.pid}/fd"))
                except (OSError, KeyError, ValueError):
                    return
                row = (round(time.monotonic() - t0), rss, fds, threads)
                self.rows.append(row)
                out.write(",".join(map(str, row)) + "\n")
                out.flush()


def flat(rows, col):
    """(first, last, max, early, late) of a column: early is the median of
    the samples just after the warm-up (the first tenth of the run, at
    least 30 s), late the median of the last fifth. A leak is a trend, so
    growth is judged on these medians, not on a moment's peak (a resume
    re-sends up to the 1 MiB window, and that memory comes and goes)."""
    vals = [r[col] for r in rows] or [0]
    warm = min(max(30, len(vals) // 10), len(vals) - 1)
    after = vals[warm:] or vals
    early = statistics.median(after[: max(1, len(after) // 5)])
    late = statistics.median(vals[-max(1, len(vals) // 5):])
    return vals[0], vals[-1], max(vals), early, late


class FakeLog:
    """Counts the fake's events (FAKE_GCP_LOG=1 on its stderr)."""

    def __init__(self, stream, path):
        self.stream, self.path = stream, path
        self.faults, self.reconnects, self.resumed, self.sessions, self.refused = {}, 0, 0, 0, 0

    def run(self):
        with open(self.path, "w") as log:
            for line in self.stream:
                log.write(line)
                words = line.split()
                if line.startswith("fake-gcp: fault: chaos ") and len(words) == 5 and words[4].startswith("sid="):
                    self.faults[words[3]] = self.faults.get(words[3], 0) + 1
                elif "fault: chaos reconnect answered with HTTP 429" in line:
                    self.refused += 1
                elif "reconnect upgrade requested" in line:
                    self.reconnects += 1
                elif line.startswith("fake-gcp: reconnect sid="):
                    self.resumed += 1
                elif " established" in line and "session " in line:
                    self.sessions += 1


def start(out, chaos, ports):
    config = {
        "instances": [{"project": PROJECT, "zone": ZONE, "name": VM, "id": "1", "ports": ports}],
        "faults": {"chaos": chaos, "retry_after": "1"},
    }
    env = dict(os.environ, FAKE_GCP_LOG="1")
    with open(f"{out}/fake.json", "w") as f:
        json.dump(config, f)
    proc = subprocess.Popen([FAKE, "--state-dir", f"{out}/fake", "--config", f"{out}/fake.json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ready = json.loads(proc.stdout.readline())
    log = FakeLog(proc.stderr, f"{out}/fake.log")
    threading.Thread(target=log.run, daemon=True).start()
    return proc, ready, log


def chaos():
    return {"min_ms": FAULT_MIN, "max_ms": FAULT_MAX, "kinds": KINDS, "stall_ms": STALL_MS, "seed": SEED}


def write_all(f, b):
    view = memoryview(b)
    while view:
        n = f.write(view)
        view = view[n:]


def backend_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    return srv


def soak_proxy(out):
    """One `iap-ssh proxy` carrying both directions for SECONDS."""
    srv = backend_server()
    fake, ready, log = start(out, chaos(), {"22": {"tcp": f"127.0.0.1:{srv.getsockname()[1]}"}})
    env = fake_env(ready, f"{out}/home")
    os.makedirs(f"{out}/home", exist_ok=True)
    stderr = open(f"{out}/proxy.log", "w")
    proc = subprocess.Popen([IAP, "-v", "proxy", "--stall-timeout", "10", "--project", PROJECT,
                             "--zone", ZONE, VM, "22"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=stderr, env=env, bufsize=0)
    sampler = Sampler(proc.pid, f"{out}/proxy-samples.csv")
    threading.Thread(target=sampler.run, daemon=True).start()
    srv.settimeout(120)
    conn, _ = srv.accept()
    # Client to VM: stdin → backend; VM to client: backend → stdout.
    up_w = Writer("up", lambda b: write_all(proc.stdin, b), RATE)
    up_c = Checker("up", conn.recv)
    down_w = Writer("down", conn.sendall, RATE)
    down_c = Checker("down", proc.stdout.read)
    threads = [threading.Thread(target=x.run, daemon=True) for x in (up_w, up_c, down_w, down_c)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < SECONDS and proc.poll() is None:
        time.sleep(1)
    up_w.stop.set()
    down_w.stop.set()
    time.sleep(0.5)
    # Everything sent must arrive before the ends close.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (up_c.got < up_w.sent or down_c.got < down_w.sent):
        if up_c.error or down_c.error or proc.poll() is not None:
            break
        time.sleep(0.2)
    complete = up_c.got == up_w.sent and down_c.got == down_w.sent
    proc.stdin.close()
    try:
        code = proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = "killed"
    sampler.stop.set()
    conn.close()
    fake.terminate()
    fake.wait(10)
    return {
        "mode": "proxy", "seconds": round(time.monotonic() - t0), "exit": code,
        "up": (up_w.sent, up_c.got), "down": (down_w.sent, down_c.got),
        "complete": complete,
        "errors": [e for e in (up_w.error, up_c.error, down_w.error, down_c.error) if e],
        "rows": sampler.rows, "log": log,
    }


def echo_backend(srv, stop):
    def serve(c):
        with c:
            while True:
                d = c.recv(1 << 16)
                if not d:
                    return
                c.sendall(d)
    while not stop.is_set():
        try:
            c, _ = srv.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def soak_forward(out):
    """`iap-ssh forward` with CONNS connections at a time, each opened, used
    (echoed and checked) and closed, over and over, for SECONDS."""
    srv = backend_server()
    stop = threading.Event()
    threading.Thread(target=echo_backend, args=(srv, stop), daemon=True).start()
    fake, ready, log = start(out, chaos(), {"7": {"tcp": f"127.0.0.1:{srv.getsockname()[1]}"}})
    env = fake_env(ready, f"{out}/home")
    os.makedirs(f"{out}/home", exist_ok=True)
    stderr = open(f"{out}/forward.log", "w")
    proc = subprocess.Popen([IAP, "-v", "forward", "--stall-timeout", "10", "--max-handshakes", "50",
                             "--project", PROJECT, "--zone", ZONE, "--local-host-port", "127.0.0.1:0",
                             VM, "7"], stdout=subprocess.PIPE, stderr=stderr, env=env, text=True)
    line = proc.stdout.readline()  # Listening on port [N].
    port = int(line.split("[", 1)[1].split("]", 1)[0])
    sampler = Sampler(proc.pid, f"{out}/forward-samples.csv")
    threading.Thread(target=sampler.run, daemon=True).start()
    done, errors, lock = [0], [], threading.Lock()
    t0 = time.monotonic()

    def client(k):
        rng = random.Random(f"{SEED}-client-{k}")
        while time.monotonic() - t0 < SECONDS:
            # Half the connections echo 64 KiB and close at once; the
            # others echo 16 KiB every 100 ms for up to 20 s, long enough
            # to meet a fault.
            life = 0 if rng.random() < 0.5 else rng.uniform(1, 20)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=120) as c:
                    born, n = time.monotonic(), 0
                    while True:
                        piece = block("echo", n)[: BLOCK if life == 0 else 16 * 1024]
                        c.sendall(piece)
                        got = b""
                        while len(got) < len(piece):
                            d = c.recv(1 << 16)
                            if not d:
                                break
                            got += d
                        if got != piece:
                            raise RuntimeError(f"connection {k}: {len(got)} of {len(piece)} bytes echoed intact")
                        n += 1
                        if time.monotonic() - born >= life:
                            break
                        time.sleep(0.1)
                with lock:
                    done[0] += 1
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(str(e))
                return
    clients = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(CONNS)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(SECONDS + 300)
    # Idle a moment so that closed sessions are gone, then a last sample.
    time.sleep(3)
    sampler.stop.set()
    proc.terminate()
    try:
        code = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = "killed"
    stop.set()
    srv.close()
    fake.terminate()
    fake.wait(10)
    stderr.close()
    tasks = []
    with open(f"{out}/forward.log") as f:
        for line in f:
            if "tasks alive" in line:
                open_, alive = line.split("; ", 1)[1].split(" open, ")
                tasks.append((int(open_), int(alive.split()[0])))
    return {
        "mode": "forward", "seconds": round(time.monotonic() - t0), "exit": code,
        "connections": done[0], "errors": errors[:5], "rows": sampler.rows, "log": log,
        "tasks": tasks,
    }


def report(r):
    mib = 1024 * 1024
    ok = not r["errors"]
    print(f"\n## {r['mode']} soak: {r['seconds']} s, seed {SEED}, a fault every "
          f"{FAULT_MIN / 1000:g}-{FAULT_MAX / 1000:g} s per link ({','.join(KINDS)}; stalls {STALL_MS} ms)\n")
    if r["mode"] == "proxy":
        (us, ug), (ds, dg) = r["up"], r["down"]
        print(f"- bytes: up {us / mib:.1f} MiB sent, {ug / mib:.1f} MiB checked; "
              f"down {ds / mib:.1f} MiB sent, {dg / mib:.1f} MiB checked; "
              f"lost {us - ug + ds - dg} bytes")
        ok = ok and r["complete"] and r["exit"] == 0
    else:
        print(f"- connections: {r['connections']} opened, echoed, checked and closed "
              f"({CONNS} at a time)")
        ok = ok and r["connections"] > 0
    log = r["log"]
    faults = ", ".join(f"{k} {v}" for k, v in sorted(log.faults.items())) or "none"
    print(f"- faults injected: {sum(log.faults.values())} ({faults}); reconnect attempts "
          f"{log.reconnects} ({log.refused} answered 429), resumed {log.resumed}; sessions opened {log.sessions}")
    print(f"- exit status: {r['exit']}")
    rows = r["rows"]
    verdicts = []
    for name, col, unit, slack in (("RSS", 1, "MiB", None), ("open fds", 2, "", 2), ("threads", 3, "", 0)):
        first, last, mx, early, late = flat(rows, col)
        if col == 1:
            grew = late > early * 1.10 + 1024
            fmt = lambda v: f"{v / 1024:.1f}"  # noqa: E731
        else:
            grew = late > early + slack
            fmt = str
        verdicts.append(grew)
        print(f"- {name}: first {fmt(first)}, last {fmt(last)}, max {fmt(mx)} {unit}; "
              f"median after the warm-up {fmt(early)}, over the last fifth {fmt(late)}"
              f"{' (grew)' if grew else ''}")
    if r["mode"] == "forward" and r["tasks"]:
        idle = [a for (o, a) in r["tasks"] if o == 0]
        alive = [a for (_, a) in r["tasks"]]
        print(f"- tokio tasks alive after a close: first {alive[0]}, last {alive[-1]}, max {max(alive)}"
              f"; with no connection open: {min(idle) if idle else '-'}..{max(idle) if idle else '-'}")
        if idle and max(idle) > min(idle) + 2:
            verdicts.append(True)
            print("- tasks grew with no connection open")
    for e in r["errors"]:
        print(f"- error: {e}")
    if not log.faults:
        print("- error: no fault was injected")
        ok = False
    return ok and not any(verdicts)


def main():
    out = os.environ.get("SOAK_OUT") or tempfile.mkdtemp(prefix="iap-soak-")
    os.makedirs(out, exist_ok=True)
    print(f"soak: {SECONDS:g} s per mode, output in {out}", flush=True)
    ok = True
    for mode in MODES:
        d = f"{out}/{mode}"
        os.makedirs(d, exist_ok=True)
        r = soak_proxy(d) if mode == "proxy" else soak_forward(d)
        ok = report(r) and ok
        sys.stdout.flush()
    print("\nsoak: PASS" if ok else "\nsoak: FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
