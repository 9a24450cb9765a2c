"""``lre-bridge export``: write the platform apps generated from the catalogue."""

from __future__ import annotations

from pathlib import Path

import click

from connector.platforms.exporters.make import NotAMakeAppDirectory, export_make_app
from connector.platforms.exporters.n8n import export_n8n_package
from connector.platforms.exporters.zapier import export_zapier_app
from connector.platforms.model import LANGUAGES


@click.group()
def export() -> None:
    """Generate the Zapier (and later Make, n8n) apps from the catalogue."""


@export.command("zapier")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--lang", type=click.Choice(LANGUAGES), default="en", show_default=True,
              help="Language of labels and help texts (Zapier apps have one).")
def export_zapier(directory: Path, lang: str) -> None:
    """Write the Zapier app into DIRECTORY (regenerates generated/catalog.js in an existing app)."""
    try:
        written = export_zapier_app(directory, lang=lang)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: npm --prefix {directory} ci && npm --prefix {directory} test")


@export.command("make")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--lang", type=click.Choice(LANGUAGES), default="fr", show_default=True,
              help="Language of labels and help texts (a Make app has one).")
def export_make(directory: Path, lang: str) -> None:
    """Write the Make custom app (local-development layout, makecomapp.json) into DIRECTORY."""
    try:
        written = export_make_app(directory, lang=lang)
    except NotAMakeAppDirectory as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {len(written)} files into {directory}")
    click.echo(f"next: open {directory} in VS Code with the Make Apps Editor and deploy it (docs/make.md)")


@export.command("n8n")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_n8n(directory: Path) -> None:
    """Write the n8n community node package into DIRECTORY (regenerates its generated catalogue).

    n8n nodes are in English (n8n's rule for community nodes), so there is no --lang.
    """
    try:
        written = export_n8n_package(directory)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: cd {directory} && npm ci --ignore-scripts && npm run build && npm run lint")
