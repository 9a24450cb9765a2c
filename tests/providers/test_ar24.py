"""AR24 adapter: signing, OTP exchange, submission, states, proofs, errors, callbacks, lookups."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses

from connector.providers.ar24 import (
    ERRORS,
    AR24Provider,
    decrypt_response,
    encrypt_response,
    paris_date,
    parse_paris_date,
    sign_date,
)
from connector.providers.ar24.protocol import ERROR_BODY_BYTES
from connector.providers.base import LetterStatus, ProofRef, ProviderError, WebhookRejected
from tests.ar24_server import request_fields
from tests.providers.conftest import PDF, fixture_bytes, load_fixture, make_context, make_letter, proof_bytes

BASE = "https://sandbox.ar24.fr/api"
PRIVATE_KEY = "7X9gx9E3Qx4EiUdB63nc"
TOKEN = "tok_test_5d1c"
SETTINGS = {"base_url": BASE, "token": TOKEN, "private_key": PRIVATE_KEY, "user_id": "7731"}
DATE = "2026-11-27 09:00:00"  # conftest.NOW in Paris
OTP_CONTEXT = {"auth_otp_hash": "b1946ac9", "auth_otp_expires_at": "2026-11-27T09:00:00+00:00"}


def provider(**settings: Any) -> AR24Provider:
    return AR24Provider(make_context({**SETTINGS, **settings}))


def answer(payload: dict[str, Any], seen: list[dict[str, Any]] | None = None) -> Any:
    """A `responses` callback behaving like AR24: checks token, date and signature, encrypts
    successful answers with the request's date, sends errors in clear JSON."""

    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        fields, files = request_fields(request.method or "", request.url or "", request.headers, request.body)
        assert fields.pop("token") == TOKEN
        assert fields.pop("date") == DATE
        assert request.headers["signature"] == sign_date(PRIVATE_KEY, DATE)
        if seen is not None:
            seen.append({**fields, "_files": {k: (f.filename, f.read()) for k, f in files.items()}})
        if str(payload.get("status")).upper() == "SUCCESS":
            return 200, {}, encrypt_response(PRIVATE_KEY, DATE, json.dumps(payload).encode())
        return 200, {"Content-Type": "application/json"}, json.dumps(payload)

    return callback


# --- Signing ---------------------------------------------------------------------------------


def test_it_signs_the_documentation_test_vector() -> None:
    assert sign_date("7X9gx9E3Qx4EiUdB63nc", "2021-05-26 14:00:00") == "bDop0cbjKpkySlpvnNGvBMg7PuYFFgPPqTTS2RAHoY0="


def test_it_decrypts_the_documentation_ciphertext() -> None:
    plaintext = decrypt_response(
        "7X9gx9E3Qx4EiUdB63nc", "2021-05-26 14:00:00", "WwBOU6s8DaMWmYdctBJwfuoujFgVygBUjhsbdf8eWqQ="
    )
    assert plaintext == b'{status: "SUCCESS"}'


def test_a_response_encrypted_for_one_date_does_not_open_with_another() -> None:
    body = encrypt_response(PRIVATE_KEY, DATE, b'{"status":"SUCCESS","result":{}}')
    assert decrypt_response(PRIVATE_KEY, DATE, body) == b'{"status":"SUCCESS","result":{}}'
    with pytest.raises(ValueError):
        decrypt_response(PRIVATE_KEY, "2026-11-27 09:00:01", body)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC), "2026-11-27 09:00:00"),  # winter: UTC+1
        (datetime(2026, 7, 14, 8, 0, 0, tzinfo=UTC), "2026-07-14 10:00:00"),  # summer: UTC+2
    ],
)
def test_it_dates_requests_in_paris_time(moment: datetime, expected: str) -> None:
    assert paris_date(moment) == expected


def test_it_reads_ar24_dates_as_paris_time() -> None:
    assert parse_paris_date("2026-07-14 10:00:00") == datetime(2026, 7, 14, 8, 0, 0, tzinfo=UTC)
    assert parse_paris_date("") is None


@responses.activate
def test_it_signs_get_requests_in_the_query_string() -> None:
    responses.add_callback(responses.GET, f"{BASE}/mail", callback=answer(load_fixture("ar24", "mail_waiting.json")))
    provider().fetch_state("48213")
    sent = responses.calls[0].request
    assert "token=tok_test_5d1c" in sent.url and "date=2026-11-27+09%3A00%3A00" in sent.url
    assert "id=48213" in sent.url
    assert sent.body is None


