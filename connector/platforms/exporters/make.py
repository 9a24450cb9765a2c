"""The Make custom app, derived from :mod:`connector.platforms.catalog`.

:func:`make_app_files` translates the catalogue into the layout of Make's "local development for
apps" (``makecomapp.json`` plus one IMLJSON file per component part), which the Make Apps Editor
(VS Code extension) deploys as it is. :func:`export_make_app` writes it; regenerating gives the same
bytes (a test compares them).

How catalogue operations become Make components:

- create -> action module, search -> search module (iterates, paginates with ``next_cursor``);
- instant trigger -> a dedicated webhook (attach ``POST /v1/hooks``, detach ``DELETE /v1/hooks/{id}``)
  and its instant trigger module, plus a polling trigger over the same events (``/v1/events``);
- hidden triggers feed dropdowns: RPCs (``listTemplates``; ``templateFields`` for the fields of the
  chosen template);
- plus the connection (``GET /v1/me``) and the universal "Make an API call" module.

Outputs of type FILE become Make's file pair (``filename`` + ``file`` buffer) on operations whose
endpoint answers with the file (``file_response``); on JSON operations they are left out (Make cannot
carry a file by reference): the download modules fetch them.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from connector.delivery.events import ACCOUNT_EVENTS
from connector.platforms.catalog import CATALOG
from connector.platforms.model import Catalog, Dynamic, Endpoint, FieldType, InputField, Kind, Operation, OutputField

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
FUNCTION_DIR = Path(__file__).resolve().parent / "make_functions"
README_SOURCE = Path(__file__).resolve().parent / "make_app_readme.md"

PARAMETER_TYPES = {
    FieldType.STRING: "text", FieldType.TEXT: "text", FieldType.EMAIL: "email", FieldType.INTEGER: "uinteger",
    FieldType.NUMBER: "number", FieldType.BOOLEAN: "boolean", FieldType.DATETIME: "date",
    FieldType.PASSWORD: "password", FieldType.OBJECT: "array", FieldType.FILE: "url",
}
INTERFACE_TYPES = {**PARAMETER_TYPES, FieldType.EMAIL: "text", FieldType.OBJECT: "collection",
                   FieldType.FILE: "buffer", FieldType.INTEGER: "integer"}
MODULE_TYPES = {Kind.CREATE: "action", Kind.SEARCH: "search"}
ACTION_CRUD = {"POST": "create", "GET": "read", "DELETE": "delete", "PUT": "update", "PATCH": "update"}

# The bridge's error body {"error": {"code", "message", "field"}} as a message a user can act on.
ERROR_MESSAGE = ("{{ifempty(body.error.message; 'The LRE Bridge answered ' + statusCode)}}"
                 "{{if(body.error.field; ' (field: ' + body.error.field + ')'; '')}}")
# Make retries RateLimitError and ConnectionError by itself (incomplete executions). A 409 from a send
# means the same Idempotency-Key is still in flight: retrying later is what the user needs.
STATUS_ERRORS = {
    "400": "DataError", "404": "DataError", "413": "DataError", "422": "DataError", "409": "ConnectionError",
    "429": "RateLimitError", "500": "ConnectionError", "502": "ConnectionError", "503": "ConnectionError",
    "504": "ConnectionError",
}
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


def camel(key: str) -> str:
    """``send_letter_from_template`` -> ``sendLetterFromTemplate`` (Make's component id form)."""
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)


def kebab(component_id: str) -> str:
    """``sendLetterFromTemplate`` -> ``send-letter-from-template`` (the local-development folder name)."""
    return re.sub(r"(?<!^)([A-Z])", r"-\1", component_id).lower()


def _ifs(values: dict[str, Any]) -> dict[str, Any]:
    """Drop empty keys: Make's schemas refuse an empty help or label."""
    return {k: v for k, v in values.items() if v not in (None, False, [], "")}


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


