"""Outbox workers: a thread inside ``lre-bridge serve``, or standalone processes."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

import connector.jobs  # noqa: F401 - registers every job handler
from connector import outbox
from connector.idempotency import purge_expired
from connector.inbound import purge_expired_messages
from connector.monitoring.alerts import evaluate_if_due as evaluate_alerts_if_due
from connector.services import Services

log = logging.getLogger(__name__)
HOUSEKEEPING_SECONDS = 3600.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def run_worker(services: Services, stop: threading.Event, *, name: str | None = None) -> None:
    """Claim and run due jobs until ``stop`` is set. Survives any job failure."""
    owner = name or worker_name()
    log.info("worker %s started", owner)
    interval = services.settings.worker_poll_interval_seconds
    next_housekeeping = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_housekeeping:
            next_housekeeping = time.monotonic() + HOUSEKEEPING_SECONDS
            housekeeping(services)
        evaluate_alerts_if_due(services)  # alert rules (issue 17), every LRE_ALERT_EVALUATION_SECONDS
        try:
            worked = outbox.run_once(services, owner)
        except Exception:  # noqa: BLE001 - a database hiccup must not kill the worker
            log.exception("worker %s: claim failed; retrying", owner)
            worked = False
        if not worked:
            stop.wait(interval)
    log.info("worker %s stopped", owner)


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
