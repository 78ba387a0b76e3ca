#!/usr/bin/env python3
"""Dahua benchmark part (2), concurrent streams: camgate attached to N simulated Dahua devices
at once, each sending one event a second and a heartbeat every 5 s; prints RSS per stream,
CPU and the latency from the device's send to camgate's `jsonl` output line.

    python3 scripts/bench_dahua_streams.py --camgate target/release/camgate \
        --streams 5000 --seconds 30 [--quick]

What runs (python3 standard library only; camgate built with
`cargo build --release -p camgate`):

* The simulator, `camgate sim dahua --listen 127.0.0.1:PORT --stamp --max-connections M`,
  a separate process serving every stream (Digest authentication, the default code mix, one
  event per --interval seconds per stream; the heartbeat is the one camgate asks for).
  `--stamp` puts the send time into each event's data as `"SimSentMs": <Unix ms>`, a
  simulator-only field taken right before the part is written to the socket.
* camgate, `camgate run -c WORKDIR/camgate.toml`: N `[[camera]] vendor = "dahua"` (cam00001,
  cam00002, ...) all pointing at the simulator, `heartbeat = --heartbeat`, `[webhook]`
  disabled, the REST API on a free loopback port (for /api/sources), a `jsonl` sink with
  `path = "-"` (camgate's stdout, piped to this driver) and the SQLite store in a temporary
  directory (under --data-dir, default the system's temporary directory). Its log (level
  warn) goes to WORKDIR/camgate.stderr.

The steps, every wait bounded:

0. For reference, camgate with the same configuration but no camera runs for 1 s: its RSS
   gives the "all in" cost per stream (configuration, task and connection).
1. camgate starts first, while nothing listens on the simulator's port: its N sources
   register, try once, fail (connection refused) and back off. Its RSS then is the baseline
   (the process with N configured cameras, no stream).
2. The simulator starts; the driver counts the `device` events `connected` on camgate's
   stdout until every camera is connected (the cameras' back-off is capped at 5 s in the
   generated config so that this does not take minutes).
3. A warm-up (one heartbeat period, at least 5 s; --quick: 2 s), then the measured window of
   --seconds: events/s (jsonl lines that carry `SimSentMs`), latency = the driver's clock
   when the chunk holding the line was read from the pipe - `SimSentMs` (same machine, same
   clock; `SimSentMs` is whole milliseconds, so latencies read up to 1 ms high), p50/p99/max
   over the events that arrived in the window, split at the event's `received_at` (camgate's
   clock when it read the chunk: device -> camgate, then store + sink -> jsonl line), and the
   worst p99 of any single second; camgate's and the simulator's CPU (utime + stime deltas
   from /proc/PID/stat, 100 % = one core); camgate's store writer (transactions, events per
   transaction, time spent committing, from /metrics); camgate's VmRSS sampled every 0.5 s
   and its VmHWM from /proc/PID/status. RSS per stream = (mean VmRSS in the window -
   baseline) / N. `device` events (connected, disconnected, stalled) are never counted as
   events; disconnects during the window are reported. What else ran: the CPU of other
   processes (the machine's busy time minus camgate, simulator and driver) and the bytes
   written to disk by camgate and by the whole machine: both move the latency a lot.
4. camgate gets SIGTERM, the simulator SIGINT; both are killed if they do not exit in time,
   and on any exit of this driver (try/finally, SIGTERM/SIGINT/SIGHUP handlers).

With taskset and 2+ CPUs, camgate runs on CPU 0, the simulator and this driver on CPU 1.
Prints a table and writes it as markdown to --out (default <target>/bench/dahua_streams.md,
<target> being the directory above the camgate binary's profile directory). Numbers are
shown, never asserted; the goal column is informational.

--quick: 500 streams, 5 s measured, 2 s warm-up, unless --streams/--seconds are given.

Latency depends mostly on the store's disk: at 5,000 events/s from 5,000 sources every
event dirties a few random index pages, so camgate writes about 100 MB/s of WAL and
checkpoints; on a busy or slow disk, commits stall and p99 reaches seconds. `--data-dir
/dev/shm` takes the disk out and shows what camgate itself costs.
"""

import argparse
import calendar
import fcntl
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

