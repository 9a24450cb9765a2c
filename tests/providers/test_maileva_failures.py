"""Maileva, as its LREQ specification behaves: why a letter failed, and no draft left behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses

from connector.providers.maileva import clear_token_cache
from connector.services import Services
from tests.helpers import letter_payload
from tests.providers import maileva_fake

RECIPIENT = {"type": "professional", "email": "compta@exemple.fr", "company": "Exemple SARL",
             "first_name": "Paul", "last_name": "Durand"}


@pytest.fixture
def maileva(services: Services) -> Iterator[maileva_fake.MailevaFake]:
    clear_token_cache()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield maileva_fake.MailevaFake(mock)
    clear_token_cache()


@pytest.fixture
def on_maileva(client: Any, auth: dict[str, str], services: Services, maileva: maileva_fake.MailevaFake) -> list:
    offset = [timedelta()]
    services.clock = lambda: datetime.now(UTC) + offset[0]
    stored = client.put("/v1/account/provider", json={"provider": "maileva", "settings": maileva_fake.SETTINGS},
                        headers=auth)
    assert stored.status_code == 200, stored.json
    return offset


def _run_jobs(drain: Callable[[], int], offset: list, times: int = 6) -> None:
    for _ in range(times):  # retries and polls are due a little later each time
        drain()
        offset[0] += timedelta(minutes=10)


def test_a_rejected_letter_says_why_from_the_status_detail(client, auth, maileva, on_maileva, drain):
    maileva.reject_with = "INVALID_DATA"
    letter = client.post("/v1/letters", json=letter_payload(recipient=RECIPIENT), headers=auth).json
    _run_jobs(drain, on_maileva)
    shown = client.get(f"/v1/letters/{letter['id']}", headers=auth).json
    assert shown["status"] == "failed"
    assert shown["failure"]["code"] == "maileva_invalid_data"
    assert "INVALID_DATA" in shown["failure"]["message"] and "Maileva" in shown["failure"]["message"]


def test_a_submit_that_fails_then_succeeds_leaves_one_sending_and_no_draft(client, auth, maileva, on_maileva,
                                                                           drain):
    maileva.submit_failures = [503]
    letter = client.post("/v1/letters", json=letter_payload(recipient=RECIPIENT), headers=auth).json
    _run_jobs(drain, on_maileva)
    assert len(maileva.submissions) == 1 and len(maileva.deleted) == 1
    assert [s["status"] for s in maileva.sendings.values()] == ["ACCEPTED"]  # no DRAFT left to send by hand
    assert client.get(f"/v1/letters/{letter['id']}", headers=auth).json["provider_letter_id"] == maileva.submissions[0]


def test_a_submit_refused_for_good_deletes_its_draft(client, auth, maileva, on_maileva, drain):
    maileva.submit_failures = [403]
    letter = client.post("/v1/letters", json=letter_payload(recipient=RECIPIENT), headers=auth).json
    _run_jobs(drain, on_maileva)
    assert maileva.sendings == {} and len(maileva.deleted) == 1 and maileva.submissions == []
    shown = client.get(f"/v1/letters/{letter['id']}", headers=auth).json
    assert shown["status"] == "failed" and shown["failure"]["code"]
