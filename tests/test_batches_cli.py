"""``lre-bridge batch send`` and ``batch status`` against a live bridge on loopback (with a worker)."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from connector.cli import main
from connector.delivery import outbox
from tests.helpers import make_pdf, server_thread
from tests.test_batches import COMMON


@pytest.fixture
def live_bridge(app, services) -> Iterator[str]:
    """The test app served on 127.0.0.1 with an outbox worker thread, as ``lre-bridge serve`` runs it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            if not outbox.drain(services, owner="cli-test", max_jobs=50):
                stop.wait(0.05)

    threads = [server_thread(server), threading.Thread(target=work, daemon=True)]
    for thread in threads:
        thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    stop.set()
    server.shutdown()
    for thread in threads:
        thread.join(timeout=10)


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), delimiter=";")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode("cp1252"))  # as Excel on Windows saves it


def test_batch_send_shows_progress_and_batch_status_reports_it(live_bridge, auth, tmp_path: Path):
    rows = tmp_path / "coproprietaires.csv"
    _write_csv(rows, [
        {"email": f"lot{n}@exemple.fr", "societe": f"SCI Lot {n}", "destinataire_nom": f"SCI Lot {n}",
         "destinataire_adresse": f"{n} rue Victor-Hugo, 69002 Lyon", "lots": f"Lot {n} : appartement"}
        for n in range(1, 6)])
    common = tmp_path / "commun.json"
    common.write_text(json.dumps(COMMON), encoding="utf-8")
    ordre = tmp_path / "ordre.pdf"
    ordre.write_bytes(make_pdf("Ordre du jour"))
    key = auth["Authorization"].removeprefix("Bearer ")
    client_args = ["--url", live_bridge, "--api-key", key]
    runner = CliRunner()

    sent = runner.invoke(main, ["batch", "send", str(rows), "--template", "convocation_ag_copropriete",
                                "--data-file", str(common), "--attach", str(ordre), "--recipient-type",
                                "professional", "--interval", "0.1", *client_args])
    assert sent.exit_code == 0, sent.output
    assert "5 letter(s) accepted" in sent.output and "Lettres transmises" in sent.output
    batch_id = sent.output.split()[1].rstrip(":")
    assert batch_id.startswith("bat_") and "submitted 5" in sent.output

    again = runner.invoke(main, ["batch", "send", str(rows), "--template", "convocation_ag_copropriete",
                                 "--data-file", str(common), "--attach", str(ordre), "--recipient-type",
                                 "professional", "--no-wait", *client_args])
    assert again.exit_code == 0 and batch_id in again.output and "nothing sent again" in again.output

    report = tmp_path / "bordereau.csv"
    status = runner.invoke(main, ["batch", "status", batch_id, "--letters", "--report", str(report), *client_args])
    assert status.exit_code == 0, status.output
    assert status.output.count("lot") >= 5 and "total" in report.read_text(encoding="utf-8-sig")


def test_batch_send_lists_every_bad_row_and_fails(live_bridge, auth, tmp_path: Path):
    rows = tmp_path / "rows.csv"
    _write_csv(rows, [{"email": "pas-une-adresse", "societe": "A"}, {"email": "b@exemple.fr", "societe": "B"},
                      {"email": "b@exemple.fr", "societe": "B bis"}])
    pdf = tmp_path / "convocation.pdf"
    pdf.write_bytes(make_pdf())
    key = auth["Authorization"].removeprefix("Bearer ")
    result = CliRunner().invoke(main, ["batch", "send", str(rows), "--document", str(pdf), "--recipient-type",
                                       "professional", "--url", live_bridge, "--api-key", key])
    assert result.exit_code == 1
    assert "ligne 1, colonne 'email'" in result.output and "ligne 3, colonne 'email'" in result.output
    assert "already the recipient of row 2" in result.output
