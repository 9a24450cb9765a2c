"""The bridge's shared resources, built once per process (API server or standalone worker)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from sqlalchemy.orm import Session

from connector.config import Settings
from connector.db import Database
from connector.lib import http
from connector.lib.crypto import Encryptor
from connector.lib.storage import BlobStore, FileSystemStore, S3Store, parse_storage_url
from connector.models import ProviderSettings, utcnow
from connector.providers import provider_class
from connector.providers.base import Provider, ProviderContext
from connector.tables import metadata as _schema  # noqa: F401 - every table mapped in every process

DEFAULT_PROVIDER = "sandbox"


@dataclass
class Services:
    settings: Settings
    db: Database
    encryptor: Encryptor
    blobs: BlobStore
    clock: Callable[[], datetime] = field(default=utcnow)

    def http(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Outbound HTTP with this deployment's private-address policy."""
        return http.request(method, url, allow_private=self.settings.allow_private_urls, **kwargs)

    def provider_settings(self, session: Session, account_id: str) -> tuple[str, dict[str, Any]]:
        """The account's provider name and decrypted settings (the sandbox when none is set)."""
        row = session.get(ProviderSettings, account_id)
        if row is None:
            return DEFAULT_PROVIDER, {}
        return row.provider, dict(self.encryptor.decrypt_json(row.settings_encrypted))

    def provider(self, name: str, provider_settings: dict[str, Any]) -> Provider:
        """An adapter instance for one account's settings."""
        context = ProviderContext(
            settings=provider_settings,
            http=self.http,
            now=self.clock,
            public_url=self.settings.public_url,
            extras={"db": self.db, "services": self},
            spool_dir=self.settings.data_dir / "spool",
        )
        return provider_class(name)(context)

    def provider_for_account(self, session: Session, account_id: str) -> Provider:
        name, provider_settings = self.provider_settings(session, account_id)
        return self.provider(name, provider_settings)


def build_services(settings: Settings) -> Services:
    """Connect to the database and open the archive described by ``settings``."""
    return Services(
        settings=settings,
        db=Database(settings.resolved_database_url, wake_horizon_seconds=settings.worker_poll_interval_seconds),
        encryptor=Encryptor(settings.fernet_keys()),
        blobs=open_archive(settings),
    )


def open_archive(settings: Settings, url: str | None = None) -> BlobStore:
    """The archive at ``url`` (default ``LRE_STORAGE_URL``): S3 for ``s3://…``, else the data directory."""
    url = url if url is not None else settings.storage_url
    if not url:
        return FileSystemStore(settings.data_dir / "archive")
    bucket, prefix = parse_storage_url(url)
    return S3Store(
        bucket, prefix, lambda: s3_client(settings),
        lock_mode=settings.storage_lock_mode, default_lock_days=settings.storage_lock_days,
        spool_dir=settings.data_dir / "spool",
    )


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for the configured endpoint; credentials from the settings, else boto3's
    usual chain (environment, ~/.aws, instance role)."""
    return _s3_client(settings.storage_endpoint_url, settings.storage_region, settings.storage_access_key_id,
                      settings.storage_secret_access_key, os.getpid())


# One client per endpoint and credentials in a process (boto3 clients are thread-safe): every
# archive opened in the process shares its connection pool, and none is left to leak its sockets.
@functools.lru_cache(maxsize=8)
def _s3_client(endpoint_url: str | None, region: str | None, access_key_id: str | None,
               secret_access_key: str | None, pid: int) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        # Path-style addressing for non-AWS endpoints: MinIO and Ceph rarely have wildcard DNS.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=16,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region or "us-east-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )
