"""The scenario blueprints in make_blueprints/scenarios: importable as Make exports them (the rules of
Make's own blueprint repository, with the ``app#`` form of custom-app modules), every custom-app module
and input exists in the generated app, and every mapping ``{{N.field}}`` names an output of an earlier
module."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[1] / "make_blueprints"
SCENARIOS = sorted(p.parent for p in (ROOT / "scenarios").glob("*/blueprint.json"))
MANIFEST = json.loads((ROOT / "app" / "makecomapp.json").read_text(encoding="utf-8"))
APP_PREFIX = "app#lre-bridge:"
BUILT_IN = re.compile(r"^[a-z][a-z0-9-]*:[A-Za-z0-9]+$")
APP_MODULE = re.compile(r"^app#[a-z][a-z0-9-]*:[a-z][A-Za-z0-9]*$")
ACCOUNT_BOUND = {"__IMTCONN__", "__IMTKEY__", "__IMTHOOK__", "hook"}
INSTANT = {"gateway:CustomWebHook"}

# What the other apps' modules output, as their documentation shows it (``{}`` = not inspected deeper).
SHEET_ROW = {"__ROW_NUMBER__": {}, **{str(i): {} for i in range(26)}}
THIRD_PARTY_OUTPUTS: dict[str, dict[str, Any]] = {
    "google-sheets:watchRows": SHEET_ROW,
    "google-sheets:filterRows": SHEET_ROW,
    "google-sheets:updateRow": {},
    "slack:CreateMessage": {"channel": {}, "ts": {}, "message": {}},
    "gateway:WebhookRespond": {},
    "builtin:BasicAggregator": {"array": {}},  # the array aggregator: the bundles it collected
}
# Custom webhooks output the payload the sender posts: Tally's form response, DocuSign Connect's JSON.
WEBHOOK_PAYLOADS: dict[str, dict[str, Any]] = {
    "formulaire-resiliation": {"eventId": {}, "eventType": {}, "createdAt": {},
                               "data": {"responseId": {}, "submissionId": {}, "formId": {}, "formName": {},
                                        "fields": {}}},
    "docusign-pdf-signe": {"event": {}, "apiVersion": {}, "uri": {}, "retryCount": {}, "configurationId": {},
                           "generatedDateTime": {},
                           "data": {"accountId": {}, "userId": {}, "envelopeId": {}, "envelopeSummary": {}}},
}


def _modules(flow: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every module in flow order, routes and error handlers included."""
    for module in flow:
        yield module
        for route in module.get("routes", []):
            yield from _modules(route["flow"])
        yield from _modules(module.get("onerror", []))


