#!/usr/bin/env python3
"""Driver of `scripts/bench viewtron`: camgate's Viewtron receiver against the reference
Python server (`viewtron` 1.4.1, `ViewtronServer` with package defaults and a counting
callback) on loopback, under the same load; see protocols/viewtron.md §7-§8 in the shared docs.

Run it through `scripts/bench viewtron [--quick]`, which builds camgate, prepares the
Python environment and installs wrk. Directly:

    python3 scripts/bench_viewtron.py --camgate target/release/camgate \
        --reference-python .venv/bin/python [--quick] [--out target/bench/viewtron.md]

For each payload (`ipc-lpr-noimg`, 4,189 B; `ipc-lpr-50k`, 55,496 B with two base64 JPEGs)
and each number of keep-alive connections (1, 32, 128), each server is started fresh, then
loaded by wrk (one thread) for a warm-up and a measured run; every request carries a unique
body (own device time and plate id), so camgate stores every one. Measured per cell:
events/s counted by the server (the reference's callback; camgate's stored plate events,
from /metrics) over the measured window, requests/s and p50/p99/max latency from wrk,
server CPU (utime+stime over the measured window, 100 % = one core), peak RSS and threads
(sampled every 0.1 s from /proc), socket errors and non-success replies. After each camgate
cell the store is checked: stored plate events against the 200 replies, images in the
events against the files on disk, the jsonl sink against the store. Then one 64 MiB body is
sent to each server and its RSS before, during and after is reported.

The server runs on CPU 0, wrk and this driver on CPU 1 (when the machine has 2+ CPUs and
taskset exists). All traffic goes to 127.0.0.1. Every server started is stopped on exit.
Prints a table and writes it as markdown to --out. Numbers are shown, never asserted; the
goal verdicts are informational.
"""

import argparse
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_viewtron_payloads as payloads  # noqa: E402

LUA = os.path.join(HERE, "bench_viewtron.lua")
REFERENCE = os.path.join(HERE, "bench_viewtron_reference.py")
PAYLOADS = ["ipc-lpr-noimg", "ipc-lpr-50k"]
CONNS = [1, 32, 128]
BIG_BODY = 64 * 1024 * 1024  # §7.4: 64 MiB
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Goals of the issue (informational: numbers are shown, never asserted).
GOAL_RATIO = 50.0
GOAL_P99_MS = 5.0
GOAL_RSS_MIB = 150e6 / 2**20  # 150 MB

# Every process started, so that they can all be stopped on any exit.
STARTED = []


def die(msg):
    print(f"scripts/bench viewtron: error: {msg}", file=sys.stderr)
    sys.exit(1)


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def cpu_ticks(pid):
    """utime + stime of the process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status(pid):
    """(VmRSS MiB, VmHWM MiB, threads) of the process."""
    rss = hwm = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, hwm, threads


class Sampler:
    """Samples VmRSS and the thread count of a process every 0.1 s; keeps the peaks."""

    def __init__(self, pid):
        self.pid = pid
        self.peak_rss = 0.0
        self.peak_threads = 0
        self.last_rss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sample()
        self._thread.start()

    def sample(self):
        try:
            rss, _, threads = proc_status(self.pid)
        except OSError:
            return
        self.last_rss = rss
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_threads = max(self.peak_threads, threads)

    def reset_peak(self):
        self.sample()
        self.peak_rss = self.last_rss

    def _run(self):
        while not self._stop.wait(0.1):
            self.sample()

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.sample()


def record_pid(args, proc):
    """Remember a started server, also in --pidfile, so that scripts/bench can stop it even if
    this driver is killed."""
    STARTED.append(proc)
    if args.pidfile:
        with open(args.pidfile, "a") as f:
            f.write(f"{proc.pid}\n")


def pinned(cpu, argv):
    return (["taskset", "-c", str(cpu)] + argv) if cpu is not None else argv


class Reference:
    name = "reference"

    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.proc = None
        self._buf = b""

    def start(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            pinned(self.args.server_cpu, [self.args.reference_python, REFERENCE, str(self.port)]),
            stdout=subprocess.PIPE,
            stderr=open(os.path.join(self.workdir, "reference.stderr"), "ab"),
        )
        record_pid(self.args, self.proc)
        line = self._line(lambda l: l.startswith("ready "), 15)
        if line is None or not wait_port(self.port, self.proc):
            die(f"the reference server did not start (see {self.workdir}/reference.stderr)")
        self.url = f"http://127.0.0.1:{self.port}"

    def _line(self, want, timeout):
        """The next line of the server's stdout for which want(line) holds."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                if want(text):
                    return text
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self._buf += chunk

    def count(self):
        self.proc.send_signal(signal.SIGUSR1)
        line = self._line(lambda l: l.startswith("count "), 30)
        if line is None:
            die("the reference server did not report its count")
        return int(line.split()[1])

    def stop(self):
        """Stop; returns a dict of what it said."""
        self.proc.send_signal(signal.SIGTERM)
        count = self._line(lambda l: l.startswith("count "), 30)
        cats = self._line(lambda l: l.startswith("categories "), 5)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return {
            "final_count": int(count.split()[1]) if count else None,
            "categories": cats.split(" ", 1)[1] if cats else "?",
            "exit": self.proc.returncode,
        }


