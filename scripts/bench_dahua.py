#!/usr/bin/env python3
"""Driver of `scripts/bench dahua` part (1): Dahua event-stream parser throughput, camgate's
`Decoder` against python-amcrest's event-stream parsing, both fed the same captured bytes.

Run it through `scripts/bench dahua`, which builds the camgate side and prepares the Python
environment. Directly:

    python3 scripts/bench_dahua.py --camgate-parser target/release/examples/dahua_parse_bench \
        --reference-python .venv/bin/python [--out target/bench/dahua.md]

The stream: the response body of `eventManager.cgi?action=attach&codes=[All]&heartbeat=5`,
built deterministically from the real samples of the shared folder (samples/dahua, see
protocols/dahua.md §3-§4) and written to WORKDIR/stream.bin. One round is

* `03_ipc_all_heartbeat5_smartmotion_lf.txt` whole (11 parts: 3 `Heartbeat`, 6
  `VideoMotionInfo` State, `VideoMotion` Start/Stop with data), its LF-only paste turned back
  into what the camera sends: CRLF framing, bare LF inside the bodies, the same separators;
* the 3 parts of `01_api_doc_example_no_blank_line.http` (CRLF as documented: no blank line
  after the part headers, `Content-Length` counting the body's CRLF);
* the part of `05_nvr_http10_no_blank_line_lf.txt` (no blank line, exact length), CRLF;
* a `Heartbeat`, the 10 bodies of `07_ad110_doorbell_bodies.txt`, a `Heartbeat`, the 5 of
  `08_smartmotionhuman_bodies.txt`, a `Heartbeat`, the one of `10_wizmind_humantrait_body.txt`,
  each in a canonical part (§3.1: `Content-Length` exact, blank line, body, CRLF CRLF; a body
  with `data=` ends with the JSON's bare LF, inside the length);

repeated until the stream holds --size-mib MiB (4; --quick: 1): 34 parts (7 heartbeats, 27 records) per
round. Both sides read the file into memory and take it in --chunk-byte reads (4 KiB: one
socket read each).

* camgate: `cargo run --release --example dahua_parse_bench` of camgate-protocols: a new
  `Decoder` per pass, `push` per read (framing + body grammar + JSON + normalisation into
  events, `VideoMotionInfo` kept so that every record is an event as in amcrest); best of 5
  runs of at least 0.4 s each (--quick: 3).
* reference: scripts/bench_dahua_reference.py under the venv python: amcrest 1.9.9's
  `event_actions` with the HTTP request replaced by a response over the bytes (its docstring
  says exactly what runs); best of --runs passes (3; --quick: 1), for each of two response layers (`file`:
  amcrest + requests; `urllib3`: + urllib3's HTTPResponse). The ratio is camgate against the
  faster one.

Both run one after the other, pinned to the same CPU when taskset exists. The event counts
and the (Code, action, index) multisets of both sides are compared. Prints a table and
writes it as markdown to --out. Numbers are shown, never asserted.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
REFERENCE = os.path.join(HERE, "bench_dahua_reference.py")
SAMPLES = os.path.join(os.path.dirname(REPO), "shared", "samples", "dahua")

GOAL_RATIO = 100.0  # informational: shown, never asserted
CRLF = "\r\n"


def die(msg):
    print(f"scripts/bench dahua: error: {msg}", file=sys.stderr)
    sys.exit(1)


def log(msg):
    print(msg, flush=True)


def read_sample(samples, name):
    with open(os.path.join(samples, name), encoding="utf-8", newline="") as f:
        return f.read()


def lf_stream_parts(text):
    """The parts of an LF-only paste of a stream with blank lines after the part headers,
    as the camera sent them: CRLF framing and separators, the body (its bare LFs and all)
    exactly `Content-Length` characters (all ASCII, so bytes)."""
    if "\r" in text:
        die("expected an LF-only sample")
    parts = []
    for p in text.split("--myboundary\n")[1:]:
        headers, rest = p.split("\n\n", 1)
        length = int(re.search(r"Content-Length:\s*(\d+)", headers).group(1))
        body, after = rest[:length], rest[length:]
        if after.strip("\n"):
            die(f"sample part longer than its Content-Length {length}: {after!r}")
        parts.append("--myboundary" + CRLF + headers.replace("\n", CRLF) + CRLF + CRLF + body
                     + after.replace("\n", CRLF))
    return parts


def bodies(text):
    """The bodies of a *_bodies.txt sample (each starts with `Code=`), as a camera frames
    them: a body with `data=` keeps the LF after its JSON, one without ends at its last
    character (dahua.md §3.1)."""
    out = []
    for chunk in re.split(r"(?m)^(?=Code=)", text):
        chunk = chunk.rstrip("\n")
        if chunk:
            out.append(chunk + "\n" if ";data=" in chunk else chunk)
    return out


def canonical_part(body):
    n = len(body.encode())
    return f"--myboundary{CRLF}Content-Type: text/plain{CRLF}Content-Length:{n}{CRLF}{CRLF}{body}{CRLF}{CRLF}"


def heartbeat_part():
    return f"--myboundary{CRLF}Content-Type: text/plain{CRLF}Content-Length:9{CRLF}{CRLF}Heartbeat{CRLF}"


def build_round(samples):
    """One round of the stream (see the module docstring) and its parts, heartbeats, records."""
    parts = lf_stream_parts(read_sample(samples, "03_ipc_all_heartbeat5_smartmotion_lf.txt"))

    doc = read_sample(samples, "01_api_doc_example_no_blank_line.http")
    doc_body = doc.split(CRLF + CRLF, 1)[1]  # after the HTTP response headers
    doc_parts = ["--myboundary" + CRLF + p for p in doc_body.split("--myboundary" + CRLF)[1:] if p]
    if len(doc_parts) != 3:
        die(f"01_api_doc_example_no_blank_line.http: expected 3 parts, found {len(doc_parts)}")
    parts += doc_parts

    nvr = read_sample(samples, "05_nvr_http10_no_blank_line_lf.txt")
    nvr_body = nvr.split("\n\n", 1)[1]  # after the HTTP/1.0 response headers
    # The paste ends with the body's line; the separator before the next boundary is the
    # blank line the API doc example (01) has there.
    parts.append(nvr_body.replace("\n", CRLF) + CRLF)

    for name in ["07_ad110_doorbell_bodies.txt", "08_smartmotionhuman_bodies.txt", "10_wizmind_humantrait_body.txt"]:
        parts.append(heartbeat_part())
        parts += [canonical_part(b) for b in bodies(read_sample(samples, name))]

    data = "".join(parts).encode()
    heartbeats = sum(1 for p in parts if re.search(r"\n(?:\r\n)?Heartbeat\r\n", p))
    return data, len(parts), heartbeats


def build_stream(samples, size):
    one, parts, heartbeats = build_round(samples)
    rounds = max(1, -(-size // len(one)))
    return one * rounds, {"rounds": rounds, "round_bytes": len(one), "parts": parts * rounds,
                          "heartbeats": heartbeats * rounds, "records": (parts - heartbeats) * rounds}


def run_json(argv, what):
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        die(f"{what} failed ({' '.join(argv)}):\n{p.stderr[-3000:]}")
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        die(f"{what} printed no JSON:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "rustc": rustc or "?",
            "load": os.getloadavg()}


def fmt_int(x):
    return f"{x:,.0f}"


def fmt_rate(x):
    return f"{x:,.2f}" if x < 10 else f"{x:,.1f}" if x < 1000 else f"{x:,.0f}"


def table(cols, rows, md):
    if md:
        out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(x) for x in [h] + [r[i] for r in rows]) for i, h in enumerate(cols)]
    line = lambda r: "  ".join(x.rjust(w) if i >= 1 else x.ljust(w) for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows])


def records_diff(cam, ref):
    """Differences between the (Code, action, index) multisets, as text lines."""
    a = {(c, act, i): n for c, act, i, n in cam}
    b = {(c, act, i): n for c, act, i, n in ref}
    return [f"{k}: camgate {a.get(k, 0)}, amcrest {b.get(k, 0)}"
            for k in sorted(set(a) | set(b), key=str) if a.get(k, 0) != b.get(k, 0)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--camgate-parser", required=True,
                    help="the dahua_parse_bench example of camgate-protocols (release build)")
    ap.add_argument("--reference-python", required=True, help="a python with amcrest==1.9.9 (scripts/python-env)")
    ap.add_argument("--samples", default=SAMPLES, help="the shared samples/dahua folder (default %(default)s)")
    ap.add_argument("--quick", action="store_true", help="a 1 MiB stream, 1 reference pass per layer, 3 camgate runs")
    ap.add_argument("--size-mib", type=float, default=None, help="stream size (default 4 MiB)")
    ap.add_argument("--chunk", type=int, default=4096, help="bytes per read, both sides (default %(default)s)")
    ap.add_argument("--runs", type=int, default=None, help="reference passes per layer, best kept (default 3)")
    ap.add_argument("--camgate-runs", type=int, default=None, help="camgate runs, best kept (default 5)")
    ap.add_argument("--camgate-run-seconds", type=float, default=0.4,
                    help="camgate: passes per run until this many seconds (default %(default)s)")
    ap.add_argument("--workdir", default="target/bench/dahua", help="stream file and raw results")
    ap.add_argument("--out", default="target/bench/dahua.md", help="markdown report")
    args = ap.parse_args()
    args.size_mib = args.size_mib or (1.0 if args.quick else 4.0)
    args.runs = args.runs or (1 if args.quick else 3)
    args.camgate_runs = args.camgate_runs or (3 if args.quick else 5)

    if not os.path.isdir(args.samples):
        die(f"no samples folder {args.samples} (the shared folder beside the repository; or pass --samples)")
    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    stream, comp = build_stream(args.samples, int(args.size_mib * 2**20))
    path = os.path.join(workdir, "stream.bin")
    with open(path, "wb") as f:
        f.write(stream)
    log(f"stream: {path}, {len(stream):,} B: {comp['rounds']:,} rounds of {comp['round_bytes']:,} B, "
        f"{comp['parts']:,} parts ({comp['heartbeats']:,} heartbeats, {comp['records']:,} records), "
        f"{len(stream) / comp['parts']:.0f} B per part")

    if shutil.which("taskset"):
        cpu = sorted(os.sched_getaffinity(0))[0]
        pin = ["taskset", "-c", str(cpu)]
        pinning = f"each side pinned to CPU {cpu} (taskset), one after the other"
    else:
        pin = []
        pinning = "not pinned (no taskset); one side after the other"
    info = machine()
    log(f"machine: {info['cpus']} vCPU {info['cpu']}, Linux {info['kernel']}; load average "
        f"{info['load'][0]:.2f} {info['load'][1]:.2f} {info['load'][2]:.2f}; {pinning}")
    if info["load"][0] > 1.5:
        log("warning: the load average is above 1.5; other work on the machine skews the numbers")

    log("camgate: Decoder::push ...")
    cam = run_json(pin + [args.camgate_parser, path, "--chunk", str(args.chunk), "--runs", str(args.camgate_runs),
                          "--min-seconds", str(args.camgate_run_seconds)], "the camgate parser bench")
    log(f"camgate:  {cam['mb_s']:,.1f} MB/s, {cam['events_s']:,.0f} events/s ({cam['events']:,} events, "
        f"{cam['heartbeats']:,} heartbeats, {cam['filtered']} filtered, {cam['unrecognised']} unrecognised, "
        f"{cam['frame_errors']} framing errors)")
    log(f"amcrest: event_actions, {args.runs} passes per layer ...")
    ref = run_json(pin + [args.reference_python, REFERENCE, path, "--chunk", str(args.chunk),
                          "--runs", str(args.runs)], "the amcrest reference")
    for layer, r in ref["layers"].items():
        log(f"amcrest ({layer}): {r['mb_s']:,.2f} MB/s, {r['events_s']:,.0f} events/s ({r['events']:,} events, "
            f"{r['heartbeats']:,} heartbeats)")

    # Checks: both sides see every record of the stream as one event, with the same Code,
    # action and index, and every heartbeat; and every data= as JSON.
    checks = []
    diff = records_diff(cam["records"], ref["verify"]["records"])
    checks.append(("events: camgate = amcrest = records in the stream",
                   cam["events"] == ref["verify"]["events"] == comp["records"],
                   f"camgate {cam['events']:,}, amcrest {ref['verify']['events']:,}, stream {comp['records']:,}"))
    checks.append(("same (Code, action, index) for every event", not diff,
                   f"{len(cam['records'])} distinct" if not diff else "; ".join(diff[:5])))
    checks.append(("heartbeats: camgate = amcrest = heartbeat parts in the stream",
                   cam["heartbeats"] == ref["verify"]["heartbeats"] == comp["heartbeats"],
                   f"camgate {cam['heartbeats']:,}, amcrest {ref['verify']['heartbeats']:,}, "
                   f"stream {comp['heartbeats']:,}"))
    checks.append(("every timed amcrest pass: the same events and heartbeats",
                   all((r["events"], r["heartbeats"]) == (comp["records"], comp["heartbeats"])
                       for r in ref["layers"].values()),
                   ", ".join(f"{k}: {r['events']:,} / {r['heartbeats']:,}" for k, r in ref["layers"].items())))
    checks.append(("data= parsed as a JSON object: camgate = amcrest", cam["data_json"] == ref["verify"]["data_json"],
                   f"camgate {cam['data_json']:,}, amcrest {ref['verify']['data_json']:,}"))
    checks.append(("camgate: nothing filtered, unrecognised or unframed",
                   cam["filtered"] == cam["unrecognised"] == cam["frame_errors"] == 0,
                   f"{cam['filtered']} / {cam['unrecognised']} / {cam['frame_errors']}"))

    best_layer = min(ref["layers"], key=lambda k: ref["layers"][k]["best_seconds"])
    best_ref = ref["layers"][best_layer]
    ratio = cam["mb_s"] / best_ref["mb_s"]
    v = ref["versions"]
    cols = ["parser", "MB/s", "events/s", "events", "heartbeats", "best pass ms", "camgate / this"]
    rows = [["camgate Decoder::push", fmt_rate(cam["mb_s"]), fmt_int(cam["events_s"]), fmt_int(cam["events"]),
             fmt_int(cam["heartbeats"]), f"{cam['best_seconds'] * 1e3:,.2f}", "-"]]
    for layer, r in ref["layers"].items():
        rows.append([f"amcrest {v['amcrest']} event_actions ({layer})", fmt_rate(r["mb_s"]), fmt_int(r["events_s"]),
                     fmt_int(r["events"]), fmt_int(r["heartbeats"]), f"{r['best_seconds'] * 1e3:,.0f}",
                     f"{cam['mb_s'] / r['mb_s']:,.0f}×"])

    setup = (
        f"Machine: {info['cpus']} vCPU ({info['cpu']}), Linux {info['kernel']}; {pinning}; load average at start "
        f"{info['load'][0]:.2f}. Stream: {len(stream):,} B ({len(stream) / 1e6:.2f} MB) built from the shared "
        f"samples/dahua (01, 03, 05, 07, 08, 10), {comp['parts']:,} parts: {comp['records']:,} records, "
        f"{comp['heartbeats']:,} heartbeats; read from memory in {args.chunk:,}-byte reads by both sides. "
        f"camgate: camgate-protocols `Decoder` (framing, body grammar, JSON, normalisation; `VideoMotionInfo` kept), "
        f"example `dahua_parse_bench`, release build, {info['rustc']}; best of {args.camgate_runs} runs "
        f"of ≥ {args.camgate_run_seconds} s. Reference: amcrest {v['amcrest']} `event_actions(\"All\")` under Python {ref['python']} "
        f"(requests {v['requests']}, urllib3 {v['urllib3']}), the HTTP request replaced by a response over the "
        f"same bytes, `Heartbeat` parts taken out before `_build_payload` (which raises on them: amcrest never asks "
        f"for heartbeats); best of {args.runs} passes. `file`: `Response.raw` is a buffered reader (amcrest + "
        f"requests only); `urllib3`: a `urllib3.HTTPResponse` over it, as for a real connection (still no "
        f"http.client or socket)."
    )
    notes = ("MB = 10^6 bytes of stream per second of parsing; events/s = records turned into events per second. "
             "The ratio is camgate's MB/s over the reference's; both sides parse the same records, so the "
             "events/s ratio is the same.")
    goal = (f"camgate ≥ {GOAL_RATIO:.0f}× amcrest's parser throughput on the same bytes (against the faster "
            f"reference layer, `{best_layer}`)", ratio >= GOAL_RATIO, f"{ratio:,.0f}×")

    text = ["", setup, "", table(cols, rows, False), "",
            f"ratio camgate / amcrest ({best_layer}): {ratio:,.0f}× MB/s, "
            f"{cam['events_s'] / best_ref['events_s']:,.0f}× events/s", "", "checks:"]
    text += [f"  {'ok    ' if ok else 'NOT OK'}  {what}: {detail}" for what, ok, detail in checks]
    text += ["", "goal (informational, not asserted):",
             f"  {'met    ' if goal[1] else 'NOT met'}  {goal[0]}: {goal[2]}"]
    md = ["# scripts/bench dahua", "", "## Part 1: parser throughput", "", setup, "", notes, "",
          table(cols, rows, True), "", "Checks:", ""]
    md += [f"- {'ok' if ok else '**not ok**'}: {what}: {detail}" for what, ok, detail in checks]
    md += ["", "Goal (shown, not asserted):", "",
           f"- {'met' if goal[1] else '**not met**'}: {goal[0]}: {goal[2]}", ""]
    print("\n".join(text))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump({"stream": comp | {"bytes": len(stream)}, "camgate": cam, "reference": ref, "machine": info,
                   "checks": checks}, f, indent=1)
    print(f"\nmarkdown: {args.out}; raw results: {os.path.join(workdir, 'results.json')}")
    if not all(ok for _, ok, _ in checks):
        die("camgate and amcrest did not decode the same events (see the checks above)")


if __name__ == "__main__":
    main()
