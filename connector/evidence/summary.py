"""The human-readable summary inside each package (``summary.txt`` and ``summary.html``).

Written for a lawyer or a judge, in French then English: who sent what to whom, when each step
happened, which files prove it, and how to check that nothing changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from jinja2 import Environment, StrictUndefined

from connector.letters.vocabulary import PROOF_LABELS as VOCAB_PROOF_LABELS
from connector.letters.vocabulary import STATUS_PHRASES

# (French, English) as the summary prints them; the words are defined in connector.letters.vocabulary.
STATUS_LABELS: dict[str, tuple[str, str]] = {status.value: (phrase.fr, phrase.en)
                                             for status, phrase in STATUS_PHRASES.items()}
PROOF_LABELS: dict[str, tuple[str, str]] = {kind.value: (label.fr, label.en)
                                            for kind, label in VOCAB_PROOF_LABELS.items()}


@dataclass(frozen=True, slots=True)
class SummaryFile:
    path: str
    sha256: str
    size: int
    label_fr: str = ""
    label_en: str = ""


@dataclass(frozen=True, slots=True)
class SummaryFacts:
    """What the summary states; every value already formatted as text."""

    bag: str
    letter_id: str
    status: str
    reference: str | None
    sender: str
    recipient: str
    recipient_email: str
    provider: str
    provider_letter_id: str | None
    created_at: str | None
    deposited_at: str | None
    completed_at: str | None
    sealed_at: str
    key_fingerprint: str
    key_url: str | None
    documents: Sequence[SummaryFile] = ()
    proofs: Sequence[SummaryFile] = ()
    timeline: Sequence[Mapping[str, Any]] = ()  # {"occurred_at", "type", "etsi_event"}
    alerts: Sequence[str] = field(default_factory=tuple)


_TEMPLATES = files("connector") / "assets" / "evidence"
_TEXT_ENV = Environment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)
_HTML_ENV = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)


def render_summary(facts: SummaryFacts) -> tuple[bytes, bytes]:
    """(summary.txt, summary.html) as UTF-8 bytes."""
    status_fr, status_en = STATUS_LABELS.get(facts.status, (facts.status, facts.status))
    context = {"f": facts, "status_fr": status_fr, "status_en": status_en}
    text = _TEXT_ENV.from_string((_TEMPLATES / "summary.txt.j2").read_text("utf-8")).render(**context)
    html = _HTML_ENV.from_string((_TEMPLATES / "summary.html.j2").read_text("utf-8")).render(**context)
    return text.encode("utf-8"), html.encode("utf-8")


def proof_labels(kind: str) -> tuple[str, str]:
    """French and English names of a proof kind (the kind itself when unknown)."""
    return PROOF_LABELS.get(kind, (kind, kind))
