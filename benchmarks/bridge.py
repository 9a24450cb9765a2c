"""Run the real bridge for a benchmark: ``lre-bridge serve`` (and ``lre-bridge worker``) as processes.

``Bridge`` starts the embedded default (SQLite, in-process worker) or PostgreSQL (a fresh database,
``serve`` without its worker plus ``worker --concurrency N``), waits until it answers, and gives
the first account's API key (``serve`` prints it once, on a new installation).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
# What a worker process logs once it claims jobs, and once its LISTEN connection is up.
WORKER_STARTED = " started (pools: "
WORKER_LISTENING = "listening for job notifications"
DEFAULT_POSTGRES = os.environ.get("LRE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _admin(url: str, sql: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


class Bridge:
    """One bridge installation in a temporary directory, run as real processes."""

    def __init__(self, data_dir: Path, *, backend: str = "sqlite", worker_concurrency: int = 1,
                 env: dict[str, str] | None = None, postgres_url: str = DEFAULT_POSTGRES) -> None:
        self.data_dir = data_dir
        self.backend = backend
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[Any] = []
        self.database: str | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LRE_")}
        self.env.update({"LRE_DATA_DIR": str(data_dir), "LRE_SANDBOX_STEP_SECONDS": "0",
                         "LRE_ALLOW_PRIVATE_URLS": "true", "LRE_PUBLIC_URL": self.url})
        if backend == "postgresql":
            self.admin_url = postgres_url
            self.database = f"lre_bench_{uuid.uuid4().hex[:8]}"
            _admin(postgres_url, f'CREATE DATABASE "{self.database}"')
            db_url = make_url(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)).set(
                database=self.database).render_as_string(hide_password=False)
            self.env.update({"LRE_DATABASE_URL": db_url, "LRE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                             "LRE_WORKER_IN_PROCESS": "false"})
        self.env.update(env or {})
        self.worker_concurrency = worker_concurrency
        self.key = ""

    @property
    def database_url(self) -> str:
        return self.env.get("LRE_DATABASE_URL") or f"sqlite:///{self.data_dir / 'bridge.sqlite3'}"

    def start(self, *, workers: bool = True) -> Bridge:
        """Start ``serve`` and, on PostgreSQL, the worker processes (``workers=False``: later, with
        ``start_workers``, so that a benchmark can fill the queue first)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "serve.log").open("w")
        self._logs.append(log)
        serve = subprocess.Popen([sys.executable, "-m", "connector.cli", "serve", "--port", str(self.port)],
                                 env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(serve)
        deadline = time.monotonic() + 120
        while not self.key and time.monotonic() < deadline:
            lines = (self.data_dir / "serve.log").read_text().splitlines()
            self.key = next((line for line in lines if line.startswith("lre_")), "")
            time.sleep(0.1)
        if not self.key:
            raise RuntimeError("serve printed no API key:\n" + (self.data_dir / "serve.log").read_text())
        # The port was free when chosen, but another process may have bound it since: then gunicorn
        # retries and exits, and /readyz would be answered by that other process. Wait for our own
        # "Listening at" line.
        listening = f"Listening at: {self.url}"
        while listening not in (self.data_dir / "serve.log").read_text():
            if serve.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not listen on {self.url}:\n" + (self.data_dir / "serve.log").read_text())
            time.sleep(0.05)
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/readyz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        if workers:
            self.start_workers(deadline)
        return self

    def start_workers(self, deadline: float | None = None) -> None:
        """Start ``lre-bridge worker --concurrency N`` (PostgreSQL) and wait until it listens."""
        deadline = deadline if deadline is not None else time.monotonic() + 120
        if self.backend == "postgresql":
            worker_log = (self.data_dir / "worker.log").open("w")
            self._logs.append(worker_log)
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "connector.cli", "worker", "--concurrency", str(self.worker_concurrency)],
                env=self.env, cwd=ROOT, stdout=worker_log, stderr=subprocess.STDOUT))
            self._wait_for_workers(deadline)

    def _wait_for_workers(self, deadline: float) -> None:
        """Until every worker process has started its dispatcher and its ``LISTEN`` connection: a
        benchmark measures the running bridge, not the seconds its workers take to import and connect
        (letters sent before would wait for them, and count as queue latency)."""
        log = self.data_dir / "worker.log"
        while time.monotonic() < deadline:
            text = log.read_text()
            if (text.count(WORKER_STARTED) >= self.worker_concurrency
                    and text.count(WORKER_LISTENING) >= self.worker_concurrency):
                return
            if any(proc.poll() is not None for proc in self.processes):
                break
            time.sleep(0.05)
        raise RuntimeError("the workers did not start:\n" + log.read_text())

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def pids(self) -> list[int]:
        """Every bridge process: serve's gunicorn master and worker, and worker processes with children."""
        found: list[int] = []
        pending = [p.pid for p in self.processes]
        while pending:
            pid = pending.pop()
            found.append(pid)
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            pending.extend(int(c) for c in children)
        return found

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in self._logs:
            log.close()
        if self.database:
            _admin(self.admin_url, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def __enter__(self) -> Bridge:
        return self if self.processes else self.start()  # ``with Bridge(...).start(workers=False)``

    def __exit__(self, *_exc: Any) -> None:
        self.stop()
