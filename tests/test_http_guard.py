"""The outbound HTTP guard: only public unicast addresses, and the connection goes where the check looked."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connector.lib import http
from tests.helpers import server_thread


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
    server_thread(server).start()
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


# --- TLS on a pinned connection: SNI and the certificate check stay on the name ------------------

import ssl  # noqa: E402

import requests  # noqa: E402
import trustme  # noqa: E402

TLS_NAME = "pinned.test"


class _TlsServer(ThreadingHTTPServer):
    """A loopback HTTPS server that records the SNI name of every handshake it sees."""

    def __init__(self, host: str, port: int, cert: trustme.LeafCert, body: bytes) -> None:
        super().__init__((host, port), _Recorder)
        self.hits: list[tuple[str, str | None]] = []
        self.server_names: list[str | None] = []
        self.body = body
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)  # type: ignore[func-returns-value]
        self.socket = context.wrap_socket(self.socket, server_side=True)
        server_thread(self).start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a handshake the client refused: expected in the mismatch test


@pytest.fixture
def tls_servers(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Any]:
    """Start TLS servers for ``pinned.test``: the checked ("public") one on 127.0.0.2 and another on
    127.0.0.1 with the same port and an equally valid certificate. The name answers 127.0.0.2 to the
    check and 127.0.0.1 to any later lookup, so only a pinned connection reaches 127.0.0.2."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    servers: list[_TlsServer] = []

    def start(cert_names: tuple[str, ...]) -> tuple[_TlsServer, _TlsServer]:
        public = _TlsServer("127.0.0.2", 0, ca.issue_cert(*cert_names), b"public over tls")
        internal = _TlsServer("127.0.0.1", public.server_port, ca.issue_cert(TLS_NAME), b"internal")
        servers.extend([public, internal])
        return public, internal

    answers = iter(["127.0.0.2"] + ["127.0.0.1"] * 50)
    real = socket.getaddrinfo

    def fake_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == TLS_NAME:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), int(port or 443)))]
        return real(host, port, *args, **kwargs)

    # The test hook: loopback 127.0.0.2 counts as public in these tests only.
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(http, "is_public_address", lambda address: address == "127.0.0.2")
    yield start, str(ca_file)
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_pinned_tls_connection_sends_sni_and_checks_the_certificate_for_the_name(tls_servers: Any) -> None:
    start, ca_file = tls_servers
    public, internal = start((TLS_NAME,))
    response = http.request("GET", f"https://{TLS_NAME}:{public.server_port}/x", timeout=5, verify=ca_file)
    assert response.status_code == 200 and response.content == b"public over tls"
    assert public.server_names == [TLS_NAME]  # SNI is the name, not the pinned address
    assert public.hits == [("/x", f"{TLS_NAME}:{public.server_port}")]  # and so is Host
    assert internal.server_names == [] and internal.hits == []  # the connection went where the check looked


def test_a_pinned_tls_connection_refuses_a_certificate_for_another_name(tls_servers: Any) -> None:
    start, ca_file = tls_servers
    public, internal = start(("other.test",))  # valid chain, wrong name
    with pytest.raises(requests.exceptions.SSLError, match="(?i)hostname|match"):
        http.request("GET", f"https://{TLS_NAME}:{public.server_port}/x", timeout=5, verify=ca_file)
    assert public.server_names == [TLS_NAME]  # the handshake reached the pinned address, with SNI
    assert public.hits == [] and internal.hits == []  # and no request was sent


def test_a_pinned_tls_connection_refuses_a_certificate_from_an_unknown_authority(tls_servers: Any) -> None:
    start, _ = tls_servers
    public, _ = start((TLS_NAME,))
    with pytest.raises(requests.exceptions.SSLError):  # the system store does not know trustme's CA
        http.request("GET", f"https://{TLS_NAME}:{public.server_port}/x", timeout=5)
    assert public.hits == []