# --- Sender identification (eIDAS OTP) ------------------------------------------------------


@responses.activate
def test_it_exchanges_the_senders_otp_for_the_one_hour_hash() -> None:
    seen: list[dict[str, Any]] = []
    responses.add_callback(
        responses.POST, f"{BASE}/user/auth_otp", callback=answer(load_fixture("ar24", "auth_otp.json"), seen)
    )
    context = provider().prepare_submission("123456")
    assert seen[0]["id_user"] == "7731" and seen[0]["otp"] == "123456"
    assert context == {
        "auth_otp_hash": "b1946ac92492d2347c6235b4d2611184e0c4f4c9a2b1f06f1e8d6f2a9c0b7e3d",
        "auth_otp_expires_at": "2026-11-27T09:00:00+00:00",
    }
    assert "123456" not in json.dumps(context)


@pytest.mark.parametrize(
    ("otp", "code"),
    [
        (None, "sender_otp_required"),
        ("", "sender_otp_required"),
        ("12345", "sender_otp_invalid"),
        ("abcdef", "sender_otp_invalid"),
    ],
)
@responses.activate
def test_it_refuses_a_missing_or_malformed_otp_without_calling_ar24(otp: str | None, code: str) -> None:
    with pytest.raises(ProviderError) as caught:
        provider().prepare_submission(otp)
    assert (caught.value.code, caught.value.field, caught.value.permanent) == (code, "sender_otp", True)
    assert "6-digit" in caught.value.message
    assert len(responses.calls) == 0


@responses.activate
def test_it_reports_an_otp_ar24_refuses_on_the_sender_otp_field() -> None:
    responses.add_callback(
        responses.POST,
        f"{BASE}/user/auth_otp",
        callback=answer({"status": "ERROR", "slug": "authentication_otp_invalid", "message": "Invalid otp code"}),
    )
    with pytest.raises(ProviderError) as caught:
        provider().prepare_submission("654321")
    assert (caught.value.code, caught.value.field, caught.value.permanent) == (
        "sender_otp_invalid",
        "sender_otp",
        True,
    )


def test_it_refuses_to_submit_without_the_senders_identification(letter: Any) -> None:
    with pytest.raises(ProviderError) as caught:
        provider().submit(letter)
    assert (caught.value.code, caught.value.field, caught.value.permanent) == (
        "sender_otp_required",
        "sender_otp",
        True,
    )


def test_it_refuses_to_submit_once_the_identification_has_expired() -> None:
    expired = {"auth_otp_hash": "b1946ac9", "auth_otp_expires_at": "2026-11-27T07:59:59+00:00"}
    with pytest.raises(ProviderError) as caught:
        provider().submit(make_letter(submit_context=expired))
    assert (caught.value.code, caught.value.permanent) == ("sender_otp_expired", True)


# --- Submission ------------------------------------------------------------------------------


@responses.activate
def test_it_uploads_the_documents_then_sends_the_eidas_mail() -> None:
    uploads: list[dict[str, Any]] = []
    sends: list[dict[str, Any]] = []
    responses.add_callback(
        responses.POST,
        f"{BASE}/attachment",
        callback=answer(load_fixture("ar24", "attachment.json"), uploads),
    )
    responses.add_callback(
        responses.POST, f"{BASE}/mail", callback=answer(load_fixture("ar24", "mail_waiting.json"), sends)
    )
    letter = make_letter(submit_context=OTP_CONTEXT)

    result = provider().submit(letter)

    assert result.provider_letter_id == "48213"
    assert result.events == ()
    assert uploads[0]["id_user"] == "7731" and uploads[0]["file_name"] == "mise-en-demeure.pdf"
    assert uploads[0]["_files"]["file"] == ("mise-en-demeure.pdf", PDF)
    assert sends[0] == {
        "id_user": "7731",
        "to_email": "jeanne.martin@example.org",
        "to_firstname": "Jeanne",
        "to_lastname": "Martin",
        "dest_statut": "particulier",
        "content": letter.message,
        "attachment[0]": "90211",
        "ref_client": letter.id,
        "ref_dossier": "BAIL-2026-114",
        "eidas": "1",
        "auth_otp_hash": "b1946ac9",
        "webhook": "https://bridge.example/callbacks/ar24/cbt_secret",
        "_files": {},
    }


