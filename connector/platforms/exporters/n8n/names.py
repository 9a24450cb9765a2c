"""Where each catalogue operation sits in the n8n node (resource, operation, action text) and n8n's
wording rules (Title Case names, descriptions ending with a period, *email*).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from connector.platforms.model import InputField, Operation

PLATFORM = "n8n"


@dataclass(frozen=True)
class N8nName:
    """Where a catalogue operation sits in the n8n node: resource, operation value and labels."""

    resource: str
    operation: str
    name: str  # the operation's option name
    action: str  # n8n's "action" text (shown in the nodes panel)
    # Only these inputs (a catalogue search split in two n8n operations), and whether the answer is
    # a list of which the first item is the result.
    inputs: tuple[str, ...] | None = None
    first_of_list: bool = False
    required: tuple[str, ...] = ()


RESOURCE_NAMES: dict[str, str] = {
    "letter": "Letter", "template": "Template", "proof": "Proof", "document": "Document",
    "evidencePackage": "Evidence Package", "consent": "Consent", "batch": "Batch",
}

N8N_NAMES: dict[str, tuple[N8nName, ...]] = {
    "send_letter_from_template": (N8nName("letter", "sendFromTemplate", "Send From Template",
                                          "Send a registered letter from a template"),),
    "send_letter_with_pdf": (N8nName("letter", "sendPdf", "Send PDF", "Send a PDF as a registered letter"),),
    "find_letter": (
        N8nName("letter", "get", "Get", "Get a letter", inputs=("letter_id",), required=("letter_id",)),
        N8nName("letter", "findByReference", "Find by Reference", "Find a letter by your reference",
                inputs=("reference",), first_of_list=True, required=("reference",)),
    ),
    "search_letters": (N8nName("letter", "getMany", "Get Many", "Get many letters"),),
    "template_list": (N8nName("template", "getMany", "Get Many", "Get many templates"),),
    "render_letter": (N8nName("template", "render", "Render Preview", "Render a letter preview as PDF"),),
    "download_proof": (N8nName("proof", "download", "Download", "Download a proof"),),
    "download_document": (N8nName("document", "download", "Download", "Download a letter's document"),),
    "download_evidence": (N8nName("evidencePackage", "download", "Download", "Download an evidence package"),),
    "record_consent": (N8nName("consent", "record", "Record", "Record a consent"),),
    "list_consents": (N8nName("consent", "getMany", "Get Many", "Get many consents"),),
    "revoke_consent": (N8nName("consent", "revoke", "Revoke", "Revoke a consent"),),
    "send_batch": (N8nName("batch", "send", "Send", "Send a batch of registered letters"),),
}
# Operations whose endpoint answers with the file itself even when the catalogue does not say so.
BINARY_RESPONSE = {"render_letter"}

# Help texts that name another platform in the catalogue, said for n8n.
HELP_OVERRIDES: dict[str, str] = {
    "idempotency_key": "Leave empty: a key derived from the execution, this node and the item makes a retried "
                       "execution never send twice. Set it (e.g. a row ID) to decide yourself what counts as "
                       "the same letter.",
    "pdf": "Where the PDF comes from: a binary property of the input item (e.g. from Read File or HTTP Request), "
           "or a URL the bridge downloads.",
}

SMALL_WORDS = {"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with"}


def camel(key: str) -> str:
    """``recipient_email`` -> ``recipientEmail`` (n8n parameter names)."""
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def title_case(text: str) -> str:
    """n8n wants Title Case display names; keeps small words, IDs and parentheses readable."""
    words = text.split(" ")
    out = []
    for index, word in enumerate(words):
        bare = word.strip("(")
        if index and bare.lower() in SMALL_WORDS:
            out.append(word.lower())
        elif bare[:1].isalpha() and bare[:1].islower():
            prefix = word[: len(word) - len(bare)]
            out.append(prefix + bare[:1].upper() + bare[1:])
        else:
            out.append(word)
    return re.sub(r"\b[Ee]-[Mm]ail", "Email", " ".join(out))


def sentence(text: str) -> str:
    """A description as n8n's lint wants it: ends with a period, says *email*."""
    text = text.strip().replace("e-mail", "email").replace("E-mail", "Email")
    return text if text.endswith((".", "?", "!")) else text + "."


def help_text(f: InputField) -> str | None:
    if f.key in HELP_OVERRIDES:
        return HELP_OVERRIDES[f.key]
    return sentence(f.help.en) if f.help else None


def names_of(op: Operation) -> tuple[N8nName, ...]:
    known = N8N_NAMES.get(op.key)
    if known:
        return known
    resource = camel(re.sub(r"[^a-z0-9]+", "_", op.noun.en.lower()).strip("_"))
    # n8n's action is the label in sentence case ("Send a batch of letters"); acronyms stay.
    action = " ".join(w if w.isupper() or not i else w.lower() for i, w in enumerate(op.label.en.split(" ")))
    return (N8nName(resource, camel(op.key), title_case(op.label.en), action),)


def shown_for(resource: str, operation: str) -> dict[str, Any]:
    return {"show": {"resource": [resource], "operation": [operation]}}
