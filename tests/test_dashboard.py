"""The dashboard through HTTP: sign-in with an API key, the session cookie and its CSRF token,
sign-out, every page behind the sign-in, figures equal to the API's, downloads of an account's own
files only. (The same in a real browser: tests/test_dashboard_browser.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from connector.models import AccessLog, ApiKey
from tests.helpers import letter_payload

KEY_RE = re.compile(r"Bearer (\S+)")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the form"
    return found.group(1)


def sign_in(client: Any, auth: dict[str, str], target: str = "/dashboard/") -> Any:
    form = client.get("/dashboard/login")
    key = KEY_RE.match(auth["Authorization"]).group(1)
    return client.post("/dashboard/login", data={"csrf": csrf_of(form.get_data(as_text=True)), "api_key": key,
                                                 "next": target})


def dashboard_urls(app: Flask) -> list[str]:
    """Every dashboard page and download, with sample path values."""
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/dashboard") and rule.endpoint not in ("dashboard.login", "dashboard.login_post",
                                                                          "dashboard.static"):
            urls.append(re.sub(r"<(?:\w+:)?(\w+)>", r"x_\1", rule.rule))
    return urls


def test_signed_out_every_dashboard_url_redirects_to_the_sign_in(app, client):
    urls = dashboard_urls(app)
    assert "/dashboard/" in urls and "/dashboard/logout" in urls and len(urls) >= 7
    for url in urls:
        method = "post" if url == "/dashboard/logout" else "get"
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/dashboard/login?next="), url


def test_signing_in_opens_a_session_cookie_that_scripts_and_other_sites_cannot_use(client, auth):
    response = sign_in(client, auth, "/dashboard/alerts")
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard/alerts"
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("lre_dashboard="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/dashboard" in cookie
    assert KEY_RE.match(auth["Authorization"]).group(1) not in cookie  # the key itself is not kept
    page = client.get("/dashboard/")
    assert page.status_code == 200 and "Cabinet Durand" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_a_wrong_key_or_a_form_without_its_token_does_not_sign_in(client, auth):
    form = client.get("/dashboard/login")
    wrong = client.post("/dashboard/login", data={"csrf": csrf_of(form.get_data(as_text=True)),
                                                  "api_key": "lre_pas_une_cle"})
    assert wrong.headers["Location"].endswith("error=bad_key")
    shown = client.get(wrong.headers["Location"]).get_data(as_text=True)
    assert 'id="login-error"' in shown and "pas valide ou a été révoquée" in shown
    key = KEY_RE.match(auth["Authorization"]).group(1)
    forged = client.post("/dashboard/login", data={"csrf": "devine", "api_key": key})
    assert forged.headers["Location"].endswith("error=bad_form")
    assert client.get("/dashboard/").status_code == 302


def test_sign_out_needs_the_sessions_token_and_then_ends_the_session(client, auth):
    sign_in(client, auth)
    assert client.post("/dashboard/logout", data={"csrf": "devine"}).status_code == 403
    assert client.get("/dashboard/").status_code == 200
    token = csrf_of(client.get("/dashboard/").get_data(as_text=True))
    out = client.post("/dashboard/logout", data={"csrf": token})
    assert out.headers["Location"] == "/dashboard/login?signed_out=1"
    assert client.get("/dashboard/").status_code == 302


def test_a_cookie_copied_before_sign_out_is_refused_after_it(app, client, auth):
    """The session lives on the server: signing out ends it for every copy of the cookie."""
    sign_in(client, auth)
    copied = client.get_cookie("lre_dashboard", path="/dashboard").value
    thief = app.test_client()
    thief.set_cookie("lre_dashboard", copied, path="/dashboard")
    assert thief.get("/dashboard/").status_code == 200  # the copy works while the session is open
    token = csrf_of(client.get("/dashboard/").get_data(as_text=True))
    assert client.post("/dashboard/logout", data={"csrf": token}).status_code == 302
    for url in ("/dashboard/", "/dashboard/alerts"):
        refused = thief.get(url)
        assert refused.status_code == 302 and refused.headers["Location"].startswith("/dashboard/login?next=")
    # The copy cannot sign out or post a form either; a new sign-in opens a new session.
    assert thief.post("/dashboard/logout", data={"csrf": token}).status_code == 302
    sign_in(client, auth)
    assert client.get("/dashboard/").status_code == 200
    assert thief.get("/dashboard/").status_code == 302


def test_the_sessions_of_one_key_are_bounded(app, client, auth, services):
    from connector.api.dashboard.session import MAX_SESSIONS_PER_KEY
    from connector.models import DashboardSessionRow

    first = app.test_client()
    sign_in(first, auth)
    for _ in range(MAX_SESSIONS_PER_KEY):
        sign_in(app.test_client(), auth)
    with services.db.transaction() as session:
        assert len(session.scalars(select(DashboardSessionRow)).all()) == MAX_SESSIONS_PER_KEY
    assert first.get("/dashboard/").status_code == 302  # the oldest session was ended


def test_revoking_the_key_ends_its_dashboard_sessions(client, auth, services):
    sign_in(client, auth)
    with services.db.transaction() as session:
        session.execute(update(ApiKey).values(revoked_at=services.clock()))
    assert client.get("/dashboard/").status_code == 302


def test_the_sign_in_only_returns_into_the_dashboard(client, auth):
    assert sign_in(client, auth, "https://evil.example/").headers["Location"] == "/dashboard/"
    assert sign_in(client, auth, "//evil.example/dashboard").headers["Location"] == "/dashboard/"


@pytest.mark.parametrize("preset", ["24h", "7d", "30d"])
def test_the_kpi_figures_on_the_page_are_the_apis(client, auth, drain, preset):
    for outcome in ("accepted", "accepted", "refused", "bounced", "failed"):
        client.post("/v1/letters", json=letter_payload(sandbox_outcome=outcome), headers=auth)
    drain()
    sign_in(client, auth)
    html = client.get(f"/dashboard/?preset={preset}").get_data(as_text=True)
    totals = client.get(f"/v1/kpis?preset={preset}", headers=auth).json["totals"]
    shown = dict(re.findall(r'id="kpi-([a-z0-9-]+)" data-value="([^"]*)"', html))
    expected = {
        "letters": totals["letters"], "deliverability": totals["deliverability"],
        "delay-mean": totals["acceptance_delay_seconds"]["mean"],
        "delay-median": totals["acceptance_delay_seconds"]["median"],
        "delay-p90": totals["acceptance_delay_seconds"]["p90"], "refusal-rate": totals["refusal_rate"],
        "neglect-rate": totals["neglect"]["rate"], "failure-rate": totals["technical_failure_rate"],
    }
    assert shown == {k: str(v) for k, v in expected.items()}
    assert totals["letters"] == 5 and totals["technical_failure_rate"] == 0.2
    assert "20.0 %" in html  # the failure rate, as people read it


def test_the_page_is_french_first_then_english(client, auth):
    sign_in(client, auth)
    french = client.get("/dashboard/").get_data(as_text=True)
    assert '<html lang="fr">' in french and "Délivrabilité" in french
    english = client.get("/dashboard/?lang=en")
    assert '<html lang="en">' in english.get_data(as_text=True) and "Deliverability" in english.get_data(as_text=True)
    assert '<html lang="en">' in client.get("/dashboard/alerts").get_data(as_text=True)  # remembered


def test_files_download_from_the_dashboard_for_the_accounts_own_letters_only(client, auth, other_auth, drain):
    letter = client.post("/v1/letters", json=letter_payload(sandbox_outcome="accepted"), headers=auth).json
    drain()
    sign_in(client, auth)
    html = client.get("/dashboard/").get_data(as_text=True)
    assert f"/dashboard/letters/{letter['id']}/proofs/acceptance" in html
    proof = client.get(f"/dashboard/letters/{letter['id']}/proofs/acceptance")
    assert proof.status_code == 200 and proof.mimetype == "application/pdf"
    assert proof.data == client.get(f"/v1/letters/{letter['id']}/proofs/acceptance", headers=auth).data
    document = client.get(f"/dashboard/letters/{letter['id']}/document")
    assert document.data.startswith(b"%PDF")
    evidence = client.get(f"/dashboard/letters/{letter['id']}/evidence")
    assert evidence.status_code == 200 and evidence.mimetype == "application/zip"
    with client.application.extensions["lre"].db.transaction() as session:  # logged like an API read
        readers = set(session.scalars(select(AccessLog.who).where(AccessLog.letter_id == letter["id"])))
    assert any("tableau de bord" in who for who in readers)
    other = client.application.test_client()
    sign_in(other, other_auth)
    assert other.get(f"/dashboard/letters/{letter['id']}/proofs/acceptance").status_code == 404
    assert other.get(f"/dashboard/letters/{letter['id']}/document").status_code == 404


def test_open_alerts_and_batches_are_shown(client, auth, services, drain):
    from connector.monitoring.alerts import evaluate_all

    client.put("/v1/alerts/rules/technical_failure_rate", json={"min_volume": 2}, headers=auth)
    for outcome in ("accepted", "failed"):
        client.post("/v1/letters", json=letter_payload(sandbox_outcome=outcome), headers=auth)
    drain()
    evaluate_all(services)
    sign_in(client, auth)
    html = client.get("/dashboard/").get_data(as_text=True)
    assert 'data-rule="technical_failure_rate"' in html and "Taux d&#39;échec technique" in html
    assert 'data-rule="technical_failure_rate"' in client.get("/dashboard/alerts").get_data(as_text=True)
    assert client.get("/dashboard/batches").status_code == 200


def test_the_charts_are_labelled_images_with_their_figures_beside_them(client, auth, drain):
    client.post("/v1/letters", json=letter_payload(sandbox_outcome="accepted"), headers=auth)
    drain()
    sign_in(client, auth)
    html = client.get("/dashboard/").get_data(as_text=True)
    assert html.count('role="img"') == 3
    for chart in ("chart-volume", "chart-delays", "chart-failures"):
        assert f'aria-labelledby="{chart}-t {chart}-d"' in html
    assert html.count("<details>") == 3 and 'class="threshold"' in html
    with client.get("/dashboard/static/dashboard.css") as css:
        assert css.status_code == 200 and css.mimetype == "text/css"


def test_a_style_sheet_answers_a_revalidation_and_a_byte_range_as_documented(client):
    """The browser revalidates what it holds (304) and may ask for a range (206, or 416 past the end)."""
    css = "/dashboard/static/dashboard.css"
    with client.get(css) as whole:
        etag, content = whole.headers["ETag"], whole.data
    with client.get(css, headers={"If-None-Match": etag}) as again:
        assert again.status_code == 304 and again.data == b""
    with client.get(css, headers={"Range": "bytes=0-9"}) as part:
        assert part.status_code == 206 and part.data == content[:10]
    with client.get(css, headers={"Range": "bytes=99999999-"}) as past:
        assert past.status_code == 416 and past.json["error"]["code"] == "http_error"
