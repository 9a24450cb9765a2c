"""The outbound HTTP guard: only public unicast addresses, and the connection goes where the check looked."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connector.lib import http


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
        "100.64.0.1", "100.100.100.200",  # shared address space: cloud metadata lives there
        "198.18.0.1", "192.0.2.1", "192.0.0.9", "224.0.0.1", "240.0.0.1", "255.255.255.255",
        "::1", "::", "fe80::1", "fc00::1", "fec0::1", "ff0e::1", "2001:db8::1",
        "::ffff:127.0.0.1", "::ffff:8.8.8.8", "::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b:1::1",
        "2002:7f00:1::", "2002:808:808::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ],
)  # fmt: skip
def test_it_refuses_every_address_that_is_not_public_unicast(address: str) -> None:
    assert not http.is_public_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4007:80c::200e"])
def test_it_allows_public_unicast(address: str) -> None:
    assert http.is_public_address(address)


@pytest.mark.parametrize("host", ["100.100.100.200", "[2002:7f00:1::]", "[::ffff:127.0.0.1]", "[64:ff9b::a00:1]"])
def test_check_url_refuses_literal_addresses_of_the_kinds_that_used_to_pass(host: str) -> None:
    with pytest.raises(http.UnsafeUrl):
        http.check_url(f"http://{host}/x", allow_private=False)


@pytest.mark.parametrize("url", ["http://[::1", "http://example.com:99999/", "http://example.com:0/", "ftp://x/"])
def test_malformed_urls_are_refused_not_crashed_on(url: str) -> None:
    with pytest.raises(http.UnsafeUrl):
        http.check_url(url, allow_private=True)


class _Recorder(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.hits.append((self.path, self.headers.get("Host")))  # type: ignore[attr-defined]
        if self.path == "/hop":
            self.send_response(302)
            self.send_header("Location", f"http://rebind.test:{self.server.server_port}/final")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _serve(host: str, port: int, body: bytes) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), _Recorder)
    server.hits = []  # type: ignore[attr-defined]
    server.body = body  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ThreadingHTTPServer, ThreadingHTTPServer]]:
    """``rebind.test`` answers 127.0.0.2 (treated as public here) to the first lookup, then 127.0.0.1.

    Two servers on one port: the "public" one on 127.0.0.2 and the "internal" one on 127.0.0.1.
    """
    public = _serve("127.0.0.2", 0, b"public")
    internal = _serve("127.0.0.1", public.server_port, b"internal secrets")
    answers = iter(["127.0.0.2"] + ["127.0.0.1"] * 50)
    real = socket.getaddrinfo

    def fake_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), int(port or 80)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(http, "is_public_address", lambda address: address == "127.0.0.2")
    yield public, internal
    for server in (public, internal):
        server.shutdown()
        server.server_close()


def test_the_connection_goes_to_the_address_that_was_checked(rebinding: Any) -> None:
    public, internal = rebinding
    response = http.request("GET", f"http://rebind.test:{public.server_port}/x", timeout=5)
    assert response.content == b"public"
    assert public.hits == [("/x", f"rebind.test:{public.server_port}")]  # Host stays on the name
    assert internal.hits == []


def test_every_redirect_hop_is_checked_again(rebinding: Any) -> None:
    public, internal = rebinding
    # The second hop resolves to 127.0.0.1, which the check refuses: nothing reaches it.
    with pytest.raises(http.UnsafeUrl):
        http.fetch_limited(f"http://rebind.test:{public.server_port}/hop", max_bytes=1000,
                           allow_private=False, timeout=5)
    assert internal.hits == []
    assert [path for path, _ in public.hits] == ["/hop"]


def test_a_streamed_response_releases_its_pinned_connection(rebinding: Any) -> None:
    public, _ = rebinding
    with http.request("GET", f"http://rebind.test:{public.server_port}/x", timeout=5, stream=True) as response:
        assert next(response.iter_content(3)) == b"pub"
