"""Replay protection for verified inbound webhooks: each message id is accepted once per source."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, not_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector.lib.signing import body_message_id
from connector.models import InboundMessage

# A Standard Webhooks message is signed with its timestamp and refused once that is more than a few
# minutes off, so its id only has to outlive that window; a day is ample. An X-Signature request has
# no timestamp: the remembered hash of its body is its only defence against a replay, so it is kept.
TIMESTAMPED_IDS_KEPT = timedelta(hours=24)
_UNTIMED_PREFIX = body_message_id(b"").split(":", 1)[0] + ":"


class ReplayedMessage(Exception):  # noqa: N818 - named for what happened, like the SignatureError family
    """This message id was already accepted from this source."""


def already_received(session: Session, source: str, message_id: str) -> bool:
    """A cheap early check (before expensive work); :func:`remember_message` is the one that counts."""
    found = session.scalar(
        select(InboundMessage.id).where(InboundMessage.source == source, InboundMessage.message_id == message_id)
    )
    return found is not None


def remember_message(session: Session, source: str, message_id: str, now: datetime) -> None:
    """Record ``message_id`` in the caller's transaction, or raise ReplayedMessage.

    Call it only after the signature is verified (an attacker must not be able to burn ids), and in
    the same transaction as the work the message triggers, so a failed request leaves no trace.
    The unique constraint on (source, message_id) settles concurrent duplicates.
    """
    seen = session.scalar(
        select(InboundMessage.id).where(InboundMessage.source == source, InboundMessage.message_id == message_id)
    )
    if seen is not None:
        raise ReplayedMessage(f"message {message_id!r} from {source} was already received")
    try:
        with session.begin_nested():
            session.add(InboundMessage(source=source, message_id=message_id, received_at=now))
    except IntegrityError:
        raise ReplayedMessage(f"message {message_id!r} from {source} was already received") from None


def purge_expired_messages(session: Session, now: datetime) -> int:
    """Forget the ids of timestamped messages received more than a day ago; returns how many."""
    result = session.execute(
        delete(InboundMessage).where(
            InboundMessage.received_at < now - TIMESTAMPED_IDS_KEPT,
            not_(InboundMessage.message_id.startswith(_UNTIMED_PREFIX, autoescape=True)),
        )
    )
    return int(result.rowcount or 0)
