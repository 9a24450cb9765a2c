"""The one function through which the bridge makes outbound HTTP calls.

It always sets a timeout, never follows redirects silently, and reaches only globally routable
unicast addresses unless ``allow_private`` is set (self-hosted setups and tests). The policy is an
allow-list: an address is refused unless it is public unicast, so shared address space
(100.64.0.0/10, where cloud metadata services live), benchmarking, documentation, multicast and
every IPv6 form that embeds an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) are refused.

The name is resolved once: the connection goes to the address that was checked (DNS pinning),
while the Host header, TLS SNI and certificate check stay on the name. A resolver that answers a
public address to the check and 127.0.0.1 to the connection (DNS rebinding) gains nothing. Patch
this module in tests, not ``requests``.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

DEFAULT_TIMEOUT = 15.0
MAX_REDIRECTS = 3

# Global unicast IPv6 is 2000::/3; inside it, these forms carry an IPv4 address that a relay or
# translator would reach on the bridge's behalf (2002:7f00:1:: is 6to4 for 127.0.0.1).
_IPV6_UNICAST = ipaddress.ip_network("2000::/3")
_IPV6_EMBEDDING_IPV4 = (ipaddress.ip_network("2002::/16"), ipaddress.ip_network("2001::/32"))
# IETF protocol assignments: is_global lets a few anycast addresses of this block through.
_IPV4_PROTOCOL_ASSIGNMENTS = ipaddress.ip_network("192.0.0.0/24")


class UnsafeUrl(ValueError):
    """The URL is malformed or points somewhere the bridge must not reach."""


class TooLarge(ValueError):
    """The body at the URL is larger than the caller's limit."""


def is_public_address(address: str) -> bool:
    """Whether ``address`` is a globally routable unicast address (the only kind the bridge calls)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return ip not in _IPV4_PROTOCOL_ASSIGNMENTS
    return ip in _IPV6_UNICAST and not any(ip in net for net in _IPV6_EMBEDDING_IPV4)


def _split(url: str, require_https: bool) -> tuple[str, str, int]:
    """Scheme, host and port of ``url``; UnsafeUrl for anything malformed (``http://[::1``, port 99999)."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise UnsafeUrl(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UnsafeUrl("must be an http:// or https:// URL")
    if require_https and parts.scheme != "https":
        raise UnsafeUrl("must be an https:// URL")
    if port == 0:
        raise UnsafeUrl("has port 0")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UnsafeUrl(f"host {host!r} cannot be resolved") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str, *, allow_private: bool, require_https: bool = False) -> str | None:
    """Raise UnsafeUrl unless ``url`` is http(s) and resolves only to allowed addresses.

    Returns the address to connect to (the first one resolved), or None when private addresses
    are allowed and the name is left to the ordinary resolver.
    """
    _, host, port = _split(url, require_https)
    if allow_private:
        return None
    addresses = _resolve(host, port)
    if not addresses or not all(is_public_address(address) for address in addresses):
        raise UnsafeUrl("points to an address that is not public (private, loopback, shared, reserved…)")
    return addresses[0]


