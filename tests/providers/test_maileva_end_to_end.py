"""End to end through the HTTP API with an account on Maileva LREQ (stateful Maileva fake):
POST /v1/letters → submitted (4 steps) → deposited → accepted by polling, proofs kept."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses

from connector.providers.maileva import clear_token_cache
from connector.services import Services
from tests.helpers import letter_payload
from tests.providers import maileva_fake


@pytest.fixture
def maileva(services: Services) -> Iterator[maileva_fake.MailevaFake]:
    clear_token_cache()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield maileva_fake.MailevaFake(mock)
    clear_token_cache()


def test_a_letter_goes_from_the_api_to_accepted_at_maileva(
    client: Any,
    auth: dict[str, str],
    services: Services,
    maileva: maileva_fake.MailevaFake,
    drain: Callable[[], int],
) -> None:
    offset = [timedelta()]
    services.clock = lambda: datetime.now(UTC) + offset[0]
    stored = client.put(
        "/v1/account/provider", json={"provider": "maileva", "settings": maileva_fake.SETTINGS}, headers=auth
    )
    assert stored.status_code == 200, stored.json
    recipient = {
        "type": "professional",
        "email": "compta@exemple.fr",
        "company": "Exemple SARL",
        "first_name": "Paul",
        "last_name": "Durand",
    }
    created = client.post("/v1/letters", json=letter_payload(recipient=recipient), headers=auth).json

    drain()
    (sending_id,) = maileva.submissions
    assert maileva.sendings[sending_id]["custom_id"] == created["id"]

    offset[0] += timedelta(minutes=2)
    drain()
    assert client.get(f"/v1/letters/{created['id']}", headers=auth).json["status"] == "deposited"

    maileva.complete(sending_id, "ACCEPTED")
    offset[0] += timedelta(minutes=2)
    drain()
    final = client.get(f"/v1/letters/{created['id']}", headers=auth).json
    assert final["status"] == "accepted" and final["provider_letter_id"] == sending_id
    assert {p["kind"]: p["sha256"] for p in final["proofs"]} == {
        "deposit": hashlib.sha256(maileva_fake.proof_pdf("deposit", sending_id)).hexdigest(),
        "acceptance": hashlib.sha256(maileva_fake.proof_pdf("delivery", sending_id)).hexdigest(),
    }


def test_a_letter_maileva_would_reject_is_refused_at_once_and_nothing_is_stored(
    client: Any, auth: dict[str, str], services: Services, maileva: maileva_fake.MailevaFake
) -> None:
    from sqlalchemy import func, select

    from connector.models import Letter

    client.put("/v1/account/provider", json={"provider": "maileva", "settings": maileva_fake.SETTINGS}, headers=auth)
    company_only = {"type": "professional", "email": "compta@exemple.fr", "company": "Exemple SARL"}
    response = client.post("/v1/letters", json=letter_payload(recipient=company_only), headers=auth)
    assert response.status_code == 422
    assert response.json["error"]["field"] == "recipient.first_name"
    assert "Maileva" in response.json["error"]["message"]
    with services.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Letter)) == 0
    assert maileva.submissions == []
