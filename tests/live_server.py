"""``lre-bridge serve`` in a subprocess on loopback, with its first API key (for live-server tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

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
