"""The bridge's shared resources, built once per process (API server or standalone worker)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from sqlalchemy.orm import Session

from connector import http
from connector.config import Settings
from connector.crypto import Encryptor
from connector.db import Database
from connector.models import ProviderSettings, utcnow
from connector.providers import provider_class
from connector.providers.base import Provider, ProviderContext
from connector.storage import BlobStore, FileSystemStore

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
        )
        return provider_class(name)(context)

    def provider_for_account(self, session: Session, account_id: str) -> Provider:
        name, provider_settings = self.provider_settings(session, account_id)
        return self.provider(name, provider_settings)


def build_services(settings: Settings) -> Services:
    """Connect to the database and open the archive described by ``settings``."""
    return Services(
        settings=settings,
        db=Database(settings.resolved_database_url),
        encryptor=Encryptor(settings.fernet_keys()),
        blobs=FileSystemStore(settings.data_dir / "archive"),
    )