class Camgate:
    name = "camgate"
    runs = 0

    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.proc = None

    def start(self):
        # A new directory per run, none deleted before the end: see fs_note().
        Camgate.runs += 1
        self.dir = os.path.join(self.args.data_dir, f"camgate-{Camgate.runs}")
        os.makedirs(self.dir)
        self.port = free_port()
        self.http_port = free_port()
        self.config = os.path.join(self.dir, "camgate.toml")
        with open(self.config, "w") as f:
            f.write(
                f"""# scripts/bench viewtron
[site]
data_dir = "{self.dir}/data"

[log]
level = "warn"
file = ""

[http]
listen = "127.0.0.1:{self.http_port}"

[webhook]
listen = "127.0.0.1:{self.port}"

[[sink]]
type = "jsonl"
path = "{self.dir}/events.jsonl"
"""
            )
        self.stderr_path = os.path.join(self.dir, "camgate.stderr")
        self.proc = subprocess.Popen(
            pinned(self.args.server_cpu, [self.args.camgate, "run", "-c", self.config]),
            stdout=subprocess.DEVNULL,
            stderr=open(self.stderr_path, "wb"),
            cwd=self.dir,
        )
        record_pid(self.args, self.proc)
        if not (wait_port(self.port, self.proc) and wait_port(self.http_port, self.proc)):
            die(f"camgate did not start (see {self.stderr_path})")
        self.url = f"http://127.0.0.1:{self.port}"

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r"^(camgate_\w+)(\{[^}]*\})? (\S+)$", line)
            if m:
                out.setdefault(m.group(1), []).append((m.group(2) or "", float(m.group(3))))
        return out

    def count(self):
        """Plate events stored so far (the device's `connected` event is not counted)."""
        m = self.metrics()
        return int(sum(v for labels, v in m.get("camgate_events_stored_total", []) if 'kind="plate"' in labels))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return {"exit": self.proc.returncode}

    def verify(self):
        """What is durably stored, read from the database and the data directory after exit."""
        data = os.path.join(self.dir, "data")
        db = sqlite3.connect(f"file:{data}/camgate.db?mode=ro", uri=True)
        kinds = dict(db.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
        refs = db.execute(
            "SELECT json_extract(i.value, '$.path'), json_extract(i.value, '$.bytes')"
            " FROM events, json_each(events.body, '$.images') i WHERE events.kind = 'plate'"
        ).fetchall()
        dead = db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
        db.close()
        # Every image an event names must be on disk with the stated size.
        missing = 0
        for path, size in refs:
            try:
                if os.path.getsize(os.path.join(data, path)) != size:
                    missing += 1
            except OSError:
                missing += 1
        referenced = {os.path.normpath(os.path.join(data, p)) for p, _ in refs}
        files = bytes_on_disk = orphans = 0
        for root, _, names in os.walk(os.path.join(data, "images")):
            for n in names:
                full = os.path.normpath(os.path.join(root, n))
                files += 1
                bytes_on_disk += os.path.getsize(full)
                if full not in referenced:
                    orphans += 1
        with open(os.path.join(self.dir, "events.jsonl"), "rb") as f:
            jsonl = sum(1 for _ in f)
        with open(self.stderr_path, "rb") as f:
            log_lines = f.read().decode(errors="replace").splitlines()
        return {
            "plate": kinds.get("plate", 0),
            "total_events": sum(kinds.values()),
            "images_in_events": len(refs),
            "image_bytes_in_events": sum(size for _, size in refs),
            "images_missing": missing,
            "files": files,
            "file_bytes": bytes_on_disk,
            "orphans": orphans,
            "dead_letters": dead,
            "jsonl_lines": jsonl,
            "log_lines": len(log_lines),
            "log_sample": log_lines[:3],
        }


def run_wrk(args, url, template, conns, seconds, id_base):
    argv = pinned(
        args.client_cpu,
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s", LUA, url, "--",
         template, str(id_base), str(int(time.time() * 1e6))],
    )
    p = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    line = next((l for l in p.stdout.splitlines() if l.startswith("BENCH ")), None)
    if p.returncode != 0 or line is None:
        die(f"wrk failed ({p.returncode}): {p.stdout[-2000:]} {p.stderr[-2000:]}")
    out = {}
    for kv in line.split()[1:]:
        k, v = kv.split("=")
        out[k] = float(v)
    return out


def run_cell(args, server, payload, body_len, conns, workdir):
    template = os.path.join(workdir, payload + ".tmpl")
    server.start()
    pid = server.proc.pid
    sampler = Sampler(pid)
    idle_rss = sampler.last_rss
    warm = run_wrk(args, server.url, template, conns, args.warmup, 1_000_000_000)
    c0, cpu0, t0 = server.count(), cpu_ticks(pid), time.monotonic()
    meas = run_wrk(args, server.url, template, conns, args.duration, 2_000_000_000)
    c1, cpu1, t1 = server.count(), cpu_ticks(pid), time.monotonic()
    sampler.stop()
    _, hwm, _ = proc_status(pid)
    dup = None
    if isinstance(server, Camgate):
        dup = int(sum(v for _, v in server.metrics().get("camgate_events_duplicate_total", [])))
    stopped = server.stop()
    elapsed = t1 - t0
    cell = {
        "server": server.name,
        "payload": payload,
        "body": body_len,
        "conns": conns,
        "req_s": meas["requests"] / (meas["duration_us"] / 1e6),
        "ev_s": (c1 - c0) / elapsed,
        "events": c1 - c0,
        "window_s": elapsed,
        "p50_ms": meas["p50_us"] / 1000,
        "p99_ms": meas["p99_us"] / 1000,
        "max_ms": meas["max_us"] / 1000,
        "cpu": 100 * (cpu1 - cpu0) / elapsed,
        "rss_idle": idle_rss,
        "rss_peak": sampler.peak_rss,
        "rss_hwm": hwm,
        "threads": sampler.peak_threads,
        "sock_err": int(meas["connect"] + meas["read"] + meas["write"] + meas["timeout"]),
        "sock_err_detail": {k: int(meas[k]) for k in ("connect", "read", "write", "timeout")},
        "bad": int(meas["bad"]),
        "bad_total": int(meas["bad"] + warm["bad"]),
        "ok_total": int(warm["ok"] + meas["ok"]),
        "duplicates": dup,
        "stopped": stopped,
    }
    if isinstance(server, Camgate):
        cell["verify"] = server.verify()
    return cell