def _interface_tree(params: list[dict[str, Any]]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for p in params:
        spec = p.get("spec")
        if p["type"] == "array" and isinstance(spec, dict):
            spec = spec.get("spec")
        tree[p["name"]] = _interface_tree(spec) if isinstance(spec, list) else {}
    return tree


def _app_component(module: str) -> dict[str, Any]:
    name = module.removeprefix(APP_PREFIX)
    meta: dict[str, Any] = MANIFEST["components"]["module"][name]
    return meta


def _app_file(module: str, code: str) -> Any:
    path = _app_component(module)["codeFiles"].get(code)
    return json.loads((ROOT / "app" / path).read_text(encoding="utf-8")) if path else []


def _outputs(scenario: Path, module: dict[str, Any]) -> dict[str, Any]:
    name = module["module"]
    if name.startswith(APP_PREFIX):
        return _interface_tree(_app_file(name, "interface"))
    if name == "gateway:CustomWebHook":
        return WEBHOOK_PAYLOADS[scenario.name]
    return THIRD_PARTY_OUTPUTS[name]


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


REFERENCE = re.compile(r"(?<![\w.`\"'])(\d+)((?:\.(?:`[^`]+`|[A-Za-z_]\w*))+)")


def _references(text: str) -> Iterator[tuple[int, list[str]]]:
    for expression in re.findall(r"{{(.*?)}}", text, re.S):
        expression = re.sub(r'"[^"]*"', '""', expression)  # text literals hold no references
        for number, path in REFERENCE.findall(expression):
            yield int(number), [part.strip("`") for part in re.findall(r"\.(`[^`]+`|[A-Za-z_]\w*)", path)]


def _load(scenario: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((scenario / "blueprint.json").read_text(encoding="utf-8"))
    return data


def test_there_is_a_blueprint_for_each_scenario_users_ask_for() -> None:
    assert {s.name for s in SCENARIOS} == {"sheets-mise-en-demeure", "formulaire-resiliation", "docusign-pdf-signe",
                                           "lettre-refusee-slack-sheets", "convocation-ag-sheets"}
    for scenario in SCENARIOS:
        readme = (scenario / "README.md").read_text(encoding="utf-8")
        assert "Connexions" in readme and "Importer" in readme, scenario.name


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_the_blueprint_follows_makes_export_format(scenario: Path) -> None:
    data = _load(scenario)
    assert set(data) <= {"name", "description", "flow", "metadata"} and data["name"] and data["flow"]
    metadata = data["metadata"]
    assert metadata["version"] == 1 and isinstance(metadata["scenario"], dict)
    assert metadata["designer"]["orphans"] == []
    modules = list(_modules(data["flow"]))
    ids = [m["id"] for m in modules]
    assert all(isinstance(i, int) and i >= 1 for i in ids) and len(ids) == len(set(ids))
    first = modules[0]["module"]
    instant = first in INSTANT or (first.startswith(APP_PREFIX)
                                   and _app_component(first)["moduleType"] == "instant_trigger")
    assert metadata["instant"] is instant
    for module in modules:
        name = module["module"]
        assert BUILT_IN.match(name) or APP_MODULE.match(name), name
        assert isinstance(module["version"], int) and module["version"] >= 1
        assert not ACCOUNT_BOUND & set(module.get("parameters", {})), f"{name} keeps an account's ids"
        assert name.startswith(APP_PREFIX) or name in THIRD_PARTY_OUTPUTS or name in INSTANT, name


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_custom_app_modules_and_their_inputs_exist_in_the_app(scenario: Path) -> None:
    for module in _modules(_load(scenario)["flow"]):
        name = module["module"]
        if not name.startswith(APP_PREFIX):
            continue
        assert name.removeprefix(APP_PREFIX) in MANIFEST["components"]["module"], name
        meta = _app_component(name)
        if meta["moduleType"] == "instant_trigger":
            allowed = {p["name"] for p in json.loads(
                (ROOT / "app" / MANIFEST["components"]["webhook"][meta["webhook"]]["codeFiles"]["params"]).read_text())}
        else:
            allowed = {p["name"] for p in _app_file(name, "mappableParams") + _app_file(name, "staticParams")}
        if name.endswith(":sendLetterFromTemplate"):
            allowed.add("data")  # the template's fields (the templateFields RPC), checked below
        given = set(module.get("mapper", {})) | set(module.get("parameters", {}))
        assert given <= allowed, f"{name}: unknown inputs {given - allowed}"


def _mapping_problems(scenario: Path, data: dict[str, Any]) -> tuple[list[str], int]:
    """Mappings that name no output of an earlier module; and how many mappings were checked."""
    seen: dict[int, dict[str, Any]] = {}
    problems: list[str] = []
    checked = 0
    for module in _modules(data["flow"]):
        for text in _strings({"mapper": module.get("mapper"), "filter": module.get("filter"),
                              "parameters": module.get("parameters")}):
            for number, path in _references(text):
                where = f"module {module['id']} maps {number}.{'.'.join(path)}"
                checked += 1
                if number not in seen:
                    problems.append(f"{where}: no earlier module {number}")
                    continue
                node = seen[number]
                for part in path:
                    if not node:
                        break  # not described deeper (an array of items, a free object)
                    if part not in node:
                        problems.append(f"{where}: no '{part}'")
                        break
                    node = node[part]
        seen[module["id"]] = _outputs(scenario, module)
    return problems, checked


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_every_mapping_refers_to_an_output_of_an_earlier_module(scenario: Path) -> None:
    problems, checked = _mapping_problems(scenario, _load(scenario))
    assert problems == []
    assert checked, "the blueprint maps nothing"


def test_the_mapping_check_refuses_an_unknown_field_and_a_later_module() -> None:
    scenario = ROOT / "scenarios" / "lettre-refusee-slack-sheets"
    data = _load(scenario)
    data["flow"][1]["mapper"]["text"] = "{{1.recipient.phone}} {{4.id}}"
    problems, _ = _mapping_problems(scenario, data)
    assert problems == ["module 2 maps 1.recipient.phone: no 'phone'", "module 2 maps 4.id: no earlier module 4"]


def test_the_mapping_check_catches_a_wrong_field() -> None:
    assert list(_references('{{1.`0`}} and {{formatDate(2.occurred_at; "DD/MM")}} {{3.recipient.email}}')) == [
        (1, ["0"]), (2, ["occurred_at"]), (3, ["recipient", "email"])]
    assert list(_references('{{if(1.status = "2.x"; "a"; "b")}}')) == [(1, ["status"])]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_template_fields_in_blueprints_are_the_templates_own(scenario: Path, client: FlaskClient,
                                                              auth: dict[str, str]) -> None:
    for module in _modules(_load(scenario)["flow"]):
        if not module["module"].endswith(":sendLetterFromTemplate"):
            continue
        mapper = module["mapper"]
        answer = client.get(f"/v1/templates/{mapper['template']}/fields?platform=make", headers=auth)
        assert answer.status_code == 200, mapper["template"]
        fields = answer.get_json()["fields"]
        names = {f["name"] for f in fields}
        required = {f["name"] for f in fields if f["required"]}
        assert set(mapper["data"]) <= names, set(mapper["data"]) - names
        assert required <= set(mapper["data"]), f"required fields not mapped: {required - set(mapper['data'])}"
