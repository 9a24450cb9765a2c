"""What the real provider adapters share about talking HTTP: transport failures turned into
ProviderError with the right retry decision, ``Retry-After``, and documents uploaded as a
streamed multipart body."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

import requests
from requests_toolbelt import MultipartEncoder

from connector.lib.http import TooLarge, UnsafeUrl
from connector.providers.base import OutgoingDocument, ProviderContext, ProviderError

# The largest answer a provider call reads: its JSON answers take kilobytes and a proof PDF a few
# megabytes; a larger body is refused before it can take the worker's memory (or, for a proof,
# written to a temporary file as it arrives, its disk).
MAX_ANSWER_BYTES = 32 * 1024 * 1024

# The sender's one-time code: six digits from a TOTP app (AR24 and Maileva alike).
OTP_PATTERN = re.compile(r"\d{6}")


def call(
    context: ProviderContext,
    method: str,
    url: str,
    *,
    provider: str,
    timeout: float,
    creates: bool = False,
    **kwargs: Any,
) -> requests.Response:
    """One outbound call through the bridge's HTTP function.

    A refused URL is a permanent misconfiguration; a connect timeout never reached the provider;
    any later timeout or dropped connection may have, so it is ``ambiguous`` when the call
    ``creates`` the letter (the retry must look it up before sending again).
    """
    try:
        return context.http(method, url, timeout=timeout, max_bytes=MAX_ANSWER_BYTES, **kwargs)
    except TooLarge:
        raise ProviderError(
            "provider_error", f"{provider} answered more than {MAX_ANSWER_BYTES // 2**20} MB; the answer was refused.",
            permanent=False, ambiguous=creates,
        ) from None
    except DocumentCutShort as exc:
        # Nothing complete was sent; the retry reads the document again (the archive's check
        # then fails the letter if it really changed).
        raise ProviderError("document_unreadable", f"The document could not be sent whole: {exc}.",
                            permanent=False) from exc
    except UnsafeUrl as exc:
        raise ProviderError(
            "provider_misconfigured",
            f"The {provider} address {url.split('?')[0]} is refused: {exc}. "
            "Check the account's provider settings (PUT /v1/account/provider).",
            permanent=True,
        ) from exc
    # requests' messages can quote the URL with its query string, which carries AR24's token:
    # the original exception is not chained, only its type is named.
    except requests.ConnectTimeout as exc:
        raise ProviderError(
            "provider_unavailable", f"{provider} could not be reached ({type(exc).__name__}).", permanent=False
        ) from None
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise ProviderError(
            "provider_timeout",
            f"{provider} did not answer in time ({type(exc).__name__}); the request may have been received.",
            permanent=False,
            ambiguous=creates,
        ) from None


def retry_after(response: requests.Response) -> float | None:
    """The ``Retry-After`` header in seconds, when it is given as a number."""
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def is_transient_status(status: int) -> bool:
    """HTTP statuses worth retrying: timeouts, throttling and server errors."""
    return status >= 500 or status in (408, 429)


class DocumentCutShort(ValueError):
    """A streamed document ended before the length its upload declared."""


class _SizedReader:
    """A document's reader as ``MultipartEncoder`` reads a part: ``len`` is what is left to read.

    The encoder declares the body's ``Content-Length`` from it before sending, and reads until it
    is zero: a document shorter than its declared size is an error, never an endless loop.
    """

    def __init__(self, reader: IO[bytes], size: int) -> None:
        self._reader = reader
        self.len = size

    def read(self, size: int = -1) -> bytes:
        wanted = self.len if size is None or size < 0 else min(size, self.len)
        data = self._reader.read(wanted) if wanted else b""
        if wanted and not data:
            raise DocumentCutShort(f"it ended {self.len} bytes before its declared size")
        self.len -= len(data)
        return data


@contextmanager
def multipart_upload(fields: Sequence[tuple[str, str]], file_field: str,
                     document: OutgoingDocument) -> Iterator[MultipartEncoder]:
    """A ``multipart/form-data`` body of ``fields`` then ``document`` (as ``file_field``), read
    from the document's reader as the request is sent: the worker holds a piece, not the file.

    requests' own ``files=`` builds the whole body in memory first (a 19 MB PDF cost about 40 MB);
    requests-toolbelt's encoder, from the requests maintainers, streams it with its length known.
    Pass the encoder as ``data`` and its ``content_type`` as the Content-Type; one encoder per
    attempt (a body is read once).
    """
    size = document.length
    with document.open() as reader:
        yield MultipartEncoder(fields=[*fields, (file_field, (document.filename, _SizedReader(reader, size),
                                                             "application/pdf"))])
