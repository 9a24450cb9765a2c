"""The provider seam: what every qualified-LRE provider adapter implements.

A provider module never touches Flask or the database. It receives an ``OutgoingLetter`` and a
``ProviderContext`` (its decrypted settings, the one HTTP function, a clock) and answers with
``ProviderEvent`` values in the bridge's normalised vocabulary. Errors carry the retry decision.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol, runtime_checkable

import requests

# The words live in connector.letters.vocabulary; re-exported here because every adapter speaks them.
from connector.letters.vocabulary import FINAL_STATUSES as FINAL_STATUSES
from connector.letters.vocabulary import PROOF_KIND_BY_STATUS as PROOF_KIND_BY_STATUS
from connector.letters.vocabulary import LetterStatus as LetterStatus
from connector.lib import spool
from connector.lib.spool import HashingFile


class ProviderError(Exception):
    """A provider call failed.

    ``code`` is the bridge's error code shown to users (``invalid_email``, ``provider_unavailable``…),
    ``permanent`` says whether retrying can help, ``retry_after`` (seconds) is honoured when given,
    ``field`` names the letter field at fault when one is.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        field: str | None = None,
        provider_code: str | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.field = field
        self.provider_code = provider_code
        # True when the request may have reached the provider (timeout after sending):
        # the retry must look the letter up before submitting again.
        self.ambiguous = ambiguous


class WebhookRejected(Exception):
    """An inbound provider callback failed authentication; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Recipient:
    type: str  # professional | individual | administration | association
    email: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None


@dataclass(frozen=True, slots=True)
class OutgoingDocument:
    """A document to send: its bytes, or (large documents) a function opening a reader over them."""

    filename: str
    source: bytes | Callable[[], IO[bytes]]
    sha256: str
    # The number of bytes, when ``source`` is a reader (a streamed upload declares its length).
    size: int | None = None

    @property
    def length(self) -> int:
        """The document's size in bytes (counted by reading it through when not given)."""
        if isinstance(self.source, bytes):
            return len(self.source)
        if self.size is not None:
            return self.size
        total = 0
        with self.open() as reader:
            while chunk := reader.read(256 * 1024):
                total += len(chunk)
        return total

    @property
    def content(self) -> bytes:
        """The whole document (read now, when ``source`` is a reader)."""
        if isinstance(self.source, bytes):
            return self.source
        with self.open() as reader:
            return reader.read()

    def open(self) -> IO[bytes]:
        """A reader over the document from its first byte; close it when done."""
        if isinstance(self.source, bytes):
            return io.BytesIO(self.source)
        return self.source()


@dataclass(frozen=True, slots=True)
class OutgoingLetter:
    """Everything a provider needs to submit one letter. ``id`` is our reference at the provider."""

    id: str
    recipient: Recipient
    documents: tuple[OutgoingDocument, ...]
    message: str | None = None
    reference: str | None = None
    sandbox_outcome: str | None = None
    callback_url: str | None = None
    # Per-send secrets the provider needs (e.g. AR24's eIDAS OTP proof); never stored in clear.
    submit_context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProofRef:
    """A proof the provider issued: either its bytes or where to download them."""

    kind: str  # deposit | acceptance | refusal | negligence | bounce
    url: str | None = None
    content: bytes | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One normalised lifecycle step reported by a provider.

    ``provider_event_id`` must be stable across re-reads (it de-duplicates on a unique
    constraint), e.g. ``"<provider letter id>:accepted"``.
    """

    status: LetterStatus | str  # a LetterStatus, or "unknown"
    occurred_at: datetime
    provider_event_id: str
    raw: Mapping[str, Any] = field(default_factory=dict)
    proof: ProofRef | None = None
    # SHA-256 of the documents as the provider reports them, when it does (checked against ours).
    reported_document_sha256: tuple[str, ...] = ()
    # For a failed letter: (code, message) saying why, shown as the letter's ``failure``.
    failure: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    provider_letter_id: str
    events: tuple[ProviderEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderState:
    """Everything the provider currently knows about a letter, oldest event first."""

    provider_letter_id: str
    events: tuple[ProviderEvent, ...]
    final: bool = False


HttpFunction = Callable[..., requests.Response]


@dataclass(slots=True)
class ProviderContext:
    """What the bridge hands a provider: its settings and the bridge's shared tools."""

    settings: Mapping[str, Any]
    http: HttpFunction
    now: Callable[[], datetime]
    public_url: str
    # Lets the sandbox keep its provider-side state; real providers ignore it.
    extras: dict[str, Any] = field(default_factory=dict)
    # Where a download too large for memory (a proof) is spooled; proofs are personal data, and
    # the bridge gives its own owner-only directory (LRE_DATA_DIR/spool).
    spool_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))


def new_proof_file(context: ProviderContext) -> HashingFile:
    """An empty file for a proof being downloaded (what ``Provider.download_proof`` returns):
    in memory up to ``spool.MEMORY_BYTES``, on disk under ``context.spool_dir`` past it."""
    return HashingFile(context.spool_dir, memory_bytes=spool.MEMORY_BYTES)


def proof_file_of(context: ProviderContext, content: bytes) -> HashingFile:
    """A proof the adapter already holds in memory, as ``download_proof`` returns one."""
    proof = new_proof_file(context)
    proof.write(content)
    return proof


@runtime_checkable
class Provider(Protocol):
    """A qualified electronic registered letter provider."""

    name: ClassVar[str]
    display_name: ClassVar[str]
    # Whether the provider calls us back; if False the bridge relies on polling alone.
    supports_webhooks: ClassVar[bool]

    def __init__(self, context: ProviderContext) -> None: ...

    def prepare_submission(self, sender_otp: str | None) -> dict[str, Any]:
        """Run in the API request, before the letter is accepted: turn what the sender gave
        (e.g. AR24's 6-digit eIDAS OTP) into the context ``submit`` needs. The result is stored
        encrypted and passed back as ``OutgoingLetter.submit_context``. Raises ProviderError
        (with ``field="sender_otp"``) when the letter cannot be sent as it stands.
        """
        ...

    def check_letter(self, letter: OutgoingLetter) -> None:
        """Run in the API request: refuse (ProviderError, permanent, ``field`` named) a letter this
        provider would reject later, so the user learns it at once rather than from a failed letter."""
        ...

    def submit(self, letter: OutgoingLetter) -> SubmitResult:
        """Send the letter. Raises ProviderError (``ambiguous=True`` if it may have been sent)."""
        ...

    def find_by_reference(self, letter_id: str) -> str | None:
        """The provider's id of a letter we submitted with reference ``letter_id``, if any."""
        ...

    def fetch_state(self, provider_letter_id: str) -> ProviderState:
        """Re-read the letter at the provider."""
        ...

    def download_proof(self, proof: ProofRef) -> HashingFile:
        """The proof PDF, byte-exact as the provider serves it, in a temporary file
        (``new_proof_file``) written as it arrived: its ``size`` and ``sha256`` are counted on the
        way, so that a proof of any size up to the answer limit takes a piece of memory, not its
        size. The caller owns the file: it reads it from ``rewound()`` and closes it."""
        ...

    def parse_callback(
        self, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
    ) -> str | None:
        """Authenticate a callback and return the provider letter id it is about.

        The callback is only a hint: the bridge re-reads the letter with ``fetch_state`` before
        emitting any event. Raises WebhookRejected when it is not authentic.
        """
        ...


def settings_schema_fields(provider_cls: type[Provider]) -> tuple[str, ...]:
    """The settings keys a provider declares (``SETTINGS`` class attribute), if any."""
    return tuple(getattr(provider_cls, "SETTINGS", ()))
