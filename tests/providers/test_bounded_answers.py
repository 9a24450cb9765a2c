"""A provider's answer is read within bounds: a body without end, or one trickling in, is refused
before it can take the worker's memory or hold its thread (issue 13: every resource has a bound)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connector.lib import http
from connector.providers import transport
from connector.providers.ar24 import AR24Provider
from connector.providers.base import ProofRef, ProviderError
from tests.helpers import least_peak_allocated
from tests.hostile_server import PIECE, serve_hostile
from tests.providers.conftest import make_context, proof_bytes


def _threads() -> str:
    # Named in a failure: a thread left running by another test allocates inside the window too.
    return ", ".join(sorted(t.name for t in threading.enumerate()))


@pytest.fixture
def hostile() -> Iterator[str]:
    with serve_hostile() as base:
        yield base


def test_a_body_without_end_is_refused_past_the_limit_in_bounded_memory(hostile: str) -> None:
    def call() -> Any:
        with pytest.raises(http.TooLarge):
            http.request("GET", f"{hostile}/endless", allow_private=True, timeout=30, max_bytes=2 * 2**20)

    _, peak = least_peak_allocated(call, below=6 * 2**20)
    assert peak < 6 * 2**20, f"{peak / 2**20:.1f} MB allocated for a 2 MB limit (threads: {_threads()})"


def test_a_trickling_body_is_cut_at_the_timeout_although_every_read_gets_a_byte(hostile: str) -> None:
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        http.request("GET", f"{hostile}/trickle", allow_private=True, timeout=1.0, max_bytes=2**20)
    assert time.monotonic() - started < 3.0


def test_an_honest_answer_reads_as_a_whole_one_would(hostile: str) -> None:
    response = http.request("GET", f"{hostile}/small", allow_private=True, timeout=5, max_bytes=2**20)
    assert response.status_code == 200
    assert response.content == PIECE


def test_max_bytes_and_stream_cannot_be_combined(hostile: str) -> None:
    with pytest.raises(ValueError, match="stream"):
        http.request("GET", f"{hostile}/small", allow_private=True, max_bytes=1, stream=True)


def _ar24(base: str) -> AR24Provider:
    return AR24Provider(make_context({"base_url": f"{base}/api", "token": "tok", "private_key": "k" * 20,
                                      "user_id": "1"}))


def test_an_ar24_proof_without_end_is_a_retryable_provider_error_not_the_workers_memory(hostile: str) -> None:
    provider = _ar24(hostile)
    proof = ProofRef(kind="deposit", url=f"{hostile}/endless?token=prf1")

    def call() -> ProviderError:
        with pytest.raises(ProviderError) as caught:
            provider.download_proof(proof)
        return caught.value

    error, peak = least_peak_allocated(call, below=3 * transport.MAX_ANSWER_BYTES // 2)
    assert error.code == "provider_error" and not error.permanent
    assert f"more than {transport.MAX_ANSWER_BYTES // 2**20} MB" in error.message
    assert peak < 3 * transport.MAX_ANSWER_BYTES // 2, f"{peak / 2**20:.0f} MB allocated (threads: {_threads()})"


def test_an_ar24_proof_that_trickles_is_a_retryable_timeout(hostile: str) -> None:
    provider = AR24Provider(make_context({"base_url": f"{hostile}/api", "token": "tok", "private_key": "k" * 20,
                                          "user_id": "1", "timeout": 1}))
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        provider.download_proof(ProofRef(kind="deposit", url=f"{hostile}/trickle?token=prf1"))
    assert caught.value.code == "provider_timeout" and not caught.value.permanent
    assert time.monotonic() - started < 3.0


def test_an_honest_ar24_proof_is_downloaded_byte_exact(hostile: str) -> None:
    downloaded = _ar24(hostile).download_proof(ProofRef(kind="deposit", url=f"{hostile}/small?token=prf1"))
    assert (downloaded.size, downloaded.sha256) == (len(PIECE), hashlib.sha256(PIECE).hexdigest())
    assert proof_bytes(downloaded) == PIECE
