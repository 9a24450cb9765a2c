"""Catalogue inputs as Make parameters (mappable or static): file pairs, lists of files, arrays of
collections for a list of objects, selects fed by RPCs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from connector.platforms.exporters.make.dialect import (
    LIST_TEMPLATES_RPC,
    PARAMETER_TYPES,
    TEMPLATE_FIELDS_RPC,
    without_empty,
)
from connector.platforms.model import Dynamic, FieldType, InputField, Operation


def _file_pair(f: InputField, lang: str) -> list[dict[str, Any]]:
    """A FILE input: Make's file pair (name + buffer, pre-mapped from a previous module) or a URL."""
    label = f.label.in_(lang)
    word = {"en": ("file name", "data", "or its URL"), "fr": ("nom du fichier", "données", "ou son URL")}[lang]
    return [
        {"name": f"{f.key}_name", "type": "filename", "label": f"{label} – {word[0]}", "semantic": "file:name"},
        {"name": f"{f.key}_data", "type": "buffer", "label": f"{label} – {word[1]}", "semantic": "file:data"},
        {"name": f"{f.key}_url", "type": "url", "label": f"{label} – {word[2]}"},
    ]


def _file_list(f: InputField, lang: str) -> dict[str, Any]:
    """A list of files: an array of collections, each Make's file pair (name + buffer) or a URL."""
    word = {"en": ("File name", "Data", "Or its URL"), "fr": ("Nom du fichier", "Données", "Ou son URL")}[lang]
    return without_empty({
        "name": f.key, "type": "array", "label": f.label.in_(lang), "help": f.help.in_(lang) if f.help else None,
        "required": f.required,
        "spec": [{"name": "filename", "type": "filename", "label": word[0], "semantic": "file:name"},
                 {"name": "data", "type": "buffer", "label": word[1], "semantic": "file:data"},
                 {"name": "url", "type": "url", "label": word[2]}],
    })


def parameter(f: InputField, lang: str) -> list[dict[str, Any]]:
    """One catalogue input as Make parameters (a FILE input gives three; template fields none:
    they come from the ``templateFields`` RPC nested under the template dropdown; a list of objects
    (``children``: a batch's rows) is an array of collections, one collection per row, in which the
    template's fields are key/value pairs: Make cannot nest an RPC's fields in an array's items)."""
    if f.dynamic == Dynamic.TEMPLATE_FIELDS:
        return []
    if f.type == FieldType.FILE and f.list:
        return [_file_list(f, lang)]
    if f.type == FieldType.FILE:
        return _file_pair(f, lang)
    if f.children:
        return [without_empty({
            "name": f.key, "type": "array", "label": f.label.in_(lang),
            "help": f.help.in_(lang) if f.help else None, "required": f.required,
            "spec": [p for child in f.children for p in parameter(replace(child, dynamic=None), lang)],
        })]
    param: dict[str, Any] = {
        "name": f.key,
        "type": PARAMETER_TYPES[f.type],
        "label": f.label.in_(lang),
        "help": f.help.in_(lang) if f.help else None,
        "required": f.required,
        "advanced": f.group is not None and f.group.value == "advanced",
    }
    if f.type == FieldType.TEXT:
        param["multiline"] = True
    if f.type == FieldType.DATETIME:
        param["time"] = True
    if f.type == FieldType.OBJECT:
        param["spec"] = [{"name": "key", "type": "text", "label": {"en": "Key", "fr": "Clé"}[lang]},
                         {"name": "value", "type": "text", "label": {"en": "Value", "fr": "Valeur"}[lang]}]
    if f.default is not None:
        param["default"] = int(f.default) if f.type == FieldType.INTEGER else f.default
    if f.choices:
        param["type"] = "select"
        param["options"] = [{"label": c.label.in_(lang), "value": c.value} for c in f.choices]
        if f.list:
            param["multiple"] = True
    if f.dynamic == Dynamic.TEMPLATES:
        param["type"] = "select"
        param["options"] = {"store": f"rpc://{LIST_TEMPLATES_RPC}"}
        if f.alters_dynamic_fields:  # the chosen template's fields appear under it
            param["options"]["nested"] = f"rpc://{TEMPLATE_FIELDS_RPC}"
    return [without_empty(param)]


def parameters(op: Operation, lang: str, inputs: tuple[InputField, ...] | None = None) -> list[dict[str, Any]]:
    return [p for f in (op.inputs if inputs is None else inputs) for p in parameter(f, lang)]