@responses.activate
def test_a_professional_recipient_is_sent_as_professionnel_with_the_company() -> None:
    from connector.providers.base import Recipient

    sends: list[dict[str, Any]] = []
    responses.add_callback(
        responses.POST, f"{BASE}/attachment", callback=answer(load_fixture("ar24", "attachment.json"))
    )
    responses.add_callback(
        responses.POST, f"{BASE}/mail", callback=answer(load_fixture("ar24", "mail_waiting.json"), sends)
    )
    recipient = Recipient(type="professional", email="compta@acme.example", company="ACME SAS", last_name="Durand")
    provider().submit(make_letter(recipient=recipient, submit_context=OTP_CONTEXT, message=None))
    assert sends[0]["dest_statut"] == "professionnel" and sends[0]["to_company"] == "ACME SAS"
    assert "content" not in sends[0] and "to_firstname" not in sends[0]


# --- States and proofs ---------------------------------------------------------------------

STATE_CASES = [
    ("mail_waiting.json", [], False),
    ("mail_deposited.json", [LetterStatus.DEPOSITED], False),
    ("mail_accepted.json", [LetterStatus.DEPOSITED, LetterStatus.ACCEPTED], True),
    ("mail_refused.json", [LetterStatus.DEPOSITED, LetterStatus.REFUSED], True),
    ("mail_neglected.json", [LetterStatus.DEPOSITED, LetterStatus.NEGLECTED], True),
    ("mail_bounced.json", [LetterStatus.DEPOSITED, LetterStatus.BOUNCED], True),
    # The acceptance date is set but its proof is not generated yet: wait for it.
    ("mail_accepted_proof_pending.json", [LetterStatus.DEPOSITED], False),
]


@pytest.mark.parametrize(("fixture", "statuses", "final"), STATE_CASES)
@responses.activate
def test_it_derives_the_state_from_the_date_and_proof_fields(
    fixture: str, statuses: list[LetterStatus], final: bool
) -> None:
    responses.add_callback(responses.GET, f"{BASE}/mail", callback=answer(load_fixture("ar24", fixture)))
    state = provider().fetch_state("48213")
    assert [e.status for e in state.events] == statuses
    assert state.final is final
    assert [e.provider_event_id for e in state.events] == [f"48213:{s.value}" for s in statuses]
    for event in state.events:
        assert (
            event.proof is not None
            and event.proof.url
            and event.proof.url.startswith("https://sandbox.ar24.fr/get/proof/")
        )


@responses.activate
def test_each_step_carries_its_proof_and_its_paris_date() -> None:
    responses.add_callback(responses.GET, f"{BASE}/mail", callback=answer(load_fixture("ar24", "mail_accepted.json")))
    deposited, accepted = provider().fetch_state("48213").events
    assert deposited.occurred_at == datetime(2026, 11, 27, 8, 1, 12, tzinfo=UTC)
    assert deposited.proof == ProofRef(
        kind="deposit",
        url="https://sandbox.ar24.fr/get/proof/ev-48213?token=c0ffee",
        filename="ar24-48213-ev.pdf",
    )
    assert accepted.occurred_at == datetime(2026, 11, 29, 17, 22, 5, tzinfo=UTC)
    assert accepted.proof is not None and accepted.proof.kind == "acceptance"


@responses.activate
def test_rereading_a_mail_gives_the_same_event_ids() -> None:
    responses.add_callback(responses.GET, f"{BASE}/mail", callback=answer(load_fixture("ar24", "mail_accepted.json")))
    first = provider().fetch_state("48213")
    second = provider().fetch_state("48213")
    assert [e.provider_event_id for e in first.events] == [e.provider_event_id for e in second.events]


@responses.activate
def test_it_downloads_a_proof_byte_exact() -> None:
    url = "https://sandbox.ar24.fr/get/proof/ar-48213?token=c0ffee"
    responses.get(url, body=PDF, content_type="application/pdf")
    assert proof_bytes(provider().download_proof(ProofRef(kind="acceptance", url=url))) == PDF


@responses.activate
def test_it_retries_later_when_the_proof_is_not_a_pdf_yet() -> None:
    url = "https://sandbox.ar24.fr/get/proof/ar-48213?token=c0ffee"
    responses.get(url, body="<html>generating</html>", content_type="text/html")
    with pytest.raises(ProviderError) as caught:
        provider().download_proof(ProofRef(kind="acceptance", url=url))
    assert (caught.value.code, caught.value.permanent) == ("proof_unavailable", False)