def verification_text(cell, images_per_event, image_bytes_per_event):
    """Whether camgate durably stored every answered event with its images, and a line saying so."""
    v = cell["verify"]
    ok = cell["ok_total"]
    in_flight = v["plate"] - ok
    good = (
        0 <= in_flight <= 2 * cell["conns"]  # stored, but wrk stopped before reading the reply
        and v["images_in_events"] == v["plate"] * images_per_event
        and v["image_bytes_in_events"] == v["plate"] * image_bytes_per_event
        and v["images_missing"] == 0
        and v["jsonl_lines"] == v["total_events"]
        and v["dead_letters"] == 0
        and cell["bad_total"] == 0
        and cell["duplicates"] == 0
        and cell["stopped"]["exit"] == 0
    )
    text = (
        f"{v['plate']:,} plate events stored for {ok:,} success replies"
        f" (+{in_flight} stored whose reply wrk did not wait for)"
        f"; {v['images_in_events']:,} images in them, {v['image_bytes_in_events'] / 1e6:,.1f} MB,"
        f" {v['images_missing']} missing or short on disk"
        f"; jsonl sink {v['jsonl_lines']:,} lines for {v['total_events']:,} events"
        f"; {cell['duplicates']} duplicates, {v['dead_letters']} dead letters; exit {cell['stopped']['exit']}"
    )
    if v["orphans"]:
        text += f"; {v['orphans']} orphan file(s) under images/ that no event references"
    if v["log_lines"]:
        text += f"; {v['log_lines']} log line(s), first: {v['log_sample'][0][:160]}"
    return good, text


def big_body_check(args, server, workdir):
    """POST one 64 MiB LPR body (a 64 MiB overview image) to a fresh server; RSS around it."""
    template = payloads.payloads()["ipc-lpr-noimg"]
    base = payloads.fill(template, int(time.time() * 1e6), 3_000_000_001)
    filler = BIG_BODY - len(base)
    filler -= filler % 4
    marker = '<targetBase64Length type="uint32">0</targetBase64Length><targetBase64Data type="string"></targetBase64Data>'
    head, tail = base.encode().split(marker.encode(), 1)
    head += f'<targetBase64Length type="uint32">{filler}</targetBase64Length><targetBase64Data type="string">'.encode()
    tail = b"</targetBase64Data>" + tail
    total = len(head) + filler + len(tail)

    server.start()
    pid = server.proc.pid
    count0 = server.count()
    time.sleep(0.5)
    sampler = Sampler(pid)
    before = sampler.last_rss
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    reply = bytearray()

    def reader():
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                reply.extend(chunk)
        except OSError:
            return

    rt = threading.Thread(target=reader, daemon=True)
    rt.start()
    sent = 0
    send_error = None
    t_start = time.monotonic()
    try:
        sock.sendall(
            (
                f"POST /API HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                f"Content-Type: application/xml; charset=utf-8\r\nContent-Length: {total}\r\n\r\n"
            ).encode()
        )
        sock.sendall(head)
        sent += len(head)
        chunk = b"A" * (1 << 20)
        left = filler
        while left > 0:
            n = min(left, len(chunk))
            sock.sendall(chunk[:n])
            sent += n
            left -= n
        sock.sendall(tail)
        sent += len(tail)
    except OSError as e:
        send_error = type(e).__name__
    # The reference answers before reading and parses afterwards: wait for its event.
    delivered = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        c = server.count()
        if c > count0:
            delivered = c - count0
            break
        if isinstance(server, Camgate) and reply:
            break
        time.sleep(0.25)
    elapsed = time.monotonic() - t_start
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
    rt.join(5)
    time.sleep(1.0)
    sampler.stop()
    after = sampler.last_rss
    status_line = bytes(reply).split(b"\r\n", 1)[0].decode(errors="replace") or "(no reply)"
    server.stop()
    return {
        "server": server.name,
        "body": total,
        "status": status_line,
        "sent": sent,
        "send_error": send_error,
        "delivered": delivered,
        "seconds": elapsed,
        "rss_before": before,
        "rss_peak": sampler.peak_rss,
        "rss_after": after,
    }


