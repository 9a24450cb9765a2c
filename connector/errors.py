"""The bridge's own refusals, in its own words: no HTTP status, no Flask.

The letter flow, the consent gate, batches and rendering raise these; ``connector/api/errors.py`` holds
the one table that turns each kind into an HTTP answer (``{"error": {"code", "message", "field"}}``),
and a worker that meets one fails or retries the job by its kind. Keeping the status out of the domain
means a batch row refused in a worker and a letter refused at the API carry the same words.
"""

from __future__ import annotations

from typing import Any, Protocol


class BridgeError(Exception):
    """Something the bridge refuses to do. ``code`` is stable (clients branch on it); ``message`` says
    what to change, in words for the person who built the Zap; ``field`` names the input at fault."""

    def __init__(self, code: str, message: str, field: str | None = None, *,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.details = details


class MalformedRequest(BridgeError):
    """The input cannot be read at all (not a JSON object, not a form)."""


class InvalidInput(BridgeError):
    """The input is readable but refused: a field is missing, ambiguous or out of bounds."""


class LetterRejected(InvalidInput):
    """A letter the bridge will not create: a bad document, no legal basis, a provider's refusal."""


class NotFound(BridgeError):
    """What the input names does not exist for this account (a template, a letter)."""


class Conflict(BridgeError):
    """The operation clashes with what exists (a template name taken, a version in use)."""


class TooLarge(BridgeError):
    """The input is over a size bound (a document, a download)."""


class Unavailable(BridgeError):
    """A provider or another dependency cannot answer now: the same request may succeed later."""


class _ProviderFailure(Protocol):
    code: str
    message: str
    field: str | None
    permanent: bool


def from_provider(exc: _ProviderFailure) -> BridgeError:
    """A provider's refusal as a letter refusal (permanent) or an outage (worth a retry)."""
    if exc.permanent:
        return LetterRejected(exc.code, exc.message, exc.field)
    return Unavailable(exc.code, exc.message, exc.field)
