"""The bordereau: the one document a syndic attaches to the AG minutes to prove everyone was convened.

For every row: the recipient, the letter id, its status, the deposit and final dates, the SHA-256
of each document sent and of each proof the provider issued; then the batch's totals. As CSV
(``;``-separated UTF-8 with BOM, which French spreadsheets open as is) and as PDF (ReportLab).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.batches.models import Batch, BatchDocument, BatchItem
from connector.batches.service import CANCELLED, iso
from connector.models import Account, Document, Letter, Proof
from connector.rendering.fields import LETTER_TIMEZONE

CSV_COLUMNS = ("row", "recipient", "email", "recipient_type", "reference", "letter_id", "status", "failure",
               "created_at", "deposited_at", "completed_at", "documents_sha256", "proofs_sha256")
STATUS_FR = {
    "pending": "en préparation", "rendered": "lettres produites", "submitted": "transmises au prestataire",
    "queued": "en file d'attente", "deposited": "déposée", "accepted": "acceptée",
    "refused": "refusée", "neglected": "non réclamée", "bounced": "e-mail en échec", "failed": "échec",
    CANCELLED: "annulée",
}
PAGE_ROWS = 500  # rows read per query: the report's memory grows with the batch, the queries do not


@dataclass(frozen=True)
class ReportLine:
    row: int
    recipient: str
    email: str
    recipient_type: str
    reference: str | None
    letter_id: str | None
    status: str
    failure: str | None
    created_at: str | None
    deposited_at: str | None
    completed_at: str | None
    documents: tuple[tuple[str, str], ...]  # (filename, sha256)
    proofs: tuple[tuple[str, str], ...]  # (kind, sha256)


def _display(item: BatchItem) -> str:
    person = " ".join(p for p in (item.recipient_first_name, item.recipient_last_name) if p)
    return item.recipient_company or person or item.recipient_email


def report_rows(session: Session, batch: Batch) -> list[ReportLine]:
    """Every row of the batch with its letter's facts, in row order."""
    lines: list[ReportLine] = []
    last = 0
    while True:
        page = list(session.execute(
            select(BatchItem, Letter).outerjoin(Letter, Letter.id == BatchItem.letter_id)
            .where(BatchItem.batch_id == batch.id, BatchItem.row_number > last)
            .order_by(BatchItem.row_number).limit(PAGE_ROWS)))
        if not page:
            return lines
        ids = [letter.id for _, letter in page if letter is not None]
        documents: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for doc in session.scalars(select(Document).where(Document.letter_id.in_(ids)).order_by(Document.position)):
            documents[doc.letter_id].append((doc.filename, doc.sha256))
        proofs: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for proof in session.scalars(select(Proof).where(Proof.letter_id.in_(ids)).order_by(Proof.created_at)):
            proofs[proof.letter_id].append((proof.kind, proof.sha256))
        for item, letter in page:
            if letter is None:
                status, failure = item.status, item.failure_reason
            else:
                status = CANCELLED if letter.failure_code == CANCELLED else letter.status
                failure = letter.failure_reason if letter.status == "failed" else None
            lines.append(ReportLine(
                row=item.row_number, recipient=_display(item), email=item.recipient_email,
                recipient_type=item.recipient_type, reference=item.reference,
                letter_id=letter.id if letter else None, status=status, failure=failure,
                created_at=iso(letter.created_at) if letter else None,
                deposited_at=iso(letter.deposited_at) if letter else None,
                completed_at=iso(letter.completed_at) if letter else None,
                documents=tuple(documents.get(letter.id, ())) if letter else (),
                proofs=tuple(proofs.get(letter.id, ())) if letter else (),
            ))
        last = page[-1][0].row_number


def report_csv(lines: list[ReportLine], batch: dict[str, Any]) -> bytes:
    """One line per row, then, after an empty line, the totals (``total;<status>;<count>``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        writer.writerow([
            line.row, line.recipient, line.email, line.recipient_type, line.reference or "", line.letter_id or "",
            line.status, line.failure or "", line.created_at or "", line.deposited_at or "",
            line.completed_at or "", " ".join(sha for _, sha in line.documents),
            " ".join(f"{kind}:{sha}" for kind, sha in line.proofs),
        ])
    writer.writerow([])
    writer.writerow(["total", "all", batch["total"]])
    for status, count in batch["counts"].items():
        writer.writerow(["total", status, count])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _paris(value: str | None) -> str:
    if not value:
        return "—"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(LETTER_TIMEZONE)
    return moment.strftime("%d/%m/%Y %H:%M")


def report_pdf(session: Session, batch: Batch, lines: list[ReportLine], view: dict[str, Any], now: datetime) -> bytes:
    """The bordereau as an A4 landscape PDF (French), with every hash written out in full."""
    # ReportLab and the fonts (xhtml2pdf's module) are loaded here, not with the API: a serving
    # process that never writes a bordereau does not carry them (tens of MB of resident memory).
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from connector.rendering.pdf import register_fonts

    font = register_fonts()
    bold = f"{font}-Bold"
    base = ParagraphStyle("base", fontName=font, fontSize=8, leading=10)
    small = ParagraphStyle("small", parent=base, fontSize=6, leading=7.5)
    title = ParagraphStyle("title", parent=base, fontName=bold, fontSize=14, leading=18)
    account = session.get(Account, batch.account_id)
    common = list(session.scalars(select(BatchDocument).where(BatchDocument.batch_id == batch.id)
                                  .order_by(BatchDocument.position)))
    story: list[Any] = [
        Paragraph("Bordereau d'envoi — lettres recommandées électroniques", title),
        Paragraph(f"Lot <b>{batch.id}</b> — expéditeur : {account.name if account else batch.account_id}"
                  f" — créé le {_paris(iso(batch.created_at))} (heure de Paris)"
                  f"{' — référence ' + batch.reference if batch.reference else ''}", base),
        Paragraph(f"Modèle : {batch.template_name} v{batch.template_version}" if batch.template_name
                  else "Document unique pour tous les destinataires", base),
        Paragraph(f"Édité le {_paris(iso(now))} (heure de Paris). Les dates ci-dessous sont à l'heure de Paris ; "
                  "les empreintes sont des SHA-256.", base),
        Spacer(1, 0.3 * cm),
    ]
    for doc in common:
        role = "Lettre commune" if doc.role == "letter" else "Pièce jointe"
        story.append(Paragraph(f"{role} : {doc.filename} — SHA-256 {doc.sha256}", small))
    counts = view["counts"]
    totals = [["Total", str(view["total"])]] + [[STATUS_FR.get(k, k), str(v)] for k, v in counts.items()]
    story += [Spacer(1, 0.3 * cm), Paragraph("Totaux", ParagraphStyle("h", parent=base, fontName=bold)),
              Table([[Paragraph(a, base), Paragraph(b, base)] for a, b in totals], colWidths=[5 * cm, 2 * cm],
                    style=TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey)])),
              Spacer(1, 0.4 * cm)]
    header = ["N°", "Destinataire", "Statut", "Dépôt", "Statut final", "Lettre et empreintes SHA-256"]
    table = [[Paragraph(f"<b>{h}</b>", base) for h in header]]
    for line in lines:
        facts = [f"<b>{line.letter_id or '—'}</b>"]
        facts += [f"{name} : {sha}" for name, sha in line.documents]
        facts += [f"preuve {kind} : {sha}" for kind, sha in line.proofs]
        status = STATUS_FR.get(line.status, line.status) + (f" ({line.failure})" if line.failure else "")
        table.append([
            Paragraph(str(line.row), base),
            Paragraph(f"{line.recipient}<br/>{line.email}", base),
            Paragraph(status, base),
            Paragraph(_paris(line.deposited_at), base),
            Paragraph(_paris(line.completed_at), base),
            Paragraph("<br/>".join(facts), small),
        ])
    story.append(Table(table, repeatRows=1, colWidths=[0.9 * cm, 5.2 * cm, 3 * cm, 2.4 * cm, 2.4 * cm, 13.3 * cm],
                       style=TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                                         ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                         ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee"))])))
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=landscape(A4), leftMargin=1.2 * cm, rightMargin=1.2 * cm,
                                 topMargin=1.2 * cm, bottomMargin=1.2 * cm, title=f"Bordereau {batch.id}",
                                 author=account.name if account else "LRE Bridge", invariant=1)
    document.build(story)
    return buffer.getvalue()
