"""``lre-bridge batch``: send a batch from a spreadsheet's CSV and follow it, through the HTTP API.

The commands speak to a running bridge (``--url``, ``--api-key`` or ``LRE_BRIDGE_URL``,
``LRE_API_KEY``), so they work from the syndic's own machine as well as from the server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import click
import requests
from requests_toolbelt import MultipartEncoder

TIMEOUT = (10, 120)  # connect, read: a 5,000-row upload is validated before the answer


def _client_options(func: Any) -> Any:
    func = click.option("--api-key", envvar="LRE_API_KEY", required=True,
                        help="The account's API key (or LRE_API_KEY).")(func)
    func = click.option("--url", envvar="LRE_BRIDGE_URL", default="http://127.0.0.1:8000", show_default=True,
                        help="The bridge's address (or LRE_BRIDGE_URL).")(func)
    return func


def _fail(response: requests.Response) -> None:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise click.ClickException(f"The bridge answered {response.status_code}: {response.text[:300]}") from None
    lines = [f"{error['message']} [{error['code']}]"]
    for detail in error.get("details") or []:
        where = ", ".join(part for part in (
            f"ligne {detail['row']}" if detail.get("row") else "en-tête" if "row" in detail else "",
            f"colonne {detail['column']!r}" if detail.get("column") else "") if part)
        lines.append(f"  - {where + ' : ' if where else ''}{detail.get('message')}")
    raise click.ClickException("\n".join(lines))


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        pairs[key.strip()] = item
    return pairs


@click.group("batch")
def batch_cli() -> None:
    """Batches: one letter per row of a CSV (e.g. an AG convocation to every co-owner)."""


@batch_cli.command("send")
@click.argument("rows_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--template", help="Template name, e.g. convocation_ag_copropriete.")
@click.option("--document", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="One PDF sent to every row (instead of a template).")
@click.option("--attach", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A PDF joined to every letter (repeatable): ordre du jour, comptes, projets de résolution…")
@click.option("--data", "data_pairs", multiple=True, help="Template value common to every row: KEY=VALUE.")
@click.option("--data-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Template values common to every row, as a JSON object.")
@click.option("--map", "map_pairs", multiple=True,
              help="COLUMN=TARGET (recipient.email, data.lots, reference…; empty TARGET ignores the column).")
@click.option("--recipient-type", type=click.Choice(["professional", "individual", "administration", "association"]),
              help="The type of rows without a type column.")
@click.option("--reference", help="Your reference for the batch (and letters without their own).")
@click.option("--message", help="Text of the notification e-mail.")
@click.option("--sandbox-outcome", help="Sandbox only: the outcome of every letter.")
@click.option("--allow-short-notice", is_flag=True, help="An urgent assembly: skip the 21-day notice check.")
@click.option("--encoding", help="The CSV's encoding (default: UTF-8, else Windows-1252).")
@click.option("--delimiter", help="The CSV's separator (default: read from the header).")
@click.option("--idempotency-key", help="Default: derived from the files and options, so that re-running the "
              "same command never sends twice.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the batch until every letter "
              "is submitted.")
@click.option("--interval", default=1.0, show_default=True, type=float, help="Seconds between progress reads.")
@_client_options
def batch_send(rows_file: Path, template: str | None, document: Path | None, attach: tuple[Path, ...],
               data_pairs: tuple[str, ...], data_file: Path | None, map_pairs: tuple[str, ...],
               recipient_type: str | None, reference: str | None, message: str | None, sandbox_outcome: str | None,
               allow_short_notice: bool, encoding: str | None, delimiter: str | None, idempotency_key: str | None,
               wait: bool, interval: float, url: str, api_key: str) -> None:
    """Send one letter per row of ROWS_FILE (CSV, or a JSON array), with a progress bar."""
    data: dict[str, Any] = json.loads(data_file.read_text(encoding="utf-8")) if data_file else {}
    data.update(_pairs(data_pairs, "--data"))
    mapping = {column: (target or None) for column, target in _pairs(map_pairs, "--map").items()}
    form: dict[str, str] = {"data": json.dumps(data), "mapping": json.dumps(mapping)}
    for key, value in (("template", template), ("recipient_type", recipient_type), ("reference", reference),
                       ("message", message), ("sandbox_outcome", sandbox_outcome), ("encoding", encoding),
                       ("delimiter", delimiter)):
        if value:
            form[key] = value
    if allow_short_notice:
        form["allow_short_notice"] = "true"
    # Files are hashed and sent in pieces (a streamed multipart body): a batch's PDFs are never all
    # in memory at once.
    files: list[tuple[str, Path, str]] = []
    if rows_file.suffix.lower() == ".json":
        form["rows"] = rows_file.read_text(encoding="utf-8")
    else:
        files.append(("rows", rows_file, "text/csv"))
    if document:
        files.append(("document", document, "application/pdf"))
    files += [("attachments", path, "application/pdf") for path in attach]
    if idempotency_key is None:
        digest = hashlib.sha256(json.dumps(form, sort_keys=True).encode())
        for name, path, _ in files:
            digest.update(f"{name}:{path.name}:".encode() + _file_sha256(path))
        idempotency_key = "cli-" + digest.hexdigest()[:40]
    headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": idempotency_key}
    base = url.rstrip("/")
    with contextlib.ExitStack() as opened:
        body = MultipartEncoder(fields=[*form.items(), *[
            (name, (path.name, opened.enter_context(path.open("rb")), content_type))
            for name, path, content_type in files]])
        try:
            response = requests.post(f"{base}/v1/batches", data=body, timeout=TIMEOUT,
                                     headers={**headers, "Content-Type": body.content_type})
        except requests.RequestException as exc:
            raise click.ClickException(f"The bridge at {base} cannot be reached: {type(exc).__name__}.") from None
    if response.status_code != 202:
        _fail(response)
    batch = response.json()
    replayed = response.headers.get("Idempotent-Replayed") == "true"
    click.echo(f"batch {batch['id']}: {batch['total']} letter(s) accepted"
               + (" (already sent by an earlier run of this command: nothing sent again)" if replayed else ""))
    if wait:
        batch = _follow(base, headers, batch, interval)
        _print_counts(batch)
    click.echo(f"follow it with: lre-bridge batch status {batch['id']}")


def _settled(batch: dict[str, Any]) -> int:
    counts = batch["counts"]
    return int(counts["submitted"] + counts["cancelled"] + counts["failed"])


def _follow(base: str, headers: dict[str, str], batch: dict[str, Any], interval: float) -> dict[str, Any]:
    """Poll the batch, showing how many letters are at the provider (or stopped), until all are."""
    total = int(batch["total"])
    shown = 0
    with click.progressbar(length=total, label="Lettres transmises", show_pos=True) as bar:
        while True:
            settled = min(_settled(batch), total)
            bar.update(settled - shown)
            shown = settled
            if settled >= total or batch["status"] == "completed":
                return batch
            time.sleep(interval)
            response = requests.get(f"{base}/v1/batches/{batch['id']}", headers=headers, timeout=TIMEOUT)
            if response.status_code != 200:
                _fail(response)
            batch = response.json()


def _print_counts(batch: dict[str, Any]) -> None:
    counts = batch["counts"]
    shown = ", ".join(f"{key} {value}" for key, value in counts.items() if value)
    click.echo(f"batch {batch['id']} ({batch['status']}): {batch['total']} letter(s): {shown}")


@batch_cli.command("status")
@click.argument("batch_id")
@click.option("--letters", is_flag=True, help="Also list every row and its letter.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the bordereau here (.pdf or .csv).")
@_client_options
def batch_status(batch_id: str, letters: bool, report_path: Path | None, url: str, api_key: str) -> None:
    """Where a batch stands: counts per status; optionally its rows and the bordereau."""
    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}"}
    response = requests.get(f"{base}/v1/batches/{batch_id}", headers=headers, timeout=TIMEOUT)
    if response.status_code != 200:
        _fail(response)
    _print_counts(response.json())
    if letters:
        cursor: str | None = None
        while True:
            params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            page = requests.get(f"{base}/v1/batches/{batch_id}/letters", headers=headers, params=params,
                                timeout=TIMEOUT)
            if page.status_code != 200:
                _fail(page)
            for row in page.json()["data"]:
                click.echo(f"{row['row']:>5}  {row['status']:<10} {row['letter_id'] or '-':<36}  "
                           f"{row['recipient']['email']}")
            cursor = page.json()["next_cursor"]
            if not cursor:
                break
    if report_path is not None:
        wanted = "csv" if report_path.suffix.lower() == ".csv" else "pdf"
        report = requests.get(f"{base}/v1/batches/{batch_id}/report", headers=headers, params={"format": wanted},
                              timeout=TIMEOUT)
        if report.status_code != 200:
            _fail(report)
        report_path.write_bytes(report.content)
        click.echo(f"bordereau saved to {report_path}")


def _file_sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(256 * 1024):
            digest.update(chunk)
    return digest.digest()
