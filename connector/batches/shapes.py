"""The public shapes of a batch and of its rows: ``Batch`` and ``BatchLetter``.

Closed models (``connector.shapes.Shape``): ``batch_to_dict`` and ``item_to_dict`` build their
answers (the API's, the ``batch.*`` events', the bordereau's counts) through them, and the OpenAPI
document publishes the same models' JSON Schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, NonNegativeInt, create_model

from connector.letters.vocabulary import LetterStatus
from connector.shapes import DateTime, Failure, Recipient, Shape, TemplateRef

LETTER_STATUSES = tuple(s.value for s in LetterStatus)
# The counts a batch shows. "pending": no letter yet; "cancelled": stopped before submission.
COUNT_KEYS = ("pending", "rendered", "submitted", *LETTER_STATUSES, "cancelled")
ITEM_FILTERS = ("pending", *LETTER_STATUSES, "cancelled")
CANCELLED = "cancelled"

# One non-negative count per key of COUNT_KEYS, every one given.
BatchCounts = create_model("BatchCounts", __base__=Shape,
                           **{key: (NonNegativeInt, ...) for key in COUNT_KEYS})  # type: ignore[call-overload]


def _date_time() -> DateTime | None:
    return Field(json_schema_extra={"format": "date-time"})  # type: ignore[no-any-return]


def _share() -> float:
    return Field(ge=0, le=1)  # type: ignore[no-any-return]


class BatchProgress(Shape):
    """The share of the batch's letters past each stage (1 for an empty batch)."""

    rendered: float = _share()
    submitted: float = _share()
    final: float = _share()


class BatchDocument(Shape):
    """A document common to every letter of the batch (stored once)."""

    id: str
    role: Literal["letter", "attachment"]
    filename: str
    size: int
    sha256: str


class BatchLinks(Shape):
    self: str
    letters: str
    report: str
    evidence: str


class Batch(Shape):
    """A batch: one template (or one PDF) to many recipients, with its counts and progress."""

    id: str
    object: Literal["batch"]
    status: Literal["processing", "completed"]
    total: int
    counts: BatchCounts  # type: ignore[valid-type]
    progress: BatchProgress
    template: TemplateRef | None
    documents: list[BatchDocument]
    reference: str | None
    metadata: dict[str, Any]
    created_at: DateTime | None = _date_time()
    cancel_requested_at: DateTime | None = _date_time()
    completed_at: DateTime | None = _date_time()
    cancelled_now: int | None = Field(default=None, description="cancel only: letters stopped by this call")
    links: BatchLinks


class BatchLetter(Shape):
    """One row of a batch and where its letter stands."""

    row: int
    object: Literal["batch_letter"]
    status: Literal[(*ITEM_FILTERS, "failed")]  # type: ignore[valid-type]
    recipient: Recipient
    reference: str | None
    letter_id: str | None
    provider_letter_id: str | None
    failure: Failure | None
    deposited_at: DateTime | None = _date_time()
    completed_at: DateTime | None = _date_time()
    letter_url: str | None
