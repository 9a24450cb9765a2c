"""End to end through the HTTP API with an account on AR24, against the AR24-compatible loopback
server: POST /v1/letters (with the sender's OTP) → submitted → deposited → accepted, by polling
or on AR24's callback, proofs kept byte-exact, and never sent twice when an answer is lost."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connector.lib.storage import S3Store
from connector.models import Letter
from connector.services import Services
from tests.ar24_server import AR24Server, LargeProofServer, large_proof_pieces, proof_pdf
from tests.helpers import letter_payload, peak_allocated_while


class Clock:
    """Real time plus an offset the test moves forward (jobs, AR24 and the bridge share it)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock(services: Services) -> Clock:
    clock = Clock()
    services.clock = clock
    return clock


@pytest.fixture
def ar24(clock: Clock) -> Iterator[AR24Server]:
    with AR24Server(clock=clock) as server:
        yield server


@pytest.fixture
def on_ar24(client: Any, auth: dict[str, str], ar24: AR24Server) -> dict[str, str]:
    response = client.put("/v1/account/provider", json={"provider": "ar24", "settings": ar24.settings()}, headers=auth)
    assert response.status_code == 200, response.json
    return auth


def send(client: Any, auth: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/letters", json=letter_payload(sender_otp="123456", **overrides), headers=auth)
    assert response.status_code == 201, response.json
    return response.json


def letter(client: Any, auth: dict[str, str], letter_id: str) -> dict[str, Any]:
    return client.get(f"/v1/letters/{letter_id}", headers=auth).json


def test_a_letter_goes_from_the_api_to_accepted_by_polling(
    client: Any, on_ar24: dict[str, str], ar24: AR24Server, clock: Clock, drain: Callable[[], int]
) -> None:
    created = send(client, on_ar24)
    assert created["status"] == "queued" and created["provider"] == "ar24"

    drain()
    (mail,) = ar24.mails.values()
    assert mail["ref_client"] == created["id"] and mail["is_eidas"]
    assert ar24.calls_to("POST", "/user/auth_otp")[0]["otp"] == "123456"
    assert letter(client, on_ar24, created["id"])["provider_letter_id"] == str(mail["id"])

    ar24.advance(mail["id"], "ev")
    clock.advance(minutes=2)
    drain()
    assert letter(client, on_ar24, created["id"])["status"] == "deposited"

    ar24.advance(mail["id"], "ar")
    clock.advance(minutes=2)
    drain()
    final = letter(client, on_ar24, created["id"])
    assert final["status"] == "accepted"
    assert {p["kind"]: p["sha256"] for p in final["proofs"]} == {
        "deposit": hashlib.sha256(proof_pdf("ev", mail["id"])).hexdigest(),
        "acceptance": hashlib.sha256(proof_pdf("ar", mail["id"])).hexdigest(),
    }
    assert len(ar24.calls_to("POST", "/mail")) == 1


def test_a_large_proof_reaches_the_archive_and_the_proof_download_byte_exact_in_bounded_memory(
    client: Any, on_ar24: dict[str, str], ar24: AR24Server, clock: Clock, services: Services,
    drain: Callable[[], int],
) -> None:
    size = 20 * 2**20
    created = send(client, on_ar24)
    drain()
    (mail,) = ar24.mails.values()
    with LargeProofServer(size) as proofs:
        ar24.proof_root = proofs.root
        ar24.advance(mail["id"], "ev")
        clock.advance(minutes=2)
        _, peak = peak_allocated_while(drain)  # the poll: the mail read, its proof downloaded and archived
    expected = hashlib.sha256()
    for piece in large_proof_pieces("ev", mail["id"], size):
        expected.update(piece)

    (proof,) = letter(client, on_ar24, created["id"])["proofs"]
    assert (proof["kind"], proof["size"], proof["sha256"], proofs.served) == ("deposit", size, expected.hexdigest(), 1)
    read = client.get(proof["url"].removeprefix("http://bridge.test"), headers=on_ar24, buffered=False)
    assert read.status_code == 200 and read.is_streamed
    received, length = hashlib.sha256(), 0
    for chunk in read.response:  # the archive's verified read: it raises if a byte differs from the key's
        received.update(chunk)
        length += len(chunk)
    read.close()
    assert (length, received.hexdigest()) == (size, expected.hexdigest())
    if not isinstance(services.blobs, S3Store):  # the loopback S3 server runs in this process, and allocates too
        assert peak < size // 4, f"{peak / 2**20:.1f} MB allocated to poll a letter with a {size // 2**20} MB proof"


def test_ar24s_callback_makes_the_bridge_reread_the_mail_at_once(
    client: Any, on_ar24: dict[str, str], ar24: AR24Server, services: Services, drain: Callable[[], int]
) -> None:
    created = send(client, on_ar24)
    drain()
    (mail,) = ar24.mails.values()
    ar24.advance(mail["id"], "ev")
    ar24.advance(mail["id"], "rf")
    with services.db.transaction() as session:
        token = session.scalar(select(Letter.callback_token).where(Letter.id == created["id"]))
    assert mail["webhook"] == f"http://bridge.test/callbacks/ar24/{token}"

    hint = client.post(f"/callbacks/ar24/{token}", data={"id_mail": str(mail["id"]), "new_state": "RF"})
    assert hint.status_code == 200
    drain()  # no clock change: the callback made the poll due now

    assert letter(client, on_ar24, created["id"])["status"] == "refused"
    # A duplicate, late callback changes nothing.
    assert client.post(f"/callbacks/ar24/{token}", data={"id_mail": str(mail["id"])}).status_code == 200
    drain()
    assert letter(client, on_ar24, created["id"])["status"] == "refused"


def test_a_letter_is_not_sent_twice_when_ar24s_answer_is_lost(
    client: Any, auth: dict[str, str], ar24: AR24Server, clock: Clock, drain: Callable[[], int]
) -> None:
    settings = {**ar24.settings(), "timeout": 1}
    assert (
        client.put("/v1/account/provider", json={"provider": "ar24", "settings": settings}, headers=auth).status_code
        == 200
    )
    created = send(client, auth)
    ar24.slow_send_seconds = 2.0  # AR24 creates the mail, the bridge times out waiting

    drain()
    assert len(ar24.mails) == 1
    assert letter(client, auth, created["id"])["status"] == "queued"

    ar24.slow_send_seconds = 0
    clock.advance(minutes=30)  # past the submit job's back-off
    drain()

    (mail,) = ar24.mails.values()
    assert len(ar24.calls_to("POST", "/mail")) == 1
    assert letter(client, auth, created["id"])["provider_letter_id"] == str(mail["id"])


def test_a_letter_without_the_senders_otp_is_refused_with_instructions(
    client: Any, on_ar24: dict[str, str], ar24: AR24Server
) -> None:
    response = client.post("/v1/letters", json=letter_payload(), headers=on_ar24)
    assert response.status_code == 422
    assert response.json["error"]["field"] == "sender_otp"
    assert "6-digit" in response.json["error"]["message"]
    assert ar24.mails == {}


def test_a_wrong_otp_is_refused_before_the_letter_exists(
    client: Any, on_ar24: dict[str, str], ar24: AR24Server
) -> None:
    response = client.post("/v1/letters", json=letter_payload(sender_otp="000000"), headers=on_ar24)
    assert (response.status_code, response.json["error"]["code"]) == (422, "sender_otp_invalid")


def test_the_ip_allow_list_uses_the_callers_address_not_a_header_it_sends(
    client: Any, auth: dict[str, str], ar24: AR24Server, services: Services, drain: Callable[[], int]
) -> None:
    settings = {**ar24.settings(), "callback_ip_allowlist": "185.183.140.195"}
    assert (
        client.put("/v1/account/provider", json={"provider": "ar24", "settings": settings}, headers=auth).status_code
        == 200
    )
    created = send(client, auth)
    drain()
    with services.db.transaction() as session:
        token = session.scalar(select(Letter.callback_token).where(Letter.id == created["id"]))
    path = f"/callbacks/ar24/{token}"

    forged = client.post(
        path,
        data={"id_mail": "1"},
        headers={"X-Lre-Remote-Addr": "185.183.140.195"},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    from_ar24 = client.post(path, data={"id_mail": "1"}, environ_base={"REMOTE_ADDR": "185.183.140.195"})

    assert forged.status_code == 403
    assert from_ar24.status_code == 200


def test_the_account_check_confirms_a_ready_sender(client: Any, on_ar24: dict[str, str]) -> None:
    body = client.get("/v1/account/provider/check", headers=on_ar24).json
    assert (body["provider"], body["ok"], body["identity_verified"], body["next_steps"]) == ("ar24", True, True, [])
    assert body["sender"] == {"id": "7731", "name": "Claire Dupont", "email": "gestion@dupont-immo.example"}
    schema = client.get("/openapi.json").json["components"]["schemas"]["ProviderCheck"]
    assert schema["additionalProperties"] is False
    assert set(body) == set(schema["properties"])  # a renamed field fails here


def test_the_account_check_tells_what_the_sender_still_has_to_do(
    client: Any, on_ar24: dict[str, str], ar24: AR24Server
) -> None:
    del ar24.user["is_identity_verified"]
    ar24.user["is_payment_possible"] = False
    body = client.get("/v1/account/provider/check", headers=on_ar24).json
    assert (body["ok"], body["identity_verified"]) == (False, False)
    assert any("payment method" in step for step in body["next_steps"])
    assert any("identity verification" in step for step in body["next_steps"])


def test_the_account_check_reports_wrong_credentials(client: Any, auth: dict[str, str], ar24: AR24Server) -> None:
    settings = {**ar24.settings(), "token": "not-the-token"}
    client.put("/v1/account/provider", json={"provider": "ar24", "settings": settings}, headers=auth)
    response = client.get("/v1/account/provider/check", headers=auth)
    assert (response.status_code, response.json["error"]["code"]) == (422, "provider_auth_failed")
