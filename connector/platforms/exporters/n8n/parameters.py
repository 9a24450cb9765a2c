"""Catalogue inputs as n8n node parameters (types, template locator and mapper, binary files, a batch's
rows read per input item) and the runtime spec that says where each value goes.
"""

from __future__ import annotations

from typing import Any

from connector.platforms.exporters.n8n.names import HELP_OVERRIDES, camel, help_text, sentence, title_case
from connector.platforms.model import Dynamic, FieldType, InputField


def _typed(f: InputField) -> dict[str, Any]:
    """The n8n type (and type options, default) of a plain input."""
    if f.choices:
        options = sorted(({"name": c.label.en, "value": c.value} for c in f.choices), key=lambda o: o["name"])
        default = f.default if f.default is not None else options[0]["value"]
        if f.list:
            return {"type": "multiOptions", "options": options, "default": []}
        return {"type": "options", "options": options, "default": default}
    if f.type in (FieldType.INTEGER, FieldType.NUMBER):
        return {"type": "number", "default": float(f.default) if f.type == FieldType.NUMBER and f.default
                else int(f.default or 0)}
    if f.type == FieldType.BOOLEAN:
        return {"type": "boolean", "default": f.default == "true"}
    if f.type == FieldType.DATETIME:
        return {"type": "dateTime", "default": f.default or ""}
    if f.type == FieldType.OBJECT:
        return {
            "type": "fixedCollection", "typeOptions": {"multipleValues": True}, "default": {},
            "placeholder": "Add Pair",
            "options": [{"name": "pairs", "displayName": "Pair", "values": [
                {"displayName": "Key", "name": "key", "type": "string", "default": ""},
                {"displayName": "Value", "name": "value", "type": "string", "default": ""},
            ]}],
        }
    typed: dict[str, Any] = {"type": "string", "default": f.default or ""}
    if f.type == FieldType.TEXT:
        typed["typeOptions"] = {"rows": 4}
    if f.type == FieldType.PASSWORD:
        typed["typeOptions"] = {"password": True}
    return typed


def parameter(f: InputField, required: bool) -> dict[str, Any]:
    param: dict[str, Any] = {"displayName": title_case(f.label.en), "name": camel(f.key), **_typed(f)}
    if required:
        param["required"] = True
    if f.placeholder:
        param["placeholder"] = f.placeholder
    description = help_text(f)
    if description:
        param["description"] = description
    return param


def template_locator(f: InputField) -> dict[str, Any]:
    # Its fields appear below only where the template's fields are inputs (not for a batch's rows).
    description = "The letter template; its fields appear below once chosen." if f.alters_dynamic_fields \
        else help_text(f) or "The letter template."
    return {
        "displayName": "Template", "name": "template", "type": "resourceLocator", "required": True,
        "default": {"mode": "list", "value": ""},
        "description": description,
        "modes": [
            {"displayName": "From List", "name": "list", "type": "list",
             "typeOptions": {"searchListMethod": "searchTemplates", "searchable": True}},
            {"displayName": "By Name", "name": "name", "type": "string", "placeholder": "mise_en_demeure"},
        ],
    }


def template_mapper() -> dict[str, Any]:
    return {
        "displayName": "Template Fields", "name": "data", "type": "resourceMapper", "required": True,
        "default": {"mappingMode": "defineBelow", "value": None},
        "noDataExpression": True,
        "typeOptions": {
            "loadOptionsDependsOn": ["template.value"],
            "resourceMapper": {
                "resourceMapperMethod": "getTemplateFields", "mode": "add",
                "fieldWords": {"singular": "field", "plural": "fields"},
                "addAllFields": True, "multiKeyMatch": False, "supportAutoMap": True,
            },
        },
    }


def file_parameters(f: InputField) -> list[dict[str, Any]]:
    """A file input: from a binary property of the item (n8n's way) or a URL the bridge downloads."""
    name = camel(f.key)
    return [
        {"displayName": title_case(f.label.en) + " Source", "name": f"{name}Source", "type": "options",
         "default": "binary", "description": HELP_OVERRIDES["pdf"],
         "options": [{"name": "Binary Property of the Input Item", "value": "binary"},
                     {"name": "URL", "value": "url"}]},
        {"displayName": "Input Binary Field", "name": f"{name}BinaryProperty", "type": "string", "default": "data",
         "required": True, "hint": "The name of the input binary field containing the PDF",
         "displayOptions": {"show": {f"{name}Source": ["binary"]}}},
        {"displayName": title_case(f.label.en) + " URL", "name": f"{name}Url", "type": "string", "default": "",
         "required": True, "placeholder": "https://example.com/letter.pdf",
         "displayOptions": {"show": {f"{name}Source": ["url"]}}},
    ]


