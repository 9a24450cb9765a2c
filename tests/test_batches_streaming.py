"""Batch uploads read in bounded memory: a CSV parsed from the file it was spooled to (as UTF-8, then
again from its start as Windows-1252 when a late byte says so), refused as soon as it passes its
limit, every bad row still named; the PDFs of a JSON batch decoded to files as the body is read."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from benchmarks.memory import big_pdf
from connector.batches import csvfile
from connector.batches.models import Batch, BatchDocument
from tests.helpers import peak_allocated_while
from tests.test_batches import COMMON, co_owner

MB = 1024 * 1024


def _csv_bytes(rows: list[dict[str, Any]], encoding: str = "utf-8", delimiter: str = ";") -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def _full_row(n: int, **extra: Any) -> dict[str, Any]:
    """A co-owner's row carrying the template's common fields too (a bare CSV body has no ``data``)."""
    common = {key: " | ".join(value) if isinstance(value, list) else value for key, value in COMMON.items()}
    return {**co_owner(n), **common, **extra}


def _multipart(client: Any, auth: dict[str, str], csv_content: bytes, **fields: Any) -> Any:
    return client.post("/v1/batches", headers=auth, data={
        "template": "convocation_ag_copropriete", "data": json.dumps(COMMON), "sandbox_outcome": "accepted",
        "rows": (io.BytesIO(csv_content), "coproprietaires.csv"), **fields,
    }, content_type="multipart/form-data")


def _batches(services: Any) -> int:
    with services.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Batch)) or 0)


def test_a_large_csv_with_a_late_windows_1252_byte_is_read_again_and_every_bad_row_named(client, auth, services):
    """1,200 rows (well past the first piece read): a spreadsheet's Windows-1252 'é' on the last line
    makes the UTF-8 reading fail there; the file is read again from its start, and the 422 lists
    every bad row, as a whole read did."""
    rows = [co_owner(n) for n in range(1, 1201)]
    rows[1]["email"] = "pas-une-adresse"
    rows[-2]["email"] = "toujours-pas"
    rows[-1]["company"] = rows[-1]["destinataire_nom"] = "SCI Fèvre"
    content = _csv_bytes(rows, "cp1252")
    assert content.index("è".encode("cp1252")) > 128 * 1024  # past the first pieces read
    answer = _multipart(client, auth, content)
    assert answer.status_code == 422, answer.json
    error = answer.json["error"]
    assert error["code"] == "invalid_rows"
    assert {(d["row"], d["column"], d["code"]) for d in error["details"]} == {
        (2, "email", "value_error"), (1199, "email", "value_error")}
    assert _batches(services) == 0
    rows[1]["email"], rows[-2]["email"] = "coproprietaire2@exemple.fr", "coproprietaire1199@exemple.fr"
    accepted = _multipart(client, auth, _csv_bytes(rows, "cp1252"))
    assert accepted.status_code == 202, accepted.json
    assert accepted.json["total"] == 1200
    listed = client.get(f"/v1/batches/{accepted.json['id']}/letters?recipient=coproprietaire1200&limit=5",
                        headers=auth).json["data"]
    assert [r["recipient"]["company"] for r in listed] == ["SCI Fèvre"]  # decoded as Windows-1252


def test_a_bare_csv_body_is_parsed_from_its_spooled_copy(client, auth, services):
    rows = [_full_row(n) for n in range(1, 3001)]
    content = _csv_bytes(rows, "utf-8-sig", ",")
    assert len(content) > 256 * 1024  # spooled to a file (past 1 MB of body: see bodies.request_body)
    answer = client.post("/v1/batches?template=convocation_ag_copropriete&sandbox_outcome=accepted", data=content,
                         headers={**auth, "Content-Type": "text/csv"})
    assert answer.status_code == 202, answer.json
    assert answer.json["total"] == 3000
    rows[2400]["email"] = "faux"
    refused = client.post("/v1/batches?template=convocation_ag_copropriete", data=_csv_bytes(rows, "utf-8-sig", ","),
                          headers={**auth, "Content-Type": "text/csv"})
    assert refused.status_code == 422
    assert [(d["row"], d["column"]) for d in refused.json["error"]["details"]] == [(2401, "email")]


@pytest.mark.parametrize("how", ["multipart", "text/csv"])
def test_a_csv_past_its_limit_is_refused_while_read(client, auth, services, monkeypatch, how):
    monkeypatch.setattr(csvfile, "MAX_CSV_BYTES", 100 * 1024)
    content = _csv_bytes([_full_row(n) for n in range(1, 300)])
    assert len(content) > 100 * 1024
    if how == "multipart":
        answer = _multipart(client, auth, content)
    else:
        answer = client.post("/v1/batches?template=convocation_ag_copropriete", data=content,
                             headers={**auth, "Content-Type": "text/csv"})
    assert answer.status_code == 422, answer.json
    assert (answer.json["error"]["code"], answer.json["error"]["field"]) == ("rows_too_large", "rows")
    assert _batches(services) == 0



def test_the_pdfs_of_a_json_batch_are_decoded_to_files_as_the_body_is_read(client, auth, services):
    """A 6 MB PDF for all and a 6 MB attachment, as base64: 16 MB of JSON. Read whole (as before),
    the body, its text and the decoded PDFs were all in memory at once: 58 MB allocated; 18 MB while
    storing the batch still read each document whole. Now about 3 MB: they are archived from their files."""
    letter, attachment = big_pdf(6), big_pdf(6)
    body = json.dumps({
        "document": {"filename": "convocation.pdf", "content_base64": base64.b64encode(letter).decode()},
        "attachments": [{"filename": "annexe.pdf", "content_base64": base64.b64encode(attachment).decode()}],
        "recipient_type": "professional", "sandbox_outcome": "accepted",
        "rows": [{"email": "a@exemple.fr", "company": "A"}, {"email": "b@exemple.fr", "company": "B"}],
    }).encode()
    answer, peak = peak_allocated_while(lambda: client.post("/v1/batches", data=body,
                                                   headers={**auth, "Content-Type": "application/json"}))
    assert answer.status_code == 202, answer.json
    with services.db.transaction() as session:
        stored = sorted((d.sha256, d.size) for d in session.scalars(select(BatchDocument)))
    assert stored == sorted((hashlib.sha256(p).hexdigest(), len(p)) for p in (letter, attachment))
    assert peak < 8 * MB, f"{peak / MB:.1f} MB allocated for a {len(body) / MB:.1f} MB body"
