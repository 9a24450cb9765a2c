"""The public shapes of the bridge's answers: a letter, an event, a hook, a delivery, a consent, an error.

Each shape is a closed pydantic model (``extra="forbid"``). The code that answers builds its dict
through the model (``Letter.dump(...)``), and ``components()`` gives the OpenAPI document the same
models' JSON Schema, so the document cannot describe a field the answer does not have, and a field
renamed in one place fails the suite (the hostile-input and schemathesis tests validate every answer
against the document). Timestamps are already-formatted strings (``iso``): one format, chosen once.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from connector.delivery.events import ACCOUNT_EVENTS
from connector.letters.vocabulary import (
    DeliveryStatus,
    HookStatus,
    LetterStatus,
    ProofKind,
    RecipientType,
    SandboxOutcome,
)

DateTime = str  # an ISO 8601 instant in UTC with a Z (``iso``)
EVENT_TYPES = [*(f"letter.{status.value}" for status in LetterStatus), *sorted(ACCOUNT_EVENTS)]
Texts = list[str]  # (a template field is called ``list``, which hides the builtin in its class)


def iso(value: datetime | None) -> str | None:
    """An instant as the API writes it: ISO 8601 in UTC with ``Z`` (naive values are UTC)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat() + "Z"


class Shape(BaseModel):
    """A closed answer shape: unknown keys are an error, and ``dump`` gives the JSON-ready dict."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    @classmethod
    def dump(cls, **values: Any) -> dict[str, Any]:
        """Validate ``values`` against the shape and return them as the API sends them.

        Every field is required (null where it has no value) except the few with a default, which
        are left out of the answer when not given (a hook's secret outside its creation answer).
        """
        model: Self = cls.model_validate(values)
        return model.model_dump(mode="json", exclude_unset=True)


def _date_time(description: str | None = None) -> Any:
    return Field(description=description, json_schema_extra={"format": "date-time"})


class Recipient(Shape):
    type: RecipientType
    email: str = Field(json_schema_extra={"format": "email"})
    first_name: str | None
    last_name: str | None
    company: str | None


class DocumentRef(Shape):
    id: str
    filename: str
    size: int
    sha256: str


class TemplateRef(Shape):
    name: str
    version: int


class Failure(Shape):
    code: str | None = Field(description="stable code of the cause (provider or bridge)")
    message: str | None = Field(description="why, in words for the sender")


class ProofRef(Shape):
    kind: ProofKind
    filename: str
    sha256: str
    size: int
    url: str


class LetterLinks(Shape):
    self: str
    document: str
    evidence: str


class Letter(Shape):
    """A registered letter, as the API, the event feed and the webhooks show it."""

    id: str = Field(examples=["let_5f2c9b1e4a7d"])
    object: Literal["letter"]
    status: LetterStatus
    reference: str | None
    recipient: Recipient
    message: str | None
    metadata: dict[str, Any]
    documents: list[DocumentRef]
    template: TemplateRef | None
    provider: str
    provider_letter_id: str | None
    sandbox_outcome: SandboxOutcome | None
    failure: Failure | None = Field(description="set when status is failed")
    proofs: list[ProofRef]
    created_at: DateTime = _date_time()
    updated_at: DateTime | None = _date_time()
    deposited_at: DateTime | None = _date_time()
    completed_at: DateTime | None = _date_time()
    links: LetterLinks


class Event(Shape):
    """A status change of a letter (``letter.*``, data = the letter) or an account event (``hook.*``,
    ``batch.*``, ``consent.*``, ``alert.*``, data = its own object)."""

    id: str
    object: Literal["event"]
    # Every type is listed (not checked: an event stored under a type since retired is still shown).
    type: str = Field(json_schema_extra={"enum": EVENT_TYPES})
    occurred_at: DateTime | None = _date_time()
    created_at: DateTime | None = _date_time()
    letter_id: str | None
    provider: str | None
    # A letter event's letter; an account event's own object. Left to right: data that is not a
    # whole letter (an account event's, or a letter event stored before a field existed) stays as is.
    data: Letter | dict[str, Any] = Field(union_mode="left_to_right")


class Hook(Shape):
    """A webhook subscription (never with its secret, except in the answer that created or rotated it)."""

    id: str
    object: Literal["hook"]
    target_url: str
    events: list[str]
    filters: dict[str, Any]
    status: HookStatus
    disabled_reason: str | None
    failing_since: DateTime | None = _date_time()
    created_at: DateTime = _date_time()
    secret: str | None = Field(default=None, description="`whsec_…` signing secret; only in the answer that "
                                                         "created or rotated it.")
    previous_secret_expires_at: DateTime | None = Field(
        default=None, description="when the secret before the rotation stops being accepted",
        json_schema_extra={"format": "date-time"})


class Delivery(Shape):
    """One event sent (or being sent) to one hook, with every attempt."""

    id: str
    object: Literal["delivery"]
    hook_id: str
    event_id: str = Field(description="Sent as the `webhook-id` header.")
    event_type: str | None
    letter_id: str | None
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: DateTime | None = _date_time()
    created_at: DateTime = _date_time()
    delivered_at: DateTime | None = _date_time()
    attempts_log: list[dict[str, Any]]


class ConsentProof(Shape):
    filename: str | None
    sha256: str


InvitationStatus = Literal["pending", "accepted", "refused", "expired", "withdrawn"]


class InvitationCertificate(Shape):
    sha256: str
    size: int
    url: str


class InvitationProof(Shape):
    """What the person was shown and how they answered (the certificate once it is made)."""

    answered_at: DateTime | None = _date_time()
    ip_address: str | None
    user_agent: str | None
    text_version: str | None
    text_language: str | None
    text_sha256: str | None
    text: str | None
    certificate: InvitationCertificate | None


class ConsentInvitation(Shape):
    """An invitation to consent to registered e-mail, as the API and the ``consent.*`` events show it
    (built by ``connector.consent.service.invitation_to_dict``)."""

    id: str
    object: Literal["consent_invitation"]
    status: InvitationStatus
    email: str
    name: str
    first_name: str | None
    last_name: str | None
    message: str | None
    language: Literal["fr", "en"]
    url: str | None = Field(description="the consent link, while the invitation can be answered")
    emailed: bool
    created_at: DateTime | None = _date_time()
    expires_at: DateTime | None = _date_time()
    answered_at: DateTime | None = _date_time()
    consent_id: str | None
    proof: InvitationProof | None = Field(description="set once the invitation is answered")
    withdrawn_at: DateTime | None = _date_time()
    expired_at: DateTime | None = _date_time()


class Consent(Shape):
    """An entry of the consent register (CPCE art. L.100)."""

    id: str
    object: Literal["consent"]
    email: str
    first_name: str | None
    last_name: str | None
    method: str
    obtained_at: DateTime | None = _date_time()
    recorded_by: str | None
    note: str | None
    proof: ConsentProof | None
    status: Literal["active", "revoked"]
    created_at: DateTime | None = _date_time()
    revoked_at: DateTime | None = _date_time()
    revoked_by: str | None
    invitation: ConsentInvitation | None = Field(default=None, description="the invitation this consent answers, "
                                                                            "when the bridge's page collected it")


class TemplateField(Shape):
    """One input of a template, shaped for Zapier dynamic fields, Make and n8n."""

    key: str = Field(description="The key to use in `data`.")
    label: str = Field(description="French label for the user.")
    type: Literal["text", "long_text", "date", "amount", "email", "list"]
    required: bool
    help_text: str | None
    example: Any
    list: bool = Field(description="True when the value is a list of texts.")
    choices: Texts | None


class TemplateVersion(Shape):
    """One version of a template (the history lists them, newest first)."""

    object: Literal["template_version"]
    name: str
    title: str
    description: str
    version: int
    origin: Literal["builtin", "custom"]
    sha256: str = Field(description="SHA-256 of the template source.")
    created_at: DateTime | None = _date_time()


class TemplateSummary(Shape):
    """A template as the list shows it (its latest version)."""

    object: Literal["template"]
    name: str
    title: str
    description: str
    version: int
    origin: Literal["builtin", "custom"]
    sha256: str = Field(description="SHA-256 of the template source.")
    created_at: DateTime | None = _date_time()


class TemplateLinks(Shape):
    self: str


class Template(TemplateSummary):
    """A template with the fields its data must fill."""

    fields: list[TemplateField]
    links: TemplateLinks


class ApiKeyRef(Shape):
    id: str
    name: str | None
    prefix: str


class Account(Shape):
    """The account behind the API key (what the platforms call to test a connection)."""

    id: str
    object: Literal["account"]
    name: str
    provider: str
    api_key: ApiKeyRef


class ProviderSender(Shape):
    id: str
    name: str | None
    email: str | None


class ProviderCheck(Shape):
    """What ``GET /v1/account/provider/check`` found at the provider (from its ``check_account``).

    A provider without a check (the sandbox) gives neither ``sender`` nor ``identity_verified``."""

    object: Literal["provider_check"]
    provider: str
    ok: bool = Field(description="The settings work and the sender can send.")
    sender: ProviderSender | None = None
    identity_verified: bool | None = Field(default=None, description="null when the provider does not say")
    next_steps: Texts


class ErrorBody(Shape):
    code: str
    message: str
    field: str | None
    details: list[dict[str, Any]] | None = None  # left out when there is only one problem


class Error(Shape):
    """Every refusal: ``{"error": {"code", "message", "field"}}`` (``details`` lists each problem)."""

    error: ErrorBody


Item = TypeVar("Item", bound=BaseModel)


class Page(Shape, Generic[Item]):
    """A page of a list: give ``next_cursor`` back as ``cursor`` for the next one (null: the last)."""

    object: Literal["list"]
    data: list[Item]
    next_cursor: str | None = None  # left out by the lists that are never paged (alert rules)

    @classmethod
    def model_parametrized_name(cls, params: tuple[type[Any], ...]) -> str:
        return f"{params[0].__name__}Page"  # a component name (OpenAPI's allow no brackets)


SHAPES: tuple[type[Shape], ...] = (Letter, Event, Hook, Delivery, Consent, ConsentInvitation, Template, TemplateSummary,
                                   TemplateVersion, Account, Error)


def components() -> dict[str, Any]:
    """The JSON Schema of every shape (and the enums and parts they use), as OpenAPI components
    (a fresh copy the caller may change)."""
    return json.loads(_components_text())


@functools.cache
def _components_text() -> str:
    # Generated once: pydantic builds the schemas anew on each call, and GET /openapi.json asks each time.
    _, schema = models_json_schema([(shape, "serialization") for shape in SHAPES],
                                   ref_template="#/components/schemas/{model}")
    return json.dumps(schema.get("$defs", {}))
