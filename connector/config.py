"""Configuration: environment variables with the ``LRE_`` prefix, validated once at start.

Defaults are chosen so that ``lre-bridge serve`` works with nothing set: a SQLite file and the
sandbox provider under ``LRE_DATA_DIR``. Secrets that a production deployment must provide
(``LRE_ENCRYPTION_KEYS``) are generated into the data directory only for that embedded default;
with any other database the bridge refuses to start without them.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable to set."""


class Settings(BaseSettings):
    """Every setting of the bridge. Environment variable = ``LRE_`` + the field name in capitals."""

    model_config = SettingsConfigDict(env_prefix="LRE_", extra="ignore", case_sensitive=False)

    data_dir: Path = Field(default=Path("lre-data"))
    database_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    allow_private_urls: bool = False
    # Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
    encryption_keys: str | None = None
    sandbox_step_seconds: float = Field(default=3.0, ge=0)
    # Test hook: the sandbox sleeps this long *after* recording a submission, so a test can
    # kill a worker at the worst moment (provider has the letter, the bridge does not know yet).
    sandbox_submit_delay_seconds: float = Field(default=0.0, ge=0)
    max_document_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_documents: int = Field(default=10, gt=0)
    url_fetch_timeout_seconds: float = Field(default=15.0, gt=0)
    worker_in_process: bool = True
    worker_lease_seconds: float = Field(default=120.0, gt=0)
    worker_poll_interval_seconds: float = Field(default=0.5, gt=0)
    job_max_attempts: int = Field(default=10, gt=0)
    idempotency_ttl_hours: int = Field(default=48, ge=24)
    signing_key_file: Path | None = None
    tsa_url: str | None = None
    production: bool = False
    # The archive (issue 19): unset = files under LRE_DATA_DIR/archive; s3://bucket/prefix = an
    # S3-compatible object store shared by every bridge machine (docs/evidence.md, "Archive").
    storage_url: str | None = None
    storage_endpoint_url: str | None = None  # e.g. https://s3.gra.io.cloud.ovh.net; unset = AWS
    storage_region: str | None = None
    storage_access_key_id: str | None = None
    storage_secret_access_key: str | None = None
    # Object Lock mode of every object written: compliance (nobody can delete early), governance
    # (only a user with s3:BypassGovernanceRetention can), or off (bucket without Object Lock).
    storage_lock_mode: str = "compliance"
    # The lock put on an object of no letter (consent proofs, batch documents); a letter's objects
    # get its account's retention (connector.evidence.retention.write_lock_until).
    storage_lock_days: int = Field(default=3650, ge=1, le=36500)
    # Monitoring (issue 17): alert evaluation, alert e-mail, /metrics access, the dashboard session.
    alert_evaluation_seconds: float = Field(default=60.0, ge=1)
    # An open alert is resolved once its condition has stayed clear this long (debounce).
    alert_resolve_after_seconds: float = Field(default=900.0, ge=0)
    alert_smtp_host: str | None = None
    alert_smtp_port: int = Field(default=25, gt=0, lt=65536)
    alert_smtp_starttls: bool = False
    alert_smtp_username: str | None = None
    alert_smtp_password: str | None = None
    alert_smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    alert_email_from: str = "lre-bridge@localhost"
    # Comma-separated addresses that receive every alert raised and resolved.
    alert_email_to: str | None = None
    # Consent invitations (issue 18) are e-mailed through the LRE_ALERT_SMTP_* server when it is
    # set, from this address (unset: LRE_ALERT_EMAIL_FROM); without a server, a Zap sends the link.
    consent_email_from: str | None = None
    # /metrics: with a token, only "Authorization: Bearer <token>"; without, only these networks.
    metrics_token: str | None = None
    metrics_allow_networks: str = "127.0.0.0/8,::1/128"
    dashboard_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # "json": one JSON line per request and job (letter id, never a secret) instead of plain text.
    log_format: str = Field(default="text", pattern="^(text|json)$")

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str | None) -> str | None:
        if value:
            from connector.lib.storage import parse_storage_url

            parse_storage_url(value)
        return value or None

    @field_validator("storage_lock_mode")
    @classmethod
    def _lock_mode(cls, value: str) -> str:
        from connector.lib.storage import LOCK_MODES

        if value.lower() not in LOCK_MODES:
            raise ValueError(f"must be one of {', '.join(LOCK_MODES)}")
        return value.lower()

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'bridge.sqlite3').resolve()}"

    @property
    def uses_embedded_database(self) -> bool:
        return not self.database_url

    def fernet_keys(self) -> list[bytes]:
        """The encryption keys, newest first. Raises ConfigError naming the variable."""
        raw = self.encryption_keys
        if not raw:
            raise ConfigError("LRE_ENCRYPTION_KEYS is not set")
        keys = [k.strip().encode() for k in raw.split(",") if k.strip()]
        for key in keys:
            try:
                Fernet(key)
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    "LRE_ENCRYPTION_KEYS must be comma-separated Fernet keys "
                    "(generate one with: lre-bridge secrets generate)"
                ) from exc
        return keys


def _field_env_name(loc: tuple[Any, ...]) -> str:
    return "LRE_" + str(loc[0]).upper() if loc else "LRE_*"


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Read the environment (plus ``overrides``), validate, and fill the embedded defaults.

    Raises ConfigError with a message that names the variable at fault.
    """
    try:
        settings = Settings(**(overrides or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{_field_env_name(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from exc
    for name in ("ENCRYPTION_KEYS", "TSA_URL", "STORAGE_SECRET_ACCESS_KEY", "ALERT_SMTP_PASSWORD", "METRICS_TOKEN"):
        file_var = os.environ.get(f"LRE_{name}_FILE")
        if file_var and not getattr(settings, name.lower()):
            try:
                setattr(settings, name.lower(), Path(file_var).read_text().strip())
            except OSError as exc:
                raise ConfigError(f"LRE_{name}_FILE: cannot read {file_var}: {exc}") from exc
    if settings.production and settings.allow_private_urls:
        raise ConfigError("LRE_ALLOW_PRIVATE_URLS cannot be set together with LRE_PRODUCTION")
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The data directory holds the database, the archive and keys: its owner's only (0700).
    try:
        settings.data_dir.chmod(0o700)
    except OSError:  # a directory the bridge does not own (a mounted volume): left as given
        pass
    if not settings.encryption_keys:
        if not settings.uses_embedded_database:
            raise ConfigError(
                "LRE_ENCRYPTION_KEYS is required with LRE_DATABASE_URL: provider credentials and "
                "webhook secrets are encrypted with it (generate one with: lre-bridge secrets generate)"
            )
        settings.encryption_keys = _embedded_secret(settings.data_dir / "encryption.key")
    settings.fernet_keys()
    return settings


def _embedded_secret(path: Path) -> str:
    """Create (once) the encryption key of the embedded, zero-setup installation."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(Fernet.generate_key().decode())
    return path.read_text().strip()


def generate_fernet_key() -> str:
    """A new key for LRE_ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()


def random_token(prefix: str, nbytes: int = 24) -> str:
    """An unguessable identifier such as ``lre_live_...``."""
    return prefix + secrets.token_urlsafe(nbytes)
