"""The Zapier app: generated from the catalogue without drift, and its jest suite (Zapier's own SDK,
``createAppTester``) green against a real bridge that the suite starts on loopback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.platforms.exporters.zapier import GENERATED_FILE, HEADER, export_zapier_app, render_generated

APP = Path(__file__).resolve().parents[1] / "zapier_app"
BRIDGE_BIN = Path(sys.executable).parent / "lre-bridge"


def _tool(name: str) -> str:
    """The path of ``node`` or ``npm``; fails (never skips) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: the Zapier app tests need Node.js >= 20 and npm on PATH.")
    return path


def _npm(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LRE_BRIDGE_BIN": str(BRIDGE_BIN)}
    return subprocess.run([_tool("npm"), "--prefix", str(APP), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def test_the_generated_zapier_catalog_is_up_to_date() -> None:
    committed = (APP / GENERATED_FILE).read_text(encoding="utf-8")
    assert committed.startswith(HEADER)
    assert committed == render_generated(), "run `.venv/bin/lre-bridge export zapier zapier_app` and commit"


def test_export_writes_a_complete_app_into_a_new_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["export", "zapier", str(tmp_path / "app")])
    assert result.exit_code == 0, result.output
    exported = tmp_path / "app"
    for name in ("package.json", "package-lock.json", "index.js", "lib/operations.js", "test/triggers.test.js"):
        assert (exported / name).is_file(), name
    assert not (exported / "node_modules").exists()
    assert (exported / GENERATED_FILE).read_text(encoding="utf-8") == render_generated()


def test_export_in_french_changes_labels_only(tmp_path: Path) -> None:
    export_zapier_app(tmp_path, lang="fr")
    french = (tmp_path / GENERATED_FILE).read_text(encoding="utf-8")
    assert '"label": "Envoyer une LRE depuis un modèle"' in french
    assert french.count('"key":') == render_generated().count('"key":')


@pytest.mark.slow
def test_the_jest_suite_passes_against_a_real_bridge() -> None:
    version = subprocess.run([_tool("node"), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.match(r"v(\d+)\.", version)
    assert match and int(match.group(1)) >= 20, f"Node.js >= 20 is needed, found {version.strip()}"
    assert BRIDGE_BIN.exists(), f"{BRIDGE_BIN} is missing: install the bridge into this environment first"
    _install_the_apps_packages()
    result = _npm("test", "--silent", timeout=900)
    assert result.returncode == 0, f"jest failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"


def _install_the_apps_packages() -> None:
    """``npm ci`` once: the jest suite and ``zapier-platform validate`` both load zapier-platform-core."""
    if not (APP / "node_modules" / "zapier-platform-core").is_dir():
        installed = _npm("ci", "--no-audit", "--no-fund", timeout=600)
        assert installed.returncode == 0, installed.stdout + installed.stderr


@pytest.mark.slow
def test_zapier_platform_validate_passes_under_node_22() -> None:
    """Installs Node 22 and the CLI from the npm registry once (cached), then validates offline."""
    _install_the_apps_packages()
    result = subprocess.run(["sh", str(APP / "scripts" / "validate.sh")], capture_output=True, text=True,
                            timeout=900, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No structural errors found" in result.stdout


def test_operations_not_offered_on_zapier_are_left_out_of_the_zapier_app() -> None:
    from connector.platforms.catalog import CATALOG
    from connector.platforms.exporters.zapier import zapier_definition

    definition = zapier_definition()
    exported = {key for section in ("triggers", "creates", "searches") for key in definition["app"][section]}
    skipped = {op.key for op in CATALOG.operations if "zapier" not in op.platforms}
    assert skipped >= {"search_letters", "download_proof", "record_consent"}
    assert exported == {op.key for op in CATALOG.operations} - skipped
    assert set(definition["bridge"]["operations"]) == exported
