"""What AR24's API fixes: its time zone and date format, timeouts, the webhook source address."""

from __future__ import annotations

from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# "Please synchronize your timeout with the API timeout which is 60 seconds" (another stored copy
# of the page says 300 s); the bridge's jobs are retried, so the shorter value is kept.
DEFAULT_TIMEOUT = 60.0
OTP_TIMEOUT = 20.0
# The one address AR24's webhooks come from (knowledge-base page on webhooks).
AR24_WEBHOOK_IP = "185.183.140.195"
# Header through which the bridge's callback route hands over the caller's address.
REMOTE_ADDR_HEADER = "X-Lre-Remote-Addr"
PDF_MAGIC = b"%PDF"
# AR24's JSON errors take a few hundred bytes: a non-PDF answer to a proof download is read this
# far for one (a longer body is not AR24's error, and is not read into memory).
ERROR_BODY_BYTES = 64 * 1024
