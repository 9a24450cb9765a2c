"""Event → signed webhook delivery, p50 and p99, against the floor: the same POST sent directly.

(a) bridge: ``lre-bridge serve`` (SQLite, in-process worker) or, with ``--backend postgresql``,
            ``serve`` plus one ``lre-bridge worker`` on a fresh PostgreSQL database. A hook points at
            a loopback receiver; letters are sent at a steady rate (sandbox provider, no step delay),
            each making three events. Latency = the event's ``created_at`` (written by the bridge,
            before its commit) → the receiver reading the request.
(b) direct: this process POSTs a body of the same size to the same receiver, one connection per
            request like the bridge, at the same rate: what a delivery costs with no queue at all.

Usage: .venv/bin/python benchmarks/latency.py [--backend sqlite|postgresql] [--letters 170] [--rate 5]
Prints p50/p99 of both and bridge p99 / direct p99. Goal: bridge p99 < 100 ms over >= 500 deliveries.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bridge import Bridge  # noqa: E402
from tests.helpers import letter_payload  # noqa: E402
from tests.timed_receiver import TimedReceiver, percentile  # noqa: E402


def bridge_latencies(backend: str, letters: int, rate: float) -> list[float]:
    receiver = TimedReceiver().start()
    try:
        with Bridge(Path(tempfile.mkdtemp(prefix="lre-latency-")), backend=backend) as bridge:
            session = requests.Session()
            hook = session.post(f"{bridge.url}/v1/hooks", json={"target_url": receiver.url},
                                headers=bridge.headers, timeout=30)
            hook.raise_for_status()
            payload = letter_payload()
            for index in range(letters):
                started = time.monotonic()
                payload["reference"] = f"LAT-{index}"
                session.post(f"{bridge.url}/v1/letters", json=payload, headers=bridge.headers,
                             timeout=30).raise_for_status()
                time.sleep(max(1 / rate - (time.monotonic() - started), 0))
            deadline = time.monotonic() + 300
            while receiver.count() < 3 * letters and time.monotonic() < deadline:
                time.sleep(0.1)
            arrivals = list(receiver.arrivals)  # late ones (after the wait) are left out
            created = {}
            for arrival in arrivals:
                event = session.get(f"{bridge.url}/v1/events/{arrival.webhook_id}", headers=bridge.headers,
                                    timeout=30).json()
                created[arrival.webhook_id] = datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))
    finally:
        receiver.stop()
    if len(arrivals) < 3 * letters:
        print(f"warning: only {len(arrivals)} of {3 * letters} deliveries arrived in time", file=sys.stderr)
    return [(a.at - created[a.webhook_id]).total_seconds() * 1000 for a in arrivals]


def direct_latencies(count: int, rate: float) -> list[float]:
    receiver = TimedReceiver().start()
    body = b"{" + b'"x":' + b'"' + b"a" * 1200 + b'"}'
    sent: list[datetime] = []
    try:
        for _ in range(count):
            started = time.monotonic()
            sent.append(datetime.now(UTC))
            requests.post(receiver.url, data=body, headers={"content-type": "application/json",
                                                            "webhook-id": str(len(sent))}, timeout=30)
            time.sleep(max(1 / (3 * rate) - (time.monotonic() - started), 0))
    finally:
        receiver.stop()
    return [(a.at - sent[int(a.webhook_id) - 1]).total_seconds() * 1000 for a in receiver.arrivals]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--letters", type=int, default=170, help="letters sent (3 deliveries each)")
    parser.add_argument("--rate", type=float, default=5.0, help="letters per second")
    args = parser.parse_args()
    # The direct floor runs on a thread beside the bridge run, so that both see the same machine load.
    direct: list[float] = []
    floor = threading.Thread(target=lambda: direct.extend(direct_latencies(3 * args.letters, args.rate)))
    floor.start()
    bridge = bridge_latencies(args.backend, args.letters, args.rate)
    floor.join()
    b50, b99 = percentile(bridge, 0.5), percentile(bridge, 0.99)
    d50, d99 = percentile(direct, 0.5), percentile(direct, 0.99)
    print(f"backend: {args.backend}{' (serve + 1 worker)' if args.backend == 'postgresql' else ' (serve)'}")
    print(f"bridge  event -> delivery: n={len(bridge)}  p50 {b50:.1f} ms  p99 {b99:.1f} ms  max {max(bridge):.1f} ms")
    print(f"direct  POST -> receiver:  n={len(direct)}  p50 {d50:.1f} ms  p99 {d99:.1f} ms")
    print(f"ratio bridge/direct p99: {b99 / d99:.1f}   goal: bridge p99 < 100 ms -> "
          f"{'met' if b99 < 100 and len(bridge) >= 500 else 'NOT met'}")


if __name__ == "__main__":
    main()
