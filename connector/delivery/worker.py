"""Outbox workers: a dispatcher inside ``lre-bridge serve``, or standalone processes.

One dispatcher thread claims jobs and hands each to the bounded thread pool of its kind (provider
calls, webhook deliveries, renders, the rest), so a slow provider never delays deliveries and a
receiver that hangs holds at most :data:`PER_LANE_LIMIT` delivery threads: it delays only its own
subscription. The dispatcher claims only what a pool can start now, so a claimed job never waits
in memory holding a lease.

It sleeps until the earliest due time (a retry, a sandbox step, a poll) or until a commit wakes it
(``connector.delivery.wakeup``: in-process signal, PostgreSQL ``LISTEN``), never longer than the poll
interval, which stays as the safety net.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import connector.delivery.jobs  # noqa: F401 - registers every job handler
from connector.db import WORKER_THREAD
from connector.delivery import outbox, wakeup
from connector.delivery.housekeeping import purge_expired
from connector.delivery.inbound import purge_expired_messages
from connector.letters.vocabulary import JobStatus
from connector.models import Job
from connector.monitoring.alerts import evaluate_quietly as evaluate_alerts
from connector.services import Services

log = logging.getLogger(__name__)
HOUSEKEEPING_SECONDS = 3600.0
# How often the maintenance thread looks whether housekeeping or an alert evaluation is due.
MAINTENANCE_TICK_SECONDS = 1.0
# Threads per pool in one worker process (multiplied by ``lre-bridge worker --threads``).
# Provider and webhook calls wait on the network, not the CPU: several overlap. Renders use the CPU.
POOL_SIZES: dict[str, int] = {"provider": 4, "delivery": 8, "render": 1, outbox.DEFAULT_POOL: 2}
# At most this many jobs of one lane (one webhook receiver) run at once in a process.
PER_LANE_LIMIT = 2
# Never sleep less than this when a job is due but could not be claimed (locked by another worker).
MIN_SLEEP_SECONDS = 0.005


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class _InFlight:
    """What this process is running: counts per pool and per lane, (lane, letter) pairs."""

    pools: Counter[str] = field(default_factory=Counter)
    lanes: Counter[str] = field(default_factory=Counter)
    lane_letters: Counter[tuple[str, str]] = field(default_factory=Counter)
    job_ids: set[int] = field(default_factory=set)


class Dispatcher:
    """Claims due jobs and runs them on per-kind bounded pools until ``stop`` is set."""

    def __init__(self, services: Services, stop: threading.Event, *, name: str | None = None,
                 scale: int = 1, wake: wakeup.Wakeup = wakeup.WAKEUP) -> None:
        self.services = services
        self.stop = stop
        self.owner = name or worker_name()
        self.wake = wake
        self.sizes = {pool: size * max(scale, 1) for pool, size in POOL_SIZES.items()}
        self.executors = {pool: ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"lre-{pool}",
                                                   initializer=_mark_worker_thread)
                          for pool, size in self.sizes.items()}
        self._lock = threading.Lock()
        self._running = _InFlight()
        self._next_renewal = 0.0
        self._next_expired_check = 0.0

    def _pool_of(self, kind: str) -> str:
        pool = outbox.POOLS.get(kind, outbox.DEFAULT_POOL)
        return pool if pool in self.sizes else outbox.DEFAULT_POOL

    def claim_filter(self) -> tuple[tuple[str, ...] | None, outbox.Exclusions] | None:
        """What may be claimed now: (kinds to limit the claim to, or None for any; exclusions), or
        None when every pool is full. Full pools' kinds, lanes at their limit and the (lane, letter)
        pairs running are excluded."""
        with self._lock:
            full = {pool for pool, size in self.sizes.items() if self._running.pools[pool] >= size}
            lanes = frozenset(lane for lane, n in self._running.lanes.items() if n >= PER_LANE_LIMIT)
            pairs = frozenset(pair for pair, n in self._running.lane_letters.items() if n > 0)
            mine = frozenset(self._running.job_ids)
        if len(full) == len(self.sizes):
            return None
        if outbox.DEFAULT_POOL in full:
            # Unknown kinds also run in the default pool: with it full, only the kinds of free pools.
            kinds = tuple(sorted(kind for kind in outbox.POOLS if self._pool_of(kind) not in full))
            return (kinds, outbox.Exclusions(lanes=lanes, lane_letters=pairs, job_ids=mine)) if kinds else None
        excluded = frozenset(kind for kind in outbox.POOLS if self._pool_of(kind) in full)
        return None, outbox.Exclusions(kinds=excluded, lanes=lanes, lane_letters=pairs, job_ids=mine)

    def _start(self, job: Job) -> None:
        pool = self._pool_of(job.kind)
        pair = (job.lane, job.letter_id) if job.lane and job.letter_id else None
        with self._lock:
            self._running.pools[pool] += 1
            self._running.job_ids.add(job.id)
            if job.lane:
                self._running.lanes[job.lane] += 1
            if pair:
                self._running.lane_letters[pair] += 1  # type: ignore[index]
        self.executors[pool].submit(self._run, job, pool, pair)

    def _run(self, job: Job, pool: str, pair: tuple[str, str] | None) -> None:
        status = None
        try:
            status = outbox.run_job(self.services, job, self.owner)
        except Exception:  # noqa: BLE001 - recording the outcome failed; the lease will expire
            log.exception("worker %s: job %s could not be recorded", self.owner, job.id)
        finally:
            with self._lock:
                # Whether this job's end can let the dispatcher take a job it could not take before:
                # its pool or lane was full, a later job of its (lane, letter) waits for it, or it
                # was not done (pending again at a time the dispatcher's sleep does not know of).
                # Otherwise nothing changed for the claims: a wake-up would only cost a claim and
                # a next-due query (what its own commit made due wakes the dispatcher by itself).
                freed = (self._running.pools[pool] >= self.sizes[pool] or pair is not None
                         or bool(job.lane and self._running.lanes[job.lane] >= PER_LANE_LIMIT)
                         or status != JobStatus.DONE)
                self._running.pools[pool] -= 1
                self._running.job_ids.discard(job.id)
                if job.lane:
                    self._running.lanes[job.lane] -= 1
                    if self._running.lanes[job.lane] <= 0:
                        del self._running.lanes[job.lane]
                if pair:
                    self._running.lane_letters[pair] -= 1
                    if self._running.lane_letters[pair] <= 0:
                        del self._running.lane_letters[pair]
            if freed:
                self.wake.signal()

    def claim_all(self) -> int:
        """Start every due job a pool has room for; returns how many were started. Claims them in
        batches (one transaction for several jobs), choosing with :meth:`_picker` what fits."""
        started = 0
        while not self.stop.is_set() and (allowed := self.claim_filter()) is not None:
            kinds, exclude = allowed
            with self._lock:
                room = sum(max(size - self._running.pools[pool], 0) for pool, size in self.sizes.items())
            jobs = outbox.claim_many(self.services, self.owner, room, kinds=kinds, exclude=exclude,
                                     pick=self._picker(), expired=self._expired_leases_due())
            for job in jobs:
                self._start(job)
            started += len(jobs)
            if len(jobs) < room:
                break  # nothing else is due that we could take now
        return started

    def _expired_leases_due(self) -> bool:
        """Whether this claim also looks for expired leases (a dead worker's jobs): once per poll
        interval, not on every claim, which a busy worker makes after every job. A lease lasts
        minutes; taking it over up to one interval later changes nothing, and saves a round trip."""
        now = time.monotonic()
        if now < self._next_expired_check:
            return False
        self._next_expired_check = now + self.services.settings.worker_poll_interval_seconds
        return True

    def _picker(self) -> outbox.Picker:
        """Choose, in claim order, the candidates that fit: room in their pool, their lane under its
        limit, and at most one job per (lane, letter) at a time, the first in order (a later one of
        a pair passed over is never taken before it: per-letter delivery order)."""
        with self._lock:
            free = {pool: size - self._running.pools[pool] for pool, size in self.sizes.items()}
            lanes = Counter(self._running.lanes)
            busy_pairs = set(self._running.lane_letters)

        def pick(candidates: list[outbox.Candidate]) -> list[int]:
            chosen: list[int] = []
            for job in candidates:
                pool = self._pool_of(job.kind)
                pair = (job.lane, job.letter_id) if job.lane and job.letter_id else None
                if pair in busy_pairs:
                    continue
                fits = free[pool] > 0 and not (job.lane and lanes[job.lane] >= PER_LANE_LIMIT)
                if pair:
                    busy_pairs.add(pair)  # taken now, or passed over: either way, none after it
                if not fits:
                    continue
                chosen.append(job.id)
                free[pool] -= 1
                if job.lane:
                    lanes[job.lane] += 1
            return chosen

        return pick

    def sleep_seconds(self) -> float:
        """Until the next job this worker could take is due, within the poll interval (every pool
        full: until a job ends, which signals)."""
        interval = self.services.settings.worker_poll_interval_seconds
        allowed = self.claim_filter()
        if allowed is None:
            return interval
        kinds, exclude = allowed
        due = outbox.next_due(self.services, exclude, kinds=kinds)
        if due is None:
            return interval
        return min(max((due - self.services.clock()).total_seconds(), MIN_SLEEP_SECONDS), interval)

    def renew_leases(self) -> float:
        """Extend the leases of the jobs still running here once a third of the lease has passed, so
        that a live worker's slow job (a provider taking its time) is not taken over as if it had
        died; returns the seconds until the next renewal is due."""
        period = self.services.settings.worker_lease_seconds / 3
        with self._lock:
            running = sorted(self._running.job_ids)
        now = time.monotonic()
        if running and now >= self._next_renewal:
            outbox.renew_leases(self.services, self.owner, running)
            self._next_renewal = now + period
        elif not running:
            self._next_renewal = now + period
        return max(self._next_renewal - now, MIN_SLEEP_SECONDS)

    def run(self) -> None:
        _mark_worker_thread()
        log.info("worker %s started (pools: %s)", self.owner, self.sizes)
        # Housekeeping and alert evaluation scan whole tables: on their own thread, so that the
        # claims never wait for them (an evaluation inside this loop once held a delivery 1.1 s).
        maintenance = threading.Thread(target=self._maintain, name="lre-maintenance", daemon=True)
        maintenance.start()
        while not self.stop.is_set():
            # Read before looking: a commit after this point ends the wait below at once.
            seen = self.wake.generation
            try:
                self.claim_all()
                pause = self.sleep_seconds()
                pause = min(pause, self.renew_leases())
            except Exception:  # noqa: BLE001 - a database hiccup must not kill the worker
                log.exception("worker %s: claim failed; retrying", self.owner)
                pause = self.services.settings.worker_poll_interval_seconds
            self.wake.wait(seen, pause)
        for executor in self.executors.values():
            executor.shutdown(wait=True)
        maintenance.join(timeout=MAINTENANCE_TICK_SECONDS * 2)
        log.info("worker %s stopped", self.owner)

    def _maintain(self) -> None:
        """Housekeeping every :data:`HOUSEKEEPING_SECONDS`, alert rules every
        ``LRE_ALERT_EVALUATION_SECONDS`` (issue 17), until ``stop``. Neither ever raises."""
        _mark_worker_thread()
        # This thread keeps both schedules, so each worker's first evaluation is at its start and the
        # next one an interval later (a timer shared by the process, keyed by the Services object's
        # id, could fire at any moment for a new worker).
        next_housekeeping = next_alerts = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_housekeeping:
                next_housekeeping = now + HOUSEKEEPING_SECONDS
                housekeeping(self.services)
            if now >= next_alerts:
                next_alerts = now + self.services.settings.alert_evaluation_seconds
                evaluate_alerts(self.services)
            self.stop.wait(MAINTENANCE_TICK_SECONDS)


def _mark_worker_thread() -> None:
    """The worker's SQLite writes go before the API's when both wait (``connector.db.WriterQueue``):
    in the embedded ``serve`` the worker must keep up with what the API accepts."""
    WORKER_THREAD.active = True


def run_worker(services: Services, stop: threading.Event, *, name: str | None = None, scale: int = 1) -> None:
    """Claim and run due jobs until ``stop`` is set (then finish the running ones). Survives any job
    failure. On PostgreSQL, a ``LISTEN`` connection wakes it when another process commits a job."""
    listener = None
    if services.db.url.startswith("postgresql"):
        listener = wakeup.PostgresListener(services.db.url).start()
    stop_waker = threading.Thread(target=_wake_on_stop, args=(stop,), daemon=True)
    stop_waker.start()
    try:
        Dispatcher(services, stop, name=name, scale=scale).run()
    finally:
        if listener is not None:
            listener.close()


def _wake_on_stop(stop: threading.Event) -> None:
    stop.wait()
    wakeup.WAKEUP.signal()


def housekeeping(services: Services) -> None:
    """Forget idempotency keys past their retention (kept at least 24 h) and inbound webhook ids
    that can no longer be replayed. Runs in every worker every few minutes; never raises."""
    try:
        with services.db.transaction() as session:
            purged = purge_expired(session, services.settings.idempotency_ttl_hours)
            forgotten = purge_expired_messages(session, services.clock())
        if purged:
            log.info("forgot %d expired idempotency key(s)", purged)
        if forgotten:
            log.info("forgot %d inbound webhook id(s) past their replay window", forgotten)
    except Exception:  # noqa: BLE001 - housekeeping must never stop the worker
        log.exception("housekeeping failed")


def start_in_process(services: Services) -> tuple[threading.Thread, threading.Event]:
    """Run a worker in a daemon thread of the API process (the embedded default)."""
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(services, stop), name="lre-worker", daemon=True)
    thread.start()
    return thread, stop
