"""The trigger node's choices: the event types of the catalogue's instant triggers and their filters."""

from __future__ import annotations

from typing import Any

from connector.platforms.catalog import CATALOG, STATUS_LABELS
from connector.platforms.exporters.n8n.names import PLATFORM, sentence, title_case
from connector.platforms.exporters.n8n.parameters import parameter
from connector.platforms.model import Catalog, Kind, Operation


def _event_option(event: str, single: dict[str, Operation]) -> dict[str, str]:
    """An event type as a trigger option: the label of the catalogue trigger made for it alone, else
    one built from the event's name (``letter.deposited`` -> "Letter Deposited")."""
    if event in single:
        op = single[event]
        return {"name": title_case(op.label.en), "value": event, "description": sentence(op.description.en)}
    kind, _, status = event.partition(".")
    option = {"name": title_case(f"{kind} {status}".replace("_", " ")), "value": event}
    if kind == "letter" and status in STATUS_LABELS:
        option["description"] = sentence(STATUS_LABELS[status].en)
    return option


def trigger_events(catalog: Catalog = CATALOG) -> list[dict[str, str]]:
    """Every event type an instant trigger of the catalogue offers n8n, labelled once."""
    triggers = [op for op in catalog.of_kind(Kind.TRIGGER) if op.instant and PLATFORM in op.platforms]
    single = {op.events[0]: op for op in triggers if len(op.events) == 1}
    events = list(dict.fromkeys(e for op in triggers for e in op.events))
    return sorted((_event_option(e, single) for e in events), key=lambda o: o["name"])


def trigger_filters(catalog: Catalog = CATALOG) -> list[dict[str, Any]]:
    """The trigger's optional filters: every input of an instant trigger that goes to the hook's body."""
    seen: dict[str, dict[str, Any]] = {}
    for op in catalog.of_kind(Kind.TRIGGER):
        if not op.instant or PLATFORM not in op.platforms:
            continue
        for f in op.inputs:
            if f.to and f.to.startswith("body.filters.") and f.key not in seen:
                seen[f.key] = {**parameter(f, False), "to": f.to}
    return list(seen.values())
