"""The ``deliver_webhook`` job: one signed POST per attempt, retried, in event order.

The job POSTs ``{"type", "timestamp", "data"}`` signed with Standard Webhooks headers
(``webhook-id`` = the event id on every attempt).

Retries follow :data:`RETRY_SCHEDULE_SECONDS` (with jitter, ``Retry-After`` honoured) through the
outbox's ``Reschedule``, so the outbox's own attempt counter never dead-letters a delivery; the
delivery counts its attempts itself. ``410 Gone`` deletes the hook; a hook that has failed
without a single success for :data:`DISABLE_AFTER` is disabled and a ``hook.disabled`` event is
recorded.

Ordering: a delivery does not start while an earlier one (lower event ``seq``) for the same hook
and letter is still pending; it reschedules itself to just after that one's next attempt, and a
finished delivery pulls the next one forward. Waiting only ever points to a *lower* seq and every
pending delivery ends (delivered, failed, cancelled) on its own, so there is no cycle and no
deadlock; a blocker whose job vanished is failed rather than waited for.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import requests
import urllib3
from sqlalchemy import literal, literal_column, select, update
from sqlalchemy.orm import Session, aliased

from connector.delivery import outbox, wakeup
from connector.delivery.hook_secrets import keys_from
from connector.delivery.hooks import JOB_KIND, delete_hook, delivery_job, disable_hook
from connector.letters.vocabulary import DeliveryStatus
from connector.lib import http, signing
from connector.models import Delivery, Event, Hook, Job

if TYPE_CHECKING:
    from connector.services import Services

log = logging.getLogger(__name__)

# Delays after the 1st, 2nd, ... failed attempt (Standard Webhooks' example schedule, ≈ 3.2 days).
RETRY_SCHEDULE_SECONDS: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
JITTER = 0.1  # ± 10 %
MAX_RETRY_AFTER_SECONDS = 86400.0
DISABLE_AFTER = timedelta(days=5)
DELIVERY_TIMEOUT_SECONDS = 15.0
MAX_WAIT_SECONDS = 3600.0  # a waiting delivery re-checks at least hourly, whatever it waits for
ATTEMPTS_LOG_LIMIT = 20
USER_AGENT = "LRE-Bridge-Webhooks/1"


def delivery_body(event: Event) -> bytes:
    """The exact bytes sent for ``event`` (identical on every attempt)."""
    occurred = event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    payload = {"type": event.type, "timestamp": occurred, "data": event.data}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Attempt:
    """What one POST to a subscriber produced."""

    status_code: int | None
    error: str | None
    retry_after: float | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(failed_attempts: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after ``failed_attempts`` failures (None: give up)."""
    base = RETRY_SCHEDULE_SECONDS[failed_attempts - 1]
    delay = base * (rng or random).uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now`` (delta-seconds or an HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def post_delivery(services: Services, url: str, body: bytes, headers: dict[str, str], now: datetime) -> Attempt:
    """POST once through ``connector.lib.http`` (timeout, no redirects, address policy)."""
    started = time.monotonic()
    try:
        response = services.http(
            "POST",
            url,
            data=body,
            headers={**headers, "content-type": "application/json", "user-agent": USER_AGENT},
            timeout=DELIVERY_TIMEOUT_SECONDS,
            require_https=services.settings.production,
            stream=True,
        )
    except http.UnsafeUrl as exc:
        return Attempt(None, f"target refused: {exc}", None, _ms_since(started))
    except requests.RequestException as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:500], None, _ms_since(started))
    with response:
        error = None
        if not 200 <= response.status_code < 300:
            error = f"HTTP {response.status_code}: {_excerpt(response)}".strip()
    return Attempt(
        response.status_code,
        error,
        parse_retry_after(response.headers.get("retry-after"), now),
        _ms_since(started),
    )


