"""Action and search modules: which operations Make offers, their request (communication), their
interface (outputs) and samples.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from connector.platforms.catalog import CATALOG
from connector.platforms.exporters.make.dialect import (
    DOCUMENTS_FUNCTION,
    IDEMPOTENCY_FUNCTION,
    INTERFACE_TYPES,
    PLATFORM,
    ROWS_FUNCTION,
    camel,
)
from connector.platforms.model import Catalog, Dynamic, Endpoint, FieldType, InputField, Kind, Operation, OutputField

CONTENT_DISPOSITION_NAME = (
    "{{replace(get(headers; 'content-disposition'); '/^.*filename=\"?([^\";]+)\"?.*$/'; '$1')}}"
)
# Labels of the objects that group outputs (``recipient.email`` -> "Destinataire" > "E-mail…").
PARENT_LABELS = {
    "recipient": {"en": "Recipient", "fr": "Destinataire"}, "template": {"en": "Template", "fr": "Modèle"},
    "documents": {"en": "Documents", "fr": "Documents"}, "failure": {"en": "Failure", "fr": "Échec"},
    "links": {"en": "Links", "fr": "Liens"}, "proof": {"en": "Proof", "fr": "Preuve"},
    "certificate": {"en": "Certificate", "fr": "Certificat"},
}
# Render preview: outputs that come from the answer's headers, not from its body.
RENDER_OUTPUTS = {
    "template": "{{parameters.template}}",
    "template_version": "{{parseNumber(get(headers; 'x-template-version'))}}",
    "sha256": "{{get(headers; 'x-content-sha256')}}",
    "size": "{{length(body)}}",
    "letter_date": "{{formatDate(now; 'YYYY-MM-DD'; 'Europe/Paris')}}",
}


def make_operations(catalog: Catalog = CATALOG) -> tuple[Operation, ...]:
    """The operations the Make app offers (those whose ``platforms`` name Make).

    A search by ID or else by other inputs (``find_letter``: ``path.letter_id`` on ``/v1/letters``)
    becomes a "get" action on ``<path>/{id}`` in Make: the search by reference is another module.
    """
    result: list[Operation] = []
    for op in catalog.operations:
        if PLATFORM not in op.platforms:
            continue
        by_id = [f for f in op.inputs if f.to and f.to.startswith("path.")
                 and "{" + f.to.removeprefix("path.") + "}" not in op.endpoint.path]
        if op.kind == Kind.SEARCH and by_id:
            f = by_id[0]
            placeholder = "{" + f.to.removeprefix("path.") + "}" if f.to else ""
            op = replace(op, kind=Kind.CREATE, inputs=(replace(f, required=True),),
                         endpoint=Endpoint(op.endpoint.method, f"{op.endpoint.path}/{placeholder}"))
        result.append(op)
    return tuple(result)


# --- requests ------------------------------------------------------------------------------------

def _value(f: InputField) -> Any:
    if f.type == FieldType.OBJECT and f.dynamic is None:
        return f"{{{{toCollection(parameters.{f.key}; 'key'; 'value')}}}}"
    if f.type == FieldType.DATETIME:
        return f"{{{{formatDate(parameters.{f.key}; 'YYYY-MM-DDTHH:mm:ssZ')}}}}"
    return f"{{{{parameters.{f.key}}}}}"


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    """Put ``value`` at a dotted path; digits make list items (``documents.0.url``)."""
    parts = path.split(".")
    node: Any = tree
    for part, following in zip(parts, parts[1:] + [None], strict=True):
        if following is None:
            if isinstance(node, list):
                node.append(value)  # only one item per list in the catalogue today
            else:
                node[part] = value
            return
        child: Any = [] if following.isdigit() else {}
        if isinstance(node, list):
            index = int(part)
            while len(node) <= index:
                node.append({})
            node = node[index]
        else:
            node = node.setdefault(part, child)


def request_parts(op: Operation) -> dict[str, Any]:
    """URL, method, headers, qs and body of an operation, in IML, from its inputs' targets."""
    url = op.endpoint.path
    headers: dict[str, Any] = {}
    qs: dict[str, Any] = {}
    body: dict[str, Any] = {}
    for f in op.inputs:
        if f.dynamic == Dynamic.TEMPLATE_FIELDS:
            body["data"] = "{{parameters.data}}"
            continue
        if f.type == FieldType.FILE and f.list and f.to is None:
            # A list of files goes to the body's list of that name, as the bridge's documents.
            body[f.key] = f"{{{{{DOCUMENTS_FUNCTION}(parameters.{f.key})}}}}"
            continue
        if f.to is None:
            continue
        if f.children and any(child.type == FieldType.OBJECT for child in f.children):
            # Rows whose key/value pairs become their ``data.<key>`` columns (the rowList function).
            _set(body, f.to.partition(".")[2], f"{{{{{ROWS_FUNCTION}(parameters.{f.key})}}}}")
            continue
        location, _, path = f.to.partition(".")
        if location == "path":
            url = url.replace("{" + path + "}", "{{" + f"parameters.{f.key}" + "}}")
        elif location == "query":
            qs[path] = _value(f)
        elif location == "header":
            if path == "Idempotency-Key":
                headers[path] = (f"{{{{ifempty(parameters.{f.key}; "
                                 f"{IDEMPOTENCY_FUNCTION}('{camel(op.key)}'; parameters))}}}}")
            else:
                headers[path] = _value(f)
        elif f.type == FieldType.FILE:
            # The file pair from a previous module, sent inline; otherwise the URL the bridge downloads.
            parent = path.rsplit(".", 1)[0]
            _set(body, f"{parent}.content_base64", f"{{{{base64(parameters.{f.key}_data)}}}}")
            _set(body, path, f"{{{{parameters.{f.key}_url}}}}")
        elif path.endswith(".filename") and any(i.type == FieldType.FILE and i.to and i.to.rsplit(".", 1)[0]
                                                == f.to.rsplit(".", 1)[0] for i in op.inputs):
            file_input = next(i for i in op.inputs if i.type == FieldType.FILE)
            _set(body, path, f"{{{{ifempty(parameters.{file_input.key}_name; parameters.{f.key})}}}}")
        else:
            _set(body, path, _value(f))
    if op.key == "render_letter":
        url = url.replace("{template}", "{{parameters.template}}")
        body.pop("template", None)
        body["letter_date"] = RENDER_OUTPUTS["letter_date"]
    parts: dict[str, Any] = {"url": url, "method": op.endpoint.method}
    if headers:
        parts["headers"] = headers
    if qs:
        parts["qs"] = qs
    if body and op.endpoint.method in ("POST", "PUT", "PATCH"):
        parts["body"] = body
        parts["type"] = "json"
    return parts


