"""The whole app: every component, ``makecomapp.json`` and the local-development layout, and its export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connector.platforms.catalog import CATALOG
from connector.platforms.exporters.make.dialect import CONNECTION, UNIVERSAL_MODULE, camel, kebab
from connector.platforms.exporters.make.general import (
    README_SOURCE,
    base,
    connection_files,
    function_files,
    rpc_files,
    universal_files,
)
from connector.platforms.exporters.make.modules import communication, interface, make_operations, sample
from connector.platforms.exporters.make.parameters import parameters
from connector.platforms.exporters.make.triggers import epoch, polling_communication, polling_parameters, webhook_files
from connector.platforms.model import Catalog, Kind

MODULE_TYPES = {Kind.CREATE: "action", Kind.SEARCH: "search"}
ACTION_CRUD = {"POST": "create", "GET": "read", "DELETE": "delete", "PUT": "update", "PATCH": "update"}

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
    for function_id, files in function_files().items():
        components["function"][function_id] = {"meta": {}, "files": files}
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
