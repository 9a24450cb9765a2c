"""``lre-bridge evidence …``: check a package (needs only the package and a key) and, for the
operator, export packages from the bridge's database into an archive folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from connector.evidence.access import log_access
from connector.evidence.verify import PackageUnreadable, read_package, render_report, verify_package
from connector.lib import http


class PackageNotReadable(click.ClickException):
    """Exit status 2: the input is not a package at all (as opposed to a tampered one)."""

    exit_code = 2


@click.group("evidence")
def evidence_cli() -> None:
    """Evidence packages: check them offline, export them for archiving."""


@evidence_cli.command("export")
@click.argument("letter_ids", nargs=-1, required=True)
@click.option(
    "--out",
    "out_dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder receiving one LRE_….zip per letter (e.g. the drop folder of an archiving system).",
)
def export_command(letter_ids: tuple[str, ...], out_dir: Path) -> None:
    """Seal and write the evidence package of each LETTER_ID (operator command; logged as a read)."""
    from connector.config import ConfigError, load_settings
    from connector.evidence.assemble import collect_package_input, tsa_timestamper
    from connector.evidence.package import write_package
    from connector.letters.service import letter_to_dict
    from connector.models import Letter
    from connector.services import build_services

    try:
        services = build_services(load_settings())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.get_current_context().call_on_close(services.db.dispose)  # not left to the garbage collector
    out_dir.mkdir(parents=True, exist_ok=True)
    for letter_id in letter_ids:
        with services.db.transaction() as session:
            letter = session.get(Letter, letter_id)
            if letter is None:
                raise click.ClickException(f"no letter {letter_id}")
            log_access(session, account_id=letter.account_id, letter_id=letter.id, what="evidence_package",
                       who="operator (lre-bridge evidence export)")
            inp, key = collect_package_input(
                session, letter, settings=services.settings, blobs=services.blobs, now=services.clock(),
                letter_view=lambda row, s=session: letter_to_dict(s, row, services.settings.public_url),
            )
        target = out_dir / f"{inp.name}.zip"
        if target.exists():  # same template, recipient and day: never overwrite another letter's package
            target = out_dir / f"{inp.name}_{letter_id}.zip"
        try:
            with target.open("xb") as out:  # written in one pass, in bounded memory
                write_package(inp, key, out, tsa_timestamper(services.settings))
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        click.echo(str(target))


@evidence_cli.command("verify")
@click.argument("package", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--public-key",
    "public_key",
    metavar="FILE|URL",
    help="The bridge's published seal key (PEM). Without it, the key inside the package is used.",
)
@click.option(
    "--tsa-ca",
    "tsa_ca",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Certificate (PEM or DER) of a trusted time-stamping authority or its CA; repeatable.",
)
@click.option(
    "--evidence-record",
    "evidence_record",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The letter's evidence record (from lre-bridge archive record): checks its renewed time-stamps.",
)
@click.option(
    "--at",
    "at",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Check the evidence record as of this date, UTC (default: now).",
)
def verify_command(
    package: Path,
    public_key: str | None,
    tsa_ca: tuple[Path, ...],
    evidence_record: Path | None = None,
    at: datetime | None = None,
) -> None:
    """Check PACKAGE (the .zip or the unzipped folder): manifests, journal chain, seal, time-stamp,
    and with --evidence-record the chain of renewed time-stamps that keeps it provable for decades.

    Exit status 0 when valid, 1 when anything changed, 2 when the input cannot be read.
    """
    try:
        files = read_package(package)
    except PackageUnreadable as exc:
        raise PackageNotReadable(str(exc)) from exc
    key_pem = _read_public_key(public_key) if public_key else None
    report = verify_package(
        files, key_pem, [path.read_bytes() for path in tsa_ca],
        evidence_record=evidence_record.read_bytes() if evidence_record else None,
        at=at.replace(tzinfo=UTC) if at else None,
    )
    click.echo(render_report(report))
    if not report.ok:
        raise SystemExit(1)


def _read_public_key(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        try:
            # The person running the check chose this URL; a private address is theirs to use.
            response = http.request("GET", source, allow_private=True, timeout=15.0)
            response.raise_for_status()
        except Exception as exc:  # noqa: BLE001 - any network failure is reported the same way
            raise click.ClickException(f"cannot download the public key from {source}: {exc}") from exc
        return response.content
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read the public key file {source}: {exc}") from exc
