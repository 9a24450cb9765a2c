"""Maileva's error answers read as the bridge's errors (code, words, retry decision)."""

from __future__ import annotations

import requests

from connector.providers import transport
from connector.providers.base import (
    ProviderError,
)
from connector.providers.maileva.protocol import _CHECK_SETTINGS, _OTP_HELP


def _error_items(response: requests.Response) -> list[dict[str, str]]:
    try:
        payload = response.json()
    except ValueError:
        return []
    if isinstance(payload, dict) and isinstance(payload.get("errors"), list):
        return [
            {"code": str(e.get("code") or ""), "message": str(e.get("message") or "")}
            for e in payload["errors"]
            if isinstance(e, dict)
        ]
    return []


def error_for(response: requests.Response, *, action: str, creates: bool = False) -> ProviderError:
    """The bridge error for a Maileva error answer (``ErrorsDto`` body, by HTTP status)."""
    status = response.status_code
    items = _error_items(response)
    detail = "; ".join(f"{i['message'] or i['code']}" for i in items if i["message"] or i["code"])
    provider_code = items[0]["code"] if items and items[0]["code"] else f"http_{status}"
    suffix = f": {detail}" if detail else "."
    if status == 400:
        return ProviderError(
            "provider_rejected",
            f"Maileva refused to {action}{suffix}",
            permanent=True,
            provider_code=provider_code,
        )
    if status == 401:
        return ProviderError(
            "provider_auth_failed",
            f"Maileva refused the credentials. {_CHECK_SETTINGS}",
            permanent=True,
            provider_code=provider_code,
        )
    if status == 403:
        # Forbidden on a sending: the account may not use this sender, or the sender is not
        # authenticated for qualified sends (OTP hour elapsed, certificate missing).
        return ProviderError(
            "sender_not_authorised",
            f"Maileva did not allow this sender to {action}{suffix} Check sender_id; if the sender "
            "authenticates by OTP, " + _OTP_HELP,
            permanent=True,
            field="sender_otp",
            provider_code=provider_code,
        )
    if status == 404:
        return ProviderError(
            "provider_not_found",
            f"Maileva does not know this item ({action}){suffix}",
            permanent=True,
            provider_code=provider_code,
        )
    if transport.is_transient_status(status):
        return ProviderError(
            "provider_unavailable",
            f"Maileva is unavailable (HTTP {status}); the bridge will try again.",
            permanent=False,
            retry_after=transport.retry_after(response),
            provider_code=provider_code,
            ambiguous=creates and status >= 500,
        )
    return ProviderError(
        "provider_error",
        f"Maileva answered HTTP {status} to {action}{suffix}",
        permanent=True,
        provider_code=provider_code,
    )
