"""What a client sends to create a letter (recipient, documents, template data), validated by
pydantic; a refusal is an InvalidInput naming the field.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator, model_validator

from connector.consent import gate as consent_gate
from connector.errors import InvalidInput, MalformedRequest
from connector.letters.vocabulary import RecipientType, SandboxOutcome

MetadataValue = str | int | float | bool | None

SANDBOX_OUTCOMES = tuple(SandboxOutcome)


class RecipientIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: RecipientType
    email: EmailStr
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    company: str | None = Field(default=None, max_length=300)
    # Why this recipient may receive an LRE (connector.consent.gate); default: professional for a
    # professional, consent for anyone else.
    legal_basis: consent_gate.LegalBasis | None = None

    @model_validator(mode="after")
    def _named(self) -> RecipientIn:
        if self.type == RecipientType.INDIVIDUAL and not (self.first_name and self.last_name):
            raise ValueError("an individual recipient needs first_name and last_name")
        if self.type != RecipientType.INDIVIDUAL and not (self.company or self.last_name):
            raise ValueError("give the recipient's company (or last_name)")
        return self


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255)
    content_base64: str | None = None
    url: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _one_source(self) -> DocumentIn:
        if (self.content_base64 is None) == (self.url is None):
            raise ValueError("give exactly one of content_base64 or url")
        return self


class LetterIn(BaseModel):
    """The body of ``POST /v1/letters``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    recipient: RecipientIn
    documents: list[DocumentIn] = Field(default_factory=list, max_length=20)
    template: str | None = Field(default=None, max_length=100)
    data: dict[str, Any] | None = None
    message: str | None = Field(default=None, max_length=5000)
    reference: str | None = Field(default=None, max_length=200)
    metadata: dict[str, MetadataValue] = Field(default_factory=dict, max_length=50)
    sandbox_outcome: SandboxOutcome | None = None
    sender_otp: str | None = Field(default=None, max_length=20)
    # No consent yet but an invitation is pending: keep the letter queued until the answer.
    hold_until_consent: bool = False

    @field_validator("metadata")
    @classmethod
    def _short_metadata(cls, value: dict[str, MetadataValue]) -> dict[str, MetadataValue]:
        for key, item in value.items():
            if len(key) > 40 or (isinstance(item, str) and len(item) > 500):
                raise ValueError("metadata keys are at most 40 characters and values at most 500")
        return value

    @model_validator(mode="after")
    def _has_content(self) -> LetterIn:
        if self.data is not None and not self.template:
            raise ValueError("data is only used with a template")
        return self


# pydantic adds the union member it tried to a location ("metadata.k.constrained-str"); users
# need the field, not our type names.
_UNION_TAGS = {"str", "int", "float", "bool", "none", "list", "dict", "constrained-str", "function-after"}


def _loc_to_field(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if str(p).split("[")[0] not in _UNION_TAGS]
    return ".".join(parts) or None


def validation_error(exc: ValidationError, prefix: str = "") -> InvalidInput:
    """A pydantic error as a 422 naming the first field, with every problem in ``details``."""
    details = []
    for err in exc.errors():
        field = _loc_to_field(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        details.append({"field": (prefix + field) if field else (prefix.rstrip(".") or None), "message": message})
    first = details[0]
    return InvalidInput("invalid_request", first["message"], first["field"], details=details)


ModelT = TypeVar("ModelT", bound=BaseModel)


def validate_object(model: type[ModelT], payload: Any) -> ModelT:
    """``payload`` validated by ``model``: 400 when it is not a JSON object, 422 naming the field."""
    if not isinstance(payload, dict):
        raise MalformedRequest("invalid_json", "The request body must be a JSON object.")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(exc) from None


def parse_letter(payload: Any) -> LetterIn:
    """The body of ``POST /v1/letters`` (or of a signed intake message), validated."""
    return validate_object(LetterIn, payload)