def file_list_parameters(f: InputField) -> list[dict[str, Any]]:
    """A list of files common to the whole run: binary properties of the first input item, or URLs."""
    name = camel(f.key)
    return [
        {"displayName": title_case(f.label.en) + " Source", "name": f"{name}Source", "type": "options",
         "default": "none", "description": sentence(f.help.en) if f.help else None,
         "options": [{"name": "Binary Properties of the First Input Item", "value": "binary"},
                     {"name": "None", "value": "none"}, {"name": "URLs", "value": "url"}]},
        {"displayName": "Input Binary Fields", "name": f"{name}BinaryProperties", "type": "string",
         "default": "data", "required": True, "placeholder": "ordre_du_jour, comptes",
         "hint": "Names of the first input item's binary fields holding the PDFs, separated by commas",
         "displayOptions": {"show": {f"{name}Source": ["binary"]}}},
        {"displayName": title_case(f.label.en) + " URLs", "name": f"{name}Urls", "type": "string", "default": "",
         "required": True, "placeholder": "https://example.com/ordre-du-jour.pdf",
         "hint": "URLs the bridge downloads, separated by commas or new lines",
         "displayOptions": {"show": {f"{name}Source": ["url"]}}},
    ]


ROW_FIELDS = "rowFields"


def _row_name(child: InputField) -> str:
    return "row" + camel(child.key)[:1].upper() + camel(child.key)[1:]


def row_parameters(f: InputField, show: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A list of objects (a batch's rows) in n8n: every input item is one row. Each child is a
    parameter read per item (its default maps the item's field of the same name); the node sends
    all the rows in one request."""
    top: list[dict[str, Any]] = []
    optional: list[dict[str, Any]] = []
    specs: list[dict[str, Any]] = []
    per_item = "Read for each input item (one row per item)."
    for child in f.children:
        param = parameter(child, child.required)
        param["name"] = _row_name(child)
        param["displayName"] = "Row " + title_case(child.label.en)
        if param["type"] == "string":
            param["default"] = f"={{{{ $json.{child.key} }}}}"
        param["description"] = " ".join(filter(None, (param.get("description"), per_item)))
        spec: dict[str, Any] = {"name": param["name"], "key": child.key}
        if child.type == FieldType.OBJECT:
            # Key/value pairs, each value an expression on the item ({{ $json.lots }}): the row's
            # ``data.<key>`` columns, the item's text sent as it is (no JSON for anyone to write).
            spec["kind"] = "pairs"
            if child.dynamic == Dynamic.TEMPLATE_FIELDS:
                param["displayName"] = "Row Template Values"
                param["description"] = ("The row's own template values: the key is a field of the template (e.g. "
                                        "lots), the value an expression on the item (e.g. {{ $json.lots }}). A list "
                                        "field takes one item per line. " + per_item)
        if child.required:
            top.append({**param, "displayOptions": show})
            specs.append({**spec, "where": "top"})
        else:
            optional.append(param)
            specs.append({**spec, "where": "rowFields"})
    if optional:
        top.append({"displayName": "Row Fields", "name": ROW_FIELDS, "type": "collection", "default": {},
                    "placeholder": "Add Row Field", "displayOptions": show,
                    "description": "Fields of each row, read for each input item",
                    "options": sorted(optional, key=lambda p: p["displayName"])})
    return top, {"to": f.to, "params": specs}


def is_limit(f: InputField) -> bool:
    return f.key == "limit" and f.to is None


def spec_param(f: InputField, where: str, path: str) -> dict[str, Any]:
    """What the runtime needs to read a parameter and put its value in the request.

    An input named in the endpoint's path (``/v1/templates/{template}/render``) goes there, whatever
    its target for the other operations that share it.
    """
    kind = "plain"
    if f.dynamic == Dynamic.TEMPLATES:
        kind = "locator"
    elif f.dynamic == Dynamic.TEMPLATE_FIELDS:
        kind = "mapper"
    elif f.type == FieldType.FILE and f.list:
        kind = "fileList"
    elif f.type == FieldType.FILE:
        kind = "file"
    elif f.type == FieldType.OBJECT:
        kind = "pairs"
    elif f.key == "idempotency_key":
        kind = "idempotencyKey"
    elif f.type == FieldType.DATETIME:
        kind = "dateTime"
    to = f"path.{f.key}" if "{" + f.key + "}" in path else f.to
    if kind == "fileList" and to is None:
        to = f"body.{f.key}"  # a list of files: the body's documents list of that name
    spec: dict[str, Any] = {"name": camel(f.key), "to": to, "kind": kind, "where": where}
    return {k: v for k, v in spec.items() if v is not None}
