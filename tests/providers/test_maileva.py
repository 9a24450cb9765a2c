"""Maileva LREQ adapter: OAuth2 password grant and refresh, the four-step submission, recipient
status mapping, proofs, error bodies, never-twice lookup."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from connector.providers.base import LetterStatus, ProofRef, ProviderError, Recipient, WebhookRejected
from connector.providers.maileva import MailevaProvider, clear_token_cache
from connector.shapes import ProviderCheck
from tests.providers.conftest import NOW, PDF, load_fixture, make_context, make_letter, proof_bytes

API = "https://api.sandbox.maileva.net"
LREQ = f"{API}/electronic_qualified_registered_mail/v1"
AUTH = "https://connexion.sandbox.maileva.net/auth/realms/services/protocol/openid-connect/token"
SENDER = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
SETTINGS = {
    "base_url": API,
    "auth_url": AUTH,
    "client_id": "bridge-client",
    "client_secret": "s3cr3t",
    "username": "gestion@dupont-immo.example",
    "password": "p4ssw0rd",
    "sender_id": SENDER,
}
SENDING = "3f2c9a1e-5b7d-4c2e-9f1a-0b3c5d7e9f1a"
RECIPIENT = "d905a65e-aa46-4f37-8480-260c4600c810"
BEARER_1 = {"Authorization": "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.access-1.sig"}


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


def provider(now: Any = lambda: NOW, **settings: Any) -> MailevaProvider:
    return MailevaProvider(make_context({**SETTINGS, **settings}, now=now))


def token_endpoint(fixture: str = "token.json", grant: str = "password") -> None:
    responses.post(AUTH, json=load_fixture("maileva", fixture), match=[_grant_is(grant)])


def _grant_is(grant: str) -> Any:
    def match(request: requests.PreparedRequest) -> tuple[bool, str]:
        body = request.body if isinstance(request.body, str) else (request.body or b"").decode()
        return (f"grant_type={grant}" in body, f"grant_type is not {grant}")

    return match


def form(request: requests.PreparedRequest) -> dict[str, str]:
    from urllib.parse import parse_qsl

    body = request.body if isinstance(request.body, str) else (request.body or b"").decode()
    return dict(parse_qsl(body))


# --- OAuth2 ----------------------------------------------------------------------------------


@responses.activate
def test_it_signs_in_with_the_password_grant_and_reuses_the_token() -> None:
    token_endpoint()
    responses.get(
        f"{LREQ}/sendings/{SENDING}/recipients",
        json=load_fixture("maileva", "recipients_pending.json"),
        match=[matchers.header_matcher(BEARER_1)],
    )
    provider().fetch_state(SENDING)
    provider().fetch_state(SENDING)  # a second adapter instance, same settings: cached token
    token_calls = [c for c in responses.calls if c.request.url == AUTH]
    assert len(token_calls) == 1
    assert form(token_calls[0].request) == {
        "grant_type": "password",
        "username": "gestion@dupont-immo.example",
        "password": "p4ssw0rd",
        "client_id": "bridge-client",
        "client_secret": "s3cr3t",
    }


@responses.activate
def test_it_refreshes_an_expired_token_with_the_refresh_grant() -> None:
    token_endpoint()
    token_endpoint("token_refreshed.json", grant="refresh_token")
    responses.get(f"{LREQ}/sendings/{SENDING}/recipients", json=load_fixture("maileva", "recipients_pending.json"))
    provider().fetch_state(SENDING)
    provider(now=lambda: NOW + timedelta(seconds=400)).fetch_state(SENDING)
    grants = [form(c.request)["grant_type"] for c in responses.calls if c.request.url == AUTH]
    assert grants == ["password", "refresh_token"]
    assert form([c for c in responses.calls if c.request.url == AUTH][1].request)["refresh_token"].endswith(
        "refresh-1.sig"
    )
    assert responses.calls[-1].request.headers["Authorization"].endswith("access-2.sig")


@responses.activate
def test_a_token_refused_by_the_api_is_renewed_once() -> None:
    token_endpoint()
    responses.get(f"{LREQ}/sendings/{SENDING}/recipients", status=401)
    responses.get(f"{LREQ}/sendings/{SENDING}/recipients", json=load_fixture("maileva", "recipients_pending.json"))
    provider().fetch_state(SENDING)
    assert sum(1 for c in responses.calls if c.request.url == AUTH) == 2


@responses.activate
def test_wrong_credentials_are_a_permanent_error_naming_the_settings() -> None:
    responses.post(AUTH, json=load_fixture("maileva", "token_invalid_grant.json"), status=401)
    with pytest.raises(ProviderError) as caught:
        provider().fetch_state(SENDING)
    assert (caught.value.code, caught.value.permanent, caught.value.provider_code) == (
        "provider_auth_failed",
        True,
        "invalid_grant",
    )
    assert "client_id" in caught.value.message and "p4ssw0rd" not in caught.value.message


@responses.activate
def test_an_unavailable_sign_in_service_is_transient() -> None:
    responses.post(AUTH, status=503)
    with pytest.raises(ProviderError) as caught:
        provider().fetch_state(SENDING)
    assert caught.value.permanent is False


# --- Sender OTP ------------------------------------------------------------------------------


@responses.activate
def test_it_authenticates_the_sender_for_one_hour_with_the_otp() -> None:
    token_endpoint()
    responses.post(
        f"{API}/electronic_mail_emitter/v1/senders/{SENDER}/authenticate_by_otp",
        json=load_fixture("maileva", "authenticate_by_otp.json"),
        match=[matchers.query_param_matcher({"otp_code": "123456"})],
    )
    context = provider().prepare_submission("123456")
    assert context == {"sender_authenticated_until": "2026-11-27T09:00:00+00:00"}


@responses.activate
def test_a_refused_otp_names_the_sender_otp_field() -> None:
    token_endpoint()
    responses.post(
        f"{API}/electronic_mail_emitter/v1/senders/{SENDER}/authenticate_by_otp",
        json={"errors": [{"code": "INVALID_OTP", "message": "Code OTP invalide"}]},
        status=400,
    )
    with pytest.raises(ProviderError) as caught:
        provider().prepare_submission("654321")
    assert (caught.value.code, caught.value.field, caught.value.permanent) == (
        "sender_otp_invalid",
        "sender_otp",
        True,
    )


def test_without_an_otp_nothing_is_checked_up_front() -> None:
    # The sender may be authenticated by certificate (30 days); Maileva decides at submission.
    assert provider().prepare_submission(None) == {}


def test_a_malformed_otp_is_refused_without_calling_maileva() -> None:
    with pytest.raises(ProviderError) as caught:
        provider().prepare_submission("12ab")
    assert caught.value.field == "sender_otp"


# --- Submission ------------------------------------------------------------------------------


def _submission_endpoints() -> None:
    token_endpoint()
    responses.post(f"{LREQ}/sendings", json=load_fixture("maileva", "sending_created.json"), status=201)
    responses.post(
        f"{LREQ}/sendings/{SENDING}/documents",
        json=load_fixture("maileva", "document_created.json"),
        status=201,
    )
    responses.post(
        f"{LREQ}/sendings/{SENDING}/recipients",
        json=load_fixture("maileva", "recipient_created.json"),
        status=201,
    )


@responses.activate
def test_it_creates_the_sending_adds_document_and_recipient_then_submits() -> None:
    _submission_endpoints()
    responses.post(f"{LREQ}/sendings/{SENDING}/submit", status=202)
    letter = make_letter()

    result = provider().submit(letter)

    assert result.provider_letter_id == SENDING
    urls = [(c.request.method, c.request.url) for c in responses.calls if c.request.url != AUTH]
    assert urls == [
        ("POST", f"{LREQ}/sendings"),
        ("POST", f"{LREQ}/sendings/{SENDING}/documents"),
        ("POST", f"{LREQ}/sendings/{SENDING}/recipients"),
        ("POST", f"{LREQ}/sendings/{SENDING}/submit"),
    ]
    sending = json.loads(responses.calls[1].request.body)
    assert sending == {
        "sender_id": SENDER,
        "name": "BAIL-2026-114",
        "custom_id": letter.id,
        "custom_data": "BAIL-2026-114",
        "message": letter.message,
    }
    document = responses.calls[2].request
    assert b'name="document"; filename="mise-en-demeure.pdf"' in document.body and PDF in document.body
    assert b'name="name"' in document.body
    assert json.loads(responses.calls[3].request.body) == {
        "legal_status": "INDIVIDUAL",
        "first_name": "Jeanne",
        "last_name": "Martin",
        "email": "jeanne.martin@example.org",
        "custom_id": letter.id,
    }
    assert all(
        c.request.headers["Authorization"] == BEARER_1["Authorization"]
        for c in responses.calls
        if c.request.url != AUTH
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (
            {"recipient": Recipient(type="individual", email="not-an-address", first_name="A", last_name="B")},
            "recipient.email",
        ),
        (
            {"recipient": Recipient(type="professional", email="a@acme.example", company="ACME")},
            "recipient.first_name",
        ),
        (
            {
                "recipient": Recipient(
                    type="professional",
                    email="a@acme.example",
                    first_name="A",
                    last_name="B",
                    company="C" * 39,
                )
            },
            "recipient.company",
        ),
        ({"message": "m" * 451}, "message"),
    ],
)
@responses.activate
def test_it_refuses_what_maileva_would_refuse_before_creating_anything(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ProviderError) as caught:
        provider().submit(make_letter(**overrides))
    assert (caught.value.field, caught.value.permanent) == (field, True)
    assert len(responses.calls) == 0


@responses.activate
def test_a_failed_step_deletes_the_draft() -> None:
    token_endpoint()
    responses.post(f"{LREQ}/sendings", json=load_fixture("maileva", "sending_created.json"), status=201)
    responses.post(f"{LREQ}/sendings/{SENDING}/documents", json=load_fixture("maileva", "errors_400.json"), status=400)
    responses.delete(f"{LREQ}/sendings/{SENDING}", status=204)
    with pytest.raises(ProviderError) as caught:
        provider().submit(make_letter())
    assert (caught.value.code, caught.value.permanent, caught.value.provider_code) == (
        "provider_rejected",
        True,
        "INVALID_PARAMETER",
    )
    assert "Le champ email est invalide" in caught.value.message
    assert responses.calls[-1].request.method == "DELETE"


@responses.activate
def test_a_forbidden_submission_tells_the_sender_to_authenticate() -> None:
    _submission_endpoints()
    responses.post(f"{LREQ}/sendings/{SENDING}/submit", json=load_fixture("maileva", "errors_403.json"), status=403)
    with pytest.raises(ProviderError) as caught:
        provider().submit(make_letter())
    assert (caught.value.code, caught.value.field, caught.value.permanent) == (
        "sender_not_authorised",
        "sender_otp",
        True,
    )


@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [
        (400, "provider_rejected", True),
        (401, "provider_auth_failed", True),
        (403, "sender_not_authorised", True),
        (404, "provider_not_found", True),
        (409, "provider_error", True),
        (429, "provider_unavailable", False),
        (500, "provider_unavailable", False),
        (503, "provider_unavailable", False),
    ],
)
@responses.activate
def test_every_error_status_is_mapped(status: int, code: str, permanent: bool) -> None:
    token_endpoint()
    responses.get(
        f"{LREQ}/sendings/{SENDING}/recipients",
        json={"errors": [{"code": "X", "message": "y"}]},
        status=status,
        headers={"Retry-After": "30"},
    )
    with pytest.raises(ProviderError) as caught:
        provider().fetch_state(SENDING)
    assert (caught.value.code, caught.value.permanent) == (code, permanent)
    if not permanent:
        assert caught.value.retry_after == 30


@responses.activate
def test_a_timeout_on_submit_is_ambiguous_but_not_on_creation() -> None:
    _submission_endpoints()
    responses.post(f"{LREQ}/sendings/{SENDING}/submit", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(ProviderError) as caught:
        provider().submit(make_letter())
    assert (caught.value.ambiguous, caught.value.permanent) == (True, False)

    responses.reset()
    token_endpoint()
    responses.post(f"{LREQ}/sendings", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(ProviderError) as caught:
        provider().submit(make_letter())
    assert caught.value.ambiguous is False


@responses.activate
def test_the_lookup_adopts_a_submitted_sending_and_ignores_drafts() -> None:
    token_endpoint()
    responses.get(
        f"{LREQ}/sendings",
        json=load_fixture("maileva", "sendings_list.json"),
        match=[matchers.query_param_matcher({"custom_id": "let_5b7e0c6a2f0d4b7c9a1e3f5d7b9c1e3f"}, strict_match=False)],
    )
    assert provider().find_by_reference("let_5b7e0c6a2f0d4b7c9a1e3f5d7b9c1e3f") == SENDING


@responses.activate
def test_the_lookup_finds_nothing_when_only_a_draft_exists() -> None:
    token_endpoint()
    listing = load_fixture("maileva", "sendings_list.json")
    listing["sendings"] = [s for s in listing["sendings"] if s["status"] == "DRAFT"]
    responses.get(f"{LREQ}/sendings", json=listing)
    assert provider().find_by_reference("let_5b7e0c6a2f0d4b7c9a1e3f5d7b9c1e3f") is None


# --- States and proofs ---------------------------------------------------------------------

RECIPIENT_PATH = f"/electronic_qualified_registered_mail/v1/sendings/{SENDING}/recipients/{RECIPIENT}"
DEPOSIT_URL = f"{RECIPIENT_PATH}/download_deposit_proof"
DELIVERY_URL = f"{RECIPIENT_PATH}/download_delivery_proof"

STATE_CASES = [
    ("pending", [], False),
    ("processed", [LetterStatus.DEPOSITED], False),
    ("to_update", [LetterStatus.DEPOSITED], False),
    ("accepted", [LetterStatus.DEPOSITED, LetterStatus.ACCEPTED], True),
    ("accepted_proof_pending", [LetterStatus.DEPOSITED], False),
    ("refused", [LetterStatus.DEPOSITED, LetterStatus.REFUSED], True),
    ("not_claimed", [LetterStatus.DEPOSITED, LetterStatus.NEGLECTED], True),
    ("error", [LetterStatus.DEPOSITED, LetterStatus.BOUNCED], True),
    ("rejected", [LetterStatus.FAILED], True),
    ("canceled", [LetterStatus.FAILED], True),
    ("future_status", ["unknown"], False),
]


@pytest.mark.parametrize(("fixture", "statuses", "final"), STATE_CASES)
@responses.activate
def test_every_recipient_status_is_mapped(fixture: str, statuses: list[Any], final: bool) -> None:
    token_endpoint()
    responses.get(f"{LREQ}/sendings/{SENDING}/recipients", json=load_fixture("maileva", f"recipients_{fixture}.json"))
    state = provider().fetch_state(SENDING)
    assert [e.status for e in state.events] == statuses
    assert state.final is final
    ids = [e.provider_event_id for e in state.events]
    assert len(set(ids)) == len(ids) and all(i.startswith(f"{SENDING}:") for i in ids)


@responses.activate
def test_deposit_and_delivery_events_carry_their_proofs_and_dates() -> None:
    token_endpoint()
    responses.get(f"{LREQ}/sendings/{SENDING}/recipients", json=load_fixture("maileva", "recipients_refused.json"))
    deposited, refused = provider().fetch_state(SENDING).events
    assert deposited.proof == ProofRef(kind="deposit", url=DEPOSIT_URL, filename=f"maileva-{SENDING}-deposit.pdf")
    assert deposited.occurred_at == datetime(2026, 11, 27, 8, 1, 12, tzinfo=UTC)
    assert refused.proof is not None and (refused.proof.kind, refused.proof.url) == ("refusal", DELIVERY_URL)
    assert refused.occurred_at == datetime(2026, 11, 30, 9, 5, 44, tzinfo=UTC)


@responses.activate
def test_it_downloads_both_proofs_byte_exact_with_the_token() -> None:
    token_endpoint()
    responses.get(
        f"{API}{DEPOSIT_URL}",
        body=PDF,
        content_type="application/pdf",
        match=[matchers.header_matcher(BEARER_1)],
    )
    responses.get(f"{API}{DELIVERY_URL}", body=PDF + b"2", content_type="application/pdf")
    assert proof_bytes(provider().download_proof(ProofRef(kind="deposit", url=DEPOSIT_URL))) == PDF
    assert proof_bytes(provider().download_proof(ProofRef(kind="acceptance", url=DELIVERY_URL))) == PDF + b"2"


@responses.activate
def test_a_proof_read_after_the_token_is_renewed_holds_the_pdf_alone() -> None:
    token_endpoint()
    responses.get(f"{API}{DEPOSIT_URL}", json={"errors": [{"code": "UNAUTHORIZED"}]}, status=401)
    responses.get(f"{API}{DEPOSIT_URL}", body=PDF, content_type="application/pdf")
    downloaded = provider().download_proof(ProofRef(kind="deposit", url=DEPOSIT_URL))
    assert (downloaded.size, downloaded.sha256) == (len(PDF), hashlib.sha256(PDF).hexdigest())
    assert proof_bytes(downloaded) == PDF
    assert sum(1 for c in responses.calls if c.request.url == AUTH) == 2


@responses.activate
def test_a_proof_not_ready_is_retried_later() -> None:
    token_endpoint()
    responses.get(f"{API}{DEPOSIT_URL}", json={"errors": [{"code": "NOT_FOUND", "message": "absent"}]}, status=404)
    with pytest.raises(ProviderError) as caught:
        provider().download_proof(ProofRef(kind="deposit", url=DEPOSIT_URL))
    assert (caught.value.code, caught.value.permanent) == ("proof_unavailable", False)


def test_maileva_has_no_callbacks() -> None:
    with pytest.raises(WebhookRejected):
        provider().parse_callback({}, {}, b"{}")


@responses.activate
def test_the_account_check_reads_the_sender() -> None:
    token_endpoint()
    responses.get(
        f"{API}/electronic_mail_emitter/v1/senders/{SENDER}",
        json={
            "id": SENDER,
            "first_name": "Claire",
            "last_name": "Dupont",
            "email": "c@dupont.example",
            "status": "VALIDATING",
            "email_validated": False,
            "has_certificate": False,
        },
    )
    result = provider().check_account()
    assert result["ok"] is False and result["identity_verified"] is None
    assert "verification link" in result["next_steps"][0]
    assert result["sender"] == {"id": SENDER, "name": "Claire Dupont", "email": "c@dupont.example"}
    # What the account API answers with it is the published ProviderCheck shape (closed).
    assert ProviderCheck.dump(object="provider_check", provider="maileva", **result) == {
        "object": "provider_check", "provider": "maileva", **result}


def test_it_refuses_to_submit_once_the_senders_hour_has_passed() -> None:
    letter = make_letter(submit_context={"sender_authenticated_until": "2026-11-27T07:59:00+00:00"})
    with pytest.raises(ProviderError) as caught:
        provider().submit(letter)
    assert (caught.value.code, caught.value.field, caught.value.permanent) == ("sender_otp_expired", "sender_otp", True)
