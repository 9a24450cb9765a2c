"""The AR24 adapter against the AR24-compatible loopback server: real HTTP, real signatures,
real encrypted answers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector.letters.documents import put_stream_in_background
from connector.lib.storage import FileSystemStore
from connector.providers.ar24 import AR24Provider
from connector.providers.base import LetterStatus, ProviderError
from tests.ar24_server import AR24Server, LargeProofServer, large_proof_pieces, proof_pdf
from tests.helpers import least_peak_allocated
from tests.providers.conftest import PDF, make_context, make_letter, proof_bytes


def real_now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def server() -> Iterator[AR24Server]:
    with AR24Server() as running:
        yield running


def adapter(server: AR24Server, **settings: str) -> AR24Provider:
    return AR24Provider(make_context({**server.settings(), **settings}, now=real_now))


def test_a_letter_goes_from_otp_to_accepted_with_its_proofs(server: AR24Server) -> None:
    ar24 = adapter(server)
    context = ar24.prepare_submission("123456")
    result = ar24.submit(make_letter(submit_context=context))

    mail = server.mails[int(result.provider_letter_id)]
    assert mail["ref_client"] == "let_5b7e0c6a2f0d4b7c9a1e3f5d7b9c1e3f" and mail["is_eidas"]
    assert server.attachments[str(mail["attachments_details"][0]["id"])][1] == PDF
    assert ar24.fetch_state(result.provider_letter_id).events == ()

    server.advance(result.provider_letter_id, "ev")
    server.advance(result.provider_letter_id, "ar")
    state = ar24.fetch_state(result.provider_letter_id)

    assert [e.status for e in state.events] == [LetterStatus.DEPOSITED, LetterStatus.ACCEPTED]
    assert state.final
    proofs = [proof_bytes(ar24.download_proof(e.proof)) for e in state.events if e.proof]
    assert proofs == [
        proof_pdf("ev", int(result.provider_letter_id)),
        proof_pdf("ar", int(result.provider_letter_id)),
    ]


def test_a_large_proof_goes_to_the_archive_byte_exact_in_a_fraction_of_its_size(
    server: AR24Server, tmp_path: Path
) -> None:
    size = 20 * 2**20
    proofs = LargeProofServer(size)
    server.proof_root = proofs.root
    ar24 = AR24Provider(replace(make_context(server.settings(), now=real_now), spool_dir=tmp_path / "spool"))
    result = ar24.submit(make_letter(submit_context=ar24.prepare_submission("123456")))
    server.advance(result.provider_letter_id, "ev")
    (deposited,) = ar24.fetch_state(result.provider_letter_id).events
    assert deposited.proof is not None
    archive = FileSystemStore(tmp_path / "archive")

    def download_and_archive() -> tuple[int, str, str]:
        downloaded = ar24.download_proof(deposited.proof)
        counted = downloaded.size, downloaded.sha256
        return *counted, put_stream_in_background(archive, downloaded.rewound()).result()

    with proofs:
        (counted_size, counted_sha256, key), peak = least_peak_allocated(download_and_archive, below=size // 8)

    expected = hashlib.sha256()
    for piece in large_proof_pieces("ev", int(result.provider_letter_id), size):
        expected.update(piece)
    assert (counted_size, counted_sha256, key) == (size, expected.hexdigest(), f"sha256:{expected.hexdigest()}")
    read_back = hashlib.sha256()
    with archive.open(key) as reader:  # a verified read: BlobCorrupted if the bytes are not the key's
        while chunk := reader.read(2**20):
            read_back.update(chunk)
    assert read_back.hexdigest() == expected.hexdigest()
    assert peak < size // 8, f"{peak / 2**20:.1f} MB allocated for a {size // 2**20} MB proof"


def test_the_server_checks_the_signature(server: AR24Server) -> None:
    with pytest.raises(ProviderError) as caught:
        adapter(server, private_key="not-the-key").prepare_submission("123456")
    assert caught.value.provider_code == "invalid_signature"


def test_the_server_refuses_a_stale_date(server: AR24Server) -> None:
    stale = AR24Provider(make_context(server.settings(), now=lambda: datetime(2026, 1, 1, tzinfo=UTC)))
    with pytest.raises(ProviderError) as caught:
        stale.find_by_reference("let_x")
    assert (caught.value.provider_code, caught.value.permanent) == ("expired_date", False)


def test_a_wrong_otp_is_refused_by_ar24(server: AR24Server) -> None:
    with pytest.raises(ProviderError) as caught:
        adapter(server).prepare_submission("000000")
    assert (caught.value.code, caught.value.field) == ("sender_otp_invalid", "sender_otp")


def test_the_lookup_finds_the_submitted_letter_and_only_it(server: AR24Server) -> None:
    ar24 = adapter(server)
    context = ar24.prepare_submission("123456")
    result = ar24.submit(make_letter(submit_context=context))
    assert ar24.find_by_reference("let_5b7e0c6a2f0d4b7c9a1e3f5d7b9c1e3f") == result.provider_letter_id
    assert ar24.find_by_reference("let_00000000000000000000000000000000") is None


def test_an_unknown_domain_is_a_permanent_invalid_email(server: AR24Server) -> None:
    from connector.providers.base import Recipient

    ar24 = adapter(server)
    letter = make_letter(
        submit_context=ar24.prepare_submission("123456"),
        recipient=Recipient(type="individual", email="x@nowhere.invalid", first_name="A", last_name="B"),
    )
    with pytest.raises(ProviderError) as caught:
        ar24.submit(letter)
    assert (caught.value.code, caught.value.permanent, caught.value.field) == (
        "invalid_email",
        True,
        "recipient.email",
    )
