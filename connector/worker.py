"""Outbox workers: a thread inside ``lre-bridge serve``, or standalone processes."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

import connector.jobs  # noqa: F401 - registers every job handler
from connector import outbox
from connector.services import Services

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def run_worker(services: Services, stop: threading.Event, *, name: str | None = None) -> None:
    """Claim and run due jobs until ``stop`` is set. Survives any job failure."""
    owner = name or worker_name()
    log.info("worker %s started", owner)
    interval = services.settings.worker_poll_interval_seconds
    while not stop.is_set():
        try:
            worked = outbox.run_once(services, owner)
        except Exception:  # noqa: BLE001 - a database hiccup must not kill the worker
            log.exception("worker %s: claim failed; retrying", owner)
            worked = False
        if not worked:
            stop.wait(interval)
    log.info("worker %s stopped", owner)


def start_in_process(services: Services) -> tuple[threading.Thread, threading.Event]:
    """Run a worker in a daemon thread of the API process (the embedded default)."""
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(services, stop), name="lre-worker", daemon=True)
    thread.start()
    return thread, stop
