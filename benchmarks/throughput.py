"""Intake vs processing: letters accepted per second by the API against letters brought to a final
status per second by the workers, in the same window; the queue left at the end.

The bridge runs as real processes (``benchmarks/bridge.py``): the embedded default (``serve``: SQLite,
in-process worker), or ``--backend postgresql`` (``serve`` + ``lre-bridge worker --concurrency N``).
``--clients`` threads send letters (sandbox provider, no step delay) as fast as the API answers.
The baseline is the intake measured in the same run: the figure is processing / intake.

The verdict is about the queue, not the last decimal of the two rates: a letter accepted in the
window's last moments cannot be final yet when it closes, so processing trails intake by the letters
in flight even when the workers keep up. "The queue does not grow" is judged by the queue at the end
(letters accepted and not final, sampled every 5 s too): met when it is no longer than what can be in
flight (the letters accepted in the window's last second) or than the queue was at its longest in the
window's first half (a loaded machine keeps more than a second's letters in flight, and that queue
fluctuates). A queue growing at a steady rate ends near twice its first-half peak: NOT met.

``--compare-concurrency 1,2`` (PostgreSQL) runs the window once per worker concurrency, one after the
other on fresh databases, and prints each run's processing against the first run's (the baseline).

While the clients send, the API takes its share of the same cores. ``--drain N`` (PostgreSQL)
measures the workers alone: N letters are accepted with no worker running, then
``worker --concurrency C`` starts and the time until all N are final gives the processing rate;
with ``--compare-concurrency`` each level drains its own N letters. Each run prints how many of
the machine's cores were busy, whoever used them: doubling is possible only while cores are idle.

Usage: .venv/bin/python benchmarks/throughput.py [--seconds 120] [--clients 4]
                                                 [--backend sqlite|postgresql] [--concurrency 1]
                                                 [--compare-concurrency 1,2] [--drain 1500]
Goal: processing >= intake (the queue does not grow) on the embedded default; on PostgreSQL,
processing doubling with --concurrency until the cores are used.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import create_engine, func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bridge import Bridge  # noqa: E402
from connector.models import Job, Letter  # noqa: E402
from connector.providers.base import FINAL_STATUSES  # noqa: E402
from tests.helpers import letter_payload  # noqa: E402

FINAL = sorted(str(status) for status in FINAL_STATUSES)


def machine_cpu() -> tuple[int, int]:
    """(busy, total) clock ticks of every core since boot (``/proc/stat``): the difference over a
    window says how many cores were in use, whoever used them (API, workers, PostgreSQL, clients)."""
    with open("/proc/stat") as stat:
        ticks = [int(n) for n in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


def counts(engine: object) -> tuple[int, int, int]:
    """(letters, letters in a final status, live jobs) as the database has them now."""
    with engine.connect() as conn:  # type: ignore[attr-defined]
        letters = conn.scalar(select(func.count()).select_from(Letter))
        final = conn.scalar(select(func.count()).select_from(Letter).where(Letter.status.in_(FINAL)))
        jobs = conn.scalar(select(func.count()).select_from(Job).where(Job.status.in_(("pending", "running"))))
    return int(letters or 0), int(final or 0), int(jobs or 0)


@dataclass
class Run:
    """One timed window: what the clients had accepted and the workers had finished."""

    label: str
    elapsed: float
    accepted: int
    errors: int
    processed: int
    queue: int  # letters accepted and not final when the window closed
    in_flight_bound: int  # letters accepted in the window's last second
    jobs: int
    queue_samples: list[int]
    first_half_peak: int  # the longest queue sampled in the window's first half (0: no sample)
    cores_busy: float  # cores in use on average in the window (the machine's, every process)
    clients_cores: float  # of which this process's load clients

    @property
    def cores_used_up(self) -> bool:
        """At least 90 % of the machine's cores were busy: a second worker process has no core to run on."""
        return self.cores_busy >= 0.9 * (os.cpu_count() or 1)

    @property
    def intake(self) -> float:
        return self.accepted / self.elapsed

    @property
    def processing(self) -> float:
        return self.processed / self.elapsed

    @property
    def keeps_up(self) -> bool:
        """The queue did not grow: at the end it is no longer than the letters that can be in flight
        (accepted in the last second), nor than it was at its longest in the window's first half (a
        queue that only fluctuates stays under that; one growing at a steady rate ends near twice it)."""
        return self.accepted > 0 and self.queue <= max(self.in_flight_bound, self.first_half_peak)


