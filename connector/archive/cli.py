"""``lre-bridge archive …``: operator commands for the long-term archive, all safe to run while the
bridge serves (they read the database's list of objects and write only new, hash-named objects)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import click

from connector.archive.operations import Progress, lock_archive, migrate_archive, referenced_objects, verify_archive


def _services():  # type: ignore[no-untyped-def] - a Services, imported late (CLI start-up stays fast)
    from connector.config import ConfigError, load_settings
    from connector.services import build_services

    try:
        services = build_services(load_settings())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    # Close the database's connections when the command ends (a command run in-process, as the
    # tests do, must not leave them to the garbage collector).
    click.get_current_context().call_on_close(services.db.dispose)
    return services


@contextmanager
def _progress(label: str, total: int) -> Iterator[Progress]:
    # On stderr, so that stdout stays the report (and a redirect captures only it).
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True) as bar:
        yield lambda _key, _outcome: bar.update(1)


@click.group("archive")
def archive_cli() -> None:
    """The archive of documents, proofs and evidence: verify, migrate, lock, renew time-stamps."""


@archive_cli.command("verify")
def verify_command() -> None:
    """Re-hash every object the database refers to; report the missing and the changed ones.

    Exit status 0 when every object is intact, 1 otherwise.
    """
    services = _services()
    with services.db.transaction() as session:
        objects = referenced_objects(session)
    with _progress(f"Verifying {services.blobs.describe()}", len(objects)) as progress:
        report = verify_archive(services.blobs, objects, progress)
    for item in report.missing:
        click.echo(f"MISSING  {item.key}  (referenced by {', '.join(item.referenced_by)})")
    for item, outcome in report.changed:
        click.echo(f"CHANGED  {item.key}  {outcome}  (referenced by {', '.join(item.referenced_by)})")
    for item in report.malformed:
        click.echo(f"BAD KEY  {item.key}  (referenced by {', '.join(item.referenced_by)})")
    click.echo(
        f"{report.checked} object(s), {report.bytes} bytes re-hashed: {len(report.missing)} missing, "
        f"{len(report.changed)} changed"
    )
    if not report.ok:
        raise SystemExit(1)


@archive_cli.command("migrate")
@click.option("--to", "target_url", required=True, metavar="s3://BUCKET/PREFIX",
              help="The new archive. Endpoint and credentials: LRE_STORAGE_ENDPOINT_URL, LRE_STORAGE_ACCESS_KEY_ID…")
@click.option("--from", "source", default=None, metavar="s3://… | FOLDER",
              help="Copy from this archive instead of the current one (e.g. a machine's old LRE_DATA_DIR/archive "
                   "after the switch, to catch what it wrote in between).")
def migrate_command(target_url: str, source: str | None) -> None:
    """Copy the current archive to TARGET, verifying every hash; run again to resume.

    Then set LRE_STORAGE_URL to the target on every machine. Exit status 1 if any object failed.
    """
    from connector.lib.storage import FileSystemStore, S3Store
    from connector.services import open_archive

    services = _services()
    try:
        target = open_archive(services.settings, target_url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from None
    if source is not None:
        if source.startswith("s3://"):
            services.blobs = open_archive(services.settings, source)
        elif Path(source).is_dir():
            services.blobs = FileSystemStore(Path(source))
        else:
            raise click.BadParameter(f"{source} is neither s3://… nor an archive folder", param_hint="--from")
    if isinstance(target, S3Store):
        try:
            target.check()
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    if target.describe() == services.blobs.describe():
        raise click.BadParameter("the target is the current archive", param_hint="--to")
    with services.db.transaction() as session:
        objects = referenced_objects(session)
    with _progress(f"Copying to {target.describe()}", len(objects)) as progress:
        report = migrate_archive(services.blobs, target, objects, progress)
    for item, reason in report.failed:
        click.echo(f"FAILED   {item.key}  {reason}")
    click.echo(f"{report.copied} copied ({report.bytes_copied} bytes), {report.already_there} already there, "
               f"{len(report.failed)} failed; every copy re-hashed in {target.describe()}")
    if not report.ok:
        raise SystemExit(1)


@archive_cli.command("lock")
def lock_command() -> None:
    """Raise the storage lock of every object to its letter's retention end (catch-up).

    A letter's objects are raised to its retention end by a job when it ends (lock_retention);
    this does the same for the whole archive at once: for objects written by an older version,
    or after such a job died. A lock is never shortened.
    """
    services = _services()
    with services.db.transaction() as session:
        objects = referenced_objects(session)
    count = lock_archive(services.blobs, objects)
    click.echo(f"{count} object(s) locked until their letter's retention end in {services.blobs.describe()}")


@archive_cli.command("renew")
@click.option("--margin-days", default=180, show_default=True, type=click.IntRange(1, 3650),
              help="Renew records whose latest time-stamp certificate expires within this many days.")
@click.option("--force", is_flag=True, help="Renew every record now (e.g. after a TSA or algorithm warning).")
def renew_command(margin_days: int, force: bool) -> None:
    """Archive ended letters' sealed packages, bind them in a time-stamped hash tree, and add a new
    time-stamp over each record before its TSA certificate expires (run monthly)."""
    from connector.archive.records import RenewError, renew
    from connector.evidence.assemble import tsa_timestamper
    from connector.evidence.timestamp import TimestampError

    services = _services()
    try:
        report = renew(services, tsa_timestamper(services.settings), now=services.clock(),
                       margin=timedelta(days=margin_days), force=force)
    except (RenewError, TimestampError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{len(report.packaged)} package(s) archived, {len(report.created)} record(s) created, "
               f"{len(report.renewed)} record(s) renewed")


@archive_cli.command("record")
@click.argument("letter_id")
@click.option("--out", "out_dir", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder receiving the two files.")
def record_command(letter_id: str, out_dir: Path) -> None:
    """Write LETTER_ID's archived package and its evidence record, for `lre-bridge evidence verify
    PACKAGE --evidence-record RECORD`."""
    from connector.archive.records import letter_record

    services = _services()
    try:
        package, record = letter_record(services, letter_id)
    except KeyError:
        raise click.ClickException(
            f"letter {letter_id} has no evidence record yet (it must have ended, then lre-bridge archive renew run)"
        ) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    package_path = out_dir / f"{letter_id}.zip"
    record_path = out_dir / f"{letter_id}.evidence-record.json"
    package_path.write_bytes(package)
    record_path.write_bytes(record)
    click.echo(str(package_path))
    click.echo(str(record_path))
