"""``/dashboard``: the account's KPIs, alerts, letters and batches, as server-rendered pages.

Signed in with an API key, then a session cookie (see ``connector.api.dashboard.session``). Every page
but the sign-in form redirects a visitor without a session to it. Downloads (PDF, proofs,
evidence package) run the API's own views, so access logging and headers are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, g, make_response, redirect, render_template, request, url_for
from sqlalchemy import select

from connector.api import evidence as evidence_api
from connector.api import letters as letters_api
from connector.api.alerts import alerts_query
from connector.api.auth import authenticate
from connector.api.common import services
from connector.api.dashboard import charts
from connector.api.dashboard.i18n import LANGUAGES, translate
from connector.api.dashboard.session import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    close_session,
    load_session,
    new_login_token,
    open_session,
    same_token,
    set_login_token,
)
from connector.api.db import db_session
from connector.api.errors import ApiError, status_of
from connector.api.kpis import kpis_for_request
from connector.api.registry import Answer, View, document_endpoint, documented, text_answer
from connector.errors import BridgeError
from connector.models import Alert, Letter, Proof
from connector.monitoring.alerts import alert_to_dict, rule_configs
from connector.monitoring.kpis import STATUSES, batch_items_table

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates",
               static_folder="static", static_url_path="/static")
PUBLIC_ENDPOINTS = frozenset({"dashboard.login", "dashboard.login_post", "dashboard.static"})
_SIGN_IN = Answer("Not signed in: to /dashboard/login")
_HTML = {200: text_answer("An HTML page", "text/html"), 302: _SIGN_IN}
_FILE = {200: Answer("The file (PDF or zip)"), 302: _SIGN_IN,
         404: text_answer("Not in your account (a page)", "text/html")}
# Every form posts the session's CSRF token; a form without it is refused with a page.
_FORM_REFUSED = {403: text_answer("The form's token is missing or wrong (a page)", "text/html")}


def _documented(summary: str, answers: dict[int | str, Answer]) -> Callable[[View], View]:
    """A dashboard page: signed in with the session cookie, not the API key."""
    return documented(summary, tags=["Dashboard"], security=[], answers=answers,
                      description="Browser page, signed in with the session cookie.")


document_endpoint("dashboard.static", "Dashboard style sheets and scripts (uPlot vendored, MIT)", tags=("Dashboard",),
                  security=[], description="Browser page, signed in with the session cookie.",
                  answers={200: Answer("CSS or JavaScript"),
                           # Flask's send_file answers conditional and range requests (browsers revalidate).
                           206: Answer("The byte range asked for (Range)"),
                           304: Answer("Not modified: the browser's copy is current (If-None-Match)")},
                  errors={416: "The byte range asked for is not in the file (Range)"})
PRESET_KEYS = {"24h": "last_24h", "7d": "last_7d", "30d": "last_30d"}


def _lang() -> str:
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    saved = request.cookies.get(LANG_COOKIE)
    return saved if saved in LANGUAGES else "fr"


@bp.before_request
def _require_session() -> Response | None:
    g.lang = _lang()
    g.dashboard = None
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    found = load_session(services())
    db_session().rollback()  # the read transaction must not stay open (SQLite's write lock)
    if found is None:
        target = request.full_path if request.query_string else request.path
        return redirect(url_for("dashboard.login", next=target))
    g.dashboard = found
    # The API views run for the dashboard read these, as if the key had been sent.
    g.account, g.api_key = found.account, found.api_key
    if request.method == "POST" and not same_token(request.form.get("csrf"), found.csrf):
        return _page("error.html", 403, message=translate("bad_form", g.lang))
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    # Pages show letters and recipients: not cached, not framed, no resource from elsewhere.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")
    if request.args.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, str(request.args["lang"]), max_age=365 * 86400, path="/dashboard",
                            samesite="Lax")
    return response


def _page(template: str, status: int = 200, **context: Any) -> Response:
    lang = g.get("lang", "fr")
    response = make_response(render_template(
        f"dashboard/{template}", t=lambda key: translate(key, lang), lang=lang, session=g.get("dashboard"),
        percent=_percent, duration=_duration, when=_when, **context), status)
    return response


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} j"


def _when(value: str | datetime | None) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else value.isoformat()
    return text.replace("T", " ")[:16] + " UTC"


def _safe_next(target: str | None) -> str:
    # Only back into the dashboard: never an open redirect to another site.
    if target and target.startswith("/dashboard") and not target.startswith("//"):
        return target
    return url_for("dashboard.overview")


@bp.get("/login")
@_documented("Dashboard sign-in form", _HTML)
def login() -> Response:
    """The sign-in form."""
    token = new_login_token()
    page = _page("login.html", csrf=token, next=_safe_next(request.args.get("next")),
                 error=request.args.get("error"), signed_out=request.args.get("signed_out"))
    set_login_token(services(), page, token)
    return page


@bp.post("/login")
@_documented("Sign in with an API key (form)", {302: Answer("Signed in")})
def login_post() -> Response:
    """Check the API key, then open a session."""
    target = _safe_next(request.form.get("next"))
    if not same_token(request.form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE)):
        return redirect(url_for("dashboard.login", next=target, error="bad_form"))
    key = (request.form.get("api_key") or "").strip()
    try:
        account, api_key = authenticate(db_session(), f"Bearer {key}")
    except ApiError:
        return redirect(url_for("dashboard.login", next=target, error="bad_key"))
    account_id, key_id = account.id, api_key.id
    db_session().rollback()
    response = redirect(target)
    open_session(services(), response, account_id, key_id)
    return response


@bp.post("/logout")
@_documented("Sign out (form)", {302: Answer("Signed out"), **_FORM_REFUSED})
def logout() -> Response:
    """Sign out (a form with the CSRF token)."""
    response = redirect(url_for("dashboard.login", signed_out="1"))
    close_session(services(), response)
    return response


def _kpi_context(account_id: str) -> dict[str, Any]:
    preset = request.args.get("preset") or "7d"
    if preset not in PRESET_KEYS:
        preset = "7d"
    # The API's own computation, with the arguments the page shows: the figures are the API's.
    kpis = kpis_for_request(account_id, preset=preset, group_by="day")
    days = [group["key"] for group in kpis["groups"]]
    short_days = [day[5:] for day in days]
    lang = g.lang
    volume = charts.stacked_bars(
        "chart-volume", translate("daily_volume", lang), translate("daily_volume_desc", lang), short_days,
        [charts.Series(translate(f"status_{s}", lang), charts.STATUS_COLOURS[s],
                       [float(group["by_status"][s]) for group in kpis["groups"]]) for s in STATUSES])
    distribution = kpis["totals"]["acceptance_delay_distribution"]
    delays = charts.bars("chart-delays", translate("delay_distribution", lang),
                         translate("delay_distribution_desc", lang), [b["label"] for b in distribution],
                         [float(b["count"]) for b in distribution], colour=charts.STATUS_COLOURS["accepted"])
    threshold = rule_configs(db_session(), account_id)["technical_failure_rate"].threshold or 0.01
    failures = charts.rate_line("chart-failures", translate("failure_vs_threshold", lang),
                                translate("failure_vs_threshold_desc", lang), short_days,
                                [group["technical_failure_rate"] for group in kpis["groups"]], threshold)
    # The same figures for the uPlot charts (static/dashboard-charts.js), read from the page itself.
    chart_data = {
        "days": days,
        "statuses": [{"key": s, "label": translate(f"status_{s}", lang), "colour": charts.STATUS_COLOURS[s]}
                     for s in STATUSES],
        "volume": {s: [group["by_status"][s] for group in kpis["groups"]] for s in STATUSES},
        "delays": [{"label": b["label"], "count": b["count"]} for b in distribution],
        "failure_rates": [group["technical_failure_rate"] for group in kpis["groups"]],
        "threshold": threshold,
        "accepted_colour": charts.STATUS_COLOURS["accepted"],
        "labels": {key: translate(text_key, lang) for key, text_key in (
            ("day", "day"), ("delay", "delay"), ("letters", "letters"), ("volume", "daily_volume"),
            ("delays", "delay_distribution"), ("failures", "failure_vs_threshold"),
            ("failure_rate", "failure_rate"), ("threshold", "alert_threshold"), ("accepted", "status_accepted"))},
    }
    return {"kpis": kpis, "preset": preset, "presets": PRESET_KEYS, "statuses": STATUSES,
            "status_colours": charts.STATUS_COLOURS, "chart_volume": volume, "chart_delays": delays,
            "chart_failures": failures, "failure_threshold": threshold, "chart_data": chart_data}


def _recent_letters(account_id: str, limit: int = 20) -> list[dict[str, Any]]:
    session = db_session()
    letters = list(session.scalars(select(Letter).where(Letter.account_id == account_id)
                                   .order_by(Letter.created_at.desc(), Letter.id.desc()).limit(limit)))
    proofs: dict[str, list[str]] = {}
    for letter_id, kind in session.execute(select(Proof.letter_id, Proof.kind)
                                           .where(Proof.letter_id.in_([x.id for x in letters]))
                                           .order_by(Proof.created_at)):
        proofs.setdefault(letter_id, []).append(kind)
    return [{"id": x.id, "status": x.status, "reference": x.reference, "created_at": x.created_at,
             "recipient": x.recipient_company or " ".join(filter(None, [x.recipient_first_name,
                                                                       x.recipient_last_name])),
             "email": x.recipient_email, "proofs": proofs.get(x.id, [])} for x in letters]


def _batches(account_id: str, limit: int = 10) -> list[dict[str, Any]] | None:
    """Recent batches with their progress, or None on a bridge without batches (issue 16)."""
    if batch_items_table() is None:
        return None
    from connector.batches.models import Batch
    from connector.batches.service import batch_to_dict

    session = db_session()
    rows = session.scalars(select(Batch).where(Batch.account_id == account_id)
                           .order_by(Batch.created_at.desc()).limit(limit))
    return [batch_to_dict(session, batch, services()) for batch in rows]


def _open_alerts(account_id: str) -> list[dict[str, Any]]:
    rows = db_session().scalars(alerts_query(account_id, "open").order_by(Alert.created_at.desc()).limit(50))
    return [alert_to_dict(a) for a in rows]


@bp.get("/")
@_documented("Dashboard: KPIs, charts, alerts, letters, batches", _HTML)
def overview() -> Response:
    """KPIs with charts, open alerts, recent letters and batches."""
    account_id = g.account.id
    context = _kpi_context(account_id)
    page = _page("overview.html", alerts=_open_alerts(account_id), letters=_recent_letters(account_id),
                 batches=_batches(account_id), **context)
    db_session().rollback()
    return page


@bp.get("/alerts")
@_documented("Dashboard: alerts", _HTML)
def alerts() -> Response:
    """Open alerts and the most recent resolved ones."""
    account_id = g.account.id
    resolved = db_session().scalars(alerts_query(account_id, "resolved")
                                    .order_by(Alert.created_at.desc()).limit(50))
    page = _page("alerts.html", alerts=_open_alerts(account_id), resolved=[alert_to_dict(a) for a in resolved])
    db_session().rollback()
    return page


@bp.get("/batches")
@_documented("Dashboard: batches and their progress", _HTML)
def batches() -> Response:
    """Batches with their progress."""
    page = _page("batches.html", batches=_batches(g.account.id, limit=50))
    db_session().rollback()
    return page


def _download(view: Callable[..., Response], *args: str) -> Response:
    # The API view itself (undecorated: the session stands in for the Authorization header).
    try:
        return view.__wrapped__(*args)  # type: ignore[attr-defined,no-any-return]
    except BridgeError as exc:
        return _page("error.html", status_of(exc), message=exc.message)
    except ApiError as exc:
        return _page("error.html", exc.status, message=exc.message)


@bp.get("/letters/<letter_id>/document")
@_documented("Dashboard: a letter's PDF", _FILE)
def letter_document(letter_id: str) -> Response:
    """The letter's PDF as sent."""
    return _download(letters_api.get_document, letter_id)


@bp.get("/letters/<letter_id>/proofs/<kind>")
@_documented("Dashboard: a proof", _FILE)
def letter_proof(letter_id: str, kind: str) -> Response:
    """A proof PDF, byte-exact."""
    return _download(evidence_api.download_proof, letter_id, kind)


@bp.get("/letters/<letter_id>/evidence")
@_documented("Dashboard: the evidence package", _FILE)
def letter_evidence(letter_id: str) -> Response:
    """The sealed evidence package."""
    return _download(evidence_api.download_evidence, letter_id)


def letter_links(letter_id: str) -> dict[str, str]:
    """Dashboard URLs of a letter's files (used by the templates)."""
    quoted = quote(letter_id)
    return {"document": f"/dashboard/letters/{quoted}/document", "evidence": f"/dashboard/letters/{quoted}/evidence"}
