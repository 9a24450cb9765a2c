"""connector.lib.signing: Standard Webhooks and X-Signature, as pure functions over bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from connector.lib import signing
from connector.lib.signing import (
    InvalidSecret,
    MalformedHeader,
    MissingHeader,
    NoMatchingSignature,
    SignatureError,
    TimestampOutOfRange,
)

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

KEY = signing.decode_secret(VECTOR_SECRET)
OTHER_KEY = signing.decode_secret(signing.generate_secret())


def vector_headers(**overrides: str) -> dict[str, str]:
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    headers.update({name.replace("_", "-"): value for name, value in overrides.items()})
    return headers


def test_it_reproduces_the_published_test_vector() -> None:
    assert signing.sign(KEY, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_it_verifies_the_published_test_vector_and_returns_the_message_id() -> None:
    assert signing.verify([KEY], vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP) == VECTOR_ID


def test_it_reads_header_names_in_any_case() -> None:
    headers = {name.upper(): value for name, value in vector_headers().items()}
    assert signing.verify([KEY], headers, VECTOR_BODY, now=VECTOR_TIMESTAMP) == VECTOR_ID


def test_its_headers_verify_with_the_standardwebhooks_library() -> None:
    now = int(datetime.now(UTC).timestamp())
    body = b'{"type": "letter.accepted", "data": {"id": "let_1"}}'
    headers = signing.sign_headers([KEY], "evt_1", now, body)
    assert Webhook(VECTOR_SECRET).verify(body, headers) == {
        "type": "letter.accepted",
        "data": {"id": "let_1"},
    }


def test_it_rejects_a_tampered_body() -> None:
    with pytest.raises(NoMatchingSignature):
        signing.verify([KEY], vector_headers(), b'{"test": 2432232315}', now=VECTOR_TIMESTAMP)


def test_it_rejects_the_wrong_secret() -> None:
    with pytest.raises(NoMatchingSignature):
        signing.verify([OTHER_KEY], vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_it_accepts_any_of_several_secrets_during_a_rotation() -> None:
    assert signing.verify([OTHER_KEY, KEY], vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP) == VECTOR_ID


def test_it_accepts_any_of_several_signatures_and_ignores_other_schemes() -> None:
    other = signing.sign(OTHER_KEY, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    header = f"v1a,c29tZXRoaW5n {other} {VECTOR_SIGNATURE}"
    assert signing.verify([KEY], vector_headers(webhook_signature=header), VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_it_signs_with_every_key_for_a_rotation() -> None:
    headers = signing.sign_headers([OTHER_KEY, KEY], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    first, second = headers["webhook-signature"].split(" ")
    assert second == VECTOR_SIGNATURE
    assert signing.verify([OTHER_KEY], headers, VECTOR_BODY, now=VECTOR_TIMESTAMP)
    assert signing.verify([KEY], headers, VECTOR_BODY, now=VECTOR_TIMESTAMP)


@pytest.mark.parametrize("offset", [-300, 300])
def test_it_accepts_timestamps_at_the_edge_of_the_tolerance(offset: int) -> None:
    assert signing.verify([KEY], vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP - offset)


@pytest.mark.parametrize(("offset", "message"), [(301, "too old"), (-301, "too new")])
def test_it_rejects_stale_and_future_timestamps(offset: int, message: str) -> None:
    with pytest.raises(TimestampOutOfRange, match=message):
        signing.verify([KEY], vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP + offset)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_it_rejects_a_missing_or_empty_header(name: str) -> None:
    headers = vector_headers()
    del headers[name]
    with pytest.raises(MissingHeader, match=name):
        signing.verify([KEY], headers, VECTOR_BODY, now=VECTOR_TIMESTAMP)
    with pytest.raises(MissingHeader, match=name):
        signing.verify([KEY], {**headers, name: "  "}, VECTOR_BODY, now=VECTOR_TIMESTAMP)


@pytest.mark.parametrize(
    "overrides",
    [
        {"webhook_signature": "garbage"},
        {"webhook_signature": "v1,"},
        {"webhook_signature": ",abc"},
        {"webhook_signature": "v1,not*base64!"},
        {"webhook_signature": " ".join(["v1,AAAA"] * 17)},
        {"webhook_timestamp": "16142653.30"},
        {"webhook_timestamp": "+1614265330"},
        {"webhook_timestamp": "1_614_265_330"},
        {"webhook_timestamp": "99999999999999999999"},
        {"webhook_id": "x" * 256},
        {"webhook_id": "msg\x00id"},
    ],
)
def test_it_wraps_every_malformed_header_in_the_signature_error_family(overrides: dict[str, str]) -> None:
    with pytest.raises(MalformedHeader):
        signing.verify([KEY], vector_headers(**overrides), VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_a_header_with_only_foreign_schemes_matches_nothing() -> None:
    with pytest.raises(NoMatchingSignature):
        signing.verify([KEY], vector_headers(webhook_signature="v1a,AAAA"), VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_every_failure_is_a_signature_error() -> None:
    for cls in (MissingHeader, MalformedHeader, TimestampOutOfRange, NoMatchingSignature):
        assert issubclass(cls, SignatureError)


def test_it_refuses_to_verify_without_a_secret() -> None:
    with pytest.raises(InvalidSecret):
        signing.verify([], vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP)
    with pytest.raises(InvalidSecret):
        signing.verify_hex([], {"X-Signature": "sha256=" + "0" * 64}, VECTOR_BODY)


def test_it_refuses_to_sign_with_a_dotted_message_id() -> None:
    with pytest.raises(ValueError):
        signing.sign_headers([KEY], "evt.1", VECTOR_TIMESTAMP, VECTOR_BODY)


def test_generated_secrets_are_whsec_base64_of_32_random_bytes() -> None:
    secret = signing.generate_secret()
    assert secret.startswith("whsec_")
    assert len(signing.decode_secret(secret)) == 32
    assert secret != signing.generate_secret()


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_***"])
def test_it_rejects_an_invalid_configured_secret(secret: str) -> None:
    with pytest.raises(InvalidSecret):
        signing.decode_secret(secret)


# X-Signature: sha256=<hex HMAC of the raw body>, the GitHub scheme.
GITHUB_SECRET = b"It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_hex_signing_reproduces_githubs_published_example() -> None:
    assert signing.sign_hex(GITHUB_SECRET, GITHUB_BODY) == GITHUB_SIGNATURE


def test_hex_verification_accepts_the_right_secret_in_any_case() -> None:
    signing.verify_hex(
        [GITHUB_SECRET], {"X-Signature": GITHUB_SIGNATURE.upper().replace("SHA256", "sha256")}, GITHUB_BODY
    )
    signing.verify_hex([KEY, GITHUB_SECRET], {"x-signature": GITHUB_SIGNATURE}, GITHUB_BODY)


def test_hex_verification_rejects_a_tampered_body_and_a_wrong_secret() -> None:
    with pytest.raises(NoMatchingSignature):
        signing.verify_hex([GITHUB_SECRET], {"X-Signature": GITHUB_SIGNATURE}, b"Hello, World?")
    with pytest.raises(NoMatchingSignature):
        signing.verify_hex([KEY], {"X-Signature": GITHUB_SIGNATURE}, GITHUB_BODY)


@pytest.mark.parametrize("value", ["757107ea", "sha1=" + "0" * 64, "sha256=" + "z" * 64, "sha256=", "sha256"])
def test_hex_verification_rejects_malformed_headers(value: str) -> None:
    with pytest.raises(MalformedHeader):
        signing.verify_hex([GITHUB_SECRET], {"X-Signature": value}, GITHUB_BODY)


def test_hex_verification_rejects_a_missing_header() -> None:
    with pytest.raises(MissingHeader):
        signing.verify_hex([GITHUB_SECRET], {}, GITHUB_BODY)


def test_the_replay_key_of_a_hex_signed_request_is_the_hash_of_its_body() -> None:
    assert signing.body_message_id(b"a") == signing.body_message_id(b"a") != signing.body_message_id(b"b")