def _pinned_adapter(address: str) -> HTTPAdapter:
    """A requests adapter whose connections all go to ``address``, whatever the URL's host.

    urllib3 uses ``host`` for the Host header, SNI and the certificate check; only the socket's
    destination is replaced (``_new_conn``, the one place urllib3 opens it).
    """

    def new_conn(self: HTTPConnection) -> socket.socket:
        try:
            return create_connection(
                (address, self.port), self.timeout, source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc

    class PinnedHTTPPool(HTTPConnectionPool):
        ConnectionCls = type("PinnedHTTPConnection", (HTTPConnection,), {"_new_conn": new_conn})

    class PinnedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = type("PinnedHTTPSConnection", (HTTPSConnection,), {"_new_conn": new_conn})

    adapter = HTTPAdapter()
    adapter.poolmanager.pool_classes_by_scheme = {"http": PinnedHTTPPool, "https": PinnedHTTPSPool}
    return adapter


def request(
    method: str,
    url: str,
    *,
    allow_private: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    require_https: bool = False,
    max_bytes: int | None = None,
    write: Callable[[bytes], Any] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Make an HTTP request with a timeout and the address check. Redirects are not followed.

    The connection goes to the address that was checked. A ``stream=True`` response holds its
    connection until it is closed (``with response:``).

    ``max_bytes`` (not with ``stream=True``): the answer's body is read in pieces and refused with
    TooLarge as soon as it passes that size, and the whole body must arrive within ``timeout``
    seconds (``Timeout`` otherwise) — requests' own timeout bounds each read, so a peer trickling
    a byte a second, or sending without end, would otherwise hold the caller and its memory.

    ``write`` (only with ``max_bytes``): the body of a successful (2xx) answer is handed to it in
    pieces as they arrive, within the same bounds, and not kept (``.content`` is then empty), so a
    large download takes a piece of memory, not its size. Any other answer's body is read as
    without it: the caller reads its error from ``.content``.
    """
    if max_bytes is not None:
        if kwargs.get("stream"):
            raise ValueError("max_bytes reads the body itself: it cannot be combined with stream=True")
        return _bounded(method, url, allow_private=allow_private, timeout=timeout, require_https=require_https,
                        max_bytes=max_bytes, write=write, **kwargs)
    if write is not None:
        raise ValueError("write takes the body within max_bytes: give max_bytes too")
    address = check_url(url, allow_private=allow_private, require_https=require_https)
    kwargs["allow_redirects"] = False
    # One session per call: its pool is bound to this call's address, and never reused for a
    # later resolution of the same name; its sockets close with it.
    session = requests.Session()
    if address is not None:
        adapter = _pinned_adapter(address)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except BaseException:
        session.close()
        raise
    if not kwargs.get("stream"):
        session.close()
        return response
    release = response.close

    def close() -> None:
        release()
        session.close()

    response.close = close  # type: ignore[method-assign]
    return response


def _pieces(response: requests.Response, *, max_bytes: int, deadline: float, timeout: float) -> Iterator[bytes]:
    """The body of a ``stream=True`` response in pieces: TooLarge past ``max_bytes``, ReadTimeout
    past ``deadline`` (the whole body's), ConnectionError when it is cut short."""
    total = 0
    try:
        # read1 returns what has arrived (up to 64 KB), so a trickle still reaches the deadline
        # check; iter_content would wait for a full piece, one byte per read, for ever.
        while chunk := response.raw.read1(64 * 1024, decode_content=True):
            total += len(chunk)
            if total > max_bytes:
                raise TooLarge(f"larger than the {max_bytes} bytes limit")
            if time.monotonic() > deadline:
                raise requests.ReadTimeout(f"the body did not arrive whole within {timeout} s")
            yield chunk
    except (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError) as exc:
        raise requests.ConnectionError(f"the body was cut short: {type(exc).__name__}") from None
    except urllib3.exceptions.ReadTimeoutError:
        raise requests.ReadTimeout(f"no part of the body arrived within {timeout} s") from None


def _total_seconds(timeout: Any) -> float:
    # requests also takes (connect, read): the whole exchange gets their sum.
    return float(timeout) if isinstance(timeout, int | float) else float(sum(timeout))


def _bounded(method: str, url: str, *, timeout: float, max_bytes: int, write: Callable[[bytes], Any] | None,
             **kwargs: Any) -> requests.Response:
    deadline = time.monotonic() + _total_seconds(timeout)
    response = request(method, url, timeout=timeout, stream=True, **kwargs)
    with response:
        pieces = _pieces(response, max_bytes=max_bytes, deadline=deadline, timeout=timeout)
        if write is not None and 200 <= response.status_code < 300:
            for chunk in pieces:
                write(chunk)
            body = b""
        else:
            body = b"".join(pieces)
        # As a non-streamed response: .content, .text and .json() read what was received.
        response._content = body  # noqa: SLF001 - requests' own cache of the body
    return response


def fetch_limited(url: str, *, max_bytes: int, allow_private: bool, timeout: float) -> bytes:
    """Download ``url`` (following up to 3 redirects, each checked and pinned), refusing bodies over
    ``max_bytes`` (TooLarge)."""
    chunks: list[bytes] = []
    fetch_to(url, chunks.append, max_bytes=max_bytes, allow_private=allow_private, timeout=timeout)
    return b"".join(chunks)


def fetch_to(url: str, write: Callable[[bytes], Any], *, max_bytes: int, allow_private: bool,
             timeout: float) -> int:
    """Download ``url`` as ``fetch_limited`` does, handing the body to ``write`` in pieces as it
    arrives (bounded memory); returns its size. TooLarge as soon as it passes ``max_bytes``."""
    deadline = time.monotonic() + _total_seconds(timeout)  # for the whole download, redirects included
    for _ in range(MAX_REDIRECTS + 1):
        response = request("GET", url, allow_private=allow_private, timeout=timeout, stream=True)
        with response:
            if response.is_redirect and response.headers.get("location"):
                url = urljoin(url, response.headers["location"])
                continue
            response.raise_for_status()
            total = 0
            for chunk in _pieces(response, max_bytes=max_bytes, deadline=deadline, timeout=timeout):
                total += len(chunk)
                write(chunk)
            return total
    raise UnsafeUrl("redirects more than 3 times")
