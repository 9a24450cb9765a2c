"""Provider registry: an explicit table of provider names to their classes (imported lazily)."""

from __future__ import annotations

import importlib

from connector.providers.base import Provider

PROVIDERS: dict[str, str] = {
    "sandbox": "connector.providers.sandbox:SandboxProvider",
    "ar24": "connector.providers.ar24:AR24Provider",
    "maileva": "connector.providers.maileva:MailevaProvider",
}


def provider_class(name: str) -> type[Provider]:
    """The provider class registered under ``name``; KeyError if there is none."""
    module_name, _, attr = PROVIDERS[name].partition(":")
    cls: type[Provider] = getattr(importlib.import_module(module_name), attr)
    return cls


def available_providers() -> list[str]:
    """Registered providers whose module can be imported."""
    names = []
    for name in PROVIDERS:
        try:
            provider_class(name)
        except (ImportError, AttributeError):
            continue
        names.append(name)
    return names