@responses.activate
@pytest.mark.parametrize("status", [200, 503])
def test_ar24s_json_answer_to_a_proof_link_is_read_as_its_error(status: int) -> None:
    # AR24 answers its errors with HTTP 200: the body then went to the proof's file, not to memory.
    url = "https://sandbox.ar24.fr/get/proof/ar-48213?token=c0ffee"
    responses.get(url, body=fixture_bytes("ar24", "maintenance.json"), content_type="application/json", status=status)
    with pytest.raises(ProviderError) as caught:
        provider().download_proof(ProofRef(kind="acceptance", url=url))
    assert (caught.value.code, caught.value.permanent, caught.value.provider_code) == (
        "provider_unavailable", False, "maintenance")
    assert caught.value.retry_after and caught.value.retry_after > 0


@responses.activate
def test_a_long_non_pdf_answer_to_a_proof_link_is_retried_later_unread() -> None:
    url = "https://sandbox.ar24.fr/get/proof/ar-48213?token=c0ffee"
    # AR24's error JSON, but past the part of a non-PDF answer the adapter reads: not taken for one.
    body = json.dumps({"status": "ERROR", "slug": "invalid_email", "message": "x" * ERROR_BODY_BYTES})
    responses.get(url, body=body, content_type="application/json")
    with pytest.raises(ProviderError) as caught:
        provider().download_proof(ProofRef(kind="acceptance", url=url))
    assert (caught.value.code, caught.value.permanent) == ("proof_unavailable", False)


def test_it_refuses_a_proof_link_outside_ar24() -> None:
    with pytest.raises(ProviderError) as caught:
        provider().download_proof(ProofRef(kind="acceptance", url="https://evil.example/get/proof/ar-1"))
    assert caught.value.permanent is True


# --- Errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", sorted(ERRORS))
@responses.activate
def test_every_documented_error_slug_is_mapped(slug: str) -> None:
    responses.add_callback(
        responses.POST, f"{BASE}/attachment", callback=answer(load_fixture("ar24", "attachment.json"))
    )
    responses.add_callback(
        responses.POST,
        f"{BASE}/mail",
        callback=answer({"status": "ERROR", "slug": slug, "message": "AR24 text"}),
    )
    with pytest.raises(ProviderError) as caught:
        provider().submit(make_letter(submit_context=OTP_CONTEXT))
    rule = ERRORS[slug]
    error = caught.value
    assert (error.code, error.permanent, error.field, error.provider_code) == (
        rule.code,
        rule.permanent,
        rule.field,
        slug,
    )
    assert error.ambiguous is False  # AR24 answered: nothing was sent
    assert error.message and "AR24 text" not in error.message


@pytest.mark.parametrize(
    ("slug", "code", "permanent", "field"),
    [
        ("invalid_email", "invalid_email", True, "recipient.email"),
        ("user_no_payment", "sender_no_payment_method", True, None),
        ("attachment_too_big", "document_too_large", True, "documents"),
        ("authentication_otp_invalid", "sender_otp_invalid", True, "sender_otp"),
        ("authentication_otp_hash_invalid", "sender_otp_expired", True, "sender_otp"),
        ("token_invalid", "provider_auth_failed", True, None),
        ("date_in_future", "provider_clock_skew", False, None),
        ("unknown_error", "provider_error", False, None),
    ],
)
def test_the_retry_decision_follows_the_slug(slug: str, code: str, permanent: bool, field: str | None) -> None:
    rule = ERRORS[slug]
    assert (rule.code, rule.permanent, rule.field) == (code, permanent, field)


@responses.activate
def test_the_documented_invalid_email_answer_is_permanent_and_names_the_field() -> None:
    responses.add_callback(
        responses.POST, f"{BASE}/attachment", callback=answer(load_fixture("ar24", "attachment.json"))
    )
    responses.add_callback(
        responses.POST, f"{BASE}/mail", callback=answer(load_fixture("ar24", "error_invalid_email.json"))
    )
    with pytest.raises(ProviderError) as caught:
        provider().submit(make_letter(submit_context=OTP_CONTEXT))
    assert (caught.value.code, caught.value.field, caught.value.permanent) == (
        "invalid_email",
        "recipient.email",
        True,
    )


