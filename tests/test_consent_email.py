"""Invitations e-mailed through the bridge's SMTP server (a loopback aiosmtpd), and without one."""

from __future__ import annotations

import email
import socket
from email import policy
from typing import Any

import pytest

from tests.consent_helpers import invite, path_of


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    """What the loopback SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp(settings_overrides: dict[str, Any]):  # type: ignore[no-untyped-def]
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings_overrides.update({"alert_smtp_host": "127.0.0.1", "alert_smtp_port": port,
                               "consent_email_from": "consentement@cabinet-durand.fr"})
    yield inbox
    controller.stop()


def test_with_smtp_the_bridge_emails_the_link(smtp, client, auth, drain):
    invitation = invite(client, auth)
    drain()
    (message,) = smtp.messages
    assert message["To"] == "Jeanne Martin <jeanne.martin@exemple.fr>"
    assert message["From"] == "Cabinet Durand <consentement@cabinet-durand.fr>"
    assert "Cabinet Durand" in message["Subject"]
    body = message.get_content()
    assert invitation["url"] in body and "Pour vos prochains avis d'échéance." in body
    assert client.get(f"/v1/consents/invitations/{invitation['id']}", headers=auth).get_json()["emailed"] is True
    assert client.get(path_of(invitation["url"])).status_code == 200
    drain()
    assert len(smtp.messages) == 1, "sent once"


@pytest.fixture
def dead_smtp(settings_overrides: dict[str, Any]) -> None:
    settings_overrides.update({"alert_smtp_host": "127.0.0.1", "alert_smtp_port": _free_port()})


def test_an_unreachable_smtp_server_is_retried_and_the_link_still_works(dead_smtp, client, auth, drain, services):
    invitation = invite(client, auth)
    drain()
    from sqlalchemy import select

    from connector.consent.models import ConsentInvitation
    from connector.models import Job

    with services.db.transaction() as session:
        job = session.scalar(select(Job).where(Job.kind == "send_consent_invitation"))
        row = session.get(ConsentInvitation, invitation["id"])
        assert job.status == "pending" and job.attempts == 1 and "SMTP" in (job.last_error or "")
        assert row.email_error and row.email_sent_at is None
    assert client.get(path_of(invitation["url"])).status_code == 200


def test_without_smtp_nothing_is_emailed_and_the_event_carries_the_link(client, auth, drain, services):
    invitation = invite(client, auth)
    drain()
    from sqlalchemy import select

    from connector.models import Job

    with services.db.transaction() as session:
        assert session.scalar(select(Job).where(Job.kind == "send_consent_invitation")) is None
    (event,) = client.get("/v1/events?type=consent.invited", headers=auth).get_json()["data"]
    assert event["data"]["url"] == invitation["url"] and event["data"]["emailed"] is False
