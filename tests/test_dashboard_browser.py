"""The dashboard in a real browser (Playwright driving Debian's Chromium, installed when missing).

The bridge runs on a loopback server sharing the test's database and clock. Screenshots go to the
test's temporary directory, and to ``$LRE_DASHBOARD_SCREENSHOTS`` when set (``docs/`` holds the
ones made that way: ``LRE_DASHBOARD_SCREENSHOTS=docs .venv/bin/pytest tests/test_dashboard_browser.py``).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.delivery import outbox
from connector.monitoring.alerts import evaluate_all
from tests.browser_support import launched_chromium, served
from tests.helpers import letter_payload, make_pdf

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launched_chromium()


@pytest.fixture
def live(app: Any) -> Iterator[str]:
    yield from served(app)


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, device_scale_factor=1, locale="fr-FR", accept_downloads=True)
    yield context
    context.close()


@pytest.fixture
def shoot(tmp_path: Path):  # type: ignore[no-untyped-def]
    targets = [tmp_path] + ([Path(os.environ["LRE_DASHBOARD_SCREENSHOTS"])]
                            if os.environ.get("LRE_DASHBOARD_SCREENSHOTS") else [])

    def take(page: Any, name: str) -> None:
        for target in targets:
            target.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(target / f"dashboard-{name}.png"), full_page=True)

    return take


def api_key(auth: dict[str, str]) -> str:
    return auth["Authorization"].removeprefix("Bearer ")


def sign_in(page: Any, live: str, auth: dict[str, str]) -> None:
    page.goto(f"{live}/dashboard/")
    assert page.url.startswith(f"{live}/dashboard/login")
    page.get_by_label("Clé d'API").fill(api_key(auth))
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{live}/dashboard/")


def send(client: Any, auth: dict[str, str], outcome: str, reference: str) -> dict[str, Any]:
    response = client.post("/v1/letters", json=letter_payload(sandbox_outcome=outcome, reference=reference),
                           headers=auth)
    assert response.status_code == 201, response.json
    return dict(response.json)


def chart_state(page: Any) -> dict[str, Any]:
    """What uPlot drew: per chart, its data arrays and whether its canvas and the page's boxes are in place."""
    page.wait_for_function("window.lreCharts && ['volume', 'delays', 'failures'].every(n => window.lreCharts[n])")
    return page.evaluate("""() => Object.fromEntries(['volume', 'delays', 'failures'].map(name => {
        const chart = window.lreCharts[name];
        const box = document.querySelector(`[data-uplot="${name}"]`);
        const canvas = box.querySelector('.uplot canvas');
        const fallback = box.closest('.chart-card').querySelector('.svg-fallback');
        return [name, {data: chart.data, labels: chart.series.map(s => s.label),
                       drawnByUplot: chart.root.parentElement === box && box.dataset.drawn === 'uplot',
                       canvas: canvas ? [canvas.width, canvas.height] : null,
                       fallbackShown: getComputedStyle(fallback).display !== 'none'}];
    }))""")


