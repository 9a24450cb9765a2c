"""The hosted consent page in a real browser (Playwright driving Debian's Chromium).

The bridge runs on a loopback server; the person opens their link, answers, and the test reads the
outcome through the API. Screenshots go to the test's temporary directory, and to
``$LRE_CONSENT_SCREENSHOTS`` when set (``docs/`` holds the ones made that way).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from connector.delivery import outbox
from tests.browser_support import launched_chromium, served
from tests.consent_helpers import INDIVIDUAL, invite, letter_to, path_of

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launched_chromium()


@pytest.fixture
def live(app: Any) -> Iterator[str]:
    """The bridge on a loopback port, sharing the test's database and clock."""
    yield from served(app)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, locale="fr-FR")
    yield context.new_page()
    context.close()


@pytest.fixture
def shoot(tmp_path: Path):  # type: ignore[no-untyped-def]
    targets = [tmp_path] + ([Path(os.environ["LRE_CONSENT_SCREENSHOTS"])]
                            if os.environ.get("LRE_CONSENT_SCREENSHOTS") else [])

    def take(page: Any, name: str) -> None:
        for target in targets:
            target.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(target / f"consent-{name}.png"), full_page=True)

    return take


def link(live: str, invitation: dict[str, Any]) -> str:
    return live + path_of(invitation["url"])


def status_of(client: Any, auth: dict[str, str], letter_id: str) -> dict[str, Any]:
    return dict(client.get(f"/v1/letters/{letter_id}", headers=auth).get_json())


def held_letter(client: Any, auth: dict[str, str]) -> str:
    created = client.post("/v1/letters", json=letter_to(INDIVIDUAL, hold_until_consent=True), headers=auth)
    assert created.status_code == 201, created.get_json()
    return str(created.get_json()["id"])


def test_accepting_in_the_browser_sends_the_held_letter_and_the_register_shows_the_proof(
        client, auth, services, live, page, shoot):
    invitation = invite(client, auth)
    letter_id = held_letter(client, auth)
    outbox.drain(services)
    assert status_of(client, auth, letter_id)["status"] == "queued"

    page.goto(link(live, invitation))
    assert page.locator("html").get_attribute("lang") == "fr"
    expect(page.get_by_role("heading", level=1)).to_have_text("Cabinet Durand vous demande votre accord")
    assert "Pour vos prochains avis d'échéance." in page.inner_text("main")
    assert "retirer ce consentement à tout moment" in page.inner_text("#consent-text")
    shoot(page, "request-fr")
    shown = page.inner_text("#consent-text")
    page.get_by_role("button", name="J'accepte de recevoir des lettres recommandées électroniques").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Merci, votre accord est enregistré")
    shoot(page, "accepted-fr")

    outbox.drain(services)
    assert status_of(client, auth, letter_id)["status"] == "accepted"
    answered = client.get(f"/v1/consents/invitations/{invitation['id']}", headers=auth).get_json()
    register = client.get(f"/v1/consents/{answered['consent_id']}", headers=auth).get_json()
    proof = register["invitation"]["proof"]
    assert register["status"] == "active" and register["proof"]["sha256"] == proof["certificate"]["sha256"]
    assert proof["ip_address"] == "127.0.0.1" and "HeadlessChrome" in proof["user_agent"]
    assert proof["text_version"] == "2026-12-01" and proof["text_language"] == "fr"
    assert " ".join(proof["text"].split()) == " ".join(shown.split()), "the register keeps the text shown"
    assert {"kind": "consent", "sha256": proof["certificate"]["sha256"]} in [
        {"kind": p["kind"], "sha256": p["sha256"]} for p in status_of(client, auth, letter_id)["proofs"]]


def test_refusing_in_the_browser_fails_the_held_letter_with_consent_refused(client, auth, services, live, page,
                                                                            shoot):
    invitation = invite(client, auth, language="en")
    letter_id = held_letter(client, auth)
    page.goto(link(live, invitation))
    assert page.locator("html").get_attribute("lang") == "en"
    shoot(page, "request-en")
    page.get_by_role("button", name="I refuse").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your refusal is recorded")
    outbox.drain(services)
    letter = status_of(client, auth, letter_id)
    assert letter["status"] == "failed" and letter["failure"]["code"] == "consent_refused"


def test_the_language_link_switches_the_page_to_english_and_back(client, auth, live, page):
    invitation = invite(client, auth)
    page.goto(link(live, invitation))
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cabinet Durand asks for your agreement")
    page.get_by_role("link", name="Français").click()
    assert page.locator("html").get_attribute("lang") == "fr"


def test_an_expired_link_is_refused(client, auth, services, live, page, shoot):
    invitation = invite(client, auth, expires_in_days=3)
    letter_id = held_letter(client, auth)
    start = services.clock()
    services.clock = lambda: start + timedelta(days=3, minutes=1)
    response = page.goto(link(live, invitation))
    assert response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text("Ce lien a expiré")
    assert page.get_by_role("button").count() == 0
    shoot(page, "expired-fr")
    outbox.drain(services)
    assert status_of(client, auth, letter_id)["failure"]["code"] == "consent_expired"


def test_a_reused_link_is_refused(client, auth, live, page, shoot):
    invitation = invite(client, auth)
    page.goto(link(live, invitation))
    page.get_by_role("button", name="Je refuse").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Votre refus est enregistré")
    page.go_back()  # the form again, from the browser's history
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ce lien a déjà été utilisé")
    response = page.goto(link(live, invitation))
    assert response.status == 409
    assert page.get_by_role("button").count() == 0  # a refusal cannot be withdrawn: nothing to press
    shoot(page, "reused-fr")
    assert client.get(f"/v1/consents/invitations/{invitation['id']}", headers=auth).get_json()["status"] == "refused"


def test_a_link_with_one_character_changed_is_refused(client, auth, live, page, shoot):
    invitation = invite(client, auth)
    url = link(live, invitation)
    last = url[-1]
    response = page.goto(url[:-1] + ("A" if last != "A" else "B"))
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Ce lien n'est pas valide")
    shoot(page, "invalid-fr")
    assert client.get(f"/v1/consents/invitations/{invitation['id']}", headers=auth).get_json()["status"] == "pending"


def test_withdrawing_from_the_same_page_blocks_the_next_send(client, auth, services, live, page, shoot):
    invitation = invite(client, auth)
    page.goto(link(live, invitation))
    page.get_by_role("button", name="J'accepte de recevoir des lettres recommandées électroniques").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Merci, votre accord est enregistré")
    assert client.post("/v1/letters", json=letter_to(INDIVIDUAL), headers=auth).status_code == 201
    page.goto(link(live, invitation))  # later, the same link
    shoot(page, "withdraw-fr")
    page.get_by_role("button", name="Je retire mon accord").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Votre accord est retiré")
    shoot(page, "withdrawn-fr")
    refused = client.post("/v1/letters", json=letter_to(INDIVIDUAL), headers=auth)
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "consent_required"
    register = client.get(f"/v1/consents?email={INDIVIDUAL['email']}", headers=auth).get_json()["data"]
    assert register[0]["status"] == "revoked"


def test_the_page_fits_a_phone_and_every_control_is_reachable_by_keyboard(client, auth, live, page):
    invitation = invite(client, auth)
    page.goto(link(live, invitation))
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "no horizontal scrolling on a phone"
    for button in page.get_by_role("button").all():
        box = button.bounding_box()
        assert box is not None and box["height"] >= 44, "touch targets of at least 44 px"
    focused = []
    for _ in range(5):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert "J'accepte de recevoir des lettres recommandées électroniques" in focused and "Je refuse" in focused
