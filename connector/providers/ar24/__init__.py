"""AR24 (Docaposte) qualified electronic registered letters.

Protocol, as documented at https://developers.ar24.fr/doc/ (sources in docs/providers.md):

* every call carries ``token`` and ``date`` (Europe/Paris, ``YYYY-MM-DD HH:mm:ss``) in the query
  string (GET) or the form body (POST), and a ``signature`` header: base64 AES-256-CBC of the date;
* successful answers are base64 AES-256-CBC ciphertext keyed on the date that was *sent*; errors
  and the maintenance notice come back as clear JSON (``status``, ``slug``, ``message``);
* an eIDAS (qualified) send needs the sender identified: a 6-digit OTP is exchanged once for a
  hash valid one hour (``POST /user/auth_otp``), passed as ``auth_otp_hash`` with ``eidas=1``;
* the mail's lifecycle is read from its date and proof fields, not from ``status`` (undocumented).

The signing functions are pure (bytes and strings in, strings out) so that tests and the local
AR24-compatible server share them.
"""

from __future__ import annotations

from connector.providers.ar24.adapter import AR24Provider
from connector.providers.ar24.crypto import decrypt_response, encrypt_response, paris_date, parse_paris_date, sign_date
from connector.providers.ar24.errors import ERRORS, error_for
from connector.providers.ar24.events import events_from_mail
from connector.providers.ar24.protocol import DATE_FORMAT, PARIS

__all__ = [
    "AR24Provider",
    "DATE_FORMAT",
    "ERRORS",
    "PARIS",
    "decrypt_response",
    "encrypt_response",
    "error_for",
    "events_from_mail",
    "paris_date",
    "parse_paris_date",
    "sign_date",
]
