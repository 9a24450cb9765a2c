"""The catalogue's types: a platform-neutral description of an operation and its fields.

``connector/platforms/catalog/`` declares the operations with these types; each exporter
(``platforms/exporters/``) translates them into one platform's dialect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

CATALOG_VERSION = 1
LANGUAGES = ("en", "fr")


@dataclass(frozen=True)
class Text:
    """A user-facing string in English and French."""

    en: str
    fr: str

    def in_(self, lang: str) -> str:
        return self.fr if lang == "fr" else self.en

    def as_dict(self) -> dict[str, str]:
        return {"en": self.en, "fr": self.fr}


class Kind(StrEnum):
    CREATE = "create"
    SEARCH = "search"
    TRIGGER = "trigger"


class FieldType(StrEnum):
    """Platform-neutral field types; exporters map them (Zapier has no ``email`` or ``object``)."""

    STRING = "string"
    TEXT = "text"  # long text, several lines
    EMAIL = "email"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    FILE = "file"  # input: a URL the bridge downloads; output: a file the platform stores
    PASSWORD = "password"
    OBJECT = "object"  # free key/value pairs


class Dynamic(StrEnum):
    """Inputs whose choices or very existence depend on the user's account."""

    TEMPLATES = "templates"  # a dropdown of the account's templates (``GET /v1/templates``)
    TEMPLATE_FIELDS = "template_fields"  # expands into the fields of the chosen template


class Group(StrEnum):
    RECIPIENT = "recipient"
    ADVANCED = "advanced"


GROUP_LABELS: dict[Group, Text] = {
    Group.RECIPIENT: Text("Recipient", "Destinataire"),
    Group.ADVANCED: Text("Advanced", "Options avancées"),
}


@dataclass(frozen=True)
class Choice:
    value: str
    label: Text


@dataclass(frozen=True)
class InputField:
    """One input of an operation."""

    key: str
    label: Text
    type: FieldType = FieldType.STRING
    required: bool = False
    help: Text | None = None
    to: str | None = None
    choices: tuple[Choice, ...] = ()
    default: str | None = None
    placeholder: str | None = None
    list: bool = False
    dynamic: Dynamic | None = None
    alters_dynamic_fields: bool = False
    group: Group | None = None
    # A list of objects with these keys (Zapier line items; Make an array of collections; n8n items).
    children: tuple[InputField, ...] = ()


@dataclass(frozen=True)
class OutputField:
    """One output; nested keys are dotted (``recipient.email``), list items use ``[]``."""

    key: str
    label: Text
    type: FieldType = FieldType.STRING


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str


@dataclass(frozen=True)
class Operation:
    """An action (create), a search or a trigger."""

    key: str
    kind: Kind
    noun: Text
    label: Text
    description: Text
    endpoint: Endpoint
    inputs: tuple[InputField, ...]
    outputs: tuple[OutputField, ...]
    sample: Mapping[str, Any]
    hidden: bool = False
    # Triggers: the event types that fire it (a ``statuses`` input, when there is one, narrows them).
    events: tuple[str, ...] = ()
    instant: bool = False  # a REST hook (``/v1/hooks``) rather than polling only
    # The platforms whose app offers it (an exporter skips an operation it cannot express).
    platforms: tuple[str, ...] = ("zapier", "make", "n8n")
    # The endpoint answers with the file itself (PDF, zip), not JSON; its FILE output is that body.
    file_response: bool = False


@dataclass(frozen=True)
class SearchOrCreate:
    """A "find, else create" pair; the key is the search's (Zapier requires it)."""

    search: str
    create: str
    label: Text
    description: Text


@dataclass(frozen=True)
class AuthField:
    key: str
    label: Text
    type: FieldType
    help: Text
    placeholder: str | None = None


@dataclass(frozen=True)
class Authentication:
    """API key + bridge URL; tested with ``GET /v1/me`` whose ``name`` labels the connection."""

    fields: tuple[AuthField, ...]
    test: Endpoint
    label_field: str


@dataclass(frozen=True)
class Catalog:
    version: int
    languages: tuple[str, ...]
    groups: Mapping[Group, Text]
    authentication: Authentication
    operations: tuple[Operation, ...]
    search_or_creates: tuple[SearchOrCreate, ...] = ()
    # Template field types (``GET /v1/templates/<name>``) -> input field types.
    template_field_types: Mapping[str, FieldType] = field(default_factory=dict)
    # letter.<status> -> kind of the proof issued with it (``/v1/letters/<id>/proofs/<kind>``).
    proof_kinds: Mapping[str, str] = field(default_factory=dict)

    def operation(self, key: str) -> Operation:
        return next(op for op in self.operations if op.key == key)

    def of_kind(self, kind: Kind) -> tuple[Operation, ...]:
        return tuple(op for op in self.operations if op.kind == kind)
