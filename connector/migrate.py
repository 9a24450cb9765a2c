"""Schema migrations (Alembic), run by ``lre-bridge migrate`` and at ``serve``/``worker`` start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from connector.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "heads") -> None:
    """Bring the database to ``revision`` (idempotent; safe to run at every start).

    ``heads``: features add their tables on branches from the same parent; every branch is applied.
    """
    command.upgrade(alembic_config(db.url), revision)
