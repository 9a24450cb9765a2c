"""Outbound webhooks: subscriptions ("hooks"), which events they want, and their deliveries' rows.

Flow: ``connector.letters.service.record_event`` calls :func:`enqueue_deliveries` in the transaction
that writes the event; it adds one ``Delivery`` row and one ``deliver_webhook`` outbox job per
matching active hook. Sending it (signed, retried, in order) is ``connector.delivery.hook_delivery``;
the signing secrets are ``connector.delivery.hook_secrets``. A hook is deleted (API ``DELETE``, or
the subscriber's ``410 Gone``) or disabled (failing for days) here, with its pending deliveries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import shapes
from connector.delivery import events, outbox
from connector.letters.vocabulary import DeliveryStatus
from connector.models import Delivery, Event, Hook, Job, new_id
from connector.providers.base import LetterStatus

JOB_KIND = "deliver_webhook"
HOOK_DISABLED = events.HOOK_DISABLED.type


def event_types() -> tuple[str, ...]:
    """Every event type a hook can subscribe to ("*", or no list, means all of them)."""
    return (*(f"letter.{status}" for status in LetterStatus), *events.ACCOUNT_EVENTS)


# Read at import by the hooks API; features that declare account events are imported before it.
EVENT_TYPES: tuple[str, ...] = event_types()
ALL_EVENTS = "*"
FILTER_FIELDS = ("reference",)


# --- matching and enqueueing -------------------------------------------------------------------


def hook_wants(hook: Hook, event: Event) -> bool:
    """True when ``hook`` subscribes to ``event``'s type and its filters match the event data."""
    events = hook.events or [ALL_EVENTS]
    if ALL_EVENTS not in events and event.type not in events:
        return False
    data = event.data or {}
    return all(data.get(name) == wanted for name, wanted in (hook.filters or {}).items())


def active_hooks(session: Session, account_id: str) -> list[Hook]:
    """The account's active subscriptions, oldest first."""
    return list(session.scalars(
        select(Hook).where(Hook.account_id == account_id, Hook.status == "active").order_by(Hook.created_at)
    ))


def enqueue_deliveries(session: Session, event: Event, hooks: list[Hook] | None = None) -> None:
    """Queue a signed delivery of ``event`` to every matching subscription, in the caller's transaction.

    ``hooks``: the account's active subscriptions when the caller already read them (``active_hooks``).
    """
    if hooks is None:
        hooks = active_hooks(session, event.account_id)
    for hook in hooks:
        if hook_wants(hook, event):
            create_delivery(session, hook, event)


def create_delivery(session: Session, hook: Hook, event: Event, run_at: datetime | None = None) -> Delivery:
    """One delivery of ``event`` to ``hook`` and the outbox job that sends it."""
    delivery = Delivery(
        id=new_id("dlv"),
        hook_id=hook.id,
        event_id=event.id,
        event_seq=event.seq,
        letter_id=event.letter_id,
        status=DeliveryStatus.PENDING,
        attempts=0,
        attempts_log=[],
    )
    session.add(delivery)
    outbox.enqueue(
        session,
        JOB_KIND,
        payload={"delivery_id": delivery.id},
        account_id=hook.account_id,
        letter_id=event.letter_id,
        dedupe_key=_job_key(delivery.id),
        run_at=run_at,
        # One lane per subscription: a receiver that hangs holds only its own lane's worker threads.
        lane=hook_lane(hook.id),
    )
    return delivery


def hook_lane(hook_id: str) -> str:
    """The outbox lane of a subscription's deliveries (its per-destination limit)."""
    return f"hook:{hook_id}"


def _job_key(delivery_id: str) -> str:
    return f"deliver:{delivery_id}"


def delivery_job(session: Session, delivery_id: str) -> Job | None:
    """The outbox job of a delivery (its ``run_at`` is the next attempt)."""
    return session.scalar(select(Job).where(Job.dedupe_key == _job_key(delivery_id)))


# --- hook lifecycle ----------------------------------------------------------------------------


def cancel_pending(session: Session, hook_id: str, reason: str) -> None:
    """Stop every pending delivery of a hook (their jobs end on their next run)."""
    pending = session.scalars(
        select(Delivery).where(Delivery.hook_id == hook_id, Delivery.status == DeliveryStatus.PENDING)
    )
    for delivery in pending:
        delivery.status = DeliveryStatus.CANCELLED
        delivery.last_error = reason


def delete_hook(session: Session, hook: Hook) -> None:
    """Remove a subscription (API ``DELETE`` or the subscriber's ``410 Gone``); ``hook`` is locked."""
    cancel_pending(session, hook.id, "the subscription was deleted")
    session.delete(hook)


def disable_hook(session: Session, hook: Hook, reason: str, now: datetime) -> Event:
    """Stop delivering to ``hook`` (locked) and record a ``hook.disabled`` event for the other hooks."""
    hook.status = "disabled"
    hook.disabled_reason = reason
    cancel_pending(session, hook.id, f"the subscription was disabled: {reason}")
    # Imported here: the alert rules import the event module, which imports this one.
    from connector.monitoring.alerts import raise_hook_disabled

    raise_hook_disabled(session, hook, reason, now)
    event = Event(
        id=new_id("evt"),
        account_id=hook.account_id,
        letter_id=None,
        type=HOOK_DISABLED,
        occurred_at=now,
        data={**hook_to_dict(hook), "disabled_reason": reason},
        raw={},
    )
    session.add(event)
    session.flush()
    enqueue_deliveries(session, event)
    return event


def replay_event(session: Session, hook: Hook, event: Event, now: datetime) -> Delivery:
    """Deliver a past event again (same ``webhook-id``), or hurry the pending delivery of it."""
    pending = session.scalar(
        select(Delivery).where(
            Delivery.hook_id == hook.id,
            Delivery.event_id == event.id,
            Delivery.status == DeliveryStatus.PENDING,
        )
    )
    if pending is not None:
        job = delivery_job(session, pending.id)
        if job is not None:
            outbox.make_due(session, job, now)
        return pending
    return create_delivery(session, hook, event, run_at=now)


# --- public shapes -----------------------------------------------------------------------------


_iso = shapes.iso


def hook_to_dict(hook: Hook) -> dict[str, Any]:
    """A hook as the API shows it (never with its secret)."""
    return shapes.Hook.dump(
        id=hook.id,
        object="hook",
        target_url=hook.target_url,
        events=hook.events or [ALL_EVENTS],
        filters=hook.filters or {},
        status=hook.status,
        disabled_reason=hook.disabled_reason,
        failing_since=_iso(hook.failing_since),
        created_at=_iso(hook.created_at),
    )


def delivery_to_dict(delivery: Delivery, event_type: str | None, next_attempt_at: datetime | None) -> dict[str, Any]:
    """A delivery as the delivery log shows it."""
    return shapes.Delivery.dump(**{
        "id": delivery.id,
        "object": "delivery",
        "hook_id": delivery.hook_id,
        "event_id": delivery.event_id,
        "event_type": event_type,
        "letter_id": delivery.letter_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "next_attempt_at": _iso(next_attempt_at) if delivery.status == DeliveryStatus.PENDING else None,
        "created_at": _iso(delivery.created_at),
        "delivered_at": _iso(delivery.delivered_at),
        "attempts_log": delivery.attempts_log or [],
    })
