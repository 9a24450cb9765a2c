"""What the real provider adapters share about talking HTTP: transport failures turned into
ProviderError with the right retry decision, and ``Retry-After``."""

from __future__ import annotations

import re
from typing import Any

import requests

from connector.lib.http import UnsafeUrl
from connector.providers.base import ProviderContext, ProviderError

# The sender's one-time code: six digits from a TOTP app (AR24 and Maileva alike).
OTP_PATTERN = re.compile(r"\d{6}")


def call(
    context: ProviderContext,
    method: str,
    url: str,
    *,
    provider: str,
    timeout: float,
    creates: bool = False,
    **kwargs: Any,
) -> requests.Response:
    """One outbound call through the bridge's HTTP function.

    A refused URL is a permanent misconfiguration; a connect timeout never reached the provider;
    any later timeout or dropped connection may have, so it is ``ambiguous`` when the call
    ``creates`` the letter (the retry must look it up before sending again).
    """
    try:
        return context.http(method, url, timeout=timeout, **kwargs)
    except UnsafeUrl as exc:
        raise ProviderError(
            "provider_misconfigured",
            f"The {provider} address {url.split('?')[0]} is refused: {exc}. "
            "Check the account's provider settings (PUT /v1/account/provider).",
            permanent=True,
        ) from exc
    # requests' messages can quote the URL with its query string, which carries AR24's token:
    # the original exception is not chained, only its type is named.
    except requests.ConnectTimeout as exc:
        raise ProviderError(
            "provider_unavailable", f"{provider} could not be reached ({type(exc).__name__}).", permanent=False
        ) from None
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise ProviderError(
            "provider_timeout",
            f"{provider} did not answer in time ({type(exc).__name__}); the request may have been received.",
            permanent=False,
            ambiguous=creates,
        ) from None


def retry_after(response: requests.Response) -> float | None:
    """The ``Retry-After`` header in seconds, when it is given as a number."""
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def is_transient_status(status: int) -> bool:
    """HTTP statuses worth retrying: timeouts, throttling and server errors."""
    return status >= 500 or status in (408, 429)