@responses.activate
def test_an_error_sent_with_an_http_error_status_is_still_read_by_its_slug() -> None:
    responses.get(f"{BASE}/mail", json={"status": "ERROR", "slug": "user_unavailable", "message": "x"}, status=403)
    with pytest.raises(ProviderError) as caught:
        provider().fetch_state("48213")
    assert (caught.value.code, caught.value.permanent) == ("sender_access_not_granted", True)


@responses.activate
def test_maintenance_is_transient_and_says_when_to_retry() -> None:
    responses.get(f"{BASE}/mail", body=fixture_bytes("ar24", "maintenance.json"), content_type="application/json")
    with pytest.raises(ProviderError) as caught:
        provider().fetch_state("48213")
    assert (caught.value.code, caught.value.permanent) == ("provider_unavailable", False)
    assert caught.value.retry_after and caught.value.retry_after > 0


@responses.activate
def test_an_undocumented_slug_is_kept_and_retried() -> None:
    responses.get(f"{BASE}/mail", json={"status": "ERROR", "slug": "brand_new_slug", "message": "Nouveau"})
    with pytest.raises(ProviderError) as caught:
        provider().fetch_state("48213")
    assert (caught.value.provider_code, caught.value.permanent) == ("brand_new_slug", False)
    assert "Nouveau" in caught.value.message


@responses.activate
def test_an_answer_that_does_not_decrypt_points_at_the_private_key() -> None:
    responses.get(f"{BASE}/mail", body=encrypt_response("another-key", DATE, b'{"status":"SUCCESS"}'))
    with pytest.raises(ProviderError) as caught:
        provider().fetch_state("48213")
    assert (caught.value.code, caught.value.permanent) == ("provider_auth_failed", True)
    assert "private key" in caught.value.message


@responses.activate
def test_a_server_error_page_is_transient() -> None:
    responses.get(f"{BASE}/mail", body="<html>502</html>", status=502)
    with pytest.raises(ProviderError) as caught:
        provider().fetch_state("48213")
    assert (caught.value.code, caught.value.permanent) == ("provider_unavailable", False)


# --- Timeouts and "never twice" --------------------------------------------------------------


