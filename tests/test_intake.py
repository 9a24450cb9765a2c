"""The signed intake endpoint: a CRM, ERP or form tool sends a letter by webhook, proven by a signature."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from connector.lib import signing
from connector.models import Account, InboundMessage, Letter
from tests.helpers import letter_payload, peak_allocated_while


@pytest.fixture
def account_id(account):
    return account[0]


@pytest.fixture
def secret(client, auth):
    response = client.post("/v1/account/intake-secret", headers=auth)
    assert response.status_code == 201, response.json
    return response.json["secret"]


def body_of(**overrides) -> bytes:
    return json.dumps(letter_payload(**overrides)).encode()


def standard_headers(secret: str, body: bytes, *, msg_id: str = "msg_crm_1", timestamp: int | None = None):
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        **signing.sign_headers([signing.decode_secret(secret)], msg_id, stamp, body),
        "Content-Type": "application/json",
    }


def hex_headers(secret: str, body: bytes):
    return {"X-Signature": signing.sign_hex(signing.decode_secret(secret), body), "Content-Type": "application/json"}


def intake(client, account_id, body, headers):
    return client.post(f"/v1/intake/{account_id}", data=body, headers=headers)


def counts(services) -> tuple[int, int]:
    """(letters, remembered inbound message ids): what a refused request must leave unchanged."""
    with services.db.transaction() as session:
        return (
            session.scalar(select(func.count()).select_from(Letter)),
            session.scalar(select(func.count()).select_from(InboundMessage)),
        )


def test_it_creates_a_letter_from_a_standard_webhooks_request(client, auth, account_id, secret, services):
    body = body_of(reference="CRM-1001")
    response = intake(client, account_id, body, standard_headers(secret, body))
    assert response.status_code == 201, response.json
    letter = client.get(f"/v1/letters/{response.json['id']}", headers=auth).json
    assert letter["reference"] == "CRM-1001"
    assert letter["status"] == "queued"
    assert counts(services) == (1, 1)


def test_it_creates_a_letter_from_an_x_signature_request(client, auth, account_id, secret):
    body = body_of()
    response = intake(client, account_id, body, hex_headers(secret, body))
    assert response.status_code == 201, response.json
    assert client.get(f"/v1/letters/{response.json['id']}", headers=auth).status_code == 200


def test_the_letter_it_creates_goes_through_the_whole_lifecycle(client, auth, account_id, secret, drain):
    body = body_of(sandbox_outcome="refused")
    letter_id = intake(client, account_id, body, standard_headers(secret, body)).json["id"]
    drain()
    assert client.get(f"/v1/letters/{letter_id}", headers=auth).json["status"] == "refused"


def refused(client, services, account_id, body, headers, status, code):
    before = counts(services)
    response = intake(client, account_id, body, headers)
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert counts(services) == before
    return response


def test_it_refuses_a_tampered_body(client, services, account_id, secret):
    body = body_of()
    headers = standard_headers(secret, body)
    tampered = body.replace(b"DOSSIER-42", b"DOSSIER-43")
    refused(client, services, account_id, tampered, headers, 401, "invalid_signature")
    refused(client, services, account_id, tampered, hex_headers(secret, body), 401, "invalid_signature")


def test_it_refuses_the_wrong_secret(client, services, account_id, secret):
    body = body_of()
    wrong = signing.generate_secret()
    refused(client, services, account_id, body, standard_headers(wrong, body), 401, "invalid_signature")
    refused(client, services, account_id, body, hex_headers(wrong, body), 401, "invalid_signature")


# Well past the 300 s tolerance: a timestamp in whole seconds plus a slow machine must not make it pass.
@pytest.mark.parametrize("offset", [-330, 330], ids=["stale", "future"])
def test_it_refuses_stale_and_future_timestamps(client, services, account_id, secret, offset):
    body = body_of()
    headers = standard_headers(secret, body, timestamp=int(time.time()) + offset)
    refused(client, services, account_id, body, headers, 401, "stale_signature")


def test_it_refuses_a_replayed_message(client, services, account_id, secret):
    body = body_of()
    headers = standard_headers(secret, body)
    assert intake(client, account_id, body, headers).status_code == 201
    refused(client, services, account_id, body, headers, 409, "replayed_message")
    # The same id re-signed over another body is still the same message.
    other = body_of(reference="OTHER")
    refused(client, services, account_id, other, standard_headers(secret, other), 409, "replayed_message")


def test_it_refuses_a_replayed_x_signature_body(client, services, account_id, secret):
    body = body_of()
    assert intake(client, account_id, body, hex_headers(secret, body)).status_code == 201
    refused(client, services, account_id, body, hex_headers(secret, body), 409, "replayed_message")


def test_a_day_later_timestamped_ids_are_forgotten_and_still_cannot_be_replayed(client, services, account_id,
                                                                                  secret):
    from datetime import timedelta

    from connector.delivery.worker import housekeeping

    standard_body, hex_body = body_of(reference="STD"), body_of(reference="HEX")
    standard = standard_headers(secret, standard_body, msg_id="msg_crm_old")
    assert intake(client, account_id, standard_body, standard).status_code == 201
    assert intake(client, account_id, hex_body, hex_headers(secret, hex_body)).status_code == 201
    received = services.clock()

    services.clock = lambda: received + timedelta(hours=23)
    housekeeping(services)
    assert counts(services) == (2, 2)  # within a day both ids are kept

    services.clock = lambda: received + timedelta(hours=25)
    housekeeping(services)
    with services.db.transaction() as session:
        kept = session.scalars(select(InboundMessage.message_id)).all()
    assert kept == [signing.body_message_id(hex_body)]  # an X-Signature body hash is never forgotten
    # The forgotten message is refused all the same: its signed timestamp is a day old.
    refused(client, services, account_id, standard_body, standard, 401, "stale_signature")
    refused(client, services, account_id, hex_body, hex_headers(secret, hex_body), 409, "replayed_message")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook-signature", "garbage"),
        ("webhook-signature", "v1,not*base64"),
        ("webhook-timestamp", "yesterday"),
        ("webhook-timestamp", "1e9"),
        ("webhook-id", "a" * 300),
    ],
)
def test_it_answers_400_to_malformed_standard_headers(client, services, account_id, secret, name, value):
    body = body_of()
    headers = {**standard_headers(secret, body), name: value}
    refused(client, services, account_id, body, headers, 400, "malformed_signature")


@pytest.mark.parametrize("value", ["sha256=xyz", "md5=" + "0" * 32, "757107ea0eb2509fc2"])
def test_it_answers_400_to_a_malformed_x_signature(client, services, account_id, secret, value):
    refused(client, services, account_id, body_of(), {"X-Signature": value}, 400, "malformed_signature")


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_it_answers_401_to_a_missing_header(client, services, account_id, secret, missing):
    body = body_of()
    headers = standard_headers(secret, body)
    del headers[missing]
    refused(client, services, account_id, body, headers, 401, "missing_signature")


def test_it_answers_401_to_an_unsigned_request(client, services, account_id, secret):
    refused(client, services, account_id, body_of(), {"Content-Type": "application/json"}, 401, "missing_signature")


def test_it_refuses_everything_when_no_secret_is_configured(client, services, account_id):
    body = body_of()
    someone = signing.generate_secret()
    refused(client, services, account_id, body, standard_headers(someone, body), 401, "intake_not_enabled")
    refused(client, services, account_id, body, {}, 401, "intake_not_enabled")


def test_an_unknown_account_is_answered_like_one_without_a_secret(client, services, secret):
    body = body_of()
    refused(client, services, "acc_nobody", body, standard_headers(secret, body), 401, "intake_not_enabled")


def test_an_api_key_is_not_a_way_in(client, services, auth, account_id, secret):
    refused(
        client, services, account_id, body_of(), {**auth, "Content-Type": "application/json"}, 401, "missing_signature"
    )


def test_an_invalid_letter_is_refused_without_using_up_its_message_id(client, services, account_id, secret):
    bad = json.dumps({"recipient": {"type": "professional"}}).encode()
    refused(client, services, account_id, bad, standard_headers(secret, bad, msg_id="msg_7"), 422, "invalid_request")
    good = body_of()
    assert intake(client, account_id, good, standard_headers(secret, good, msg_id="msg_7")).status_code == 201


def test_a_signed_body_that_is_not_json_is_a_400(client, services, account_id, secret):
    body = b"\xff\xfe not json"
    refused(client, services, account_id, body, standard_headers(secret, body), 400, "invalid_json")


def test_the_secret_of_one_account_does_not_open_another(client, services, other_auth, account_id, secret):
    client.post("/v1/account/intake-secret", headers=other_auth)
    with services.db.transaction() as session:
        other_id = session.scalar(select(Account.id).where(Account.id != account_id))
    body = body_of()
    refused(client, services, other_id, body, standard_headers(secret, body), 401, "invalid_signature")


def test_rotation_keeps_the_previous_secret_valid_during_the_grace_period(client, auth, account_id, secret):
    rotated = client.post("/v1/account/intake-secret", headers=auth)
    assert rotated.status_code == 200
    assert rotated.json["secret"] != secret
    assert rotated.json["previous_secret_expires_at"] is not None
    for number, key in enumerate([secret, rotated.json["secret"]]):
        body = body_of(reference=f"R{number}")
        assert intake(client, account_id, body, standard_headers(key, body, msg_id=f"m{number}")).status_code == 201


def test_rotation_without_grace_revokes_the_previous_secret(client, services, auth, account_id, secret):
    client.post("/v1/account/intake-secret", json={"grace_period_seconds": 0}, headers=auth)
    body = body_of()
    refused(client, services, account_id, body, standard_headers(secret, body), 401, "invalid_signature")


def test_the_intake_secret_is_shown_once_and_encrypted_at_rest(client, auth, services, account_id, secret):
    with services.db.transaction() as session:
        stored = session.get(Account, account_id).intake_secret_encrypted
    assert secret not in stored
    assert services.encryptor.decrypt_json(stored)[0]["secret"] == secret
    assert secret not in client.get("/v1/me", headers=auth).get_data(as_text=True)


def test_creating_an_intake_secret_needs_an_api_key(client):
    assert client.post("/v1/account/intake-secret").status_code == 401


def test_a_message_from_the_clock_edge_is_accepted(client, account_id, secret):
    body = body_of()
    stamp = int(datetime.now(UTC).timestamp()) - 295
    assert intake(client, account_id, body, standard_headers(secret, body, timestamp=stamp)).status_code == 201


# --- Large bodies: verified while they are read, never held whole --------------------------------

MB = 1024 * 1024


@pytest.fixture(scope="module")
def large_body() -> bytes:
    """A letter whose PDF (6 MB) travels as base64 in the signed JSON: an 8 MB body."""
    from benchmarks.memory import big_pdf

    pdf = big_pdf(6)
    return body_of(documents=[{"filename": "gros.pdf", "content_base64": base64.b64encode(pdf).decode()}])



@pytest.mark.parametrize("scheme", ["standard-webhooks", "x-signature"])
def test_a_large_signed_letter_is_verified_as_read_in_bounded_memory(client, auth, account_id, secret, services,
                                                                     large_body, scheme):
    """The body is spooled and verified piece by piece, its base64 decoded to a file as read: the
    request allocates a fraction of the body. Read whole (as before), the body alone was 8 MB, its
    decoded text and bytes as much again."""
    headers = standard_headers(secret, large_body) if scheme == "standard-webhooks" else hex_headers(secret, large_body)
    response, peak = peak_allocated_while(lambda: intake(client, account_id, large_body, headers))
    assert response.status_code == 201, response.json
    document = response.json["documents"][0]
    pdf = base64.b64decode(json.loads(large_body)["documents"][0]["content_base64"])
    assert (document["size"], document["sha256"]) == (len(pdf), hashlib.sha256(pdf).hexdigest())
    assert peak < 3 * MB, f"{peak / MB:.1f} MB allocated for an {len(large_body) / MB:.1f} MB body"
    if scheme == "x-signature":
        with services.db.transaction() as session:
            kept = session.scalars(select(InboundMessage.message_id)).all()
        assert kept == [signing.body_message_id(large_body)]  # the replay key, hashed as the body was read
    assert intake(client, account_id, large_body, headers).json["error"]["code"] == "replayed_message"


@pytest.mark.parametrize("where", [0, 4 * MB, -2], ids=["first-byte", "middle", "last-byte"])
def test_a_large_body_changed_anywhere_is_refused_and_nothing_is_stored(client, services, account_id, secret,
                                                                        large_body, where):
    tampered = bytearray(large_body)
    tampered[where] ^= 0x01
    refused(client, services, account_id, bytes(tampered), standard_headers(secret, large_body), 401,
            "invalid_signature")
    refused(client, services, account_id, bytes(tampered), hex_headers(secret, large_body), 401,
            "invalid_signature")
    refused(client, services, account_id, large_body, standard_headers(signing.generate_secret(), large_body),
            401, "invalid_signature")


def test_a_large_body_signed_with_bad_headers_is_refused_before_it_is_read(client, services, account_id, secret,
                                                                           large_body):
    stale = standard_headers(secret, large_body, timestamp=int(time.time()) - 600)
    response, peak = peak_allocated_while(lambda: intake(client, account_id, large_body, stale))
    assert (response.status_code, response.json["error"]["code"]) == (401, "stale_signature")
    assert peak < 1 * MB  # not a byte of the body was spooled or hashed
    refused(client, services, account_id, large_body, {"Content-Type": "application/json"}, 401, "missing_signature")
    assert counts(services) == (0, 0)


def test_a_large_signed_body_that_is_not_json_is_a_400(client, services, account_id, secret, large_body):
    broken = large_body[: len(large_body) // 2]  # cut inside the base64 string
    refused(client, services, account_id, broken, standard_headers(secret, broken), 400, "invalid_json")


@pytest.mark.slow
def test_a_serving_process_verifies_a_large_signed_letter_within_bounds(tmp_path):
    """A real ``lre-bridge serve``: a 12 MB PDF through the signed intake (Standard Webhooks), sent,
    accepted and packaged; the serving process's peak (VmHWM) grows by far less than the document.
    Read whole, as before, a 19 MB PDF took the process from 113 MB to 208 MB."""
    from benchmarks.bridge import Bridge
    from benchmarks.memory import big_pdf, intake_secret, one_letter, status_kb

    with Bridge(tmp_path / "bridge") as bridge:
        one_letter(bridge, big_pdf(0.05), "json", "warm-up")
        worker = max(bridge.pids(), key=lambda pid: status_kb(pid, "VmRSS"))
        idle = status_kb(worker, "VmRSS") / 1024
        one_letter(bridge, big_pdf(12), "intake", "big-intake", intake_secret(bridge))
        peak = status_kb(worker, "VmHWM") / 1024
    assert peak - idle < 25, f"peak {peak:.0f} MB, idle {idle:.0f} MB"


def test_a_signed_body_of_unknown_length_is_verified_as_read_and_cut_at_the_limit(client, services, account_id,
                                                                                 secret, large_body, app):
    """No Content-Length (a chunked upload): the body is spooled and verified all the same; past the
    app's body limit the read stops with a 413, nothing stored."""

    def send(body: bytes, headers: dict[str, str]) -> Any:
        # As gunicorn hands a chunked body over: decoded, of no declared length, terminated.
        return client.post(f"/v1/intake/{account_id}", input_stream=io.BytesIO(body),
                           headers={**headers, "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})

    answer = send(large_body, standard_headers(secret, large_body, msg_id="msg_chunked"))
    assert answer.status_code == 201, answer.json
    tampered = large_body[:-2] + b" }"
    answer = send(tampered, standard_headers(secret, large_body, msg_id="msg_chunked_2"))
    assert (answer.status_code, answer.json["error"]["code"]) == (401, "invalid_signature")
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    before = counts(services)
    answer = send(large_body, standard_headers(secret, large_body, msg_id="msg_chunked_3"))
    assert answer.status_code == 413
    assert counts(services) == before
