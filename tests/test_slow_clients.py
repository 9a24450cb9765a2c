"""A live ``lre-bridge serve`` against slow and malformed clients: the API keeps answering."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.live_server import running_bridge

THREADS = 4
SLOW_CLIENTS = 3 * THREADS  # more trickling clients than the server has threads


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    # The direct URL, not the checking proxy (tests/live_server.py): these tests are about the
    # server's own sockets (trickled heads and bodies, malformed and oversized request lines), which a
    # proxy would read, reframe or refuse itself before the bridge saw them.
    with running_bridge(tmp_path_factory.mktemp("slow"), "--threads", str(THREADS), "--no-worker") as running:
        yield running


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    length = int(headers.get("Content-Length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


@pytest.mark.slow
def test_healthz_answers_while_more_clients_than_threads_trickle_their_requests(bridge):
    base, key = bridge
    slow: list[socket.socket] = []
    try:
        for index in range(SLOW_CLIENTS):
            sock = _connect(base)
            if index % 2:  # a head that never ends
                sock.sendall(b"GET /v1/letters HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            else:  # a complete head, then a body that trickles
                sock.sendall(b"POST /v1/letters HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Authorization: Bearer " + key.encode() + b"\r\nContent-Length: 30000\r\n\r\n{")
            slow.append(sock)
        time.sleep(1)
        for _ in range(5):
            for sock in slow:  # keep them alive: one more byte each
                sock.send(b"a")
            started = time.monotonic()
            assert requests.get(f"{base}/healthz", timeout=3).status_code == 200
            assert time.monotonic() - started < 2
            time.sleep(0.3)
    finally:
        for sock in slow:
            sock.close()


@pytest.mark.slow
def test_intake_refuses_an_unknown_account_before_receiving_the_body(bridge):
    base, _ = bridge
    with _connect(base) as sock:
        sock.sendall(b"POST /v1/intake/acc_unknown HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 40000000\r\n\r\n{")
        started = time.monotonic()
        status, _, body = _answer(sock)
    assert status == 401 and json.loads(body)["error"]["code"] == "intake_not_enabled"
    assert time.monotonic() - started < 3  # not after 40 MB


@pytest.mark.slow
@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n", 400, "bad_request"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * (70 * 1024) + b"\r\n\r\n", 431,
     "headers_too_large"),
])  # fmt: skip
def test_server_level_errors_are_answered_as_json(bridge, request_bytes, status, code):
    base, _ = bridge
    with _connect(base) as sock:
        sock.sendall(request_bytes)
        got, headers, body = _answer(sock)
    assert got == status
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"]["code"] == code