def _output_value(op: Operation, o: OutputField) -> Any:
    if o.type == FieldType.FILE:
        return "{{body}}"
    if o.key == "filename":
        return CONTENT_DISPOSITION_NAME
    if op.key == "render_letter" and o.key in RENDER_OUTPUTS:
        return RENDER_OUTPUTS[o.key]
    return f"{{{{parameters.{o.key}}}}}"


def communication(op: Operation) -> dict[str, Any]:
    spec = request_parts(op)
    if op.file_response:
        spec["response"] = {"type": "binary",
                            "output": {o.key: _output_value(op, o) for o in op.outputs}}
    elif op.kind == Kind.SEARCH:
        spec.setdefault("qs", {}).pop("limit", None)
        spec["qs"]["limit"] = "{{min(ifempty(parameters.limit; 20); 100)}}"
        spec["response"] = {"iterate": "{{body.data}}", "output": "{{item}}",
                            "limit": "{{ifempty(parameters.limit; 20)}}"}
        spec["pagination"] = {"qs": {"cursor": "{{body.next_cursor}}"}, "condition": "{{body.next_cursor}}"}
    else:
        spec["response"] = {"output": "{{body}}"}
    return spec


# --- interfaces and samples --------------------------------------------------------------------

def _interface_type(op: Operation, o: OutputField) -> dict[str, Any]:
    if o.type == FieldType.FILE:
        return {"type": "buffer", "semantic": "file:data"}
    if op.file_response and o.key == "filename":
        return {"type": "filename", "semantic": "file:name"}
    return {"type": INTERFACE_TYPES[o.type]}


def interface(op: Operation, lang: str, outputs: tuple[OutputField, ...] | None = None) -> list[dict[str, Any]]:
    """Output fields as Make's interface: dotted keys nest collections, ``[]`` marks arrays."""
    root: list[dict[str, Any]] = []
    for o in outputs if outputs is not None else op.outputs:
        if o.type == FieldType.FILE and not op.file_response:
            continue
        node = root
        parts = o.key.split(".")
        for part in parts[:-1]:
            name = part.removesuffix("[]")
            found = next((p for p in node if p["name"] == name), None)
            if found is None:
                label = PARENT_LABELS.get(name, {}).get(lang) or name.replace("_", " ").capitalize()
                if part.endswith("[]"):
                    found = {"name": name, "type": "array", "label": label,
                             "spec": {"type": "collection", "spec": []}}
                else:
                    found = {"name": name, "type": "collection", "label": label, "spec": []}
                node.append(found)
            node = found["spec"]["spec"] if found["type"] == "array" else found["spec"]
        node.append({"name": parts[-1], "label": o.label.in_(lang), **_interface_type(op, o)})
    return root


def sample(op: Operation) -> dict[str, Any]:
    files = {o.key for o in op.outputs if o.type == FieldType.FILE}
    data = {k: v for k, v in op.sample.items() if k not in files}
    if op.file_response:
        data.update({k: "JVBERi0xLjcKJcfsj6IK" for k in files})  # "%PDF-1.7…" as Make shows a buffer
    return data
