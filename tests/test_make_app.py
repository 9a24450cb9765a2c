"""The Make custom app: generated from the catalogue without drift, every file valid against Make's own
IMLJSON schemas, and every reference in the manifest resolving."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from connector.cli import main
from connector.platforms.catalog import CATALOG
from connector.platforms.exporters.make import camel, make_app_files, make_operations
from connector.platforms.model import Kind

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "make_blueprints" / "app"
# Make's own schemas (integromat/vscode-apps-sdk, MIT; README.md beside them says which commit).
SCHEMAS = Path(__file__).resolve().parent / "fixtures" / "make" / "imljson-schemas"
BASE_ID = "https://schemas.make.invalid/"


def _registry() -> Registry:
    resources = []
    for path in SCHEMAS.glob("*.json"):
        if path.name == "jsonValidation.json":
            continue
        contents = json.loads(path.read_text(encoding="utf-8"))
        # Registered under a URI, not by "$id": a root "$ref" would hide a "$id" beside it (draft-07).
        resources.append((BASE_ID + path.name, Resource.from_contents(contents, default_specification=DRAFT7)))
    registry: Registry = Registry().with_resources(resources)
    return registry


def _schema_for(relative: str) -> str:
    """The schema Make's editor uses for a file (its own jsonValidation.json map)."""
    name = Path(relative).name
    if name.endswith(".static-params.iml.json"):  # a module's "parameters" section; the map omits the suffix
        return "parameters.json"
    for entry in json.loads((SCHEMAS / "jsonValidation.json").read_text(encoding="utf-8")):
        if any(fnmatch.fnmatch(name, pattern) for pattern in entry["fileMatch"]):
            return Path(entry["url"]).name
    raise AssertionError(f"no Make schema for {relative}")


def _app_files() -> list[str]:
    return sorted(p.relative_to(APP).as_posix() for p in APP.rglob("*") if p.is_file())


def test_regenerating_the_make_app_gives_no_diff() -> None:
    expected = make_app_files()
    assert _app_files() == sorted(expected), "run `.venv/bin/lre-bridge export make make_blueprints/app`"
    for relative, text in expected.items():
        assert (APP / relative).read_text(encoding="utf-8") == text, f"{relative} drifted: regenerate the app"


def test_the_cli_exports_the_app_and_removes_stale_component_files(tmp_path: Path) -> None:
    assert CliRunner().invoke(main, ["export", "make", str(tmp_path)]).exit_code == 0
    (tmp_path / "modules" / "gone").mkdir(parents=True)
    (tmp_path / "modules" / "gone" / "gone.communication.iml.json").write_text("{}")
    result = CliRunner().invoke(main, ["export", "make", str(tmp_path)])
    assert result.exit_code == 0, result.output
    exported = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert exported == sorted(make_app_files())
    assert not (tmp_path / "modules" / "gone").exists()


@pytest.mark.parametrize("relative", [f for f in _app_files() if f.endswith(".json")])
def test_every_component_file_validates_against_makes_schemas(relative: str) -> None:
    schema_name = _schema_for(relative)
    registry = _registry()
    validator = Draft7Validator({"$ref": BASE_ID + schema_name}, registry=registry)
    document = json.loads((APP / relative).read_text(encoding="utf-8"))
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message[:300]}" for e in errors[:5])


def test_the_schemas_catch_a_broken_file() -> None:
    registry = _registry()
    validator = Draft7Validator({"$ref": BASE_ID + "parameters.json"}, registry=registry)
    assert list(validator.iter_errors([{"name": "x", "type": "mail"}]))
    api = Draft7Validator({"$ref": BASE_ID + "api.json"}, registry=registry)
    assert list(api.iter_errors({"url": "/v1/events", "response": {"trigger": {"id": "{{item.id}}"}}}))


def _all_strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _all_strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _all_strings(v)]
    return [node] if isinstance(node, str) else []


def test_the_manifest_references_resolve() -> None:
    manifest = json.loads((APP / "makecomapp.json").read_text(encoding="utf-8"))
    components = manifest["components"]
    for relative in manifest["generalCodeFiles"].values():
        assert (APP / relative).is_file(), relative
    for items in components.values():
        for cid, meta in items.items():
            assert re.fullmatch(r"[a-z][A-Za-z0-9]*", cid), cid
            for relative in meta["codeFiles"].values():
                assert (APP / relative).is_file(), relative
            if meta.get("connection"):
                assert meta["connection"] in components["connection"], cid
            if meta.get("moduleType") == "instant_trigger":
                assert meta["webhook"] in components["webhook"], cid
    used_rpcs, used_functions = set(), set()
    for relative in _app_files():
        if relative.endswith(".json"):
            strings = _all_strings(json.loads((APP / relative).read_text(encoding="utf-8")))
            used_rpcs |= {m for s in strings for m in re.findall(r"rpc://(\w+)", s)}
            used_functions |= {m for s in strings for m in re.findall(r"\b([a-z]\w*)\(", s)}
    assert used_rpcs and used_rpcs <= set(components["rpc"])
    custom = set(components["function"])
    assert custom <= used_functions  # each custom function is used…
    assert "idempotencyKey" in custom  # …and the one the sends rely on is declared
    groups = json.loads((APP / manifest["generalCodeFiles"]["groups"]).read_text(encoding="utf-8"))
    grouped = [m for g in groups for m in g["modules"]]
    assert sorted(grouped) == sorted(components["module"])


