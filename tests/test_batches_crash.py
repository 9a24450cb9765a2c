"""A 200-letter batch survives workers killed with SIGKILL in the middle: every letter is made once
and submitted once (the sandbox provider's own table is the provider's view)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import func, select

from connector.batches.models import BatchItem
from connector.models import Letter, SandboxMail
from tests.test_batches import batch_body, co_owner
from tests.test_worker_crash import _start_worker, _stop, _wait_until, _worker_env

ROWS = 200
# Longer than a submission takes on a loaded machine: a lease that expires while its worker is still
# at the provider lets a second worker submit the same letter (see the report of issue 16).
LEASE = "10"


def _env(settings, **extra: str) -> dict[str, str]:
    return _worker_env(settings, LRE_WORKER_LEASE_SECONDS=LEASE, **extra)


def _reap(proc, timeout: float = 120) -> int:
    """Wait for a worker and close its pipe (an open pipe is a ResourceWarning, hence an error)."""
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _submitted(services) -> int:
    with services.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(SandboxMail)) or 0)


@pytest.mark.slow
def test_workers_killed_mid_batch_make_and_submit_every_letter_exactly_once(client, auth, services,
                                                                            settings_overrides):
    batch = client.post("/v1/batches", json=batch_body([co_owner(n) for n in range(1, ROWS + 1)]), headers=auth)
    assert batch.status_code == 202, batch.json
    batch_id = batch.json["id"]

    # Killed between making a letter and committing it: nothing of that letter may remain.
    doomed = _start_worker(_env(settings_overrides, LRE_FAILPOINTS="batch.before_commit"))
    assert _reap(doomed) == -signal.SIGKILL
    # Killed right after committing one: the rerun must find it made and not make a second.
    doomed = _start_worker(_env(settings_overrides, LRE_FAILPOINTS="batch.after_commit"))
    assert _reap(doomed) == -signal.SIGKILL

    # A healthy pair of workers, killed from outside once a good part of the batch is at the provider.
    busy = _start_worker(_env(settings_overrides), concurrency=2)
    try:
        _wait_until(lambda: _submitted(services) >= ROWS // 3, timeout=300)
        os.kill(busy.pid, signal.SIGKILL)
    finally:
        _reap(busy, timeout=30)
    assert _submitted(services) < ROWS, "the worker was not killed in the middle of the batch"

    healthy = _start_worker(_env(settings_overrides), concurrency=2)
    started = time.monotonic()
    try:
        _wait_until(lambda: client.get(f"/v1/batches/{batch_id}", headers=auth).json["status"] == "completed",
                    timeout=600)
    finally:
        _stop(healthy)
        _reap(healthy, timeout=30)
    assert time.monotonic() - started < 600

    with services.db.transaction() as session:
        letters = list(session.scalars(select(Letter.id)))
        item_letters = list(session.scalars(select(BatchItem.letter_id).where(BatchItem.batch_id == batch_id)))
        per_reference = dict(session.execute(
            select(SandboxMail.reference, func.count()).group_by(SandboxMail.reference)).all())
    assert len(letters) == ROWS and sorted(item_letters) == sorted(letters)
    assert per_reference == dict.fromkeys(letters, 1)
    final = client.get(f"/v1/batches/{batch_id}", headers=auth).json
    assert final["counts"]["accepted"] == ROWS and final["counts"]["submitted"] == ROWS
