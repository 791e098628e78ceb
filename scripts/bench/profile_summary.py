#!/usr/bin/env python3
"""Where a profiled controller's time goes, by category: a pyinstrument session summed into buckets.

`twin_bench.py --profile` and `agentrun_bench.py --profile` write pyinstrument sessions; the call tree says
where each sample was but not how the samples add up across the many call paths of one concern (the same TLS
write is reached from the status PATCH, the event POST and the watch). This sums each sample into the first
category matched walking from the innermost frame outwards, so a sample counts once. Samples in `epoll.poll`
are idle (the event loop waiting for the API server). pyinstrument samples wall time: on a loaded machine a
runnable process waiting for a core is sampled too, so read the shares, and take CPU seconds from the
session's `cpu` line.

Usage::

    .venv/bin/python scripts/bench/profile_summary.py /tmp/twin_jangar.pyisession
"""

from __future__ import annotations

import argparse
from collections import Counter

from pyinstrument.session import Session

CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    (
        "socket syscalls (send/recv)",
        ("socket.send\x00", "socket.recv_into", "_SSLSocket.read", "_SSLSocket.write"),
    ),
    ("json decode (watch events, responses)", ("json/decoder", "json/__init__.py\x00loads", "orjson")),
    ("json encode (request bodies)", ("json/encoder", "dumps")),
    ("TLS (asyncio sslproto, ssl)", ("ssl.py", "sslproto")),
    ("aiohttp: request build/send, response parse", ("aiohttp/",)),
    ("watch stream / reflector", ("jangar/runtime/reflector", "jangar/runtime/watch")),
    (
        "informer store / handlers",
        ("jangar/runtime/informer", "jangar/runtime/store", "jangar/runtime/cache"),
    ),
    ("work queue", ("jangar/runtime/workqueue", "jangar/runtime/queue")),
    ("metrics", ("prometheus_client", "jangar/runtime/metrics")),
    ("logging context", ("structlog", "jangar/runtime/log", "logging/")),
    ("jangar client (URL, headers, errors)", ("jangar/runtime/client",)),
    (
        "controller / predicates",
        ("jangar/runtime/controller", "jangar/runtime/predicate", "jangar/runtime/builder"),
    ),
    ("reconcile function", ("\x00reconcile",)),
    ("asyncio event loop", ("asyncio/",)),
]


def categorise(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, patterns in CATEGORIES:
            if any(p in frame for p in patterns):
                return name
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("session", help="a .pyisession file")
    args = parser.parse_args()
    session = Session.load(args.session)
    busy: Counter[str] = Counter()
    idle = 0.0
    for stack, seconds in session.frame_records:
        if stack and stack[-1].startswith("epoll.poll"):
            idle += seconds
            continue
        busy[categorise(stack)] += seconds
    total = sum(busy.values())
    print(
        f"samples {len(session.frame_records)}, duration {session.duration:.2f} s, CPU {session.cpu_time:.2f} s, "
        f"idle (epoll) {idle:.2f} s, busy {total:.2f} s"
    )
    for name, seconds in busy.most_common():
        print(f"{seconds / total * 100:5.1f} %  {seconds:7.2f} s  {name}")


if __name__ == "__main__":
    main()