def measure(backend: str, concurrency: int, clients: int, seconds: float) -> Run:
    """Run the bridge, send letters from ``clients`` threads for ``seconds``, count what happened."""
    with Bridge(Path(tempfile.mkdtemp(prefix="lre-throughput-")), backend=backend,
                worker_concurrency=concurrency) as bridge:
        engine = create_engine(bridge.database_url)
        accepted_at: list[list[float]] = [[] for _ in range(clients)]
        errors = [0] * clients
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
                    accepted_at[index].append(time.monotonic())
                else:
                    errors[index] += 1

        letters_before, final_before, _ = counts(engine)
        cpu_before, clients_before = machine_cpu(), time.process_time()
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        for thread in threads:
            thread.start()
        samples: list[int] = []
        first_half_peak = 0
        while (left := started + seconds - time.monotonic()) > 0:
            time.sleep(min(left, 5.0))
            letters, final, _ = counts(engine)
            samples.append(letters - final)  # the queue every 5 s
            if time.monotonic() - started <= seconds / 2:
                first_half_peak = max(first_half_peak, samples[-1])
        stop.set()
        closed = time.monotonic()
        cpu_after, clients_after = machine_cpu(), time.process_time()
        letters_at_end, final_at_end, jobs = counts(engine)
        for thread in threads:
            thread.join(timeout=60)
        engine.dispose()
    times = [t for per_client in accepted_at for t in per_client]
    # Only letters the window's database count saw: a request answered after the count is left out.
    accepted = letters_at_end - letters_before
    label = "serve (SQLite, in-process worker)" if backend == "sqlite" else \
        f"serve + worker --concurrency {concurrency} (PostgreSQL)"
    return Run(label=label, elapsed=closed - started, accepted=accepted, errors=sum(errors),
               processed=final_at_end - final_before, queue=letters_at_end - final_at_end,
               in_flight_bound=sum(1 for t in times if closed - 1.0 <= t <= closed), jobs=jobs,
               queue_samples=samples, first_half_peak=first_half_peak,
               cores_busy=(os.cpu_count() or 1) * (cpu_after[0] - cpu_before[0]) / max(1, cpu_after[1] - cpu_before[1]),
               clients_cores=(clients_after - clients_before) / (closed - started))


@dataclass
class Drain:
    """Letters accepted with no worker running, then processed by ``worker --concurrency N`` alone."""

    concurrency: int
    letters: int
    seconds: float
    cores_busy: float

    @property
    def processing(self) -> float:
        return self.letters / self.seconds


def drain(concurrency: int, letters: int, clients: int, timeout: float = 1800) -> Drain:
    """Fill the queue through the API with the workers stopped, then time the workers draining it."""
    with Bridge(Path(tempfile.mkdtemp(prefix="lre-drain-")), backend="postgresql",
                worker_concurrency=concurrency).start(workers=False) as bridge:
        engine = create_engine(bridge.database_url)
        sent = iter(range(letters))
        lock = threading.Lock()

        def client() -> None:
            session = requests.Session()
            payload = letter_payload()
            while True:
                with lock:
                    n = next(sent, None)
                if n is None:
                    return
                payload["reference"] = f"DR-{n}"
                answer = session.post(f"{bridge.url}/v1/letters", json=payload, headers=bridge.headers, timeout=60)
                if answer.status_code != 201:
                    raise SystemExit(f"letter {n} was refused: {answer.status_code} {answer.text[:300]}")

        threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _, final_before, _ = counts(engine)
        if final_before:
            raise SystemExit(f"{final_before} letters were final before any worker ran")
        bridge.start_workers()  # its start-up (imports, LISTEN) is not timed: the dispatcher runs when it returns
        started, cpu_before = time.monotonic(), machine_cpu()
        final = 0
        while final < letters:
            time.sleep(0.2)
            _, final, _ = counts(engine)
            if time.monotonic() - started > timeout:
                raise SystemExit(f"timed out: {final} of {letters} letters final after {timeout:.0f} s")
        elapsed, cpu_after = time.monotonic() - started, machine_cpu()
        engine.dispose()
    return Drain(concurrency, letters, elapsed,
                 (os.cpu_count() or 1) * (cpu_after[0] - cpu_before[0]) / max(1, cpu_after[1] - cpu_before[1]))