# Goals of the issue (informational: shown, never asserted).
GOAL_STREAMS = 5000
GOAL_RSS_PER_STREAM_KB = 40.0  # KB = 1000 bytes (the stricter reading)
GOAL_P99_MS = 50.0

CLK_TCK = os.sysconf("SC_CLK_TCK")
PIPE_SIZE = 1 << 20  # camgate's stdout pipe: room for ~1 s of lines if the driver lags
SENT_RE = re.compile(rb'"SimSentMs":\s*(-?\d+)')
# camgate's `received_at` (UTC, to the millisecond): when it read the chunk holding the event.
RECEIVED_RE = re.compile(rb'"received_at":"(\d{4}-\d\d-\d\dT\d\d:\d\d):(\d\d(?:\.\d+)?)Z"')

# Every process started, so that all of them are stopped on any exit, and temporary
# directories to remove then.
STARTED = []
TEMP_DIRS = []


def log(msg=""):
    print(msg, flush=True)


def die(msg):
    print(f"bench_dahua_streams: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def free_port():
    """A loopback port nothing listens on now (it may be taken again; good enough here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout):
    """Whether 127.0.0.1:port accepts a connection within timeout (False if proc exits)."""
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


def cpu_seconds(pid):
    """utime + stime of the process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status(pid):
    """(VmRSS KiB, VmHWM KiB, threads) of the process."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out.get("VmRSS", 0), out.get("VmHWM", 0), out.get("Threads", 0)


def pinned(cpu, argv):
    return (["taskset", "-c", str(cpu)] + argv) if cpu is not None else argv


def start(args, argv, cpu, **kw):
    """Start a process (pinned to cpu), remembered for cleanup and in --pidfile."""
    proc = subprocess.Popen(pinned(cpu, argv), **kw)
    STARTED.append(proc)
    if args.pidfile:
        with open(args.pidfile, "a") as f:
            f.write(f"{proc.pid}\n")
    return proc


def stop(proc, sig, timeout):
    """Send sig, wait up to timeout, then kill. Returns the exit code."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def cleanup():
    for p in STARTED:
        if p.poll() is None:
            p.kill()
            p.wait()
    for d in TEMP_DIRS:
        shutil.rmtree(d, ignore_errors=True)


class JsonlReader:
    """Reads camgate's stdout (the jsonl sink) in a thread.

    Each chunk is timestamped when os.read returns it; every complete line in it arrived by
    then. Lines with `SimSentMs` are events: counted, and while the window is open their
    (arrival, SimSentMs, received_at) is kept. `device` lines are tallied by code within the
    window, and the sources that sent `connected` are remembered."""

    def __init__(self, pipe):
        self.fd = pipe.fileno()
        self.lock = threading.Lock()
        self.events = 0  # every event line seen
        self.window_open = False
        # (arrival ms, SimSentMs, received_at ms or None) of the events that arrived while the
        # window was open.
        self.samples = []
        self._minutes = {}  # "YYYY-MM-DDTHH:MM" -> Unix seconds, for received_at
        self.window_device_codes = {}  # device event code -> count, within the window
        self.connected = set()  # sources with a `connected` event
        self.bad_lines = 0
        self._rest = b""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            try:
                chunk = os.read(self.fd, 1 << 20)
            except OSError:
                chunk = b""
            now_ms = time.time() * 1000.0
            if not chunk:
                return  # camgate closed its stdout (exited)
            data = self._rest + chunk
            lines = data.split(b"\n")
            self._rest = lines.pop()  # an incomplete last line waits for the next chunk
            with self.lock:
                for line in lines:
                    self._line(line, now_ms)

    def _line(self, line, now_ms):
        m = SENT_RE.search(line)
        if m:
            self.events += 1
            if self.window_open:
                self.samples.append((now_ms, int(m.group(1)), self._received_ms(line)))
            return
        if b'"kind":"device"' not in line:
            # Events without the stamp should not exist here: the simulator stamps all.
            self.bad_lines += 1
            return
        try:
            e = json.loads(line)
        except ValueError:
            self.bad_lines += 1
            return
        code = e.get("code", "?")
        if self.window_open:
            self.window_device_codes[code] = self.window_device_codes.get(code, 0) + 1
        if code == "connected":
            self.connected.add(e.get("source"))

    def _received_ms(self, line):
        m = RECEIVED_RE.search(line)
        if not m:
            return None
        minute = m.group(1)
        base = self._minutes.get(minute)
        if base is None:
            base = calendar.timegm(time.strptime(minute.decode(), "%Y-%m-%dT%H:%M"))
            self._minutes[minute] = base
        return (base + float(m.group(2))) * 1000.0

    def open_window(self):
        with self.lock:
            self.samples = []
            self.window_device_codes = {}
            self.window_open = True
            return self.events

    def close_window(self):
        with self.lock:
            self.window_open = False
            return self.events, self.samples, dict(self.window_device_codes)

    def connected_count(self):
        with self.lock:
            return len(self.connected)


def write_config(path, data_dir, http_port, sim_port, n, heartbeat):
    """camgate.toml: n Dahua cameras on the simulator, jsonl sink to stdout."""
    cams = []
    for i in range(1, n + 1):
        cams.append(
            f"""[[camera]]
vendor = "dahua"
name = "cam{i:05d}"
host = "127.0.0.1"
port = {sim_port}
username = "admin"
password = "admin"
heartbeat = "{heartbeat}s"
backoff_max = "5s"
"""
        )
    with open(path, "w") as f:
        f.write(
            f"""# bench_dahua_streams.py: {n} simulated Dahua devices
[site]
data_dir = "{data_dir}"

[log]
level = "warn"
file = ""

[http]
listen = "127.0.0.1:{http_port}"

[webhook]
enabled = false

[[sink]]
type = "jsonl"
path = "-"

"""
            + "\n".join(cams)
        )


def api_sources(http_port):
    """/api/sources, counted by state."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/sources", timeout=10) as r:
        sources = json.load(r)["sources"]
    states = {}
    for s in sources:
        states[s["state"]] = states.get(s["state"], 0) + 1
    reconnects = sum(s.get("reconnects", 0) for s in sources)
    return len(sources), states, reconnects


def store_counters(http_port):
    """camgate's store writer counters from /metrics: transactions, transactions that stored
    events, events in them, seconds spent committing."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    wanted = {
        "camgate_writer_commit_seconds_count": "commits",
        "camgate_writer_commit_seconds_sum": "commit_seconds",
        "camgate_writer_batch_events_count": "event_commits",
        "camgate_writer_batch_events_sum": "events",
    }
    out = dict.fromkeys(wanted.values(), 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            out[wanted[name]] = float(value)
    return out


def percentile(sorted_values, p):
    """Nearest-rank percentile of a sorted list."""
    if not sorted_values:
        return float("nan")
    k = math.ceil(p / 100.0 * len(sorted_values)) - 1
    return sorted_values[max(0, min(len(sorted_values) - 1, k))]


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 2**20
    return f"{os.cpu_count()} vCPU {cpu}, {mem:.0f} GiB, Linux {platform.release()}"


def filesystem(path):
    """The type and source of the file system that holds path, from /proc/self/mountinfo."""
    best, found = "", "?"
    real = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, right = line.split(" - ", 1)
                mnt = left.split()[4]
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, found = mnt, " ".join(right.split()[:2])
    except OSError:
        pass
    return found


def fmt_ms(x):
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def machine_busy_seconds():
    """CPU time spent by everything on the machine (all CPUs, not idle or iowait), seconds."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def dirty_mib():
    """Dirty + Writeback from /proc/meminfo, MiB: file data the kernel has yet to write."""
    total = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(("Dirty:", "Writeback:")):
                total += int(line.split()[1])
    return total / 1024


def disk_written_bytes():
    """Bytes written to the machine's disks (whole devices in /proc/diskstats, no partitions,
    loop or RAM devices)."""
    total = 0
    with open("/proc/diskstats") as f:
        for line in f:
            fields = line.split()
            name = fields[2]
            if name.startswith(("loop", "ram", "zram", "dm-")) or not os.path.isdir(f"/sys/block/{name}"):
                continue  # a partition (no /sys/block entry) or a virtual device
            total += int(fields[9]) * 512  # sectors written
    return total


def process_written_bytes(pid):
    """Bytes the process caused to be written to storage (/proc/PID/io write_bytes)."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def latency_stats(samples):
    """Latencies (ms) of the window's events: end to end, device -> camgate (`received_at`),
    camgate -> jsonl line, and the worst p99 of any whole second (by arrival)."""
    total = sorted(arrival - sent for arrival, sent, _ in samples)
    ingest = sorted(received - sent for _, sent, received in samples if received is not None)
    deliver = sorted(arrival - received for arrival, _, received in samples if received is not None)
    by_second = {}
    for arrival, sent, _ in samples:
        by_second.setdefault(int(arrival // 1000), []).append(arrival - sent)
    seconds = sorted(by_second)[1:-1]  # whole seconds only
    worst = max((percentile(sorted(by_second[t]), 99) for t in seconds), default=float("nan"))
    return total, ingest, deliver, worst


def start_camgate(args, config, workdir, cpu, stderr_name):
    """`camgate run -c config`, stdout piped (the jsonl sink) and read by a JsonlReader."""
    err = os.path.join(workdir, stderr_name)
    proc = start(args, [args.camgate, "run", "-c", config], cpu,
                 stdout=subprocess.PIPE, stderr=open(err, "wb"), cwd=workdir)
    try:
        fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (AttributeError, OSError):
        pass  # the default pipe size only means camgate may wait on a slow reader sooner
    return proc, JsonlReader(proc.stdout), err


def rss_without_cameras(args, workdir, cpu):
    """VmRSS (KiB) of camgate with the same configuration but no camera, 1 s after start."""
    data_dir = tempfile.mkdtemp(prefix="camgate-dahua-streams-empty-", dir=args.data_dir)
    TEMP_DIRS.append(data_dir)
    http_port = free_port()
    config = os.path.join(workdir, "camgate-empty.toml")
    write_config(config, data_dir, http_port, free_port(), 0, args.heartbeat)
    proc, _, err = start_camgate(args, config, workdir, cpu, "camgate-empty.stderr")
    if not wait_port(http_port, proc, 60):
        die(f"camgate without cameras did not start (see {err})")
    time.sleep(1.0)
    rss = proc_status(proc.pid)[0]
    stop(proc, signal.SIGTERM, 30)
    return rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--camgate", required=True, help="the camgate binary (release build)")
    ap.add_argument("--streams", type=int, default=None, help=f"simulated devices (default {GOAL_STREAMS}; --quick: 500)")
    ap.add_argument("--seconds", type=float, default=None, help="measured seconds (default 30; --quick: 5)")
    ap.add_argument("--quick", action="store_true", help="500 streams, 2 s warm-up, 5 s measured (unless given)")
    ap.add_argument("--heartbeat", type=int, default=5, help="heartbeat camgate asks for, seconds (default 5)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between events per stream (default 1)")
    ap.add_argument("--connect-timeout", type=float, default=None,
                    help="seconds to wait for every stream to connect (default 60 + N/100)")
    ap.add_argument("--workdir", default=None, help="config, logs (default <target>/bench/dahua_streams)")
    ap.add_argument("--out", default=None, help="markdown report (default <target>/bench/dahua_streams.md)")
    ap.add_argument("--data-dir", default=None,
                    help="where camgate's temporary data directory (the SQLite store) is made (default: the "
                         "system's temporary directory); e.g. /dev/shm, to take the file system out of the numbers")
    ap.add_argument("--keep", action="store_true", help="keep camgate's data directory (the SQLite store)")
    ap.add_argument("--pidfile", default=None, help="append the pid of every process started to this file")
    args = ap.parse_args()
    args.streams = args.streams or (500 if args.quick else GOAL_STREAMS)
    args.seconds = args.seconds or (5.0 if args.quick else 30.0)
    warmup = 2.0 if args.quick else max(5.0, float(args.heartbeat))
    n = args.streams
    connect_timeout = args.connect_timeout or (60.0 + n / 100.0)
    args.camgate = os.path.abspath(args.camgate)
    if not os.access(args.camgate, os.X_OK):
        die(f"{args.camgate} is not an executable (cargo build --release -p camgate)")
    target = os.path.dirname(os.path.dirname(args.camgate))  # target/release/camgate -> target
    workdir = os.path.abspath(args.workdir or os.path.join(target, "bench", "dahua_streams"))
    out_md = os.path.abspath(args.out or os.path.join(target, "bench", "dahua_streams.md"))
    os.makedirs(workdir, exist_ok=True)

    # Descriptors: camgate holds one socket per stream, the simulator one per stream too.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n + 1000:
        log(f"warning: the open-file limit ({hard}) is below {n + 1000}: streams will fail to connect")

    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        camgate_cpu, sim_cpu = 0, 1
        os.sched_setaffinity(0, {1})  # this driver (and its reader thread) stays off camgate's CPU
        pinning = "camgate on CPU 0; the simulator and this driver on CPU 1 (taskset)"
    else:
        camgate_cpu = sim_cpu = None
        pinning = "not pinned (fewer than 2 CPUs or no taskset): camgate, the simulator and the driver share the CPUs"

    camgate_version = subprocess.run([args.camgate, "--version"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    log(f"machine: {machine()}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if load[0] > 1.0:
        log("warning: the load average is above 1: other work on the machine skews the numbers (latency most)")
    dirty = dirty_mib()
    if dirty > 64:
        log(f"warning: {dirty:,.0f} MiB of the page cache wait to be written to disk: store commits (and so "
            f"latency) suffer while the kernel writes them back; `sync` first")
    log(f"{camgate_version}; {n} streams, 1 event per {args.interval:g} s each, heartbeat {args.heartbeat} s")
    log(f"pinning: {pinning}")
    store_fs = filesystem(args.data_dir or tempfile.gettempdir())
    log(f"camgate's store: a temporary directory under {args.data_dir or tempfile.gettempdir()} ({store_fs})")

    # 0. For reference: camgate with no camera at all.
    empty_rss = rss_without_cameras(args, workdir, camgate_cpu)
    log(f"camgate without cameras: VmRSS {empty_rss / 1024:,.1f} MiB")

    # 1. camgate with the N cameras, before anything listens on the simulator's port.
    data_dir = tempfile.mkdtemp(prefix="camgate-dahua-streams-", dir=args.data_dir)
    if not args.keep:
        TEMP_DIRS.append(data_dir)
    sim_port, http_port = free_port(), free_port()
    config = os.path.join(workdir, "camgate.toml")
    write_config(config, data_dir, http_port, sim_port, n, args.heartbeat)
    camgate, reader, camgate_err = start_camgate(args, config, workdir, camgate_cpu, "camgate.stderr")
    if not wait_port(http_port, camgate, 60):
        die(f"camgate did not start (see {camgate_err})")
    # Every source registered and its first attach failed (none still `connecting`).
    deadline = time.monotonic() + 60
    while True:
        registered, states, _ = api_sources(http_port)
        if registered >= n and not states.get("connecting"):
            break
        if time.monotonic() > deadline:
            if registered < n:
                die(f"only {registered} of {n} sources registered in camgate")
            break  # some still connecting: the baseline is taken anyway (the states are shown)
        time.sleep(0.2)
    base_rss, base_hwm, base_threads = proc_status(camgate.pid)
    log(f"camgate up: {registered} sources {states}; baseline VmRSS {base_rss / 1024:,.1f} MiB "
        f"(VmHWM {base_hwm / 1024:,.1f} MiB, {base_threads} threads)")

    # 2. The simulator; wait for every stream.
    sim_err = os.path.join(workdir, "sim.stderr")
    sim = start(args, [args.camgate, "sim", "dahua", "--listen", f"127.0.0.1:{sim_port}", "--stamp",
                       "--interval", str(args.interval), "--max-connections", str(2 * n + 100)],
                sim_cpu, stdout=subprocess.DEVNULL, stderr=open(sim_err, "wb"))
    if not wait_port(sim_port, sim, 15):
        die(f"the simulator did not start (see {sim_err})")
    t_sim = time.monotonic()
    last_print = 0.0
    while reader.connected_count() < n:
        waited = time.monotonic() - t_sim
        if camgate.poll() is not None or sim.poll() is not None:
            die(f"a process exited while streams connected (see {camgate_err}, {sim_err})")
        if waited > connect_timeout:
            die(f"only {reader.connected_count()} of {n} streams connected after {connect_timeout:.0f} s "
                f"(see {camgate_err})")
        if waited - last_print >= 5:
            last_print = waited
            log(f"  {reader.connected_count()} of {n} connected after {waited:.0f} s")
        time.sleep(0.1)
    connect_s = time.monotonic() - t_sim
    log(f"all {n} streams connected {connect_s:.1f} s after the simulator started; "
        f"warm-up {warmup:.0f} s, then {args.seconds:g} s measured")
    time.sleep(warmup)

    # 3. The measured window: CPU times at both ends, RSS every 0.5 s.
    rss_samples = []
    store0 = store_counters(http_port)
    events0 = reader.open_window()
    t0 = time.monotonic()
    cg0, sim0, me0, all0 = cpu_seconds(camgate.pid), cpu_seconds(sim.pid), sum(os.times()[:2]), machine_busy_seconds()
    disk0, cgw0 = disk_written_bytes(), process_written_bytes(camgate.pid)
    while time.monotonic() - t0 < args.seconds:
        time.sleep(0.5)
        if camgate.poll() is not None or sim.poll() is not None:
            die(f"a process exited during the measurement (see {camgate_err}, {sim_err})")
        rss_samples.append(proc_status(camgate.pid)[0])
    cg1, sim1, me1, all1 = cpu_seconds(camgate.pid), cpu_seconds(sim.pid), sum(os.times()[:2]), machine_busy_seconds()
    disk1, cgw1 = disk_written_bytes(), process_written_bytes(camgate.pid)
    events1, samples, window_devices = reader.close_window()
    elapsed = time.monotonic() - t0
    _, hwm, threads = proc_status(camgate.pid)
    registered, states, reconnects = api_sources(http_port)
    store1 = store_counters(http_port)

    # 4. Stop both.
    cg_exit = stop(camgate, signal.SIGTERM, 30)
    sim_exit = stop(sim, signal.SIGINT, 15)
    with open(sim_err, errors="replace") as f:
        sim_said = [line.strip() for line in f if line.startswith("served")]

    # Results.
    events = events1 - events0
    total, ingest, deliver, worst_second = latency_stats(samples)
    rss_mean = sum(rss_samples) / len(rss_samples)
    rss_max = max(rss_samples)
    per_stream_kib = (rss_mean - base_rss) / n
    per_stream_kb = per_stream_kib * 1.024
    hwm_per_stream_kb = (hwm - base_rss) / n * 1.024
    all_in_kb = (rss_mean - empty_rss) / n * 1.024

    def pct(a, b):
        return 100.0 * (b - a) / elapsed

    cg_cpu, sim_cpu_pct, my_cpu = pct(cg0, cg1), pct(sim0, sim1), pct(me0, me1)
    others_cpu = max(0.0, pct(all0, all1) - cg_cpu - sim_cpu_pct - my_cpu)
    store = {k: store1[k] - store0[k] for k in store0}
    store_row = (f"{store['commits'] / elapsed:,.0f} transactions/s ({store['event_commits'] / elapsed:,.0f} with "
                 f"events, {store['events'] / max(store['event_commits'], 1):,.1f} events each; the rest sink "
                 f"cursors), {1000 * store['commit_seconds'] / max(store['commits'], 1):,.2f} ms per commit, "
                 f"committing {100 * store['commit_seconds'] / elapsed:.0f} % of the time")
    p50, p99 = percentile(total, 50), percentile(total, 99)
    pmax = total[-1] if total else float("nan")

    def three(values):
        if not values:
            return "n/a"
        return f"{fmt_ms(percentile(values, 50))} / {fmt_ms(percentile(values, 99))} / {fmt_ms(values[-1])} ms"

    def verdict(ok):
        return "met" if ok else "missed"

    rows = [
        ("streams connected", f"{len(reader.connected):,} of {n:,} (in {connect_s:.1f} s); "
                              f"/api/sources at the end: {states}", f"{GOAL_STREAMS:,}"),
        ("events/s (jsonl lines)", f"{events / elapsed:,.0f} (simulator sends {n / args.interval:,.0f}/s)", ""),
        ("latency p50 / p99 / max", f"{fmt_ms(p50)} / {fmt_ms(p99)} / {fmt_ms(pmax)} ms ({len(total):,} events)",
         f"p99 < {GOAL_P99_MS:.0f} ms: {verdict(p99 < GOAL_P99_MS)}"),
        ("  device -> camgate `received_at`", three(ingest), ""),
        ("  `received_at` -> jsonl line", three(deliver), ""),
        ("  worst p99 of one second", f"{fmt_ms(worst_second)} ms", ""),
        ("camgate CPU", f"{cg_cpu:.1f} % (100 % = one core)", ""),
        ("camgate store writer", store_row, ""),
        ("camgate VmRSS baseline / mean / max in window", f"{base_rss / 1024:,.1f} / {rss_mean / 1024:,.1f} / "
                                                          f"{rss_max / 1024:,.1f} MiB", ""),
        ("camgate VmHWM (peak, whole run)", f"{hwm / 1024:,.1f} MiB ({threads} threads)", ""),
        ("RSS per stream (mean - baseline) / N", f"{per_stream_kb:,.1f} KB ({per_stream_kib:,.1f} KiB); "
                                                 f"from the peak: {hwm_per_stream_kb:,.1f} KB",
         f"< {GOAL_RSS_PER_STREAM_KB:.0f} KB: {verdict(per_stream_kb < GOAL_RSS_PER_STREAM_KB)}"),
        ("RSS per stream, all in (vs. no camera)", f"{all_in_kb:,.1f} KB (camgate without cameras: "
                                                   f"{empty_rss / 1024:,.1f} MiB)", ""),
        ("simulator CPU / driver CPU", f"{sim_cpu_pct:.1f} % / {my_cpu:.1f} %", ""),
        ("other processes' CPU", f"{others_cpu:.1f} % (the machine's busy time minus the three above)", ""),
        ("disk writes: camgate / whole machine", f"{(cgw1 - cgw0) / elapsed / 1e6:,.1f} / "
                                                 f"{(disk1 - disk0) / elapsed / 1e6:,.1f} MB/s", ""),
        ("device events in window", ", ".join(f"{k} {v}" for k, v in sorted(window_devices.items())) or "none",
         ""),
        ("reconnects (all sources, whole run)", f"{reconnects:,} (the first failed attach of each: {n:,} expected)",
         ""),
    ]
    if reader.bad_lines:
        rows.append(("unexpected jsonl lines", f"{reader.bad_lines}", ""))
    rows.append(("exit codes", f"camgate {cg_exit}, simulator {sim_exit}", ""))

    log()
    log(f"Dahua concurrent streams: {n:,} streams, {elapsed:.1f} s measured")
    width = max(len(r[0]) for r in rows)
    for name, value, goal in rows:
        log(f"  {name:<{width}}  {value}{'   [goal ' + goal + ']' if goal else ''}")
    for line in sim_said:
        log(f"  simulator: {line}")

    # Markdown report.
    os.makedirs(os.path.dirname(out_md), exist_ok=True)
    with open(out_md, "w") as f:
        f.write("# Dahua concurrent streams\n\n")
        f.write(f"`python3 scripts/bench_dahua_streams.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}` "
                f"({n:,} streams, {args.seconds:g} s)\n\n")
        f.write(f"- machine: {machine()}; load average before the run {load[0]:.2f}\n- {camgate_version}\n"
                f"- pinning: {pinning}\n- camgate's SQLite store on {store_fs}\n")
        f.write(f"- {n:,} simulated Dahua devices (`camgate sim dahua --stamp`, Digest auth), one event per "
                f"{args.interval:g} s each, heartbeat {args.heartbeat} s; {warmup:.0f} s warm-up, "
                f"{elapsed:.1f} s measured\n")
        f.write("- latency: the driver's clock when it read the `jsonl` line from camgate's stdout - "
                "`SimSentMs` (simulator send time, whole ms); split at the event's `received_at`\n")
        f.write("- RSS per stream: (mean VmRSS in the window - VmRSS with the cameras configured but not "
                "connected) / N; KB = 1000 bytes\n\n")
        f.write("| metric | value | goal |\n|---|---|---|\n")
        for name, value, goal in rows:
            f.write(f"| {name.strip()} | {value} | {goal} |\n")
        f.write("\nNumbers are shown, never asserted.\n")
    log(f"\nwrote {out_md}")
    if args.keep:
        log(f"camgate's data directory kept: {data_dir}")


if __name__ == "__main__":
    def on_signal(signum, _frame):
        cleanup()
        sys.exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        main()
    finally:
        cleanup()