def _excerpt(response: requests.Response) -> str:
    """What the receiver's refusal begins with: one read of at most 200 bytes, never the whole body
    (the subscriber's answer is not ours to store). One read, not "200 bytes": a receiver trickling
    its answer would otherwise hold the delivery for up to 200 read timeouts."""
    try:
        return response.raw.read1(200, decode_content=True).decode("utf-8", "replace")
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        return ""


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _pending_neighbour(session: Session, delivery: Delivery, *, before: bool) -> Delivery | None:
    """The closest pending delivery to the same hook for the same letter, before or after this one."""
    seq = Delivery.event_seq < delivery.event_seq if before else Delivery.event_seq > delivery.event_seq
    return session.scalar(
        select(Delivery)
        .where(
            Delivery.hook_id == delivery.hook_id,
            Delivery.letter_id == delivery.letter_id,
            # Inline, not bound, so that the partial index ix_deliveries_pending_order serves it.
            Delivery.status == literal_column(f"'{DeliveryStatus.PENDING}'"),
            seq,
        )
        .order_by(Delivery.event_seq.desc() if before else Delivery.event_seq)
        .limit(1)
    )


def _blocking_wait(session: Session, delivery: Delivery, now: datetime) -> float | None:
    """Seconds to wait for an earlier pending delivery to the same hook for the same letter."""
    if delivery.letter_id is None:
        return None
    while True:
        earlier = _pending_neighbour(session, delivery, before=True)
        if earlier is None:
            return None
        job = delivery_job(session, earlier.id)
        if job is None or job.status not in ("pending", "running"):
            # Its job is gone: nothing will ever finish it, so it must not hold the line.
            earlier.status = DeliveryStatus.FAILED
            earlier.last_error = "its delivery job was lost"
            continue
        return min(max((job.run_at - now).total_seconds() + 1.0, 1.0), MAX_WAIT_SECONDS)


def _earlier_pending_exists() -> Any:
    """A column: whether an earlier delivery to the same hook for the same letter is still pending
    (the common answer, no, is then known without a query of its own)."""
    earlier = aliased(Delivery)
    return (
        select(earlier.id)
        .where(
            earlier.hook_id == Delivery.hook_id,
            earlier.letter_id == Delivery.letter_id,
            earlier.status == literal_column(f"'{DeliveryStatus.PENDING}'"),
            earlier.event_seq < Delivery.event_seq,
        )
        .exists()
        .label("blocked")
    )


