"""The n8n community node package: generated from the catalogue without drift, built and linted by
n8n's own tooling (strict/cloud mode), and each operation's request and output checked by node's test
runner on the built nodes against a real bridge on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.platforms.catalog import CATALOG
from connector.platforms.exporters.n8n import GENERATED_FILE, HEADER, n8n_definition, render_generated
from connector.platforms.model import Kind
from tests.n8n_support import PACKAGE, ensure_built, ensure_package_installed, live_bridge, npm, tool


def test_the_generated_n8n_catalog_is_up_to_date() -> None:
    committed = (PACKAGE / GENERATED_FILE).read_text(encoding="utf-8")
    assert committed.startswith(HEADER)
    assert committed == render_generated(), "run `.venv/bin/lre-bridge export n8n n8n_nodes` and commit"


def test_every_catalogue_operation_for_n8n_is_a_node_operation_or_a_trigger_event() -> None:
    definition = n8n_definition()
    offered = {spec["catalogKey"] for spec in definition["operations"].values()}
    events = {option["value"] for option in definition["triggerEvents"]}
    for op in CATALOG.operations:
        if "n8n" not in op.platforms:
            continue
        if op.kind == Kind.TRIGGER and op.instant:
            assert set(op.events) <= events, op.key
        else:
            assert op.key in offered, op.key


def test_export_writes_a_complete_package_into_a_new_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["export", "n8n", str(tmp_path / "pkg")])
    assert result.exit_code == 0, result.output
    exported = tmp_path / "pkg"
    for name in ("package.json", "package-lock.json", "tsconfig.json", "credentials/LreBridgeApi.credentials.ts",
                 "nodes/LreBridge/LreBridge.node.ts", "nodes/LreBridgeTrigger/LreBridgeTrigger.node.ts",
                 "test/actions.test.js", "workflows"):
        assert (exported / name).exists(), name
    assert not (exported / "node_modules").exists() and not (exported / "dist").exists()
    assert (exported / GENERATED_FILE).read_text(encoding="utf-8") == render_generated()


def test_the_package_follows_n8n_community_rules() -> None:
    package = json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))
    assert package["name"] == "n8n-nodes-lre-bridge"
    assert package["license"] == "MIT"
    assert "n8n-community-node-package" in package["keywords"]
    assert "dependencies" not in package, "verified community nodes have no runtime dependencies"
    assert package["peerDependencies"] == {"n8n-workflow": "*"}
    assert package["n8n"]["strict"] is True
    for built in package["n8n"]["nodes"] + package["n8n"]["credentials"]:
        source = PACKAGE / (built.removeprefix("dist/").removesuffix(".js") + ".ts")
        assert source.exists(), built


@pytest.mark.slow
def test_n8n_node_lint_passes_in_strict_mode() -> None:
    ensure_package_installed()
    result = npm("run", "lint", timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


@pytest.mark.slow
def test_n8n_node_build_and_the_node_unit_tests_pass_against_a_real_bridge(tmp_path: Path) -> None:
    ensure_built()
    for built in ("dist/nodes/LreBridge/LreBridge.node.js", "dist/nodes/LreBridge/lreBridge.svg",
                  "dist/nodes/LreBridgeTrigger/LreBridgeTrigger.node.js",
                  "dist/credentials/LreBridgeApi.credentials.js"):
        assert (PACKAGE / built).exists(), built
    tests = sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "test").glob("*.test.js"))
    assert tests, "no node test files"
    with live_bridge(tmp_path) as bridge:
        env = {**os.environ, "LRE_TEST_BRIDGE_URL": bridge.base_url, "LRE_TEST_API_KEY": bridge.api_key,
               "LRE_TEST_PYTHON": sys.executable}  # reads the letters' PDFs (pypdf), the suite's own eyes
        result = subprocess.run([tool("node"), "--test", *tests], cwd=PACKAGE, env=env, capture_output=True,
                                text=True, timeout=600, check=False)
        assert result.returncode == 0, f"{result.stdout[-8000:]}\n{result.stderr[-3000:]}\n{bridge.log_tail()}"
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout
