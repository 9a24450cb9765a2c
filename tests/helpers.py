"""Small builders shared by the tests."""

from __future__ import annotations

import base64
import gc
import io
import socketserver
import threading
import tracemalloc
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from reportlab.pdfgen import canvas


def make_pdf(text: str = "Lettre de test") -> bytes:
    """A real one-page PDF."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, invariant=1)
    pdf.drawString(72, 720, text)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def letter_payload(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /v1/letters`` body to a professional recipient, with one PDF."""
    payload: dict[str, Any] = {
        "recipient": {"type": "professional", "email": "compta@exemple.fr", "company": "Exemple SARL"},
        "documents": [{"filename": "facture.pdf", "content_base64": base64.b64encode(make_pdf()).decode()}],
        "message": "Veuillez trouver ci-joint notre mise en demeure.",
        "reference": "DOSSIER-42",
    }
    payload.update(overrides)
    return payload


def peak_allocated_while(call: Callable[[], Any]) -> tuple[Any, int]:
    """``call()``'s result and the most memory Python allocated meanwhile, above what it held before
    (tracemalloc): what a streamed path must keep small whatever the size of what goes through it."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = call()
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def least_peak_allocated(call: Callable[[], Any], *, below: int, attempts: int = 3) -> tuple[Any, int]:
    """``peak_allocated_while(call)``, tried again (up to ``attempts`` times) while the peak is not
    ``below`` the bound; the last result and the smallest peak seen. Only for calls that can be repeated.

    Why: tracemalloc counts every thread's allocations, and a thread an earlier test left running (a
    loopback server, an app's worker) can allocate during the window, as seen once in CI's S3 pass.
    A path that really buffers what it reads goes over the bound on every attempt, so this still fails."""
    least = None
    for _ in range(attempts):
        result, peak = peak_allocated_while(call)
        least = peak if least is None else min(least, peak)
        if least < below:
            break
    assert least is not None
    return result, least


def server_thread(server: socketserver.BaseServer) -> threading.Thread:
    """A daemon thread (not started) that runs a loopback test server's ``serve_forever``.

    It looks for ``shutdown()`` every 10 ms: shutdown waits for that look, and the default interval
    (0.5 s) made each server's teardown cost up to half a second."""
    return threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)


class LoopbackHTTPServer:
    """A standard-library HTTP server on a free loopback port, served from a daemon thread while
    the object is used as a context manager (``url`` is its address)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = server_thread(self.server)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
