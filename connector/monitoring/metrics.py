"""Prometheus metrics: what the database says now, and what this process has done.

Two sources:

- *state*, read from the database at each scrape (so every process shows the same figures):
  letters by status and provider, queue depth and the age of the oldest due job, webhook
  deliveries by status, open alerts by rule;
- *work*, counted by this process as its worker runs jobs: job durations by kind and outcome,
  provider calls (the jobs that submit and poll letters) with their errors, webhook
  delivery jobs (failed webhook attempts are counted from the deliveries table). Every registered
  job handler is wrapped once by :func:`instrument_handlers` (the last of ``connector.delivery.jobs.JOB_MODULES``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from connector.delivery import outbox
from connector.delivery.hooks import JOB_KIND as WEBHOOK_JOB_KIND
from connector.letters.vocabulary import JobStatus
from connector.models import Alert, Delivery, Job, Letter
from connector.monitoring import logs
from connector.services import Services

PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)
JOB_DURATION = Histogram(
    "lre_job_duration_seconds", "Time a job's handler ran, by job kind and outcome.",
    ["kind", "outcome"], registry=PROCESS_REGISTRY,
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
PROVIDER_CALL = Histogram(
    "lre_provider_call_seconds", "Provider calls (letter submissions and polls), by job kind.",
    ["kind"], registry=PROCESS_REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
PROVIDER_ERRORS = Counter(
    "lre_provider_errors", "Provider calls that failed, by job kind and error code.",
    ["kind", "code"], registry=PROCESS_REGISTRY,
)
WEBHOOK_ATTEMPTS = Histogram(
    "lre_webhook_delivery_seconds", "Webhook delivery jobs (one POST to a subscriber each).",
    ["outcome"], registry=PROCESS_REGISTRY, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# The job kinds whose run is one provider call (submission, poll), and the webhook delivery kind.
PROVIDER_JOB_KINDS = frozenset({"submit_letter", "poll_letter"})
DELIVERY_JOB_KIND = WEBHOOK_JOB_KIND

_OUTCOMES: tuple[tuple[type[BaseException], str], ...] = (
    (outbox.Reschedule, "rescheduled"),
    (outbox.RetryableError, "retry"),
    (outbox.PermanentError, "permanent"),
)


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "done"
    for kind, name in _OUTCOMES:
        if isinstance(exc, kind):
            return name
    return "error"


def _observe(kind: str, seconds: float, exc: BaseException | None) -> None:
    outcome = _outcome(exc)
    JOB_DURATION.labels(kind, outcome).observe(seconds)
    if kind in PROVIDER_JOB_KINDS:
        PROVIDER_CALL.labels(kind).observe(seconds)
        if outcome in ("retry", "permanent", "error"):
            # Handlers raise "<code>: <message>"; only the code becomes a label (bounded, no data).
            code = str(exc).split(":", 1)[0] if outcome != "error" else type(exc).__name__
            PROVIDER_ERRORS.labels(kind, code[:40]).inc()
    elif kind == DELIVERY_JOB_KIND:
        WEBHOOK_ATTEMPTS.labels(outcome).observe(seconds)


def instrument_handlers() -> None:
    """Wrap every registered job handler (once) so that its runs are measured."""
    for kind, handler in list(outbox.HANDLERS.items()):
        if getattr(handler, "_lre_timed", False):
            continue

        def timed(services: Services, job: Job, _handler: outbox.Handler = handler, _kind: str = kind) -> None:
            started = time.perf_counter()
            failure: BaseException | None = None
            try:
                _handler(services, job)
            except BaseException as exc:
                failure = exc
                raise
            finally:
                seconds = time.perf_counter() - started
                _observe(_kind, seconds, failure)
                logs.configure(services.settings)
                logs.log_job(services.settings, kind=_kind, job_id=job.id, letter_id=job.letter_id,
                             account_id=job.account_id, outcome=_outcome(failure), duration_ms=seconds * 1000,
                             attempts=job.attempts)

        functools.update_wrapper(timed, handler)
        timed._lre_timed = True  # type: ignore[attr-defined]
        outbox.HANDLERS[kind] = timed


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        now: datetime = self.services.clock()
        with self.services.db.transaction() as session:
            letters = session.execute(
                select(Letter.status, Letter.provider, func.count()).group_by(Letter.status, Letter.provider)).all()
            depth, oldest = session.execute(
                select(func.count(), func.min(Job.run_at))
                .where(Job.status == JobStatus.PENDING, Job.run_at <= now)).one()
            jobs = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            deliveries = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
            # A failed delivery job reschedules itself like a delivery waiting its turn does, so
            # failed attempts are counted from the deliveries: every attempt but a successful last one.
            attempts, delivered = session.execute(select(
                func.coalesce(func.sum(Delivery.attempts), 0),
                func.count().filter(Delivery.status == "delivered"))).one()
            alerts = session.execute(select(Alert.code, func.count()).where(Alert.resolved.is_(False))
                                     .group_by(Alert.code)).all()
        family = GaugeMetricFamily("lre_letters", "Letters by status and provider.", labels=["status", "provider"])
        for status, provider, count in letters:
            family.add_metric([status, provider], count)
        yield family
        yield GaugeMetricFamily("lre_queue_depth", "Jobs due now and not yet running.", value=depth)
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        yield GaugeMetricFamily("lre_queue_oldest_due_seconds", "Age of the oldest due job (0: none).", value=age)
        family = GaugeMetricFamily("lre_jobs", "Jobs by status (dead: dead-lettered).", labels=["status"])
        for status, count in jobs:
            family.add_metric([status], count)
        yield family
        family = GaugeMetricFamily("lre_webhook_deliveries", "Webhook deliveries by status.", labels=["status"])
        for status, count in deliveries:
            family.add_metric([status], count)
        yield family
        yield CounterMetricFamily("lre_webhook_delivery_failed_attempts",
                                  "Webhook POSTs that failed (all deliveries kept in the database).",
                                  value=max(0, int(attempts) - int(delivered)))
        family = GaugeMetricFamily("lre_alerts_open", "Open alerts by rule.", labels=["rule"])
        for code, count in alerts:
            family.add_metric([code], count)
        yield family


def exposition(services: Services) -> bytes:
    """The text of ``GET /metrics``: this process's counters, then the database's gauges."""
    state = CollectorRegistry(auto_describe=False)
    state.register(DatabaseCollector(services))
    return generate_latest(PROCESS_REGISTRY) + generate_latest(state)


instrument_handlers()
