"""The catalogue: every action, search and trigger the no-code platforms offer, written once.

This package is data, one module per resource: ``letters``, ``templates``, ``triggers`` (a letter's
status), ``evidence`` (downloads), ``consents``, ``batches``, ``alerts`` and ``account`` (the
connection), with the inputs they share in ``fields`` and the items triggers give in ``items``.
The Zapier, Make and n8n apps are derived from it (``platforms/exporters/``); ``GET /v1/catalog``
serves it as JSON. Nothing here knows a platform's dialect: a field says what it is (type, labels
in French and English, choices, where its value goes in the bridge's API) and each exporter
translates.

Where a value goes is written ``<location>.<path>``: ``body.recipient.email`` (JSON body, dots
make nested objects, digits make list items), ``query.reference``, ``path.letter_id`` or
``header.Idempotency-Key``. A field without a target is read by the platform code itself.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from connector.platforms.catalog.account import AUTHENTICATION
from connector.platforms.catalog.alerts import NEW_ALERT
from connector.platforms.catalog.batches import SEND_BATCH
from connector.platforms.catalog.consents import (
    CONSENT_ANSWERED,
    INVITE_CONSENT,
    LIST_CONSENTS,
    RECORD_CONSENT,
    REVOKE_CONSENT,
)
from connector.platforms.catalog.evidence import DOWNLOAD_DOCUMENT, DOWNLOAD_EVIDENCE, DOWNLOAD_PROOF
from connector.platforms.catalog.fields import RECIPIENT_TYPES, SANDBOX_OUTCOMES, STATUS_LABELS
from connector.platforms.catalog.items import CATALOG_PROOF_KINDS, account_event_item, trigger_item
from connector.platforms.catalog.letters import FIND_LETTER, SEARCH_LETTERS, SEND_FROM_TEMPLATE, SEND_PDF
from connector.platforms.catalog.templates import RENDER, TEMPLATE_FIELD_TYPES, TEMPLATE_LIST
from connector.platforms.catalog.triggers import STATUS_CHANGED, STATUS_TRIGGERS, event_sample
from connector.platforms.model import CATALOG_VERSION, GROUP_LABELS, LANGUAGES, Catalog, SearchOrCreate, Text

__all__ = [
    "CATALOG", "RECIPIENT_TYPES", "SANDBOX_OUTCOMES", "STATUS_LABELS", "account_event_item", "catalog_json_schema",
    "catalog_to_dict", "event_sample", "trigger_item",
]

CATALOG = Catalog(
    version=CATALOG_VERSION,
    languages=LANGUAGES,
    groups=GROUP_LABELS,
    authentication=AUTHENTICATION,
    # The order is the apps' order (menus, generated files).
    operations=(
        SEND_FROM_TEMPLATE, SEND_PDF, RENDER, FIND_LETTER, TEMPLATE_LIST, STATUS_CHANGED, *STATUS_TRIGGERS,
        SEARCH_LETTERS, DOWNLOAD_PROOF, DOWNLOAD_DOCUMENT, DOWNLOAD_EVIDENCE,
        RECORD_CONSENT, LIST_CONSENTS, REVOKE_CONSENT,
        INVITE_CONSENT, CONSENT_ANSWERED,
        NEW_ALERT,
        SEND_BATCH,
    ),
    search_or_creates=(
        SearchOrCreate("find_letter", "send_letter_from_template",
                       Text("Find or Send a Letter", "Trouver ou envoyer une lettre"),
                       Text("Finds a letter by reference, and sends it from a template if there is none.",
                            "Trouve une lettre par référence, et l'envoie depuis un modèle s'il n'y en a pas.")),
    ),
    template_field_types=TEMPLATE_FIELD_TYPES,
    proof_kinds=CATALOG_PROOF_KINDS,
)


# --- serialisation -------------------------------------------------------------------------------

_ADAPTER: TypeAdapter[Catalog] = TypeAdapter(Catalog)


def catalog_to_dict(catalog: Catalog = CATALOG) -> dict[str, Any]:
    """The catalogue as plain JSON data (what ``GET /v1/catalog`` serves)."""
    data: dict[str, Any] = _ADAPTER.dump_python(catalog, mode="json")
    return data


def catalog_json_schema() -> dict[str, Any]:
    """JSON Schema of :func:`catalog_to_dict`'s output (``$defs`` inline, for OpenAPI components)."""
    schema: dict[str, Any] = _ADAPTER.json_schema(ref_template="#/components/schemas/Catalog{model}")
    return schema
