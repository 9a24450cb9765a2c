"""Letters per second: raw xhtml2pdf vs the bridge's whole "send from template" path, in one run.

(a) raw:    xhtml2pdf.pisaDocument on the HTML of a rendered mise en demeure (fonts registered).
(b) bridge: POST /v1/letters with ``template`` + ``data`` through the Flask test client: API key
            check, validation, sandboxed render, PDF, SHA-256, blob store, letter + outbox job
            committed (SQLite, sandbox provider, worker off).

Usage: .venv/bin/python benchmarks/render.py [--letters 40]
Prints both rates and bridge/raw (target: at least 0.8), the CPU time per letter of each (the
bridge's includes its render worker's) and the load average.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from xhtml2pdf import pisa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.api.auth import create_api_key  # noqa: E402
from connector.app import create_app  # noqa: E402
from connector.migrate import upgrade  # noqa: E402
from connector.models import Account  # noqa: E402
from connector.rendering.fields import coerce_data  # noqa: E402
from connector.rendering.isolation import render_workers_cpu_seconds  # noqa: E402
from connector.rendering.library import builtin_templates  # noqa: E402
from connector.rendering.pdf import register_fonts  # noqa: E402
from connector.rendering.render import render_html  # noqa: E402

TEMPLATE = "mise_en_demeure"


def example_data() -> dict[str, object]:
    spec = builtin_templates()[TEMPLATE]
    return {field.key: field.example for field in spec.fields if field.example is not None}


def rates(actions: dict[str, Callable[[int], None]], letters: int,
          per_round: int = 3) -> tuple[dict[str, float], dict[str, float]]:
    """Letters per second of each action, measured in interleaved rounds; and its CPU time per letter.

    CPU time (this process's, plus the render workers' for the letters they render) does not
    count the time spent waiting for a core, so it is the steadier figure on a shared machine.

    Short interleaved rounds mean a noisy neighbour (another test run on the machine) slows both
    sides alike instead of whichever happened to run at the time; a few untimed runs warm the caches.

    Each timed block starts after an untimed ``gc.collect()``. Without it, the garbage collector's
    older-generation passes (one per 11 young ones) fall in step with the rounds: a round of 3 raw
    renders and 3 sends makes about 11 young collections, so every older pass landed at the same
    point of the round, in the bridge's block, and charged it for the renders' garbage (seen:
    31 of 32 such passes). ``timeit`` goes further and switches the collector off.
    """
    for action in actions.values():
        for index in range(3):
            action(-1 - index)
    elapsed = dict.fromkeys(actions, 0.0)
    cpu = dict.fromkeys(actions, 0.0)
    rounds = max(1, letters // per_round)
    counter = 0
    for _ in range(rounds):
        for name, action in actions.items():
            gc.collect()
            start, cpu_start = time.perf_counter(), time.process_time() + render_workers_cpu_seconds()
            for _ in range(per_round):
                action(counter)
                counter += 1
            elapsed[name] += time.perf_counter() - start
            cpu[name] += time.process_time() + render_workers_cpu_seconds() - cpu_start
    return ({name: per_round * rounds / seconds for name, seconds in elapsed.items()},
            {name: seconds / (per_round * rounds) for name, seconds in cpu.items()})


def raw_render(html: str) -> Callable[[int], None]:
    def run(_index: int) -> None:
        out = io.BytesIO()
        status = pisa.pisaDocument(html, dest=out, encoding="utf-8")
        assert not status.err and out.getvalue().startswith(b"%PDF")

    return run


def bridge_send(data_dir: Path) -> Callable[[int], None]:
    app = create_app({
        "data_dir": data_dir,
        "database_url": f"sqlite:///{data_dir / 'bench.sqlite3'}",
        "encryption_keys": Fernet.generate_key().decode(),
        "worker_in_process": False,
        "public_url": "http://bridge.test",
    })
    services = app.extensions["lre"]
    upgrade(services.db)
    with services.db.transaction() as session:
        account = Account(name="Benchmark")
        session.add(account)
        session.flush()
        _, key = create_api_key(session, account)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    data = example_data()

    def run(index: int) -> None:
        body = {
            "recipient": {"type": "professional", "email": "compta@exemple.fr", "company": "Exemple SARL"},
            "template": TEMPLATE,
            "data": {**data, "numero_facture": f"F-BENCH-{index}"},
            "sandbox_outcome": "accepted",
        }
        response = client.post("/v1/letters", json=body, headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)[:300]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--letters", type=int, default=60)
    args = parser.parse_args()

    register_fonts()
    spec = builtin_templates()[TEMPLATE]
    html = render_html(spec, coerce_data(spec.fields, example_data()), datetime(2026, 11, 27, tzinfo=UTC).date())
    with tempfile.TemporaryDirectory() as tmp:
        measured, cpu = rates({"raw": raw_render(html), "bridge": bridge_send(Path(tmp))}, args.letters)
    raw, bridge = measured["raw"], measured["bridge"]
    print(f"(a) raw xhtml2pdf render                                : {raw:6.1f} letters/s")
    print(f"(b) bridge send (HTTP → render → hash → store → queued) : {bridge:6.1f} letters/s")
    print(f"bridge's own work per letter (b − a, in time): {1000 / bridge - 1000 / raw:5.1f} ms")
    print(f"CPU per letter: raw {cpu['raw'] * 1000:5.1f} ms, bridge {cpu['bridge'] * 1000:5.1f} ms "
          f"(API process + render worker); CPU ratio raw/bridge: {cpu['raw'] / cpu['bridge']:.2f}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"ratio bridge/raw: {bridge / raw:.2f} (target ≥ 0.80)")


if __name__ == "__main__":
    main()
