"""A spreadsheet's CSV export, read as French spreadsheets write it: UTF-8 or Windows-1252, ``;``
or ``,`` (or a tab) between columns, a header line naming them. Read line by line from a file, in
bounded memory, and refused as soon as it passes ``MAX_CSV_BYTES``.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Iterator
from typing import IO, Any

MAX_ROWS = 5000
MAX_CSV_BYTES = 10 * 1024 * 1024


class RowsError(Exception):
    """The rows cannot be read at all (encoding, delimiter, no header): one message, one field."""

    def __init__(self, code: str, message: str, field: str = "rows") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


_TOO_LARGE = f"The CSV file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB."


class _Bounded(io.RawIOBase):
    """The CSV's bytes as read, refused (rows_too_large) as soon as they pass ``MAX_CSV_BYTES``."""

    def __init__(self, source: IO[bytes]) -> None:
        super().__init__()
        self._source = source
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        self._read += len(data)
        if self._read > MAX_CSV_BYTES:
            raise RowsError("rows_too_large", _TOO_LARGE)
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


def _size_of(source: IO[bytes]) -> int | None:
    try:
        start = source.tell()
        size = source.seek(0, io.SEEK_END) - start
        source.seek(start)
    except (AttributeError, OSError, ValueError):
        return None
    return size


def _text_lines(source: IO[bytes], encoding: str) -> Iterator[str]:
    """The CSV's lines, decoded as read (line ends kept, as the csv module wants); a byte-order
    mark at the very start is dropped, as ``decode_csv`` drops it."""
    reader = io.TextIOWrapper(io.BufferedReader(_Bounded(source), 64 * 1024), encoding=encoding, newline="")
    try:
        first = True
        for line in reader:
            yield line.removeprefix("\ufeff") if first else line
            first = False
    finally:
        reader.detach()  # the caller's file stays open


def decode_csv(content: bytes, encoding: str | None = None) -> str:
    """The CSV's text: UTF-8 (with or without BOM), else Windows-1252, as French spreadsheets save it."""
    if len(content) > MAX_CSV_BYTES:
        raise RowsError("rows_too_large", _TOO_LARGE)
    if encoding:
        try:
            return content.decode(encoding).removeprefix("\ufeff")
        except (LookupError, UnicodeDecodeError):
            raise RowsError("invalid_encoding", f"The CSV file cannot be read as {encoding}.", "encoding") from None
    try:
        return content.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        # Not UTF-8: Excel's "CSV (séparateur: point-virgule)" on Windows writes Windows-1252.
        try:
            return content.decode("cp1252")
        except UnicodeDecodeError:
            raise RowsError("invalid_encoding", "The CSV file is neither UTF-8 nor Windows-1252.",
                            "encoding") from None


def _delimiter(header_line: str, given: str | None) -> str:
    if given:
        if given not in (";", ",", "\t"):
            raise RowsError("invalid_delimiter", "delimiter must be ';', ',' or a tab.", "delimiter")
        return given
    counts = {d: _count_outside_quotes(header_line, d) for d in (";", ",", "\t")}
    best = max(counts.values())
    winners = [d for d, n in counts.items() if n == best]
    if best == 0:
        return ";"  # one column: any delimiter reads it the same
    if len(winners) > 1:
        raise RowsError("ambiguous_delimiter", "The header has as many ';' as ','; say which separates columns "
                        "with delimiter.", "delimiter")
    return winners[0]


def _count_outside_quotes(line: str, delimiter: str) -> int:
    count, quoted = 0, False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            count += 1
    return count


def parse_csv(content: bytes | IO[bytes], *, encoding: str | None = None,
              delimiter: str | None = None) -> list[dict[str, Any]]:
    """CSV bytes, or a file of them (an upload left on disk), → one dict per data row (header →
    cell). Blank lines are skipped.

    A file is decoded and parsed as it is read, never held whole as bytes and text, and refused as
    soon as it passes ``MAX_CSV_BYTES``. Without ``encoding`` it is read as UTF-8, and read again
    from its start as Windows-1252 if that fails (a file must then be seekable, as uploads are).
    """
    source: IO[bytes] = io.BytesIO(content) if isinstance(content, bytes | bytearray) else content
    size = _size_of(source)
    if size is not None and size > MAX_CSV_BYTES:
        raise RowsError("rows_too_large", _TOO_LARGE)  # known at once: said before any other problem
    start = source.tell() if size is not None else 0
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise RowsError("invalid_encoding", f"The CSV file cannot be read as {encoding}.", "encoding") from None
        attempts = [(encoding, f"The CSV file cannot be read as {encoding}.")]
    else:
        # Not UTF-8: Excel's "CSV (séparateur: point-virgule)" on Windows writes Windows-1252.
        attempts = [("utf-8", None), ("cp1252", "The CSV file is neither UTF-8 nor Windows-1252.")]
    for codec, refusal in attempts:
        try:
            return _parse_lines(_text_lines(source, codec), delimiter)
        except UnicodeDecodeError:
            if refusal is not None or size is None:
                raise RowsError("invalid_encoding", refusal or "The CSV file is not UTF-8.", "encoding") from None
            source.seek(start)
    raise AssertionError("unreachable: the last attempt raises")


def _parse_lines(lines: Iterator[str], delimiter: str | None) -> list[dict[str, Any]]:
    first_line = next(lines, "")
    # The first line decides the delimiter, as a whole read's text.split("\n", 1)[0] did.
    reader = csv.reader(itertools.chain([first_line] if first_line else [], lines),
                        delimiter=_delimiter(first_line.rstrip("\r\n"), delimiter))
    try:
        header = next(reader)
    except StopIteration:
        raise RowsError("empty_rows", "The CSV file is empty: give a header line and one line per recipient.") from None
    except csv.Error as exc:
        raise RowsError("invalid_csv", f"The CSV header cannot be read: {exc}.") from None
    header = [h.strip() for h in header]
    if any(not h for h in header):
        raise RowsError("invalid_header", "Every column of the CSV header needs a name.")
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise RowsError("invalid_header", f"The CSV header names these columns twice: {', '.join(duplicates)}.")
    rows: list[dict[str, Any]] = []
    try:
        for line_number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                raise RowsError("invalid_csv", f"Line {line_number} of the CSV has {len(cells)} cells; the header "
                                f"has {len(header)}.")
            rows.append(dict(zip(header, cells, strict=True)))
            if len(rows) > MAX_ROWS:
                raise RowsError("too_many_rows", f"A batch holds at most {MAX_ROWS} rows.")
    except csv.Error as exc:
        raise RowsError("invalid_csv", f"The CSV file cannot be read: {exc}.") from None
    return rows