def machine(args):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 2**20
    ref = subprocess.run(
        [args.reference_python, "-c",
         "import sys; from importlib import metadata as m; "
         "print(sys.version.split()[0], m.version('viewtron'), m.version('xmltodict'))"],
        capture_output=True, text=True,
    ).stdout.split()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    wrk_v = (wrk.stdout + wrk.stderr).splitlines()[0].split("[")[0].strip()
    camgate_v = subprocess.run([args.camgate, "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": mem,
        "kernel": platform.release(),
        "python": ref[0] if ref else "?",
        "viewtron": ref[1] if len(ref) > 1 else "?",
        "xmltodict": ref[2] if len(ref) > 2 else "?",
        "wrk": wrk_v,
        "camgate": camgate_v,
        "load": os.getloadavg(),
    }


def fs_note(path):
    """A warning when camgate's data directory is on ext4 without a journal: there, creating a
    file skips every inode freed within the last 1-6 minutes (ext4 `recently_deleted()`), so
    file creation, and with it camgate's image writes, is much slower right after many files
    were deleted (an earlier run's data, a build). None otherwise."""
    best, fstype, source = "", None, None
    real = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, right = line.split(" - ", 1)
                mnt = left.split()[4]
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, fstype, source = mnt, right.split()[0], right.split()[1]
    except OSError:
        return None
    if fstype != "ext4" or not source or not source.startswith("/dev/"):
        return None
    dev = os.path.basename(os.path.realpath(source))
    if os.path.isdir("/proc/fs/jbd2") and any(j.startswith(dev + "-") for j in os.listdir("/proc/fs/jbd2")):
        return None
    return (f"{path} is on ext4 without a journal ({source}): file creation is slowed for a few minutes "
            f"after many files were deleted (ext4 skips recently deleted inodes), so camgate's image writes "
            f"are too; run when nothing has deleted many files in the last ~6 minutes")


def fmt_int(x):
    return f"{x:,.0f}"


def fmt_ms(x):
    return f"{x:,.2f}" if x < 10 else f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--camgate", required=True, help="the camgate binary (release build)")
    ap.add_argument("--reference-python", required=True, help="a python with viewtron==1.4.1 (scripts/python-env)")
    ap.add_argument("--quick", action="store_true", help="1 s warm-up + 3 s measured per cell")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up seconds per cell (default 2)")
    ap.add_argument("--duration", type=int, default=None, help="measured seconds per cell (default 10)")
    ap.add_argument("--conns", default=",".join(map(str, CONNS)), help="keep-alive connections per cell (default %(default)s)")
    ap.add_argument("--payloads", default=",".join(PAYLOADS), help="default %(default)s")
    ap.add_argument("--servers", default="reference,camgate", help="default %(default)s")
    ap.add_argument("--no-big-body", action="store_true", help="skip the 64 MiB body check")
    ap.add_argument("--workdir", default="target/bench/viewtron", help="payloads, logs, results")
    ap.add_argument("--data-dir", default=None,
                    help="where camgate's data directories go (default: WORKDIR/data); e.g. a tmpfs, "
                         "to separate camgate's CPU cost from the file system's")
    ap.add_argument("--keep", action="store_true", help="keep camgate's data directories")
    ap.add_argument("--pidfile", default=None, help="append the pid of every server started to this file")
    ap.add_argument("--out", default="target/bench/viewtron.md", help="markdown report")
    args = ap.parse_args()
    args.warmup = args.warmup or (1 if args.quick else 2)
    args.duration = args.duration or (3 if args.quick else 10)
    args.camgate = os.path.abspath(args.camgate)
    conns_list = [int(c) for c in args.conns.split(",")]
    payload_list = args.payloads.split(",")
    servers = args.servers.split(",")

    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        args.server_cpu, args.client_cpu = 0, 1
        os.sched_setaffinity(0, {1})  # this driver (and its RSS sampler) stays off the server's CPU
        pinning = "server on CPU 0; wrk (1 thread) and the driver on CPU 1 (taskset)"
    else:
        args.server_cpu = args.client_cpu = None
        pinning = "not pinned (fewer than 2 CPUs or no taskset): server and wrk share the CPUs"

    def cleanup(*_):
        for p in STARTED:
            if p.poll() is None:
                p.kill()
                p.wait()

    signal.signal(signal.SIGTERM, lambda *_: (cleanup(), sys.exit(1)))

    workdir = os.path.abspath(args.workdir)
    args.data_dir = os.path.abspath(args.data_dir or os.path.join(workdir, "data"))
    for d in (workdir, args.data_dir):
        if os.path.exists(d):
            log(f"removing the previous run's {d}")
            shutil.rmtree(d)
    os.makedirs(workdir)
    os.makedirs(args.data_dir, exist_ok=True)
    sizes = {}
    images = {}
    for name, template in payloads.payloads().items():
        with open(os.path.join(workdir, name + ".tmpl"), "w", newline="") as f:
            f.write(template)
        body = payloads.fill(template, 1_763_740_800_000_000, 1_000_000_001)
        sizes[name] = len(body.encode())
        with open(os.path.join(workdir, name + ".xml"), "w", newline="") as f:
            f.write(body)
        # Images per event and their decoded bytes, for the store check.
        lens = [int(x) for x in re.findall(r'<targetBase64Length type="uint32">(\d+)<', body)]
        images[name] = (sum(1 for n in lens if n), sum(n // 4 * 3 for n in lens))

    # The reference must see each body as an LPR event, with its images.
    check = subprocess.run(
        [args.reference_python, "-c",
         "import sys\nfrom viewtron.events import _classify_post\n"
         "for p in sys.argv[1:]:\n"
         "    e, r = _classify_post(open(p).read())\n"
         "    print(p.rsplit('/', 1)[1], e.category if e else 'none:' + str(r),"
         " len(e.get_source_image() or '') if e else 0, len(e.get_target_image() or '') if e else 0)"]
        + [os.path.join(workdir, n + ".xml") for n in payload_list],
        capture_output=True, text=True,
    )
    if check.returncode != 0:
        die(f"the reference cannot parse the payloads: {check.stderr[-2000:]}")
    log("payloads (reference parse: category, overview and plate-crop base64 length):")
    for line in check.stdout.splitlines():
        log(f"  {line}  ({sizes[line.split()[0][:-4]]:,} B)")
        if line.split()[1] != "lpr":
            die(f"the reference does not parse {line.split()[0]} as an LPR event")

    info = machine(args)
    log(f"machine: {info['cpus']} vCPU {info['cpu']}, {info['mem_gib']:.0f} GiB, Linux {info['kernel']}; "
        f"load average {info['load'][0]:.2f} {info['load'][1]:.2f} {info['load'][2]:.2f}")
    if info["load"][0] > 1.5:
        log("warning: the load average is above 1.5; other work on the machine skews the numbers")
    log(f"pinning: {pinning}; {args.warmup} s warm-up + {args.duration} s measured per cell")
    note = fs_note(args.data_dir)
    info["fs"] = note
    if note:
        log(f"note: {note}")

    cells = []
    verify_lines = []
    all_good = True
    try:
        for payload in payload_list:
            for conns in conns_list:
                for sname in servers:
                    server = (Reference if sname == "reference" else Camgate)(args, workdir)
                    cell = run_cell(args, server, payload, sizes[payload], conns, workdir)
                    cells.append(cell)
                    line = (f"{sname:<9} {payload:<13} c={conns:<3} {cell['ev_s']:>9,.0f} ev/s "
                            f"{cell['req_s']:>9,.0f} req/s p50 {fmt_ms(cell['p50_ms'])} ms p99 "
                            f"{fmt_ms(cell['p99_ms'])} ms CPU {cell['cpu']:.0f}% RSS {cell['rss_peak']:.1f} MiB "
                            f"errors {cell['sock_err']}/{cell['bad']}")
                    log(line)
                    if sname == "reference":
                        log(f"          reference callback total {cell['stopped']['final_count']:,} "
                            f"{cell['stopped']['categories']} for {cell['ok_total']:,} success replies")
                    else:
                        good, text = verification_text(cell, *images[payload])
                        all_good &= good
                        verify_lines.append((payload, conns, good, text))
                        log(f"          {'verified' if good else 'NOT VERIFIED'}: {text}")
        big = []
        if not args.no_big_body:
            for sname in servers:
                server = (Reference if sname == "reference" else Camgate)(args, workdir)
                b = big_body_check(args, server, workdir)
                big.append(b)
                log(f"{sname:<9} 64 MiB body: {b['status']}; sent {b['sent'] / 2**10:,.0f} KiB"
                    f"{' (' + b['send_error'] + ')' if b['send_error'] else ''}; RSS {b['rss_before']:.1f} -> "
                    f"peak {b['rss_peak']:.1f} -> after {b['rss_after']:.1f} MiB"
                    f"{'; event delivered' if b['delivered'] else ''}")
    finally:
        cleanup()
        if not args.keep:
            shutil.rmtree(args.data_dir, ignore_errors=True)

    report = render(cells, big, verify_lines, all_good, info, pinning, args, sizes)
    print()
    print(report["text"])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report["md"])
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump({"cells": cells, "big_body": big, "machine": info}, f, indent=1, default=str)
    print(f"\nmarkdown: {args.out}; raw results: {os.path.join(workdir, 'results.json')}")


def render(cells, big, verify_lines, all_good, info, pinning, args, sizes):
    by = {(c["server"], c["payload"], c["conns"]): c for c in cells}
    cols = ["server", "payload", "conns", "events/s", "req/s", "p50 ms", "p99 ms", "max ms", "CPU %",
            "CPU µs/event", "RSS peak MiB", "threads", "socket errors", "bad replies"]
    rows = []
    for c in cells:
        rows.append([c["server"], c["payload"], str(c["conns"]), fmt_int(c["ev_s"]), fmt_int(c["req_s"]),
                     fmt_ms(c["p50_ms"]), fmt_ms(c["p99_ms"]), fmt_ms(c["max_ms"]), f"{c['cpu']:.0f}",
                     fmt_int(c["cpu"] / 100 * 1e6 / c["ev_s"]) if c["ev_s"] else "-",
                     f"{c['rss_peak']:.1f}", str(c["threads"]), str(c["sock_err"]), str(c["bad"])])
    rcols = ["payload", "body B", "conns", "reference ev/s", "camgate ev/s", "ratio", "camgate p99 ms"]
    rrows = []
    ratios = {}
    for payload in dict.fromkeys(c["payload"] for c in cells):
        for conns in dict.fromkeys(c["conns"] for c in cells):
            r, g = by.get(("reference", payload, conns)), by.get(("camgate", payload, conns))
            if not (r and g):
                continue
            ratio = g["ev_s"] / r["ev_s"] if r["ev_s"] else float("inf")
            ratios[(payload, conns)] = ratio
            rrows.append([payload, f"{sizes[payload]:,}", str(conns), fmt_int(r["ev_s"]), fmt_int(g["ev_s"]),
                          f"{ratio:,.1f}×", fmt_ms(g["p99_ms"])])

    # Goal verdicts (informational).
    goals = []
    g32 = [(p, ratios[(p, 32)]) for p in dict.fromkeys(c["payload"] for c in cells) if (p, 32) in ratios]
    if g32:
        met = all(r >= GOAL_RATIO for _, r in g32)
        goals.append((f"camgate ≥ {GOAL_RATIO:.0f}× the reference's events/s at 32 connections, both bodies",
                      met, ", ".join(f"{p}: {r:,.1f}×" for p, r in g32)))
    cg = [c for c in cells if c["server"] == "camgate"]
    if verify_lines:
        goals.append(("every event durably stored and its images written", all_good,
                      f"{sum(1 for v in verify_lines if v[2])} of {len(verify_lines)} camgate runs verified"))
    p32 = [c for c in cg if c["conns"] == 32]
    if p32:
        goals.append((f"camgate p99 < {GOAL_P99_MS:.0f} ms at 32 connections",
                      all(c["p99_ms"] < GOAL_P99_MS for c in p32),
                      ", ".join(f"{c['payload']}: {fmt_ms(c['p99_ms'])} ms" for c in p32)))
    bg = [b for b in big if b["server"] == "camgate"]
    if cg:
        peak = max([c["rss_peak"] for c in cg] + [b["rss_peak"] for b in bg])
        goals.append((f"camgate RSS under 150 MB ({GOAL_RSS_MIB:.1f} MiB) throughout", peak < GOAL_RSS_MIB,
                      f"peak {peak:.1f} MiB"))
    for b in bg:
        growth = b["rss_peak"] - b["rss_before"]
        goals.append(("a 64 MiB body is refused (413) without the RSS growing by it",
                      " 413 " in f" {b['status']} " and growth < BIG_BODY / 2**20 / 4,
                      f"{b['status']}; RSS {b['rss_before']:.1f} → peak {b['rss_peak']:.1f} MiB "
                      f"(+{growth:.1f} MiB)"))

    def table(cols, rows, md):
        if md:
            out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
            out += ["| " + " | ".join(r) + " |" for r in rows]
            return "\n".join(out)
        widths = [max(len(x) for x in [h] + [r[i] for r in rows]) for i, h in enumerate(cols)]
        line = lambda r: "  ".join(x.rjust(w) if i >= 2 else x.ljust(w) for i, (x, w) in enumerate(zip(r, widths)))
        return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows])

    setup = (
        f"Machine: {info['cpus']} vCPU ({info['cpu']}), {info['mem_gib']:.0f} GiB, Linux {info['kernel']}; "
        f"{pinning}. Loopback only. {args.warmup} s warm-up + {args.duration} s measured per cell, "
        f"each server started fresh per cell. {info['wrk']} (-t1, keep-alive, --timeout 10s, a unique body "
        f"per request). Reference: viewtron {info['viewtron']} `ViewtronServer` (package defaults, counting "
        f"callback), Python {info['python']}, xmltodict {info['xmltodict']}. camgate: {info['camgate']} release "
        f"build, SQLite store and images in a fresh data dir under {args.data_dir}, one jsonl sink, log level "
        f"warn, no log file. Load average at start {info['load'][0]:.2f}."
        + (f" Note: {info['fs']}." if info.get("fs") else "")
    )
    notes = (
        "events/s: counted by the server over the measured window (reference: its callback; camgate: plate "
        "events committed, /metrics). CPU: server utime+stime over the measured window (100 % = one core); CPU µs/event: "
        "that CPU time divided by the events. "
        "RSS: VmRSS sampled every 0.1 s over warm-up and run. Socket errors (wrk connect/read/write/timeout) "
        "and bad replies (anything but 200 with `<status>success</status>`): measured run."
    )
    text = [setup, "", table(cols, rows, False), "", table(rcols, rrows, False), ""]
    md = ["# scripts/bench viewtron", "", setup, "", notes, "", table(cols, rows, True), "",
          "## camgate / reference", "", table(rcols, rrows, True), ""]
    if verify_lines:
        text.append("camgate store checks:")
        md += ["## camgate store checks", ""]
        for payload, conns, good, t in verify_lines:
            text.append(f"  {payload} c={conns}: {'ok' if good else 'NOT OK'}: {t}")
            md.append(f"- {payload}, c={conns}: {'ok' if good else '**not ok**'}: {t}")
        text.append("")
        md.append("")
    if big:
        bcols = ["server", "body B", "reply", "body bytes sent", "RSS before MiB", "RSS peak MiB", "RSS after MiB"]
        brows = [[b["server"], f"{b['body']:,}", b["status"], f"{b['sent']:,}", f"{b['rss_before']:.1f}",
                  f"{b['rss_peak']:.1f}", f"{b['rss_after']:.1f}"] for b in big]
        text += ["64 MiB body:", table(bcols, brows, False), ""]
        md += ["## 64 MiB body", "", table(bcols, brows, True), ""]
    text.append("goals (informational, not asserted):")
    md += ["## Goals (shown, not asserted)", ""]
    for what, met, detail in goals:
        text.append(f"  {'met    ' if met else 'NOT met'}  {what}: {detail}")
        md.append(f"- {'met' if met else '**not met**'}: {what}: {detail}")
    md.append("")
    return {"text": "\n".join(text), "md": "\n".join(md)}


if __name__ == "__main__":
    main()
