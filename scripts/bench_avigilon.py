#!/usr/bin/env python3
"""Sequential Avigilon poller, like the legacy occupancy monitor: one camera after another.

The reference side of `scripts/bench avigilon` (python3 standard library only). Logs in to a
(simulated) ACC Web Endpoint, lists the cameras (not timed), then times one poll cycle: for
each camera in turn, TIME_RANGE over the last `--window` seconds with `deviceIds=<camera>`
and `limit=1000`, re-querying with `from = last timestamp + 1 ms` while a full page comes back
(the legacy paging). Prints one JSON object: {"seconds", "requests", "events", "cameras"}.

    python3 scripts/bench_avigilon.py --url http://127.0.0.1:8443/mt/api/rest/v1
"""

import argparse
import datetime as dt
import hashlib
import http.client
import json
import sys
import time
import urllib.parse

# The simulator's defaults (camgate_sim::avigilon::DEFAULT_*), made up for it.
USER = "administrator"
PASSWORD = "sim-password"
NONCE = "SIM#Nonce0001"
KEY = "5a1d0c0ffee0ddba11c0de5eedfacade5a1d0c0ffee0ddba11c0de5eedfacade"


class Wep:
    """One keep-alive connection (the legacy script used a requests.Session)."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.path = u.path.rstrip("/") + "/"
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.session = None
        self.requests = 0

    def call(self, method, route, query=None, body=None):
        path = self.path + route + ("?" + urllib.parse.urlencode(query, doseq=True) if query else "")
        headers = {"Content-Type": "application/json"}
        if self.session:
            headers["x-avg-session"] = self.session
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        self.requests += 1
        if resp.status != 200:
            raise RuntimeError(f"{route}: HTTP {resp.status}: {data[:200]!r}")
        return json.loads(data)["result"]

    def login(self):
        ts = str(int(time.time()))
        digest = hashlib.sha256((ts + KEY).encode()).hexdigest()
        body = {"username": USER, "password": PASSWORD, "clientName": "legacy-bench",
                "authorizationToken": f"{NONCE}:{ts}:{digest}"}
        self.session = self.call("POST", "login", body=body)["session"]


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the API root, e.g. http://127.0.0.1:8443/mt/api/rest/v1")
    p.add_argument("--window", type=float, default=180.0, help="seconds back from now (default 180)")
    a = p.parse_args()
    wep = Wep(a.url)
    wep.login()
    cameras = [(c["id"], c["serverId"]) for c in wep.call("GET", "cameras", {"verbosity": "LOW"})["cameras"]]
    wep.requests = 0
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    start = now - dt.timedelta(seconds=a.window)
    events = 0
    began = time.perf_counter()
    for cam, server in cameras:
        frm = start
        while True:
            q = {"queryType": "TIME_RANGE", "serverId": server, "from": iso(frm), "to": iso(now),
                 "eventTopics": "DEVICE_ANALYTICS_STOP", "deviceIds": cam, "limit": 1000}
            page = wep.call("GET", "events/search", q).get("events") or []
            events += len(page)
            if len(page) < 1000:
                break
            last = dt.datetime.fromisoformat(page[-1]["timestamp"].replace("Z", "+00:00"))
            frm = last + dt.timedelta(milliseconds=1)
    seconds = time.perf_counter() - began
    json.dump({"seconds": seconds, "requests": wep.requests, "events": events, "cameras": len(cameras)}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
