"""The consent page the bridge hosts: ``/consent/<token>``, French first, English with ``?lang=en``.

GET shows the request (or why the link cannot be used); POST records the answer or a withdrawal.
The token is the only credential: the page sends no referrer, is never cached, and refuses a link
that is expired, already used or altered, with a page that says which and what to do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector import shapes
from connector.api.db import db_session
from connector.api.registry import Answer, documented, text_answer
from connector.consent import service
from connector.consent.certificate import ASSETS, environment
from connector.consent.models import ConsentInvitation
from connector.consent.texts import LANGUAGES, ShownText, consent_text
from connector.models import Account

bp = Blueprint("consent_page", __name__)

# A page that only shows text and posts to itself needs nothing else.
_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")

WORDS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Votre accord pour recevoir des lettres recommandées électroniques",
        "asks": "{sender} vous demande votre accord",
        "message": "Message de {sender}",
        "what_title": "Ce que vous acceptez",
        "accept": "J'accepte de recevoir des lettres recommandées électroniques",
        "refuse": "Je refuse",
        "expires": "Vous pouvez répondre jusqu'au {date}. Sans réponse, la demande vaut refus.",
        "version": "Texte version {version}, empreinte SHA-256 {sha}",
        "accepted_title": "Merci, votre accord est enregistré",
        "accepted_body": "{sender} peut désormais vous adresser des lettres recommandées électroniques à {email}. "
                         "Vous pouvez retirer votre accord à tout moment en revenant sur cette page avec le même lien.",
        "refused_title": "Votre refus est enregistré",
        "refused_body": "{sender} ne vous adressera pas de lettre recommandée électronique à {email}.",
        "withdraw_title": "Retirer mon accord",
        "withdraw_body": "Les lettres suivantes ne vous seront plus envoyées par voie électronique.",
        "withdraw": "Je retire mon accord",
        "withdrawn_title": "Votre accord est retiré",
        "withdrawn_body": "{sender} ne peut plus vous adresser de lettre recommandée électronique à {email}.",
        "used_title": "Ce lien a déjà été utilisé",
        "used_body": "Vous avez répondu le {date} ({answer}). Une réponse ne peut pas être modifiée avec ce lien ; "
                     "contactez {sender} si vous souhaitez une nouvelle demande.",
        "answered_title": "Vous avez déjà donné votre accord",
        "answered_body": "Vous avez accepté le {date} de recevoir des lettres recommandées électroniques de {sender} "
                         "à {email}. Vous pouvez retirer cet accord ci-dessous.",
        "expired_title": "Ce lien a expiré",
        "expired_body": "La demande de {sender} était valable jusqu'au {date}. Sans réponse, elle vaut refus. "
                        "Contactez {sender} si vous souhaitez donner votre accord.",
        "invalid_title": "Ce lien n'est pas valide",
        "invalid_body": "Le lien est incomplet ou a été modifié. Ouvrez-le de nouveau depuis le message reçu, "
                        "sans le retoucher ; s'il ne fonctionne toujours pas, demandez un nouveau lien à l'expéditeur.",
        "changed_title": "Le texte a changé",
        "changed_body": "Le texte de la demande a été mis à jour pendant que vous le lisiez. Relisez-le puis répondez.",
        "answer_refused": "refus",
        "answer_withdrawn": "accord, retiré depuis le {date}",
        "other_language": "English",
        "footer": "Page hébergée par LRE Bridge pour {sender}. Votre réponse est enregistrée avec sa date, votre "
                  "adresse IP, votre navigateur et le texte affiché, uniquement pour en apporter la preuve.",
    },
    "en": {
        "title": "Your agreement to receive electronic registered letters",
        "asks": "{sender} asks for your agreement",
        "message": "Message from {sender}",
        "what_title": "What you agree to",
        "accept": "I agree to receive electronic registered letters",
        "refuse": "I refuse",
        "expires": "You can answer until {date}. Without an answer, the request counts as refused.",
        "version": "Text version {version}, SHA-256 {sha}",
        "accepted_title": "Thank you, your agreement is recorded",
        "accepted_body": "{sender} may now send you electronic registered letters at {email}. You can withdraw "
                         "your agreement at any time by coming back to this page with the same link.",
        "refused_title": "Your refusal is recorded",
        "refused_body": "{sender} will not send you electronic registered letters at {email}.",
        "withdraw_title": "Withdraw my agreement",
        "withdraw_body": "Later letters will no longer be sent to you electronically.",
        "withdraw": "I withdraw my agreement",
        "withdrawn_title": "Your agreement is withdrawn",
        "withdrawn_body": "{sender} can no longer send you electronic registered letters at {email}.",
        "used_title": "This link has already been used",
        "used_body": "You answered on {date} ({answer}). An answer cannot be changed with this link; contact "
                     "{sender} if you want a new request.",
        "answered_title": "You have already given your agreement",
        "answered_body": "On {date} you agreed to receive electronic registered letters from {sender} at {email}. "
                         "You can withdraw this agreement below.",
        "expired_title": "This link has expired",
        "expired_body": "{sender}'s request was valid until {date}. Without an answer it counts as refused. "
                        "Contact {sender} if you want to give your agreement.",
        "invalid_title": "This link is not valid",
        "invalid_body": "The link is incomplete or was altered. Open it again from the message you received, "
                        "without changing it; if it still fails, ask the sender for a new link.",
        "changed_title": "The text has changed",
        "changed_body": "The request's text was updated while you were reading it. Read it again, then answer.",
        "answer_refused": "refused",
        "answer_withdrawn": "agreed, withdrawn since {date}",
        "other_language": "Français",
        "footer": "Page hosted by LRE Bridge for {sender}. Your answer is recorded with its date, your IP address, "
                  "your browser and the text shown, only to prove it.",
    },
}


def _language(invitation: ConsentInvitation | None) -> str:
    asked = request.values.get("lang")
    if asked in LANGUAGES:
        return asked
    return invitation.language if invitation is not None and invitation.language in LANGUAGES else "fr"


def _date(value: Any, lang: str) -> str:
    return value.strftime("%d/%m/%Y %H:%M UTC") if lang == "fr" else value.strftime("%Y-%m-%d %H:%M UTC")


# The error code of each refusal, for a client that is not a browser (it gets the API's JSON error).
ERROR_CODES = {"invalid": "invalid_link", "expired": "link_expired", "used": "already_answered",
               "answered": "already_answered", "changed": "text_changed"}


def _page(template: str, status: int, lang: str, **context: Any) -> Response:
    if status >= 400 and not request.accept_mimetypes.accept_html:
        kind = context.get("kind") or "changed"
        w = WORDS[lang]
        message = context.get("body") or w["changed_body"]
        response = jsonify({"error": {"code": ERROR_CODES[kind], "message": message, "field": "token"}})
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        return response
    html = environment().get_template(template).render(lang=lang, w=WORDS[lang], other="en" if lang == "fr" else "fr",
                                                        path=request.path, **context)
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _shown(invitation: ConsentInvitation, sender: str, lang: str) -> ShownText:
    return consent_text(lang, sender=sender, recipient=invitation.name, email=invitation.email)


def _visitor() -> service.Visitor:
    return service.Visitor(ip=request.remote_addr or "", user_agent=request.headers.get("User-Agent", ""))


def _notice(kind: str, status: int, lang: str, **values: str) -> Response:
    w = WORDS[lang]
    return _page("notice.html", status, lang, kind=kind, heading=w[f"{kind}_title"],
                 body=w[f"{kind}_body"].format(**values), sender=values.get("sender", ""),
                 show_withdraw=values.get("show_withdraw") == "yes")


def _state_page(invitation: ConsentInvitation, sender: str, lang: str) -> Response:
    """The page of an invitation that can no longer be answered (or the form when it still can)."""
    values = {"sender": sender, "email": invitation.email}
    if invitation.status == "expired":
        return _notice("expired", 410, lang, date=_date(invitation.expires_at, lang), **values)
    if invitation.status == "accepted":
        return _notice("answered", 409, lang, date=_date(invitation.answered_at, lang), show_withdraw="yes", **values)
    if invitation.status in ("refused", "withdrawn"):
        w = WORDS[lang]
        answer = (w["answer_withdrawn"].format(date=_date(invitation.withdrawn_at, lang))
                  if invitation.status == "withdrawn" else w["answer_refused"])
        return _notice("used", 409, lang, date=_date(invitation.answered_at, lang), answer=answer, **values)
    shown = _shown(invitation, sender, lang)
    return _page("consent.html", 200, lang, inv=invitation, sender=sender, shown=shown,
                 expires=_date(invitation.expires_at, lang))


def _load(token: str) -> tuple[ConsentInvitation | None, str]:
    from connector.api.common import services

    svc = services()
    session = db_session()
    invitation = service.find_by_token(svc, session, token, lock=request.method == "POST")
    if invitation is None:
        return None, ""
    account = session.get(Account, invitation.account_id)
    if service.expire(svc, session, invitation):
        session.commit()
    return invitation, account.name if account else ""


def _reloaded(invitation_id: str) -> ConsentInvitation:
    """The invitation as another request left it."""
    invitation = db_session().get(ConsentInvitation, invitation_id, populate_existing=True)
    assert invitation is not None
    return invitation


def _commit(change: Callable[[], object], invitation: ConsentInvitation, sender: str, lang: str) -> Response | None:
    """Run ``change`` and commit it; when another request changed the invitation first, the page of
    the invitation as that request left it."""
    try:
        change()
    except service.AlreadyAnswered:
        return _state_page(_reloaded(invitation.id), sender, lang)
    db_session().commit()
    return None


def _open(token: str, answerable: str) -> tuple[ConsentInvitation, str, str] | Response:
    """The invitation, its sender's name and the page language; or, when the link cannot be used
    for this (``answerable``: the status it must have), the page that says why."""
    invitation, sender = _load(token)
    lang = _language(invitation)
    if invitation is None:
        return _notice("invalid", 404, lang)
    if invitation.status != answerable:
        return _state_page(invitation, sender, lang)
    return invitation, sender, lang


_NO_AUTH: list[dict[str, list[str]]] = []  # the link's signature is the credential
_TAGS = ("Consent page",)


def _pages(*statuses: int) -> dict[int | str, Answer]:
    """Every answer of a consent page is a page (HTML); a refusal is the API's error (JSON) for a
    client that does not ask for HTML."""
    refusal = Answer("The refusal: a page (HTML) for a browser, the error (JSON) otherwise",
                     {"text/html": {"type": "string"}, "application/json": shapes.Error})
    return {status: text_answer("The page (HTML)", "text/html") if status < 400 else refusal for status in statuses}


@bp.get("/consent/<token>")
@documented("The consent page (French; ?lang=en for English)", operation_id="consentPage",
            tags=_TAGS, security=_NO_AUTH, answers=_pages(200, 404, 409, 410))
def show(token: str) -> Response:
    """The consent request, or a page saying why this link cannot be used."""
    opened = _open(token, "pending")
    if isinstance(opened, Response):
        return opened
    return _state_page(*opened)


@bp.post("/consent/<token>")
@documented("Accept or refuse (form: decision, text_version, text_sha256)", operation_id="consentAnswer",
            tags=_TAGS, security=_NO_AUTH, answers=_pages(200, 404, 409, 410))
def answer(token: str) -> Response:
    """Record acceptance or refusal, with the proof of the exact text that was shown."""
    from connector.api.common import services

    opened = _open(token, "pending")
    if isinstance(opened, Response):
        return opened
    invitation, sender, lang = opened
    decision = request.form.get("decision")
    shown = _shown(invitation, sender, lang)
    if (decision not in ("accept", "refuse") or request.form.get("text_version") != shown.version
            or request.form.get("text_sha256") != shown.sha256):
        # The person must answer the text we can prove they saw: show it again.
        return _page("consent.html", 409, lang, inv=invitation, sender=sender, shown=shown,
                     expires=_date(invitation.expires_at, lang), changed=True)
    raced = _commit(lambda: service.answer(services(), db_session(), invitation, accepted=decision == "accept",
                                           shown=shown, visitor=_visitor()), invitation, sender, lang)
    if raced is not None:
        return raced
    kind = "accepted" if decision == "accept" else "refused"
    return _notice(kind, 200, lang, sender=sender, email=invitation.email,
                   show_withdraw="yes" if kind == "accepted" else "no")


@bp.post("/consent/<token>/withdraw")
@documented("Withdraw an accepted consent", operation_id="consentWithdraw", tags=_TAGS,
            security=_NO_AUTH, answers=_pages(200, 404, 409))
def withdraw(token: str) -> Response:
    """Withdraw an accepted consent: the register entry is revoked and later sends are refused."""
    from connector.api.common import services

    opened = _open(token, "accepted")
    if isinstance(opened, Response):
        return opened
    invitation, sender, lang = opened
    raced = _commit(lambda: service.withdraw(services(), db_session(), invitation, _visitor()), invitation, sender,
                    lang)
    if raced is not None:
        return raced
    return _notice("withdrawn", 200, lang, sender=sender, email=invitation.email)


@bp.get("/consent-assets/consent.css")
@documented("The consent page's stylesheet", operation_id="consentStylesheet", tags=_TAGS,
            security=_NO_AUTH, answers={200: Answer("CSS", {"text/css": None})})
def stylesheet() -> Response:
    response = Response(_stylesheet(), mimetype="text/css")
    response.cache_control.max_age = 3600
    return response


@functools.cache
def _stylesheet() -> bytes:
    return (ASSETS / "consent.css").read_bytes()
