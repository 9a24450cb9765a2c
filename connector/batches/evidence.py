"""``GET /v1/batches/{id}/evidence``: every letter's sealed evidence package, plus the bordereau, in
one zip written as it is read.

Each package is built (one letter in memory at a time), written into the zip and dropped; the
zip goes out in pieces through a sink that keeps nothing once a piece is handed over. Memory
stays that of one letter's package, whatever the size of the batch. Each package enters the zip
unchanged (a zip inside the zip), so it is the very file ``/v1/letters/{id}/evidence`` gives and
its seal still verifies.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select

from connector.batches.models import Batch, BatchItem
from connector.batches.report import report_csv, report_pdf, report_rows
from connector.batches.service import batch_to_dict
from connector.evidence.access import log_access
from connector.evidence.assemble import collect_package_input, tsa_timestamper
from connector.evidence.package import write_package
from connector.letters.service import letter_to_dict
from connector.lib import spool
from connector.models import Letter
from connector.services import Services

PAGE = 100


class _Sink:
    """A write-only file for ``zipfile``: what is written waits in ``pending`` until taken."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []

    # No tell()/seek(): zipfile then writes each entry's sizes after its data (a data descriptor)
    # instead of seeking back, which is what lets the zip leave before it is finished.
    def write(self, data: bytes) -> int:
        self.pending.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.pending = b"".join(self.pending), []
        return data


def _entry(name: str, when: datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(when.year, when.month, when.day, when.hour, when.minute, when.second))
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_STORED  # the packages are zips already; PDFs compress little
    return info


def evidence_zip_chunks(services: Services, batch_id: str, reader: str) -> Iterator[bytes]:
    """The zip, piece by piece: ``packages/<row>-<package>.zip`` for each letter, then the bordereau."""
    sink = _Sink()
    now = services.clock()
    timestamper = tsa_timestamper(services.settings)
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:  # type: ignore[arg-type]
        last = 0
        while True:
            with services.db.transaction() as session:
                page = list(session.execute(
                    select(BatchItem.row_number, BatchItem.letter_id)
                    .where(BatchItem.batch_id == batch_id, BatchItem.row_number > last,
                           BatchItem.letter_id.is_not(None))
                    .order_by(BatchItem.row_number).limit(PAGE)))
            if not page:
                break
            last = page[-1][0]
            for row_number, letter_id in page:
                # One short transaction per letter: it journals any new proof and logs this read,
                # then commits before the (possibly slow) time-stamp.
                with services.db.transaction() as session:
                    letter = session.get(Letter, letter_id)
                    assert letter is not None
                    log_access(session, account_id=letter.account_id, letter_id=letter.id,
                               what="evidence_package:batch", who=reader)
                    inp, key = collect_package_input(
                        session, letter, settings=services.settings, blobs=services.blobs, now=now,
                        letter_view=lambda row, s=session: letter_to_dict(s, row, services.settings.public_url))
                # Each package through a temporary file, then copied in pieces: the batch's zip
                # holds every letter's documents, and a process holds none of them whole.
                with spool.temporary_file(services.settings.data_dir / "spool") as spooled:
                    write_package(inp, key, spooled, timestamper)
                    spooled.seek(0)
                    with archive.open(_entry(f"packages/{row_number:04d}-{inp.name}.zip", now), "w") as out:
                        while chunk := spooled.read(spool.CHUNK_BYTES):
                            out.write(chunk)
                            yield sink.take()
                yield sink.take()
        with services.db.transaction() as session:
            batch = session.get(Batch, batch_id)
            assert batch is not None
            lines = report_rows(session, batch)
            view = batch_to_dict(session, batch, services)
            pdf = report_pdf(session, batch, lines, view, now)
            csv_bytes = report_csv(lines, view)
        archive.writestr(_entry("bordereau.pdf", now), pdf)
        archive.writestr(_entry("bordereau.csv", now), csv_bytes)
    yield sink.take()
