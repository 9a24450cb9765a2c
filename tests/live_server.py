"""Live servers on loopback for the tests that talk HTTP: the app in-process (``serving_checked``),
``lre-bridge serve`` in a subprocess with its first API key (``running_bridge``), and a reverse proxy
in front of the latter (``checking_proxy``). The first and the last check every answer they carry
against the OpenAPI document (tests/contract.py) and fail at the end on any undocumented one."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from werkzeug.routing import Map
from werkzeug.serving import make_server
from werkzeug.wsgi import get_input_stream

from tests.contract import CheckedApp, Contract, WsgiApp
from tests.helpers import server_thread

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_bridge(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """Start the bridge; yield its base URL and API key; stop it (SIGTERM) afterwards."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LRE_")}
    environment.update({"LRE_DATA_DIR": str(data_dir), "LRE_SANDBOX_STEP_SECONDS": "0.2", **(env or {})})
    log = data_dir / "serve.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:  # a file, not a pipe: a full pipe would block the server's logging
        proc = subprocess.Popen([sys.executable, "-m", "connector.cli", "serve", "--port", str(port), *args],
                                env=environment, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        key = None
        deadline = time.monotonic() + 90
        while key is None and time.monotonic() < deadline and proc.poll() is None:
            key = next((line for line in log.read_text().splitlines() if line.startswith("lre_")), None)
            time.sleep(0.1)
        assert key, log.read_text()
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if requests.get(f"{base}/readyz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        yield base, key
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def serving(app: WsgiApp) -> Iterator[str]:
    """A WSGI app on a free loopback port (threaded werkzeug) until the block ends; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = server_thread(server)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@contextmanager
def serving_checked(app: Flask) -> Iterator[str]:
    """The Flask app on loopback, every answer checked against its document (``CheckedApp``); raises
    ``UndocumentedAnswer`` when the block ends if any answer was undocumented (method, path, status, why)."""
    checked = CheckedApp.around(app)
    with serving(checked) as url:
        yield url
    checked.raise_findings()


# Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection and are not forwarded; the
# proxy has read the whole request body, so an Expect: 100-continue is its own business too.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
               "expect"}
_ROUTES: list[Map] = []


def _bridge_routes() -> Map:
    """The bridge's route table, from an app built here from the same code (once per session)."""
    if not _ROUTES:
        with tempfile.TemporaryDirectory() as data_dir:
            from connector.app import create_app

            app = create_app({"data_dir": data_dir})
            app.extensions["lre"].db.dispose()
            _ROUTES.append(app.url_map)
    return _ROUTES[0]


def forwarding_app(upstream: str) -> WsgiApp:
    """A WSGI app that sends each request (method, raw path and query, headers, body) to ``upstream``
    and gives back its answer (status, headers, body) unchanged, the body streamed as it arrives."""
    target = urllib.parse.urlsplit(upstream)

    def forward(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        headers = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
        body = get_input_stream(environ, max_content_length=None).read()
        if body or environ.get("CONTENT_LENGTH"):  # a chunked request body is forwarded with its length
            headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=120)
        connection.request(environ["REQUEST_METHOD"], environ.get("RAW_URI") or environ["PATH_INFO"], body=body,
                           headers=headers)
        answer = connection.getresponse()
        start_response(f"{answer.status} {answer.reason}",
                       [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP])

        def stream() -> Iterator[bytes]:
            try:
                while chunk := answer.read1(64 * 1024):
                    yield chunk
            finally:
                connection.close()

        return stream()

    return forward


@dataclass
class CheckingProxy:
    """A running checking proxy: the base URL to give clients, and the checker that keeps the findings."""

    url: str
    checked: CheckedApp


@contextmanager
def checking_proxy(upstream: str) -> Iterator[CheckingProxy]:
    """A loopback reverse proxy in front of a live bridge whose every answer is checked against the
    document that bridge serves (its ``/openapi.json``), routes matched as the bridge's code matches
    them. Raises ``UndocumentedAnswer`` when the block ends if any answer not already taken
    (``checked.take_findings``) was undocumented."""
    document = json.loads(requests.get(f"{upstream}/openapi.json", timeout=30).content)
    checked = CheckedApp(forwarding_app(upstream), Contract(document, _bridge_routes()))
    with serving(checked) as url:
        yield CheckingProxy(url, checked)
    checked.raise_findings()
