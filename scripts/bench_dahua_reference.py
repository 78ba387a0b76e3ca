#!/usr/bin/env python3
"""Reference side of `scripts/bench dahua`: python-amcrest's own event-stream parsing
(amcrest 1.9.9, `ApiWrapper.event_actions`), fed a captured multipart byte stream from a file
instead of a camera. Run with the venv python of scripts/python-env:

    .venv/bin/python scripts/bench_dahua_reference.py STREAM [--chunk 4096] [--runs 3]

Only the HTTP request is replaced: the camera's `_command` (below `command`, which
`event_stream` calls for `eventManager.cgi?action=attach&codes=[All]`) returns a real
`requests.Response` whose body is read from memory through an `io.BufferedReader` over a raw
reader that hands out at most --chunk bytes per read, the way `socket.makefile("rb")` sits
over a socket. Everything above it is amcrest's and requests' code as a camera would run it:
`event_stream` pulls the body one byte at a time through `Response.iter_content` into
`_event_lines`, reads `Content-Length + 2` bytes after each `Content-Length:` line, and
`event_actions` hands each part to `_build_payload` (regex over `key=value;` pairs,
`json.loads` of `data`).

Two response bodies are measured (--layers):

* `file`: `Response.raw` is the buffered reader itself (requests' path for a plain file
  object): amcrest + requests, nothing else. The cheaper of the two; the ratio is taken
  against it.
* `urllib3`: `Response.raw` is a `urllib3.HTTPResponse` over that reader, as `requests`
  builds it for a real connection (urllib3's `stream()`/`read()` per byte read by amcrest).
  Still without http.client and the socket, so a real camera connection costs more.

One adaptation: amcrest never asks for `heartbeat=` and its `_build_payload` raises
`KeyError('Code')` on a `Heartbeat` part (there is no `key=value` in it), so the stream that
`event_actions` consumes is amcrest's `event_stream` with the `Heartbeat` parts taken out and
counted (a two-line generator around the real one). Every other part becomes one
`(code, payload)` from `event_actions`: that is the event count.

Prints one JSON object: per layer the best (shortest) of --runs full passes, plus a
verification pass (untimed) with the (Code, action, index) multiset and how many `data`
values `json.loads` accepted.
"""

import argparse
import collections
import io
import json
import sys
import time
from importlib import metadata

import amcrest
import requests
import urllib3
from requests.structures import CaseInsensitiveDict

CONTENT_TYPE = "multipart/x-mixed-replace; boundary=myboundary"
ATTACH = "eventManager.cgi?action=attach&codes=[All]"


class SocketReads(io.RawIOBase):
    """A raw reader over bytes in memory that returns at most `chunk` bytes per read, like
    recv() on a socket that received the stream in `chunk`-byte segments."""

    def __init__(self, data, chunk):
        self._view = memoryview(data)
        self._pos = 0
        self._chunk = chunk

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self._chunk, len(self._view) - self._pos)
        b[:n] = self._view[self._pos:self._pos + n]
        self._pos += n
        return n


def response(data, chunk, layer):
    """The attach response as requests would return it with stream=True."""
    reader = io.BufferedReader(SocketReads(data, chunk))  # socket.makefile("rb") buffers 8 KiB too
    r = requests.models.Response()
    r.status_code = 200
    r.reason = "OK"
    r.headers = CaseInsensitiveDict({"Content-Type": CONTENT_TYPE})
    r.url = "http://192.0.2.1/cgi-bin/" + ATTACH
    # No charset in the Content-Type: requests leaves `encoding` None and event_stream sets utf-8.
    r.encoding = None
    if layer == "file":
        r.raw = reader
    elif layer == "urllib3":
        r.raw = urllib3.HTTPResponse(body=reader, headers={"Content-Type": CONTENT_TYPE}, status=200,
                                     preload_content=False, decode_content=True)
    else:
        raise ValueError(layer)
    return r


def camera(data, chunk, layer, counts):
    """An amcrest camera object whose HTTP request answers with `data`; `counts["heartbeats"]`
    counts the Heartbeat parts taken out of its event_stream."""
    cam = amcrest.ApiWrapper("192.0.2.1", 80, "admin", "password")
    # `command` logs in first when there is no token; the request itself is replaced below.
    cam._token = requests.auth.HTTPBasicAuth("admin", "password")

    def _command(cmd, retries=None, timeout_cmd=None, stream=False):
        if cmd != ATTACH or not stream:
            raise AssertionError(f"unexpected request {cmd!r} stream={stream}")
        return response(data, chunk, layer)

    cam._command = _command
    real_event_stream = cam.event_stream

    def event_stream(*args, **kwargs):
        for info in real_event_stream(*args, **kwargs):
            if info.strip() == "Heartbeat":
                counts["heartbeats"] += 1
                continue
            yield info

    cam.event_stream = event_stream
    return cam


def timed_pass(data, chunk, layer):
    counts = {"heartbeats": 0}
    events = 0
    started = time.perf_counter()
    for _code, _payload in camera(data, chunk, layer, counts).event_actions("All"):
        events += 1
    return time.perf_counter() - started, events, counts["heartbeats"]


def verify(data, chunk):
    counts = {"heartbeats": 0}
    records = collections.Counter()
    data_json = 0
    for code, payload in camera(data, chunk, "file", counts).event_actions("All"):
        records[(code, payload.get("action"), payload.get("index"))] += 1
        data_json += isinstance(payload.get("data"), dict)
    return {
        "events": sum(records.values()),
        "heartbeats": counts["heartbeats"],
        "data_json": data_json,
        "records": sorted([c, a, i, n] for (c, a, i), n in records.items()),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stream", help="the captured multipart body")
    ap.add_argument("--chunk", type=int, default=4096, help="bytes per socket read (default %(default)s)")
    ap.add_argument("--runs", type=int, default=3, help="timed passes per layer, best kept (default %(default)s)")
    ap.add_argument("--layers", default="file,urllib3", help="default %(default)s")
    args = ap.parse_args()
    with open(args.stream, "rb") as f:
        data = f.read()

    out = {
        "versions": {p: metadata.version(p) for p in ("amcrest", "requests", "urllib3")},
        "python": sys.version.split()[0],
        "bytes": len(data),
        "chunk": args.chunk,
        "verify": verify(data, args.chunk),
        "layers": {},
    }
    for layer in args.layers.split(","):
        runs = [timed_pass(data, args.chunk, layer) for _ in range(args.runs)]
        best = min(r[0] for r in runs)
        events, heartbeats = runs[0][1], runs[0][2]
        if any((r[1], r[2]) != (events, heartbeats) for r in runs):
            raise AssertionError(f"{layer}: passes disagree on the counts: {runs}")
        out["layers"][layer] = {
            "seconds": [r[0] for r in runs],
            "best_seconds": best,
            "events": events,
            "heartbeats": heartbeats,
            "mb_s": len(data) / best / 1e6,
            "events_s": events / best,
        }
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
