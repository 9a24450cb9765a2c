"""A 1,000-row AG convocation batch on PostgreSQL: the time to the 202, the time until every letter
is at the (sandbox) provider with ``lre-bridge worker --concurrency 2``, and each process's peak RSS.

The throughput is compared with a baseline measured in the same run: the raw render rate (the
convocation template straight through ``render_spec``, the PDF alone, nothing stored) times 2, for
the two workers. A batch can send no faster than it renders; the ratio says how much of the two
workers' time goes to rendering rather than to the bridge's own work (validation, storage, jobs,
submission, journal).

    .venv/bin/python benchmarks/batch.py [--rows 1000] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Goals: 202 in < 2 s; ratio ≥ 0.8; every process < 200 MB peak RSS.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.api.auth import create_api_key  # noqa: E402
from connector.db import Database  # noqa: E402
from connector.migrate import upgrade  # noqa: E402
from connector.models import Account, Job, SandboxMail  # noqa: E402
from connector.rendering.isolation import render_workers_cpu_seconds  # noqa: E402
from connector.rendering.library import builtin_templates  # noqa: E402
from connector.rendering.render import render_spec  # noqa: E402

TEMPLATE = "convocation_ag_copropriete"


def common_data() -> dict[str, Any]:
    spec = builtin_templates()[TEMPLATE]
    data = {f.key: f.example for f in spec.fields if f.example is not None}
    data["date_assemblee"] = (date.today() + timedelta(days=45)).isoformat()
    for per_row in ("destinataire_nom", "destinataire_adresse", "lots"):
        data.pop(per_row, None)
    return data


def rows(count: int) -> list[dict[str, Any]]:
    return [{"email": f"coproprietaire{n}@exemple.fr", "company": f"SCI du lot {n}",
             "destinataire_nom": f"SCI du lot {n}", "destinataire_adresse": f"{n} rue Victor-Hugo\n69002 Lyon",
             "lots": [f"Lot {n} : appartement ({n % 300 + 50}/10 000es)", f"Lot {1000 + n} : cave"]}
            for n in range(1, count + 1)]


def raw_render_rate(letters: int = 20) -> tuple[float, float]:
    """Letters per second of the bare render (warm), one caller; and its CPU seconds per letter
    (this process's and its render worker's: the render runs in an isolated process)."""
    spec = builtin_templates()[TEMPLATE]
    sample = {**common_data(), **{k: v for k, v in rows(1)[0].items() if k not in ("email", "company")}}
    now = datetime.now(UTC)
    for _ in range(3):
        render_spec(spec, sample, now)
    started, cpu = time.perf_counter(), time.process_time() + render_workers_cpu_seconds()
    for _ in range(letters):
        render_spec(spec, sample, now)
    return (letters / (time.perf_counter() - started),
            (time.process_time() + render_workers_cpu_seconds() - cpu) / letters)


def _admin(url: str, sql: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the worker starts one child process per extra concurrency)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            found += _tree(int(child))
    return found


def _is_worker(pid: int) -> bool:
    """A worker process (``connector.cli worker``) rather than one of its render processes."""
    try:
        return any(name in Path(f"/proc/{pid}/cmdline").read_bytes() for name in (b"connector.cli", b"profile_worker"))
    except FileNotFoundError:
        return False


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_backends(session: Any, database: str) -> list[int]:
    """The server processes serving ``database``, other than the one asking."""
    return list(session.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = :name "
                                     "AND pid <> pg_backend_pid()"), {"name": database}))


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")
    parser.add_argument("--profile", metavar="PATH", help="run the worker under benchmarks/profile_worker.py "
                        "(each job profiled, SQL statements counted per job kind) and write its profile to PATH")
    parser.add_argument("--postgres", default=os.environ.get("LRE_TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()

    name = f"lre_bench_batch_{uuid.uuid4().hex[:8]}"
    _admin(args.postgres, f'CREATE DATABASE "{name}"')
    url = make_url(args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)).set(database=name)
    database_url = url.render_as_string(hide_password=False)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        db = Database(database_url)
        upgrade(db)
        with db.transaction() as session:
            account = Account(name="Syndic benchmark")
            session.add(account)
            session.flush()
            _, key = create_api_key(session, account, name="bench")
        data_dir = Path(tempfile.mkdtemp(prefix="lre-bench-batch-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("LRE_")}
        env.update({"LRE_DATABASE_URL": database_url, "LRE_DATA_DIR": str(data_dir),
                    "LRE_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "LRE_WORKER_IN_PROCESS": "false",
                    # Polls after the deposit would compete with submissions; the figure is submission.
                    "LRE_SANDBOX_STEP_SECONDS": "3600"})
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "connector.cli", "serve", "--no-worker", "--port", str(port)],
                                  env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(server)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if requests.get(f"{base}/readyz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        render_rate, render_cpu = raw_render_rate()
        print(f"raw render rate (this process, before the batch): {render_rate:.2f} letters/s, "
              f"{render_cpu * 1000:.0f} ms CPU per letter", flush=True)
        body = {"template": TEMPLATE, "data": common_data(), "rows": rows(args.rows), "recipient_type": "professional",
                "reference": "AG-BENCH", "sandbox_outcome": "accepted"}
        headers = {"Authorization": f"Bearer {key}"}
        cpu_before = sum(_cpu_seconds(pid) for pid in _tree(server.pid))
        started = time.perf_counter()
        answer = requests.post(f"{base}/v1/batches", json=body, headers=headers, timeout=120)
        accepted_in = time.perf_counter() - started
        assert answer.status_code == 202, answer.text[:500]
        print(f"rows: {args.rows}  (PostgreSQL, sandbox provider, worker --concurrency 2, {os.cpu_count()} cores)")
        server_cpu = sum(_cpu_seconds(pid) for pid in _tree(server.pid)) - cpu_before
        print(f"time to the 202: {accepted_in:.2f} s  (goal < 2 s); API server CPU for it: {server_cpu:.2f} s "
              "(the wall time includes waiting for the CPU on a busy machine)", flush=True)

        command = [sys.executable, "-m", "connector.cli"]
        if args.profile:
            command = [sys.executable, str(ROOT / "benchmarks" / "profile_worker.py")]
            env["LRE_PROFILE_OUT"] = str(Path(args.profile).resolve())
        # With --profile, the worker's stderr (its statement counts at exit) comes through.
        worker = subprocess.Popen([*command, "worker", "--concurrency", "2"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=None if args.profile else subprocess.DEVNULL)
        procs.append(worker)
        started = time.perf_counter()
        peaks: dict[int, float] = {}
        # CPU seconds per process while the batch is sent (the last reading of each: a process may
        # end before the batch does). PostgreSQL's own processes only when the server runs here.
        cpu: dict[tuple[str, int], float] = {}
        server_cpu_start = _cpu_seconds(server.pid)
        submitted = 0
        while submitted < args.rows:
            time.sleep(0.5)
            for pid in _tree(worker.pid) + [server.pid]:
                peaks[pid] = max(peaks.get(pid, 0.0), _peak_rss_mb(pid))
            for pid in _tree(worker.pid):
                cpu[("worker" if pid == worker.pid or _is_worker(pid) else "render", pid)] = _cpu_seconds(pid)
            with db.transaction() as session:
                for pid in _postgres_backends(session, name):
                    cpu[("postgres", pid)] = _cpu_seconds(pid)
                submitted = int(session.scalar(select(func.count()).select_from(SandboxMail)) or 0)
                failing = session.scalar(select(Job.last_error).where(Job.attempts >= 3, Job.last_error.is_not(None))
                                         .limit(1))
            if failing:
                raise SystemExit(f"jobs keep failing: {failing[:300]}")
            if time.perf_counter() - started > args.timeout:
                print(f"timed out: {submitted} of {args.rows} letters submitted after {args.timeout:.0f} s; "
                      "the figures below are for those (partial)")
                break
            if worker.poll() is not None:
                raise SystemExit(f"the worker stopped (exit {worker.returncode}) after {submitted} letters")
        submitted_in = time.perf_counter() - started
        done = submitted or 1
        cpu[("api server", server.pid)] = _cpu_seconds(server.pid) - server_cpu_start
        for pid in _tree(worker.pid) + [server.pid]:
            peaks[pid] = max(peaks.get(pid, 0.0), _peak_rss_mb(pid))
        db.dispose()
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        _admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    rate = done / submitted_in
    baseline = 2 * render_rate
    print(f"time until {done} letters were submitted: {submitted_in:.1f} s  = {rate:.2f} letters/s")
    print(f"raw render rate: {render_rate:.2f} letters/s; baseline 2 × raw = {baseline:.2f} letters/s")
    print(f"ratio: {rate / baseline:.2f}  (goal ≥ 0.8)")
    per_kind: dict[str, float] = {}
    for (kind, _), seconds in cpu.items():
        per_kind[kind] = per_kind.get(kind, 0.0) + seconds
    total = sum(per_kind.values())
    print("CPU per letter while sending: " + ", ".join(f"{kind} {seconds / done * 1000:.0f} ms"
                                                        for kind, seconds in sorted(per_kind.items()))
          + f"; total {total / done * 1000:.0f} ms against {render_cpu * 1000:.0f} ms for the raw render "
          f"(CPU ratio {render_cpu * done / total:.2f}: the steadier figure on a shared machine)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    labels = {server.pid: "api server"}
    for pid, peak in sorted(peaks.items()):
        print(f"peak RSS {labels.get(pid, 'worker process')} (pid {pid}): {peak:.0f} MB  (goal < 200 MB)")


if __name__ == "__main__":
    main()
