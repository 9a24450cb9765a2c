"""Maileva LREQ (``electronic_qualified_registered_mail`` v1) qualified electronic registered letters.

From Maileva's published OpenAPI specifications (sources in docs/providers.md):

* OAuth2 *password* grant on the ``connexion`` host (client_credentials is not implemented by
  Maileva), bearer JWT, ``refresh_token`` grant to renew;
* a letter is a *sending*: ``POST /sendings`` (DRAFT) → ``POST /sendings/{id}/documents``
  (multipart ``document`` + ``name``) → ``POST /sendings/{id}/recipients`` →
  ``POST /sendings/{id}/submit`` (202);
* the recipient's ``status`` and its ``deposit_proof`` / ``delivery_proof`` give the lifecycle;
  LREQ has no webhook resource type in the notification centre, so the bridge polls;
* errors: ``{"errors": [{"code", "message"}]}`` with HTTP 400/401/403/404.

The sender must be authenticated at Maileva before a qualified send: by a 6-digit OTP
(``electronic_mail_emitter`` ``POST /senders/{id}/authenticate_by_otp``, valid one hour) or by
certificate (valid 30 days). ``prepare_submission`` does the OTP exchange when a code is given.
"""

from __future__ import annotations

from connector.providers.maileva.adapter import MailevaProvider
from connector.providers.maileva.auth import clear_token_cache
from connector.providers.maileva.errors import error_for
from connector.providers.maileva.events import events_from_recipient
from connector.providers.maileva.protocol import parse_iso

__all__ = [
    "MailevaProvider",
    "clear_token_cache",
    "error_for",
    "events_from_recipient",
    "parse_iso",
]
