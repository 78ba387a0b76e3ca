#!/usr/bin/env python3
"""The reference of `scripts/bench viewtron`: the `viewtron` 1.4.1 package's own
`ViewtronServer` with its defaults and a callback that only counts events (as in
docs/protocols/viewtron.md §8).

    .venv/bin/python scripts/bench_viewtron_reference.py PORT

Prints `ready PORT` once listening. SIGUSR1 prints `count N` (events delivered to the
callback so far); SIGTERM or SIGINT prints `count N` and `categories {...}`, then exits 0.
The server binds all interfaces on PORT: that is the package's own behaviour (it has no
host parameter); the benchmark sends traffic to 127.0.0.1 only.
"""

import collections
import os
import signal
import sys
import threading

from viewtron.server import ViewtronServer

lock = threading.Lock()
count = 0
categories = collections.Counter()


def on_event(event, client_ip):
    global count
    with lock:
        count += 1
        categories[event.category] += 1


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} PORT")
    server = ViewtronServer(port=int(sys.argv[1]), on_event=on_event)
    stop = threading.Event()

    def report(signum, frame):
        with lock:
            say(f"count {count}")

    def finish(signum, frame):
        stop.set()

    signal.signal(signal.SIGUSR1, report)
    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    # serve_forever blocks (and prints a banner); run it on a daemon thread so that the
    # main thread is free to handle the signals.
    threading.Thread(target=server.serve_forever, daemon=True).start()
    say(f"ready {server.port}")
    while not stop.wait(0.5):
        pass
    with lock:
        say(f"count {count}")
        say("categories " + repr(dict(categories)))
    os._exit(0)  # daemon connection threads may be blocked in reads; do not wait for them


if __name__ == "__main__":
    main()