# --- parameters ----------------------------------------------------------------------------------

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
    return _ifs({
        "name": f.key, "type": "array", "label": f.label.in_(lang), "help": f.help.in_(lang) if f.help else None,
        "required": f.required,
        "spec": [{"name": "filename", "type": "filename", "label": word[0], "semantic": "file:name"},
                 {"name": "data", "type": "buffer", "label": word[1], "semantic": "file:data"},
                 {"name": "url", "type": "url", "label": word[2]}],
    })


def parameter(f: InputField, lang: str) -> list[dict[str, Any]]:
    """One catalogue input as Make parameters (a FILE input gives three; template fields none:
    they come from the ``templateFields`` RPC nested under the template dropdown; a list of objects
    (``children``: a batch's rows) is an array of collections, one collection per row)."""
    if f.dynamic == Dynamic.TEMPLATE_FIELDS:
        return []
    if f.type == FieldType.FILE and f.list:
        return [_file_list(f, lang)]
    if f.type == FieldType.FILE:
        return _file_pair(f, lang)
    if f.children:
        return [_ifs({
            "name": f.key, "type": "array", "label": f.label.in_(lang),
            "help": f.help.in_(lang) if f.help else None, "required": f.required,
            "spec": [p for child in f.children for p in parameter(child, lang)],
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
    return [_ifs(param)]


def parameters(op: Operation, lang: str, inputs: tuple[InputField, ...] | None = None) -> list[dict[str, Any]]:
    return [p for f in (op.inputs if inputs is None else inputs) for p in parameter(f, lang)]


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


# --- triggers --------------------------------------------------------------------------------------

def _event_output(op: Operation, source: str, event_id: str) -> dict[str, Any]:
    """The trigger's item, from a delivery (``body``) or a feed item (``item``) whose ``data`` is the
    letter as it was then (or the object of another event): the same keys either way. Make tells
    bundles apart by the event id (``trigger.id``), whatever the item's own ``id`` is."""
    occurred = "body.timestamp" if source == "body" else "item.occurred_at"
    data = f"{source}.data"
    kinds = [part for event_type, kind in sorted(CATALOG.proof_kinds.items())
             for part in (f"'{event_type}'", f"'{kind}'")]
    known = {
        "id": event_id,
        "type": f"{{{{{source}.type}}}}",
        "occurred_at": f"{{{{{occurred}}}}}",
        "letter_id": f"{{{{{data}.id}}}}",
        "status": f"{{{{replace({source}.type; 'letter.'; '')}}}}",
        "proof_kind": f"{{{{switch({source}.type; {'; '.join(kinds)}; null)}}}}",
        "letter_created_at": f"{{{{{data}.created_at}}}}",
    }
    # Other events (consent.*, alert.*) carry their object as ``data``: the item is the event (its id)
    # with the object's id under its name (invitation_id…) and its other keys (catalog.account_event_item).
    letter_event = all(event.startswith("letter.") for event in op.events)
    output: dict[str, Any] = {}
    if not letter_event:
        output["id"] = event_id
        output[ACCOUNT_EVENTS[op.events[0]].id_key] = f"{{{{{data}.id}}}}"
    for o in op.outputs:
        if o.type == FieldType.FILE:
            continue
        top = o.key.split(".")[0].removesuffix("[]")
        if top in output:
            continue
        if letter_event and top in known:
            output[top] = known[top]
        elif top in ("type", "occurred_at"):  # the event's own, for every kind of event
            output[top] = known[top]
        else:
            output[top] = f"{{{{{data}.{top}}}}}"
    return output


def _statuses(op: Operation) -> InputField | None:
    return next((f for f in op.inputs if f.key == "statuses" and f.choices), None)


def _events_expression(op: Operation) -> str:
    everything = ",".join(op.events)
    if _statuses(op) is None:
        return everything
    return f"{{{{ifempty(join(parameters.events; ','); '{everything}')}}}}"


def trigger_parameters(op: Operation, lang: str) -> list[dict[str, Any]]:
    """A trigger's inputs (static in Make): ``statuses`` becomes a multiple select of event types."""
    params: list[dict[str, Any]] = []
    for f in op.inputs:
        if f is _statuses(op):
            params.append(_ifs({
                "name": "events", "type": "select", "multiple": True, "label": f.label.in_(lang),
                "help": f.help.in_(lang) if f.help else None,
                "options": [{"label": c.label.in_(lang), "value": f"letter.{c.value}"} for c in f.choices],
            }))
        else:
            params.extend(parameter(f, lang))
    return params


def _filters(op: Operation) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for f in op.inputs:
        if f.to and f.to.startswith("body.filters."):
            filters[f.to.removeprefix("body.filters.")] = f"{{{{parameters.{f.key}}}}}"
    return filters


def webhook_files(op: Operation, lang: str) -> dict[str, Any]:
    attach = {
        "url": "/v1/hooks", "method": "POST", "type": "json",
        "body": {"target_url": "{{webhook.url}}", "events": _events_expression(op), "filters": _filters(op)},
        "response": {"data": {"hookId": "{{body.id}}"}},
    }
    detach = {"url": "/v1/hooks/{{webhook.hookId}}", "method": "DELETE"}
    incoming = {"output": _event_output(op, "body", "{{get(headers; 'webhook-id')}}"),
                "respond": {"status": 200, "type": "json", "body": {"received": True}}}
    return {"communication": incoming, "params": trigger_parameters(op, lang), "attach": attach, "detach": detach}


def polling_communication(op: Operation) -> dict[str, Any]:
    reference = next((f for f in op.inputs if f.to == "body.filters.reference"), None)
    iterate: Any = "{{body.data}}"
    if reference is not None:
        iterate = {"container": "{{body.data}}",
                   "condition": f"{{{{!parameters.{reference.key} || "
                                f"item.data.reference == parameters.{reference.key}}}}}"}
    return {
        "url": op.endpoint.path, "method": "GET",
        "qs": {"type": _events_expression(op), "limit": 100},
        "pagination": {"qs": {"cursor": "{{body.next_cursor}}"}, "condition": "{{body.next_cursor}}"},
        "response": {
            "limit": "{{ifempty(parameters.limit; 50)}}",
            "iterate": iterate,
            "output": _event_output(op, "item", "{{item.id}}"),
            "trigger": {"id": "{{item.id}}", "date": "{{item.occurred_at}}", "type": "date", "order": "desc"},
        },
    }


def polling_parameters(op: Operation, lang: str) -> list[dict[str, Any]]:
    limit = {"en": "Maximum number of events per run", "fr": "Nombre maximum d'événements par exécution"}[lang]
    return [*trigger_parameters(op, lang), {"name": "limit", "type": "uinteger", "label": limit, "default": 50}]


def epoch(op: Operation) -> dict[str, Any]:
    """"Choose where to start": the events from the feed, newest first."""
    return {"url": op.endpoint.path, "method": "GET", "qs": {"type": _events_expression(op), "limit": 100},
            "response": {"limit": 300, "iterate": "{{body.data}}",
                         "output": {"label": "{{item.type}} – {{item.data.reference}} ({{item.occurred_at}})",
                                    "date": "{{item.occurred_at}}"}}}


# --- fixed components ---------------------------------------------------------------------------

def base() -> dict[str, Any]:
    error: dict[str, Any] = {"message": ERROR_MESSAGE, "type": "RuntimeError"}
    for status, kind in STATUS_ERRORS.items():
        error[status] = {"message": ERROR_MESSAGE, "type": kind}
    error["422"]["message"] = ERROR_MESSAGE + f"{{{{{PROBLEMS_FUNCTION}(body.error.details)}}}}"
    error["401"] = {"message": "The LRE Bridge refused the API key: edit the connection and paste a valid key "
                               "({{body.error.message}})", "type": "InvalidAccessTokenError"}
    return {
        "baseUrl": "{{replace(connection.base_url; '/\\/+$/'; '')}}",
        "headers": {"Authorization": "Bearer {{connection.api_key}}", "Accept": "application/json"},
        "response": {"error": error},
        "log": {"sanitize": ["request.headers.authorization"]},
    }


def connection_files(catalog: Catalog, lang: str) -> dict[str, Any]:
    auth = catalog.authentication
    params = [_ifs({"name": f.key, "type": {"base_url": "url"}.get(f.key, PARAMETER_TYPES[f.type]),
                    "label": f.label.in_(lang), "help": f.help.in_(lang), "required": True}) for f in auth.fields]
    comm = {
        "url": "{{replace(parameters.base_url; '/\\/+$/'; '')}}" + auth.test.path,
        "method": auth.test.method,
        "headers": {"Authorization": "Bearer {{parameters.api_key}}", "Accept": "application/json"},
        "log": {"sanitize": ["request.headers.authorization"]},
        "response": {
            "metadata": {"type": "text", "value": f"{{{{body.{auth.label_field}}}}}"},
            "error": {
                "message": ERROR_MESSAGE, "type": "RuntimeError",
                "401": {"message": {"en": "This API key is not valid: create one with `lre-bridge keys create` "
                                          "and paste it here.",
                                    "fr": "Cette clé d'API n'est pas valide : créez-en une avec "
                                          "`lre-bridge keys create` et collez-la ici."}[lang],
                        "type": "InvalidAccessTokenError"},
            },
        },
    }
    return {"communication": comm, "params": params}


def rpc_files(lang: str) -> dict[str, dict[str, Any]]:
    label = {"en": "Template fields", "fr": "Champs du modèle"}[lang]
    return {
        LIST_TEMPLATES_RPC: {
            "communication": {"url": "/v1/templates", "method": "GET",
                              "response": {"iterate": "{{body.data}}",
                                           "output": {"label": "{{ifempty(item.title; item.name)}}",
                                                      "value": "{{item.name}}"}}},
            "params": [],
        },
        TEMPLATE_FIELDS_RPC: {
            "communication": {"url": "/v1/templates/{{parameters.template}}/fields", "method": "GET",
                              "qs": {"platform": "make"},
                              "response": {"output": {"name": "data", "type": "collection", "label": label,
                                                      "spec": "{{body.fields}}"}}},
            "params": [],
        },
    }


def universal_files(lang: str) -> dict[str, Any]:
    t = {"en": ("URL", "A path relative to your bridge URL, with its query string if any, e.g. "
                       "`/v1/letters?reference=DOSSIER-42`.", "Method", "", "", "Body (JSON)"),
         "fr": ("URL", "Un chemin relatif à l'URL du bridge, avec ses paramètres éventuels, par ex. "
                       "`/v1/letters?reference=DOSSIER-42`.", "Méthode", "", "", "Corps (JSON)")}[lang]
    mappable = [
        {"name": "url", "type": "text", "label": t[0], "help": t[1], "required": True},
        {"name": "method", "type": "select", "label": t[2], "required": True, "default": "GET",
         "options": [{"label": m, "value": m} for m in ("GET", "POST", "PUT", "PATCH", "DELETE")]},
        {"name": "body", "type": "any", "label": t[5]},
    ]
    comm = {
        # Relative to the bridge only (Make's rule for universal modules: the key never leaves it).
        "url": "/{{replace(parameters.url; '/^\\/+/'; '')}}",
        "method": "{{parameters.method}}",
        "body": "{{parameters.body}}",
        "type": "json",
        "response": {"output": {"body": "{{body}}", "headers": "{{headers}}", "statusCode": "{{statusCode}}"}},
    }
    interface_ = [{"name": "body", "type": "any", "label": "Body"},
                  {"name": "headers", "type": "collection", "label": "Headers"},
                  {"name": "statusCode", "type": "number", "label": "Status code"}]
    return {"communication": comm, "static-params": [], "mappable-params": mappable, "interface": interface_,
            "samples": {"body": {"object": "account", "name": "Cabinet Durand"}, "headers": {}, "statusCode": 200}}


# --- the whole app ---------------------------------------------------------------------------------

CODE_KEYS = {  # local-development file suffix -> makecomapp.json codeFiles key
    "communication": "communication", "params": "params", "static-params": "staticParams",
    "mappable-params": "mappableParams", "interface": "interface", "samples": "samples", "epoch": "epoch",
    "attach": "attach", "detach": "detach", "code": "code", "test": "test",
}


def make_components(catalog: Catalog = CATALOG, lang: str = "fr") -> dict[str, dict[str, Any]]:
    """component type -> id -> {"meta": makecomapp metadata, "files": {code suffix: content}}."""
    components: dict[str, dict[str, Any]] = {"connection": {}, "webhook": {}, "module": {}, "rpc": {},
                                             "function": {}, "endpoint": {}}
    components["connection"][CONNECTION] = {
        "meta": {"label": "LRE Bridge", "connectionType": "basic"}, "files": connection_files(catalog, lang)}
    for rpc_id, files in rpc_files(lang).items():
        components["rpc"][rpc_id] = {"meta": {"label": rpc_id, "connection": CONNECTION}, "files": files}
    function_code = (FUNCTION_DIR / "idempotency-key.code.js").read_text(encoding="utf-8")
    function_test = (FUNCTION_DIR / "idempotency-key.test.js").read_text(encoding="utf-8")
    components["function"][IDEMPOTENCY_FUNCTION] = {"meta": {}, "files": {"code": function_code,
                                                                           "test": function_test}}
    components["function"][DOCUMENTS_FUNCTION] = {"meta": {}, "files": {
        "code": (FUNCTION_DIR / "document-list.code.js").read_text(encoding="utf-8"),
        "test": (FUNCTION_DIR / "document-list.test.js").read_text(encoding="utf-8")}}
    components["function"][PROBLEMS_FUNCTION] = {"meta": {}, "files": {
        "code": (FUNCTION_DIR / "problem-list.code.js").read_text(encoding="utf-8"),
        "test": (FUNCTION_DIR / "problem-list.test.js").read_text(encoding="utf-8")}}
    polling = {"en": " (polling)", "fr": " (par interrogation)"}[lang]
    for op in make_operations(catalog):
        label, description = op.label.in_(lang), op.description.in_(lang)
        if op.kind == Kind.TRIGGER:
            if op.hidden:
                continue  # feeds a dropdown: the listTemplates RPC does that in Make
            if op.instant:
                hook_id = camel(op.key)
                components["webhook"][hook_id] = {
                    "meta": {"label": label, "connection": CONNECTION, "webhookType": "web"},
                    "files": webhook_files(op, lang)}
                components["module"]["watch" + hook_id[0].upper() + hook_id[1:]] = {
                    "meta": {"label": label, "description": description, "moduleType": "instant_trigger",
                             "connection": CONNECTION, "webhook": hook_id},
                    "files": {"communication": {}, "static-params": [], "interface": interface(op, lang),
                              "samples": sample(op)}}
            module_id = "poll" + camel(op.key)[0].upper() + camel(op.key)[1:]
            components["module"][module_id] = {
                "meta": {"label": label + polling, "description": description, "moduleType": "trigger",
                         "connection": CONNECTION},
                "files": {"communication": polling_communication(op), "static-params": polling_parameters(op, lang),
                          "interface": interface(op, lang), "samples": sample(op), "epoch": epoch(op)}}
            continue
        meta: dict[str, Any] = {"label": label, "description": description, "moduleType": MODULE_TYPES[op.kind],
                                "connection": CONNECTION}
        if op.kind == Kind.CREATE:
            meta["actionCrud"] = "read" if op.file_response and op.endpoint.method == "GET" else \
                ACTION_CRUD[op.endpoint.method]
        components["module"][camel(op.key)] = {
            "meta": meta,
            "files": {"communication": communication(op), "static-params": [], "mappable-params": parameters(op, lang),
                      "interface": interface(op, lang), "samples": sample(op)}}
    components["module"][UNIVERSAL_MODULE] = {
        "meta": {"label": "Make an API call", "description": "Performs an arbitrary authorized API call.",
                 "moduleType": "universal", "connection": CONNECTION},
        "files": universal_files(lang)}
    return components


def _json(data: Any) -> str:
    return json.dumps(data, indent=4, ensure_ascii=False) + "\n"


def _groups(catalog: Catalog, components: dict[str, dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    names = {"en": ("Letters", "Triggers", "Consents", "Other"), "fr": ("Lettres", "Déclencheurs", "Consentements",
                                                                       "Autres")}[lang]
    modules = components["module"]
    triggers = [m for m, c in modules.items() if c["meta"]["moduleType"] in ("trigger", "instant_trigger")]
    consents = [m for m in modules if "onsent" in m and m not in triggers]
    letters = [m for m in modules if m not in triggers and m not in consents and m != UNIVERSAL_MODULE]
    return [{"label": label, "modules": group}
            for label, group in zip(names, (letters, triggers, consents, [UNIVERSAL_MODULE]), strict=True) if group]


def make_app_files(catalog: Catalog = CATALOG, lang: str = "fr") -> dict[str, str]:
    """Relative path -> text of every file of the app (deterministic)."""
    components = make_components(catalog, lang)
    files: dict[str, str] = {
        "general/base.iml.json": _json(base()),
        "general/common.json": _json({}),
        "general/groups.json": _json(_groups(catalog, components, lang)),
        "README.md": README_SOURCE.read_text(encoding="utf-8"),
    }
    manifest_components: dict[str, dict[str, Any]] = {}
    for ctype, items in components.items():
        manifest_components[ctype] = {}
        for cid, component in items.items():
            folder = f"{ctype}s/{kebab(cid)}"
            code_files: dict[str, str] = {}
            for suffix, content in component["files"].items():
                if ctype == "function":
                    name = f"{folder}/{kebab(cid)}.{suffix}.js"
                    files[name] = content
                else:
                    name = f"{folder}/{kebab(cid)}.{suffix}.iml.json"
                    files[name] = _json(content)
                code_files[CODE_KEYS[suffix]] = name
            manifest_components[ctype][cid] = {**component["meta"], "codeFiles": code_files}
    manifest = {
        "fileVersion": 1,
        "generalCodeFiles": {"base": "general/base.iml.json", "common": "general/common.json",
                             "groups": "general/groups.json", "readme": "README.md"},
        "components": manifest_components,
        "origins": [{"label": "Make (replace appId by your app's id)", "baseUrl": "https://eu1.make.com/api",
                     "appId": "lre-bridge", "appVersion": 1, "apikeyFile": ".secrets/apikey"}],
    }
    files["makecomapp.json"] = _json(manifest)
    files[".gitignore"] = ".secrets/\n"
    return dict(sorted(files.items()))


APP_FOLDERS = ("connections", "modules", "rpcs", "webhooks", "functions", "endpoints", "general")


def _is_app_file(relative: str) -> bool:
    """A file of the app's own layout (the only files an export may remove)."""
    top, _, rest = relative.partition("/")
    if not rest:
        return top in ("makecomapp.json", "README.md", ".gitignore")
    return top in APP_FOLDERS and relative.endswith((".iml.json", ".json", ".js"))


class NotAMakeAppDirectory(Exception):
    """The target holds other things and no ``makecomapp.json``: writing there could destroy them."""


def export_make_app(target: Path, lang: str = "fr", catalog: Catalog = CATALOG) -> list[Path]:
    """Write the app into ``target``: a new or empty directory, or one that holds the app already.

    Files of the app's layout that the catalogue no longer produces are removed (so that
    regenerating gives exactly the catalogue's app); nothing else in ``target`` is ever touched.
    Raises NotAMakeAppDirectory for a non-empty directory without ``makecomapp.json``.
    Returns the files written.
    """
    files = make_app_files(catalog, lang)
    if target.is_dir() and any(target.iterdir()) and not (target / "makecomapp.json").is_file():
        raise NotAMakeAppDirectory(
            f"{target} is not empty and holds no Make app (makecomapp.json): give an empty directory or the "
            "app's own (make_blueprints/app)")
    target.mkdir(parents=True, exist_ok=True)
    for old in sorted(target.rglob("*"), reverse=True):
        relative = old.relative_to(target).as_posix()
        if old.is_file() and _is_app_file(relative) and relative not in files:
            old.unlink()
        elif old.is_dir() and relative.split("/")[0] in APP_FOLDERS and not any(old.iterdir()):
            old.rmdir()
    written: list[Path] = []
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