def test_every_make_operation_of_the_catalogue_is_a_module() -> None:
    modules = json.loads((APP / "makecomapp.json").read_text(encoding="utf-8"))["components"]["module"]
    for op in make_operations():
        if op.kind == Kind.TRIGGER:
            if op.hidden:
                continue
            name = camel(op.key)
            assert "poll" + name[0].upper() + name[1:] in modules
            if op.instant:
                assert "watch" + name[0].upper() + name[1:] in modules
        else:
            assert camel(op.key) in modules, op.key
    assert modules["makeApiCall"]["moduleType"] == "universal"
    skipped = {op.key for op in CATALOG.operations if "make" not in op.platforms}
    assert not {camel(k) for k in skipped} & set(modules)


def test_the_universal_module_only_calls_the_bridge() -> None:
    spec = json.loads((APP / "modules/make-api-call/make-api-call.communication.iml.json").read_text())
    assert spec["url"].startswith("/")


@pytest.mark.parametrize("name", sorted(p.name for p in (APP / "functions").iterdir()))
def test_the_custom_iml_function_test_passes_under_node(name: str) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed to run the Make app's custom IML function tests")
    code = (APP / f"functions/{name}/{name}.code.js").read_text()
    test = (APP / f"functions/{name}/{name}.test.js").read_text()
    script = ("const assert = require('assert'); const crypto = require('crypto');\n"
              "const iml = { sha256: (t) => crypto.createHash('sha256').update(t).digest('hex') };\n"
              "let ran = 0; const it = (name, fn) => { fn(); ran += 1; };\n"
              f"{code}\n{test}\nconsole.log('ran ' + ran);")
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ran 1"


def test_an_export_never_removes_what_is_not_the_apps(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "blueprint.json").write_text("{}")
    result = CliRunner().invoke(main, ["export", "make", str(tmp_path)])
    assert result.exit_code != 0 and "holds no Make app" in result.output
    assert (tmp_path / "scenarios" / "blueprint.json").read_text() == "{}"
    app = tmp_path / "app"
    assert CliRunner().invoke(main, ["export", "make", str(app)]).exit_code == 0
    (app / ".secrets").mkdir()
    (app / ".secrets" / "apikey").write_text("key")
    (app / "NOTES.txt").write_text("mine")
    assert CliRunner().invoke(main, ["export", "make", str(app)]).exit_code == 0
    assert (app / ".secrets" / "apikey").read_text() == "key" and (app / "NOTES.txt").read_text() == "mine"


def test_every_module_has_a_sample_with_its_interfaces_fields() -> None:
    manifest = json.loads((APP / "makecomapp.json").read_text(encoding="utf-8"))
    for cid, meta in manifest["components"]["module"].items():
        interface = json.loads((APP / meta["codeFiles"]["interface"]).read_text(encoding="utf-8"))
        sample = json.loads((APP / meta["codeFiles"]["samples"]).read_text(encoding="utf-8"))
        assert interface and sample, cid
        assert {p["name"] for p in interface} <= set(sample), cid


def test_the_harness_evaluates_iml_as_makes_documentation_says() -> None:
    from tests.make_harness import UNDEFINED, Iml, _prune

    iml = Iml()
    scope = {"parameters": {"n": 3, "name": "Durand", "list": ["a", "b"], "empty": ""},
             "headers": {"content-disposition": 'attachment; filename="preuve.pdf"'}, "body": {"items": [1, 2]}}
    assert iml.value("{{parameters.n}}", scope) == 3  # one template: the raw value
    assert iml.value("n = {{parameters.n}}", scope) == "n = 3"  # text around it: text
    assert iml.value("{{ifempty(parameters.empty; 'x')}}", scope) == "x"
    assert iml.value("{{join(parameters.list; ',')}}", scope) == "a,b"
    assert iml.value("{{replace(get(headers; 'Content-Disposition'); '/^.*filename=\"([^\"]+)\".*$/'; '$1')}}",
                     scope) == "preuve.pdf"
    assert iml.value("{{!parameters.missing || parameters.name == 'Durand'}}", scope) is True
    assert iml.value("{{if(parameters.missing; 'a'; 'b')}}{{length(body.items)}}", scope) == "b2"
    assert iml.value("{{parameters.missing}}", scope) is UNDEFINED
    assert _prune({"a": UNDEFINED, "b": "", "c": {"d": UNDEFINED, "e": 0}}) == {"c": {"e": 0}}
