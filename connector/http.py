"""The one function through which the bridge makes outbound HTTP calls.

It always sets a timeout, never follows redirects silently into private networks, and refuses
private, loopback and link-local destinations unless ``allow_private`` is set (self-hosted
setups and tests). Patch this module in tests, not ``requests``.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import requests

DEFAULT_TIMEOUT = 15.0
_session = requests.Session()


class UnsafeUrl(ValueError):
    """The URL is malformed or points somewhere the bridge must not reach."""


def _is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (ip.version == 6 and ip.ipv4_mapped is not None and not _is_public_address(str(ip.ipv4_mapped)))
    )


def check_url(url: str, *, allow_private: bool, require_https: bool = False) -> None:
    """Raise UnsafeUrl unless ``url`` is http(s) and resolves only to allowed addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("must be an http:// or https:// URL")
    if require_https and parts.scheme != "https":
        raise UnsafeUrl("must be an https:// URL")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"host {parts.hostname!r} cannot be resolved") from exc
    for info in infos:
        if not _is_public_address(str(info[4][0])):
            raise UnsafeUrl("points to a private, loopback or link-local address")


def request(
    method: str,
    url: str,
    *,
    allow_private: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    require_https: bool = False,
    **kwargs: Any,
) -> requests.Response:
    """Make an HTTP request with a timeout and the address check. Redirects are not followed."""
    check_url(url, allow_private=allow_private, require_https=require_https)
    kwargs.setdefault("allow_redirects", False)
    return _session.request(method, url, timeout=timeout, **kwargs)


def fetch_limited(url: str, *, max_bytes: int, allow_private: bool, timeout: float) -> bytes:
    """Download ``url`` (following up to 3 checked redirects), refusing bodies over ``max_bytes``."""
    for _ in range(4):
        response = request("GET", url, allow_private=allow_private, timeout=timeout, stream=True)
        if response.is_redirect and response.headers.get("location"):
            url = requests.compat.urljoin(url, response.headers["location"])
            continue
        response.raise_for_status()
        chunks: list[bytes] = []
        total = 0
        for chunk in response.iter_content(64 * 1024):
            total += len(chunk)
            if total > max_bytes:
                raise ValueError(f"larger than the {max_bytes} bytes limit")
            chunks.append(chunk)
        return b"".join(chunks)
    raise UnsafeUrl("too many redirects")
