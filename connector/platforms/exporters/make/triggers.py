"""Triggers: an instant trigger's webhook (attach ``POST /v1/hooks``, detach ``DELETE /v1/hooks/{id}``)
and the polling trigger over the same events (``/v1/events``), with the item both give.
"""

from __future__ import annotations

from typing import Any

from connector.delivery.events import ACCOUNT_EVENTS
from connector.platforms.catalog import CATALOG
from connector.platforms.exporters.make.dialect import without_empty
from connector.platforms.exporters.make.parameters import parameter
from connector.platforms.model import FieldType, InputField, Operation


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
            params.append(without_empty({
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
