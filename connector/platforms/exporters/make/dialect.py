"""Make's words shared by every part of the app: the ids of the fixed components, parameter and interface types,
and the id forms (camelCase components, kebab-case folders).
"""

from __future__ import annotations

import re
from typing import Any

from connector.platforms.model import FieldType

PLATFORM = "make"
CONNECTION = "lreBridge"
LIST_TEMPLATES_RPC = "listTemplates"
TEMPLATE_FIELDS_RPC = "templateFields"
UNIVERSAL_MODULE = "makeApiCall"
IDEMPOTENCY_FUNCTION = "idempotencyKey"
# A list of files (a batch's common attachments) as the bridge's documents: [{filename, content_base64|url}].
DOCUMENTS_FUNCTION = "documentList"
# A 422 that lists problems (a batch's bad rows, error.details): every one after the message.
PROBLEMS_FUNCTION = "problemList"
# A batch's rows with their key/value template values as the bridge's ``data.<key>`` columns.
ROWS_FUNCTION = "rowList"

PARAMETER_TYPES = {
    FieldType.STRING: "text", FieldType.TEXT: "text", FieldType.EMAIL: "email", FieldType.INTEGER: "uinteger",
    FieldType.NUMBER: "number", FieldType.BOOLEAN: "boolean", FieldType.DATETIME: "date",
    FieldType.PASSWORD: "password", FieldType.OBJECT: "array", FieldType.FILE: "url",
}
INTERFACE_TYPES = {**PARAMETER_TYPES, FieldType.EMAIL: "text", FieldType.OBJECT: "collection",
                   FieldType.FILE: "buffer", FieldType.INTEGER: "integer"}


def camel(key: str) -> str:
    """``send_letter_from_template`` -> ``sendLetterFromTemplate`` (Make's component id form)."""
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)


def kebab(component_id: str) -> str:
    """``sendLetterFromTemplate`` -> ``send-letter-from-template`` (the local-development folder name)."""
    return re.sub(r"(?<!^)([A-Z])", r"-\1", component_id).lower()


def without_empty(values: dict[str, Any]) -> dict[str, Any]:
    """Drop empty keys: Make's schemas refuse an empty help or label."""
    return {k: v for k, v in values.items() if v not in (None, False, [], "")}