def test_sign_in_figures_alert_batch_proof_and_sign_out(client, auth, services, live, context, shoot, app):
    requests: list[str] = []
    problems: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    sign_in(page, live, auth)
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.get_by_text("Aucune alerte ouverte.").is_visible()

    # Induced sandbox failures: 1 in 4 is 25 %, over this account's minimum volume of 4.
    assert client.put("/v1/alerts/rules/technical_failure_rate", json={"min_volume": 4},
                      headers=auth).status_code == 200
    accepted = send(client, auth, "accepted", "DOSSIER-1")
    send(client, auth, "refused", "DOSSIER-2")
    send(client, auth, "bounced", "DOSSIER-3")
    send(client, auth, "failed", "DOSSIER-4")
    batch = client.post("/v1/batches", json={
        "document": {"filename": "relance.pdf", "content_base64": base64.b64encode(make_pdf("Relance")).decode()},
        "rows": [{"recipient": {"type": "professional", "email": f"client{n}@exemple.fr", "company": f"Client {n}"},
                  "sandbox_outcome": "accepted"} for n in (1, 2)],
        "reference": "RELANCES-DECEMBRE"}, headers=auth)
    assert batch.status_code == 202, batch.json
    outbox.drain(services)
    evaluate_all(services)

    page.reload()
    alert = page.locator('li.alert[data-rule="technical_failure_rate"]')
    assert alert.is_visible() and "Taux d'échec technique" in alert.inner_text()
    # Every KPI on the page is the API's figure for the same window.
    totals = client.get("/v1/kpis?preset=7d", headers=auth).json["totals"]
    figures = {"letters": totals["letters"], "deliverability": totals["deliverability"],
               "refusal-rate": totals["refusal_rate"], "failure-rate": totals["technical_failure_rate"],
               "delay-mean": totals["acceptance_delay_seconds"]["mean"]}
    for name, expected in figures.items():
        assert page.locator(f"#kpi-{name}").get_attribute("data-value") == str(expected), name
    assert totals["letters"] == 6 and totals["technical_failure_rate"] == round(1 / 6, 6)
    assert page.locator("#kpi-failure-rate").inner_text() == "16.7 %"
    assert page.locator("#kpi-letters").inner_text() == "6"
    # The batch and its progress (both letters accepted: 100 %).
    batch_row = page.locator(f'li.batch[data-batch-id="{batch.json["id"]}"]')
    assert "RELANCES-DECEMBRE" in batch_row.inner_text()
    assert batch_row.locator(".progress-figure").get_attribute("data-progress") == "1.0"
    assert batch_row.get_by_label("Avancement").get_attribute("value") == "100.0"

    # The three charts are drawn by the vendored uPlot (a canvas in each box, the SVG fallback
    # hidden), with the API's figures for the same window, day by day.
    drawn = chart_state(page)
    by_day = client.get("/v1/kpis?preset=7d&group_by=day", headers=auth).json
    for name, chart in drawn.items():
        assert chart["drawnByUplot"] and chart["canvas"] and min(chart["canvas"]) > 100, name
        assert not chart["fallbackShown"], name
    volume = drawn["volume"]["data"]
    assert len(volume[0]) == len(by_day["groups"])
    assert volume[1] == [g["letters"] for g in by_day["groups"]]  # the tallest stack: every status
    assert volume[-1] == [g["by_status"]["queued"] for g in by_day["groups"]]
    assert drawn["volume"]["labels"][1] == "échec"  # drawn first: the stack of every status, down to "failed"
    assert drawn["delays"]["data"][1] == [b["count"] for b in by_day["totals"]["acceptance_delay_distribution"]]
    failures = drawn["failures"]["data"]
    assert failures[1] == [None if g["technical_failure_rate"] is None else round(g["technical_failure_rate"] * 100, 2)
                           for g in by_day["groups"]]
    assert set(failures[2]) == {1.0}  # the alert threshold, 1 %
    assert sum(by_day["totals"]["by_status"].values()) == 6
    shoot(page, "overview-fr")

    # A proof downloads, byte for byte the API's.
    row = page.locator(f'tr[data-letter-id="{accepted["id"]}"]')
    with page.expect_download() as download_info:
        row.get_by_role("link", name="Preuve d'acceptation").click()
    download = download_info.value
    saved = Path(download.path()).read_bytes()
    assert saved == client.get(f"/v1/letters/{accepted['id']}/proofs/acceptance", headers=auth).data
    assert download.suggested_filename.endswith(".pdf")

    # On a fresh page the keyboard reaches the skip link first; English on request.
    page.goto(f"{live}/dashboard/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="Open alerts").is_visible()
    shoot(page, "overview-en")

    phone = context.browser.new_context(viewport=PHONE, device_scale_factor=1, locale="fr-FR")
    phone_page = phone.new_page()
    sign_in(phone_page, live, auth)
    # Usable on a phone: nothing wider than the screen but the tables' own scroll areas.
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    shoot(phone_page, "phone-fr")
    phone.close()

    page.goto(f"{live}/dashboard/alerts?lang=fr")
    shoot(page, "alerts-fr")
    copied = context.cookies()
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url(re.compile(r".*/dashboard/login\?signed_out=1"))
    assert page.get_by_text("Vous êtes déconnecté.").is_visible()
    shoot(page, "sign-in-fr")

    # Signed out, every dashboard URL (pages and downloads) brings the sign-in form.
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/dashboard") or "GET" not in rule.methods:
            continue
        if rule.endpoint in ("dashboard.login", "dashboard.static"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: accepted["id"] if m.group(1) == "letter_id" else "acceptance",
                      rule.rule)
        page.goto(live + path)
        assert page.url.startswith(f"{live}/dashboard/login?next="), path
        assert page.get_by_role("button", name="Se connecter").is_visible()

    # A copy of the session cookie taken before signing out is refused after it (server-side session).
    assert any(c["name"] == "lre_dashboard" for c in copied)
    thief = context.browser.new_context(viewport=DESKTOP)
    thief.add_cookies(copied)
    stolen = thief.new_page()
    stolen.goto(f"{live}/dashboard/")
    assert stolen.url.startswith(f"{live}/dashboard/login?next="), stolen.url
    thief.close()

    # Nothing left loopback (no CDN: the chart library is served by the bridge), and no script error.
    assert requests and all(url.startswith(live + "/") for url in requests), \
        [u for u in requests if not u.startswith(live + "/")]
    assert f"{live}/dashboard/static/vendor/uplot/uPlot.iife.min.js" in requests
    assert not problems, problems
