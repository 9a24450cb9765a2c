"""The node's description: the resource and operation selectors, every operation's parameters, and the
runtime table the hand-written node reads to call the bridge.
"""

from __future__ import annotations

from typing import Any

from connector.delivery.events import ACCOUNT_EVENTS
from connector.platforms.catalog import CATALOG
from connector.platforms.exporters.n8n.names import (
    BINARY_RESPONSE,
    N8N_NAMES,
    PLATFORM,
    RESOURCE_NAMES,
    N8nName,
    names_of,
    sentence,
    shown_for,
    title_case,
)
from connector.platforms.exporters.n8n.parameters import (
    file_list_parameters,
    file_parameters,
    is_limit,
    parameter,
    row_parameters,
    spec_param,
    template_locator,
    template_mapper,
)
from connector.platforms.exporters.n8n.trigger import trigger_events, trigger_filters
from connector.platforms.model import Catalog, Dynamic, FieldType, Group, Kind, Operation


def operation_definition(op: Operation, n: N8nName) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The n8n parameters of one (resource, operation) and its runtime spec."""
    inputs = [f for f in op.inputs if n.inputs is None or f.key in n.inputs]
    show = shown_for(n.resource, n.operation)
    binary = op.file_response or op.key in BINARY_RESPONSE
    path = op.endpoint.path
    for f in inputs:
        # A search by ID that the catalogue serves from the list endpoint: n8n's Get reads the letter.
        if f.to and f.to.startswith("path.") and "{" + f.to[5:] + "}" not in path:
            path += "/{" + f.to[5:] + "}"
    # A GET of a collection (no ID in its path) answers a page of a list: n8n's Get Many.
    listing = op.kind in (Kind.SEARCH, Kind.TRIGGER) and not n.first_of_list and op.endpoint.method == "GET" \
        and "{" not in path
    params: list[dict[str, Any]] = []
    optional: list[dict[str, Any]] = []
    specs: list[dict[str, Any]] = []
    rows: dict[str, Any] | None = None
    for f in inputs:
        required = f.required or f.key in n.required
        if is_limit(f) and listing:
            continue  # n8n's own Return All / Limit pair below
        if f.children:
            row_params, rows = row_parameters(f, show)
            params.extend(row_params)
            continue
        if f.type == FieldType.FILE and f.list:
            for p in file_list_parameters(f):
                extra = p.pop("displayOptions", {"show": {}})["show"]
                params.append({**{k: v for k, v in p.items() if v is not None},
                               "displayOptions": {"show": {**show["show"], **extra}}})
            specs.append(spec_param(f, "top", path))
            continue
        if f.dynamic == Dynamic.TEMPLATES:
            params.append({**template_locator(f), "displayOptions": show})
            specs.append(spec_param(f, "top", path))
        elif f.dynamic == Dynamic.TEMPLATE_FIELDS:
            params.append({**template_mapper(), "displayOptions": show})
            specs.append(spec_param(f, "top", path))
        elif f.type == FieldType.FILE:
            for p in file_parameters(f):
                extra = p.pop("displayOptions", {"show": {}})["show"]
                params.append({**p, "displayOptions": {"show": {**show["show"], **extra}}})
            specs.append(spec_param(f, "top", path))
        elif required or (f.group == Group.RECIPIENT and not (f.choices and f.default is None)):
            # Recipient fields sit on top; a choice that may be left empty ("leave empty: …") cannot
            # (an n8n options parameter always has a value), so it goes in the collection.
            params.append({**parameter(f, required), "displayOptions": show})
            specs.append(spec_param(f, "top", path))
        else:
            optional.append(parameter(f, False))
            specs.append(spec_param(f, "collection", path))
    if listing:
        params.append({"displayName": "Return All", "name": "returnAll", "type": "boolean", "default": False,
                       "description": "Whether to return all results or only up to a given limit",
                       "displayOptions": show})
        params.append({"displayName": "Limit", "name": "limit", "type": "number", "default": 50,
                       "typeOptions": {"minValue": 1}, "description": "Max number of results to return",
                       "displayOptions": {"show": {**show["show"], "returnAll": [False]}}})
    collection = "filters" if op.kind != Kind.CREATE else "additionalFields"
    if optional:
        params.append({
            "displayName": "Filters" if collection == "filters" else "Additional Fields",
            "name": collection, "type": "collection", "default": {},
            "placeholder": "Add Filter" if collection == "filters" else "Add Field",
            "displayOptions": show,
            "options": sorted(optional, key=lambda p: p["displayName"]),
        })
    if binary:
        params.append({"displayName": "Put Output File in Field", "name": "binaryPropertyName", "type": "string",
                       "default": "data", "required": True,
                       "hint": "The name of the output binary field to put the file in", "displayOptions": show})
    spec = {
        "catalogKey": op.key,
        "method": op.endpoint.method,
        "path": path,
        "list": listing,
        "firstOfList": n.first_of_list,
        "binary": binary,
        "collection": collection,
        "params": specs,
        "sampleKeys": sorted(op.sample) if not binary else [],
    }
    if rows is not None:
        spec["rows"] = rows  # all input items as one request, once per node run
    return params, spec


def n8n_definition(catalog: Catalog = CATALOG) -> dict[str, Any]:
    """The catalogue in n8n's shapes: node properties, the runtime's operation table, trigger events."""
    properties: list[dict[str, Any]] = []
    operations: dict[str, dict[str, Any]] = {}
    by_resource: dict[str, list[dict[str, Any]]] = {}
    offered = [op for op in catalog.operations if PLATFORM in op.platforms
               and not (op.kind == Kind.TRIGGER and op.key not in N8N_NAMES)]
    for op in offered:
        for n in names_of(op):
            params, spec = operation_definition(op, n)
            properties.extend(params)
            operations[f"{n.resource}:{n.operation}"] = spec
            by_resource.setdefault(n.resource, []).append(
                {"name": n.name, "value": n.operation, "action": n.action,
                 "description": sentence(op.description.en)})
    resources = sorted(by_resource)
    head: list[dict[str, Any]] = [{
        "displayName": "Resource", "name": "resource", "type": "options", "noDataExpression": True,
        "options": sorted(({"name": RESOURCE_NAMES.get(r, title_case(r)), "value": r} for r in resources),
                          key=lambda o: o["name"]),
        "default": "letter" if "letter" in by_resource else resources[0],
    }]
    for resource in resources:
        options = sorted(by_resource[resource], key=lambda o: o["name"])
        default = "sendFromTemplate" if resource == "letter" and any(
            o["value"] == "sendFromTemplate" for o in options) else options[0]["value"]
        head.append({"displayName": "Operation", "name": "operation", "type": "options", "noDataExpression": True,
                     "displayOptions": {"show": {"resource": [resource]}}, "options": options,
                     "default": default})
    return {
        "catalogVersion": catalog.version,
        "properties": head + properties,
        "operations": operations,
        "triggerEvents": trigger_events(catalog),
        "triggerFilters": trigger_filters(catalog),
        "proofKinds": dict(catalog.proof_kinds),
        "eventIdKeys": {t: e.id_key for t, e in sorted(ACCOUNT_EVENTS.items())},
        "authTest": {"method": catalog.authentication.test.method, "path": catalog.authentication.test.path},
    }
