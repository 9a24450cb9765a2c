"""Real worker processes: killed with SIGKILL at the worst moments, and several at once on PostgreSQL.

The first worker runs with a fault-injection point (``LRE_FAILPOINTS``) that makes it SIGKILL
itself at a precise step; a second, healthy worker then takes over once the lease expires.
The sandbox provider's own table is the provider's view: it must hold exactly one submission.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connector.models import Event, Job, SandboxMail
from tests.helpers import letter_payload

CRASH_POINTS = [
    "submit.before_mark",
    "submit.before_provider",
    "submit.after_provider",
    "submit.after_commit",
    "submit.after_events",
    "poll.after_fetch",
]

# Real worker processes, killed on purpose.
pytestmark = pytest.mark.slow


def _worker_env(settings: dict[str, Any], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRE_")}
    env.update({
        "LRE_DATABASE_URL": settings["database_url"],
        "LRE_DATA_DIR": str(settings["data_dir"]),
        "LRE_ENCRYPTION_KEYS": settings["encryption_keys"],
        "LRE_PUBLIC_URL": settings["public_url"],
        "LRE_SANDBOX_STEP_SECONDS": "0.3",
        "LRE_WORKER_LEASE_SECONDS": "1",
        "LRE_WORKER_POLL_INTERVAL_SECONDS": "0.05",
    })
    env.update(extra)
    return env


def _start_worker(env: dict[str, str], concurrency: int = 1) -> subprocess.Popen[bytes]:
    # Output goes nowhere: a pipe nobody reads fills up and blocks the worker (and leaks at the end).
    return subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "worker", "--concurrency", str(concurrency)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).parent.parent,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _status(client: Any, auth: dict[str, str], letter_id: str) -> str:
    return str(client.get(f"/v1/letters/{letter_id}", headers=auth).json["status"])


@pytest.mark.parametrize("crash_point", CRASH_POINTS)
def test_a_worker_killed_mid_job_loses_nothing_and_sends_nothing_twice(
    client, auth, services, settings_overrides, crash_point
):
    letter_id = client.post("/v1/letters", json=letter_payload(), headers=auth).json["id"]

    doomed = _start_worker(_worker_env(settings_overrides, LRE_FAILPOINTS=crash_point))
    try:
        assert doomed.wait(timeout=60) == -signal.SIGKILL
    finally:
        if doomed.poll() is None:  # never leave a stray worker behind a failed test
            doomed.kill()

    healthy = _start_worker(_worker_env(settings_overrides))
    try:
        _wait_until(lambda: _status(client, auth, letter_id) == "accepted")
    finally:
        _stop(healthy)

    with services.db.transaction() as session:
        submissions = session.scalar(
            select(func.count()).select_from(SandboxMail).where(SandboxMail.reference == letter_id))
        event_types = list(session.scalars(select(Event.type).where(Event.letter_id == letter_id)
                                           .order_by(Event.seq)))
    assert submissions == 1
    assert event_types == ["letter.queued", "letter.deposited", "letter.accepted"]


def test_several_workers_never_claim_the_same_job(client, auth, services, settings_overrides):
    letter_ids = [client.post("/v1/letters", json=letter_payload(reference=f"R-{i}"), headers=auth).json["id"]
                  for i in range(24)]
    env = _worker_env(settings_overrides, LRE_WORKER_LEASE_SECONDS="120")
    workers = [_start_worker(env, concurrency=2) for _ in range(3)]
    try:
        _wait_until(lambda: all(_status(client, auth, i) == "accepted" for i in letter_ids), timeout=90)
    finally:
        for worker in workers:
            _stop(worker)
    with services.db.transaction() as session:
        per_reference = dict(session.execute(
            select(SandboxMail.reference, func.count()).group_by(SandboxMail.reference)).all())
        attempts = list(session.scalars(select(Job.attempts).where(Job.kind == "submit_letter")))
    assert per_reference == dict.fromkeys(letter_ids, 1)
    # Each claim increments attempts: 1 everywhere means no job was ever claimed twice.
    assert attempts == [1] * len(letter_ids)
