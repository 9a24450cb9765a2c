"""``lre-bridge evidence …``: commands for people holding a package, not a database."""

from __future__ import annotations

from pathlib import Path

import click

from connector import http
from connector.evidence.verify import PackageUnreadable, read_package, render_report, verify_package


class PackageNotReadable(click.ClickException):
    """Exit status 2: the input is not a package at all (as opposed to a tampered one)."""

    exit_code = 2


@click.group("evidence")
def evidence_cli() -> None:
    """Evidence packages: check them offline."""


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
def verify_command(package: Path, public_key: str | None, tsa_ca: tuple[Path, ...]) -> None:
    """Check PACKAGE (the .zip or the unzipped folder): manifests, journal chain, seal, time-stamp.

    Exit status 0 when valid, 1 when anything changed, 2 when the input cannot be read.
    """
    try:
        files = read_package(package)
    except PackageUnreadable as exc:
        raise PackageNotReadable(str(exc)) from exc
    key_pem = _read_public_key(public_key) if public_key else None
    report = verify_package(files, key_pem, [path.read_bytes() for path in tsa_ca])
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