def report(run: Run, clients: int) -> None:
    print(f"bridge: {run.label}; {clients} clients for {run.elapsed:.0f} s")
    print(f"intake:     {run.intake:.1f} letters/s accepted ({run.accepted} letters, {run.errors} errors)")
    print(f"processing: {run.processing:.1f} letters/s brought to a final status ({run.processed})")
    print(f"CPU: {run.cores_busy:.2f} of {os.cpu_count()} cores busy on average in the window "
          f"(the {clients} load clients in this process: {run.clients_cores:.2f})")
    print(f"queue at the end: {run.queue} letters not final ({run.jobs} jobs pending or running); "
          f"in flight at most {run.in_flight_bound} (accepted in the last second); every 5 s: "
          f"{' '.join(str(n) for n in run.queue_samples)}")
    print(f"ratio processing/intake: {run.processing / run.intake if run.intake else float('nan'):.2f}   "
          f"goal: the queue does not grow (at the end <= in flight or <= its first-half peak "
          f"{run.first_half_peak}) -> "
          f"{'met' if run.keeps_up else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the timed window")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--concurrency", type=int, default=1, help="lre-bridge worker --concurrency (PostgreSQL)")
    parser.add_argument("--compare-concurrency", default="",
                        help="e.g. 1,2: one window per worker concurrency (PostgreSQL), the first is the baseline")
    parser.add_argument("--drain", type=int, default=0, metavar="N",
                        help="PostgreSQL: accept N letters with no worker, then time the workers alone draining them")
    args = parser.parse_args()
    if args.compare_concurrency:
        if args.backend != "postgresql":
            parser.error("--compare-concurrency needs --backend postgresql (serve runs one in-process worker)")
        levels = [int(n) for n in args.compare_concurrency.split(",") if n.strip()]
    else:
        levels = [args.concurrency]
    if args.drain:
        if args.backend != "postgresql":
            parser.error("--drain needs --backend postgresql (serve's in-process worker cannot be held back)")
        drains = []
        for level in levels:
            drains.append(drain(level, args.drain, args.clients))
            d = drains[-1]
            print(f"worker --concurrency {level} alone (PostgreSQL): {d.letters} queued letters final in "
                  f"{d.seconds:.1f} s = {d.processing:.1f} letters/s; {d.cores_busy:.2f} of {os.cpu_count()} "
                  "cores busy", flush=True)
        for d in drains[1:]:
            base = drains[0]
            print(f"  --concurrency {d.concurrency} against {base.concurrency}: x{d.processing / base.processing:.2f}"
                  f" (cores busy {base.cores_busy:.2f} -> {d.cores_busy:.2f})")
        return
    runs = []
    for level in levels:
        runs.append(measure(args.backend, level, args.clients, args.seconds))
        report(runs[-1], args.clients)
        print()
    if len(runs) > 1:
        base = runs[0]
        print(f"processing against --concurrency {levels[0]} ({base.processing:.1f} letters/s):")
        for level, run in zip(levels[1:], runs[1:], strict=True):
            capped = " (capped by intake: the queue did not grow at the baseline)" if base.keeps_up else (
                f" (the baseline already kept {base.cores_busy:.2f} of {os.cpu_count()} cores busy: the API, "
                "PostgreSQL and the clients share them, so a second process has little CPU to add)"
                if base.cores_used_up else "")
            print(f"  --concurrency {level}: {run.processing:.1f} letters/s, x{run.processing / base.processing:.2f}"
                  f" (intake {run.intake:.1f}){capped}")


if __name__ == "__main__":
    main()
