"""Real-browser tests' shared pieces: Debian's Chromium (installed when missing), driven by
Playwright, and the bridge served on a loopback port sharing the test's database and clock."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.helpers import server_thread

CHROMIUM = "/usr/bin/chromium"


def ensure_chromium() -> None:
    """Debian's Chromium, installed once per machine (the tests never download a browser)."""
    if shutil.which(CHROMIUM) or Path(CHROMIUM).exists():
        return
    if os.geteuid() != 0:
        pytest.fail("Chromium is missing: run `apt-get install -y chromium` as root")
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"], check=True,
                   stdout=subprocess.DEVNULL, timeout=900)


def launched_chromium() -> Iterator[Any]:
    """A headless Chromium for a module's tests (use as the body of a module-scoped fixture)."""
    ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield instance
        instance.close()


def served(app: Any) -> Iterator[str]:
    """The app on a loopback port (use as the body of a fixture); yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = server_thread(server)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
