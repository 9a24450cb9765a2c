"""Intake vs processing: letters accepted per second by the API against letters brought to a final
status per second by the workers, in the same window; the queue left at the end.

The bridge runs as real processes (``benchmarks/bridge.py``): the embedded default (``serve``: SQLite,
in-process worker), or ``--backend postgresql`` (``serve`` + ``lre-bridge worker --concurrency N``).
``--clients`` threads send letters (sandbox provider, no step delay) as fast as the API answers.
The baseline is the intake measured in the same run: the figure is processing / intake.

Usage: .venv/bin/python benchmarks/throughput.py [--seconds 120] [--clients 4]
                                                 [--backend sqlite|postgresql] [--concurrency 1]
Goal: processing >= intake (ratio >= 1.0, the queue does not grow) on the embedded default.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bridge import Bridge  # noqa: E402
from connector.models import Job, Letter  # noqa: E402
from connector.providers.base import FINAL_STATUSES  # noqa: E402
from tests.helpers import letter_payload  # noqa: E402

FINAL = sorted(str(status) for status in FINAL_STATUSES)


def counts(engine: object) -> tuple[int, int, int]:
    """(letters, letters in a final status, live jobs) as the database has them now."""
    with engine.connect() as conn:  # type: ignore[attr-defined]
        letters = conn.scalar(select(func.count()).select_from(Letter))
        final = conn.scalar(select(func.count()).select_from(Letter).where(Letter.status.in_(FINAL)))
        jobs = conn.scalar(select(func.count()).select_from(Job).where(Job.status.in_(("pending", "running"))))
    return int(letters or 0), int(final or 0), int(jobs or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the timed window")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--concurrency", type=int, default=1, help="lre-bridge worker --concurrency (PostgreSQL)")
    args = parser.parse_args()
    with Bridge(Path(tempfile.mkdtemp(prefix="lre-throughput-")), backend=args.backend,
                worker_concurrency=args.concurrency) as bridge:
        engine = create_engine(bridge.database_url)
        accepted = [0] * args.clients
        errors = [0] * args.clients
        stop = threading.Event()

        def client(index: int) -> None:
            session = requests.Session()
            payload = letter_payload()
            sent = 0
            while not stop.is_set():
                payload["reference"] = f"TP-{index}-{sent}"
                sent += 1
                try:
                    ok = session.post(f"{bridge.url}/v1/letters", json=payload, headers=bridge.headers,
                                      timeout=60).status_code == 201
                except requests.RequestException:
                    ok = False
                if ok:
                    accepted[index] += 1
                else:
                    errors[index] += 1

        _, final_before, _ = counts(engine)
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        stop.set()
        _, final_at_end, _ = counts(engine)
        elapsed = time.monotonic() - started
        for thread in threads:
            thread.join(timeout=60)
        letters, final_now, jobs = counts(engine)
        engine.dispose()
    intake = sum(accepted) / elapsed
    processing = (final_at_end - final_before) / elapsed
    label = "serve (SQLite, in-process worker)" if args.backend == "sqlite" else \
        f"serve + worker --concurrency {args.concurrency} (PostgreSQL)"
    print(f"bridge: {label}; {args.clients} clients for {elapsed:.0f} s")
    print(f"intake:     {intake:.1f} letters/s accepted ({sum(accepted)} letters, {sum(errors)} errors)")
    print(f"processing: {processing:.1f} letters/s brought to a final status ({final_at_end - final_before})")
    print(f"ratio processing/intake: {processing / intake if intake else float('nan'):.2f}   goal >= 1.0 -> "
          f"{'met' if intake and processing >= intake else 'NOT met'}")
    print(f"queue at the end: {letters - final_now} letters not final, {jobs} jobs pending or running")


if __name__ == "__main__":
    main()