def _wake_next(session: Session, delivery: Delivery, now: datetime) -> None:
    """Pull forward the next pending delivery for the same hook and letter (it may be waiting):
    one ``UPDATE`` of its job, whose workers are woken at commit only if it was waiting."""
    if delivery.letter_id is None:
        return
    following = (
        select(literal("deliver:") + Delivery.id)
        .where(
            Delivery.hook_id == delivery.hook_id,
            Delivery.letter_id == delivery.letter_id,
            Delivery.status == literal_column(f"'{DeliveryStatus.PENDING}'"),
            Delivery.event_seq > delivery.event_seq,
        )
        .order_by(Delivery.event_seq)
        .limit(1)
        .scalar_subquery()
    )
    moved = session.execute(
        update(Job).where(Job.dedupe_key == following, outbox.IS_PENDING, Job.run_at > now).values(run_at=now)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount:
        wakeup.mark(session)


def _log_attempt(delivery: Delivery, attempt: Attempt, now: datetime) -> None:
    delivery.attempts += 1
    delivery.last_status_code = attempt.status_code
    delivery.last_error = attempt.error
    entry = {
        "at": now.isoformat(),
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }
    delivery.attempts_log = [*(delivery.attempts_log or [])[-(ATTEMPTS_LOG_LIMIT - 1) :], entry]


def _record_attempt(session: Session, delivery_id: str, hook_id: str, attempt: Attempt,
                    now: datetime) -> float | None:
    """Store the outcome of one attempt; return the delay before the next one, if any."""
    # Lock order everywhere: the hook, then its deliveries (API delete and disable do the same).
    hook = session.get(Hook, hook_id, with_for_update=True)
    delivery = session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None:
        return None
    _log_attempt(delivery, attempt, now)
    if delivery.status != DeliveryStatus.PENDING:
        return None  # cancelled while we were sending: keep the log, do nothing else
    if attempt.succeeded:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        if hook is not None:
            hook.failing_since = None
        _wake_next(session, delivery, now)
        return None
    if hook is None or hook.status != "active":
        delivery.status = DeliveryStatus.CANCELLED
        return None
    if attempt.status_code == 410:
        delivery.status = DeliveryStatus.FAILED
        log.info("hook %s answered 410 Gone: deleting the subscription", hook.id)
        delete_hook(session, hook)
        return None
    if hook.failing_since is None:
        hook.failing_since = now
    elif now - hook.failing_since >= DISABLE_AFTER:
        delivery.status = DeliveryStatus.FAILED
        disable_hook(session, hook, f"every delivery failed since {hook.failing_since.isoformat()}", now)
        return None
    if delivery.attempts > len(RETRY_SCHEDULE_SECONDS):
        delivery.status = DeliveryStatus.FAILED
        _wake_next(session, delivery, now)
        return None
    return retry_delay(delivery.attempts, attempt.retry_after)


def _delivery_job_died(services: Services, job: Job, reason: str) -> None:
    """The job itself crashed too often (not the subscriber failing): fail the delivery, free the line."""
    now = services.clock()
    with services.db.transaction() as session:
        delivery = session.get(Delivery, str(job.payload.get("delivery_id")), with_for_update=True)
        if delivery is not None and delivery.status == DeliveryStatus.PENDING:
            delivery.status = DeliveryStatus.FAILED
            delivery.last_error = f"delivery job failed: {reason}"[:1000]
            _wake_next(session, delivery, now)


@outbox.job_handler(JOB_KIND, on_dead=_delivery_job_died, pool="delivery")
def deliver_webhook(services: Services, job: Job) -> None:
    """Send one delivery attempt; reschedule itself for the next one or to keep event order.

    The common case costs one read (the delivery, its hook and event, and whether an earlier one
    holds the line, in one query) and one write transaction (the attempt and the job's end)."""
    delivery_id = str(job.payload["delivery_id"])
    now = services.clock()
    with services.db.read() as session:
        row = session.execute(
            select(Delivery, Hook, Event, _earlier_pending_exists())
            .join(Event, Event.id == Delivery.event_id)
            .outerjoin(Hook, Hook.id == Delivery.hook_id)
            .where(Delivery.id == delivery_id)
        ).first()
        if row is None or row[0].status != DeliveryStatus.PENDING:
            return
        delivery, hook, event, blocked = row
        ready = hook is not None and hook.status == "active" and not blocked
        if ready:
            body = delivery_body(event)
            keys = keys_from(services.encryptor, hook.secrets_encrypted, now)
            headers = signing.sign_headers(keys, event.id, int(now.timestamp()), body)
            target_url = hook.target_url
    if not ready:
        wait = _not_ready(services, delivery_id, now)
        if wait is not None:
            raise outbox.Reschedule(wait)
        return
    attempt = post_delivery(services, target_url, body, headers, now)
    # The attempt and the job's next run (or its end) in one commit.
    with services.db.transaction() as session:
        delay = _record_attempt(session, delivery_id, delivery.hook_id, attempt, now)
        outbox.complete(session, job, run_at=None if delay is None else now + timedelta(seconds=delay))
    if delay is not None:
        log.info("delivery %s failed (%s); next attempt in %.0fs", delivery_id, attempt.error, delay)


def _not_ready(services: Services, delivery_id: str, now: datetime) -> float | None:
    """The rare paths, in a transaction: the hook is gone or inactive (cancel the delivery and free
    the line), or an earlier delivery holds the line (seconds to wait; None if it no longer does)."""
    with services.db.transaction() as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return None
        hook = session.get(Hook, delivery.hook_id)
        if hook is None or hook.status != "active":
            delivery.status = DeliveryStatus.CANCELLED
            _wake_next(session, delivery, now)
            return None
        wait = _blocking_wait(session, delivery, now)
    # No longer blocked (it ended meanwhile, or its job was lost): go again at once.
    return wait if wait is not None else 0.0
