"""Webhook subscriptions: ``/v1/hooks`` — one contract for Zapier REST hooks, Make attach/detach
and n8n checkExists/create/delete.

Creating a hook for a target URL the account already subscribed is idempotent: the existing hook
is returned (200) with the events and filters of the new request, re-activated if it had been
disabled, and *without* its secret (shown once, at creation or rotation; rotate to get a new one).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connector import shapes
from connector.api import examples
from connector.api.auth import require_api_key
from connector.api.common import MAX_LIMIT, limit_arg, list_answer, parse_body, services
from connector.api.db import db_session
from connector.api.errors import ApiError
from connector.api.jsontypes import JsonInt
from connector.api.params import choice
from connector.api.registry import Answer, Body, ListOf, documented, json_answer
from connector.delivery.hook_secrets import (
    ROTATION_GRACE,
    new_secret_list,
    previous_secret_expiry,
    rotate_secret_list,
)
from connector.delivery.hooks import (
    ALL_EVENTS,
    EVENT_TYPES,
    delete_hook,
    delivery_job,
    delivery_to_dict,
    hook_to_dict,
    hook_wants,
    replay_event,
)
from connector.letters.vocabulary import DeliveryStatus
from connector.lib import http
from connector.models import Delivery, Event, Hook, new_id

bp = Blueprint("hooks", __name__)


class HookFilters(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reference: str | None = Field(default=None, min_length=1, max_length=200,
                                  description="Only letters with this reference.")


# An event type a subscription can name (its enum in the document comes from the same list).
EventName = Literal[(ALL_EVENTS, *EVENT_TYPES)]  # type: ignore[valid-type]
# What a no-code form field gives: one string of comma-separated event types.
EventNames = Annotated[str, Field(description="Comma-separated event types.")]


class HookIn(BaseModel):
    """The body of ``POST /v1/hooks``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"example": {
        "target_url": "https://hooks.zapier.com/hooks/standard/123/abc/",
        "events": ["letter.accepted", "letter.refused"],
    }})

    target_url: str = Field(min_length=1, max_length=2000, description="https required in production.",
                            json_schema_extra={"format": "uri"})
    # A list, or a comma-separated string (what a no-code form field gives); omitted = all.
    events: list[EventName] | EventNames | None = Field(
        None, description='Event types to receive; omitted or `["*"]` means all.')
    filters: HookFilters = Field(default_factory=HookFilters)

    @field_validator("events", mode="before")
    @classmethod
    def _known_events(cls, value: Any) -> Any:
        # Before the types are checked, so that an unknown name gets this message (with the list of
        # known ones) rather than the enum's; anything but a string or a list of strings is left to
        # the type check to refuse.
        if value is None:
            value = []
        if not isinstance(value, str) and not (isinstance(value, list) and all(isinstance(n, str) for n in value)):
            return value
        names = value.split(",") if isinstance(value, str) else value
        events = list(dict.fromkeys(name.strip() for name in names if name.strip()))
        unknown = [name for name in events if name != ALL_EVENTS and name not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event type {unknown[0]!r}; use {ALL_EVENTS!r} or: {', '.join(EVENT_TYPES)}")
        return [ALL_EVENTS] if not events or ALL_EVENTS in events else events


class RotationIn(BaseModel):
    """The optional body of a secret rotation (hooks and the intake secret)."""

    model_config = ConfigDict(extra="forbid")

    # How long the previous secret stays valid; 0 revokes it at once (e.g. after a leak).
    grace_period_seconds: JsonInt = Field(
        default=int(ROTATION_GRACE.total_seconds()), ge=0, le=7 * 86400)


DeliveryStatusChoice = choice(status.value for status in DeliveryStatus)


class DeliveryQuery(BaseModel):
    status: DeliveryStatusChoice = None
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


_TAGS = ("Webhooks",)


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: str = Field(min_length=1, max_length=40, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")  # not blank


class HookListQuery(BaseModel):
    target_url: str | None = None


def check_target_url(url: str) -> None:
    """Refuse URLs the bridge must not call (https in production, no private addresses)."""
    settings = services().settings
    try:
        http.check_url(url, allow_private=settings.allow_private_urls, require_https=settings.production)
    except http.UnsafeUrl as exc:
        raise ApiError(422, "invalid_target_url", f"target_url {exc}.", "target_url") from None


def _get_hook(hook_id: str, *, lock: bool = False) -> Hook:
    query = select(Hook).where(Hook.id == hook_id, Hook.account_id == g.account.id)
    hook = db_session().scalar(query.with_for_update() if lock else query)
    if hook is None:
        raise ApiError(404, "hook_not_found", "No hook with this id in your account.", "id")
    return hook


@bp.post("/v1/hooks")
@documented(
    "Subscribe a URL to letter events (REST hook)", tags=_TAGS,
    description="Idempotent per target_url: subscribing the same URL again returns the existing "
                "hook (200, without its secret) with the new events and filters.",
    body=HookIn, answers={201: json_answer(shapes.Hook, "Created; `secret` is shown this once."),
                          200: json_answer(shapes.Hook, "Already subscribed: the existing hook.")})
@require_api_key
def create_hook() -> tuple[Response, int]:
    """Subscribe ``target_url`` to events; the answer carries the signing secret, once."""
    body: HookIn = parse_body(HookIn)
    check_target_url(body.target_url)
    session = db_session()
    filters = body.filters.model_dump(exclude_none=True)
    existing = session.scalar(select(Hook).where(Hook.account_id == g.account.id, Hook.target_url == body.target_url))
    if existing is not None:
        return _resubscribe(existing, body.events, filters)
    entries, secret = new_secret_list(services().clock())
    hook = Hook(
        id=new_id("hook"),
        account_id=g.account.id,
        target_url=body.target_url,
        events=body.events,
        filters=filters,
        secrets_encrypted=services().encryptor.encrypt_json(entries),
        status="active",
        created_at=services().clock(),
    )
    session.add(hook)
    try:
        session.commit()
    except IntegrityError:
        # The same subscription arrived twice at the same moment: the other request created it.
        session.rollback()
        existing = session.scalar(select(Hook).where(Hook.account_id == g.account.id,
                                                     Hook.target_url == body.target_url))
        if existing is None:
            raise
        return _resubscribe(existing, body.events, filters)
    return jsonify({**hook_to_dict(hook), "secret": secret}), 201


def _resubscribe(existing: Hook, events: list[str], filters: dict[str, Any]) -> tuple[Response, int]:
    """Subscribing an already subscribed target updates it (and re-enables it), without the secret."""
    existing.events = events
    existing.filters = filters
    if existing.status != "active":
        existing.status, existing.disabled_reason, existing.failing_since = "active", None, None
    db_session().commit()
    return jsonify(hook_to_dict(existing)), 200


@bp.get("/v1/hooks")
@documented("List hooks", tags=_TAGS, query=HookListQuery,
            answers={200: Answer("The account's hooks.", {"application/json": ListOf(shapes.Hook)})})
@require_api_key
def list_hooks() -> Response:
    """The account's hooks, oldest first (``?target_url=`` finds one: n8n's checkExists)."""
    query = select(Hook).where(Hook.account_id == g.account.id)
    if request.args.get("target_url"):
        query = query.where(Hook.target_url == request.args["target_url"])
    rows = db_session().scalars(query.order_by(Hook.created_at, Hook.id))
    return list_answer([hook_to_dict(h) for h in rows])


@bp.get("/v1/hooks/<hook_id>")
@documented("Get a hook", tags=_TAGS, answers={200: json_answer(shapes.Hook, "The hook.")})
@require_api_key
def get_hook(hook_id: str) -> Response:
    return jsonify(hook_to_dict(_get_hook(hook_id)))


@bp.delete("/v1/hooks/<hook_id>")
@documented("Unsubscribe", tags=_TAGS, answers={204: Answer("Deleted; pending deliveries are cancelled.")})
@require_api_key
def remove_hook(hook_id: str) -> tuple[str, int]:
    """Unsubscribe: pending deliveries are cancelled."""
    session = db_session()
    delete_hook(session, _get_hook(hook_id, lock=True))
    session.commit()
    return "", 204


@bp.post("/v1/hooks/<hook_id>/rotate")
@documented("Rotate the signing secret", tags=_TAGS,
            description="Until `previous_secret_expires_at`, deliveries carry two signatures.",
            body=Body({"application/json": RotationIn}, required=False, example=examples.SECRET_ROTATION),
            answers={200: json_answer(shapes.Hook, "The hook with its new `secret`.")})
@require_api_key
def rotate_hook_secret(hook_id: str) -> Response:
    """A new secret; deliveries carry both signatures until the old one expires."""
    body: RotationIn = parse_body(RotationIn, optional=True)
    hook = _get_hook(hook_id, lock=True)
    svc = services()
    now = svc.clock()
    entries, secret = rotate_secret_list(
        svc.encryptor.decrypt_json(hook.secrets_encrypted), now, timedelta(seconds=body.grace_period_seconds)
    )
    hook.secrets_encrypted = svc.encryptor.encrypt_json(entries)
    db_session().commit()
    return jsonify(
        {
            **hook_to_dict(hook),
            "secret": secret,
            "previous_secret_expires_at": previous_secret_expiry(entries, now),
        }
    )


@bp.get("/v1/hooks/<hook_id>/deliveries")
@documented("Delivery log", tags=_TAGS, query=DeliveryQuery,
            answers={200: Answer("Newest first.", {"application/json": ListOf(shapes.Delivery)})})
@require_api_key
def list_deliveries(hook_id: str) -> Response:
    """The delivery log of a hook, newest first (``?status=pending|delivered|failed|cancelled``)."""
    hook = _get_hook(hook_id)
    query = select(Delivery, Event.type).join(Event, Event.id == Delivery.event_id).where(Delivery.hook_id == hook.id)
    status = request.args.get("status")
    if status:
        if status not in set(DeliveryStatus):
            raise ApiError(400, "invalid_status", f"status must be one of: {', '.join(DeliveryStatus)}.", "status")
        query = query.where(Delivery.status == status)
    session = db_session()
    rows = session.execute(query.order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit_arg(50)))
    data = []
    for delivery, event_type in rows:
        job = delivery_job(session, delivery.id) if delivery.status == DeliveryStatus.PENDING else None
        data.append(delivery_to_dict(delivery, event_type, job.run_at if job is not None else None))
    return list_answer(data)


@bp.post("/v1/hooks/<hook_id>/replay")
@documented("Deliver a past event again", tags=_TAGS, body=ReplayIn, body_example=examples.REPLAY,
            answers={202: json_answer(shapes.Delivery, "Queued.")},
            errors={409: "The hook is disabled (subscribe its target_url again)"})
@require_api_key
def replay(hook_id: str) -> tuple[Response, int]:
    """Deliver a past event to this hook again, with its original ``webhook-id``."""
    body: ReplayIn = parse_body(ReplayIn)
    hook = _get_hook(hook_id)
    if hook.status != "active":
        raise ApiError(409, "hook_disabled", "This hook is disabled; subscribe its target_url again to re-enable it.")
    session = db_session()
    event = session.scalar(select(Event).where(Event.id == body.event_id, Event.account_id == g.account.id))
    if event is None:
        raise ApiError(404, "event_not_found", "No event with this id in your account.", "event_id")
    if not hook_wants(hook, event):
        raise ApiError(422, "event_not_subscribed", "This hook does not subscribe to this event.", "event_id")
    now = services().clock()
    delivery = replay_event(session, hook, event, now)
    session.commit()
    return jsonify(delivery_to_dict(delivery, event.type, now)), 202