@responses.activate
def test_a_timeout_after_sending_the_mail_is_ambiguous() -> None:
    responses.add_callback(
        responses.POST, f"{BASE}/attachment", callback=answer(load_fixture("ar24", "attachment.json"))
    )
    responses.post(f"{BASE}/mail", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(ProviderError) as caught:
        provider().submit(make_letter(submit_context=OTP_CONTEXT))
    assert (caught.value.code, caught.value.permanent, caught.value.ambiguous) == (
        "provider_timeout",
        False,
        True,
    )


@responses.activate
def test_a_connect_timeout_is_not_ambiguous() -> None:
    responses.post(f"{BASE}/attachment", body=requests.ConnectTimeout("no route"))
    with pytest.raises(ProviderError) as caught:
        provider().submit(make_letter(submit_context=OTP_CONTEXT))
    assert (caught.value.permanent, caught.value.ambiguous) == (False, False)


@responses.activate
def test_a_timeout_while_uploading_is_not_ambiguous() -> None:
    responses.post(f"{BASE}/attachment", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(ProviderError) as caught:
        provider().submit(make_letter(submit_context=OTP_CONTEXT))
    assert caught.value.ambiguous is False


@responses.activate
def test_it_finds_a_letter_by_our_reference() -> None:
    seen: list[dict[str, Any]] = []
    responses.add_callback(
        responses.GET, f"{BASE}/user/mail", callback=answer(load_fixture("ar24", "user_mail.json"), seen)
    )
    assert provider().find_by_reference("let_5b7e0c6a2f0d4b7c9a1e3f5d7b9c1e3f") == "48213"
    assert seen[0]["id_user"] == "7731" and seen[0]["sort"] == "DESC"


@responses.activate
def test_it_finds_nothing_for_a_letter_ar24_never_received() -> None:
    responses.add_callback(responses.GET, f"{BASE}/user/mail", callback=answer(load_fixture("ar24", "user_mail.json")))
    assert provider().find_by_reference("let_ffffffffffffffffffffffffffffffff") is None


@responses.activate
def test_after_an_ambiguous_timeout_the_lookup_adopts_the_mail_instead_of_sending_again() -> None:
    """The submit job's sequence: submit times out → retry looks up first → adopts, no 2nd send."""
    responses.add_callback(
        responses.POST, f"{BASE}/attachment", callback=answer(load_fixture("ar24", "attachment.json"))
    )
    responses.post(f"{BASE}/mail", body=requests.ReadTimeout("read timed out"))
    responses.add_callback(responses.GET, f"{BASE}/user/mail", callback=answer(load_fixture("ar24", "user_mail.json")))
    letter = make_letter(submit_context=OTP_CONTEXT)
    adapter = provider()

    with pytest.raises(ProviderError) as caught:
        adapter.submit(letter)
    assert caught.value.ambiguous
    found = adapter.find_by_reference(letter.id)

    assert found == "48213"
    assert sum(1 for call in responses.calls if call.request.url.endswith("/api/mail")) == 1


# --- Callbacks -------------------------------------------------------------------------------


def test_a_callback_names_the_mail_it_is_about() -> None:
    body = fixture_bytes("ar24", "callback_form.txt")
    assert provider().parse_callback({"Content-Type": "application/x-www-form-urlencoded"}, {}, body) == "48213"


def test_a_json_or_query_callback_also_names_the_mail() -> None:
    assert provider().parse_callback({}, {}, b'{"id_mail": 48213, "new_state": "AR"}') == "48213"
    assert provider().parse_callback({}, {"id_mail": "48213"}, b"") == "48213"
    assert provider().parse_callback({}, {}, b"") is None


def test_the_ip_allow_list_admits_ar24() -> None:
    adapter = provider(callback_ip_allowlist="185.183.140.195, 10.0.0.0/8")
    assert adapter.parse_callback({"X-Lre-Remote-Addr": "185.183.140.195"}, {}, b"id_mail=1") == "1"
    assert adapter.parse_callback({"x-lre-remote-addr": "10.1.2.3"}, {}, b"id_mail=1") == "1"


@pytest.mark.parametrize("headers", [{"X-Lre-Remote-Addr": "203.0.113.9"}, {}, {"X-Lre-Remote-Addr": "nonsense"}])
def test_the_ip_allow_list_rejects_anyone_else(headers: dict[str, str]) -> None:
    adapter = provider(callback_ip_allowlist="185.183.140.195")
    with pytest.raises(WebhookRejected) as caught:
        adapter.parse_callback(headers, {}, b"id_mail=48213")
    assert caught.value.status == 403


def test_it_refuses_to_call_ar24_with_incomplete_settings() -> None:
    with pytest.raises(ProviderError) as caught:
        AR24Provider(make_context({"base_url": BASE})).fetch_state("1")
    assert (caught.value.code, caught.value.permanent) == ("provider_misconfigured", True)


@responses.activate
def test_a_network_failure_does_not_carry_the_token_along() -> None:
    responses.get(
        f"{BASE}/mail",
        body=requests.ConnectionError(f"Max retries exceeded with url: /api/mail?token={TOKEN}&date=x"),
    )
    with pytest.raises(ProviderError) as caught:
        provider().fetch_state("48213")
    error = caught.value
    assert TOKEN not in str(error) and error.__cause__ is None and error.__suppress_context__


@pytest.mark.parametrize(
    "shape",
    [
        lambda mails: mails,
        lambda mails: {"mails": mails},
        lambda mails: {"mails": {str(m["id"]): m for m in mails}},
        lambda mails: {str(m["id"]): m for m in mails},
    ],
)
@responses.activate
def test_the_lookup_reads_the_mail_list_in_any_shape_ar24_may_use(shape: Any) -> None:
    listing = load_fixture("ar24", "user_mail.json")
    listing["result"] = shape(listing["result"])
    responses.add_callback(responses.GET, f"{BASE}/user/mail", callback=answer(listing))
    assert provider().find_by_reference("let_5b7e0c6a2f0d4b7c9a1e3f5d7b9c1e3f") == "48213"


@responses.activate
def test_the_lookup_stops_when_ar24_ignores_paging() -> None:
    listing = load_fixture("ar24", "user_mail.json")
    other = listing["result"][1]
    listing["result"] = [{**other, "id": 1000 + n} for n in range(3)]
    responses.add_callback(responses.GET, f"{BASE}/user/mail", callback=answer(listing))
    assert provider().find_by_reference("let_5b7e0c6a2f0d4b7c9a1e3f5d7b9c1e3f", page_size=3) is None
    assert len(responses.calls) == 2
