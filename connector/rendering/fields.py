"""Template fields: their declaration, the coercion of submitted data, and their public shape.

A field is declared once (in a built-in template's ``.json`` or an uploaded template's ``fields``)
and everything else is derived from that: the validation of ``data``, what the template sees, and
the input fields Zapier, Make and n8n show for the template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from connector.rendering.errors import TemplateDataError

# French letters are dated in French time: a letter sent at 23:30 UTC on 31 December is dated
# 1 January in Paris, and a date field sent as an instant is read as the Paris day it falls on.
LETTER_TIMEZONE = ZoneInfo("Europe/Paris")
PLATFORMS = ("generic", "make", "n8n")

FIELD_TYPES = ("text", "long_text", "date", "amount", "email", "list")
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

# Generous for a letter, small enough that one request cannot make a thousand-page PDF.
MAX_TEXT_LENGTH = 500
MAX_LONG_TEXT_LENGTH = 20_000
MAX_LIST_ITEMS = 200
MAX_LIST_ITEM_LENGTH = 1_000

_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\".]{2,}$")
_FRENCH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


@dataclass(frozen=True)
class FieldSpec:
    """One declared input of a template."""

    key: str
    label: str
    type: str = "text"
    required: bool = True
    help: str = ""
    example: Any = None
    choices: tuple[str, ...] | None = None

    def public(self) -> dict[str, Any]:
        """The field as the API serves it; the Zapier app maps it to input fields as it reads it."""
        return {
            "key": self.key,
            "label": self.label,
            "type": self.type,
            "required": self.required,
            "help_text": self.help,
            "example": self.example,
            "list": self.type == "list",
            "choices": list(self.choices) if self.choices else None,
        }

    def _help_with_example(self) -> str:
        example = self.example
        if isinstance(example, list):
            example = " ; ".join(str(item) for item in example)
        shown = f"Ex. : {example}" if example not in (None, "") else ""
        return " ".join(part for part in (self.help, shown) if part)

    def for_make(self) -> dict[str, Any]:
        """The field as a Make parameter (what an RPC returns for a module's dynamic fields).

        Amounts stay text, because the bridge reads "1 250,50" as well as 1250.5 and a Make number
        field would refuse the first; dates are date-only pickers (Make sends them as instants,
        which the bridge reads as the Paris day).
        """
        parameter: dict[str, Any] = {"name": self.key, "label": self.label[:256], "required": self.required}
        if self.choices:
            parameter.update(type="select", options=[{"label": c, "value": c} for c in self.choices])
        elif self.type == "long_text":
            parameter.update(type="text", multiline=True, validate={"max": MAX_LONG_TEXT_LENGTH})
        elif self.type == "date":
            parameter.update(type="date", time=False)
        elif self.type == "email":
            parameter.update(type="email")
        elif self.type == "list":
            parameter.update(type="array", spec={"type": "text", "label": self.label[:256]},
                             validate={"maxItems": MAX_LIST_ITEMS})
        else:  # text, amount
            parameter.update(type="text", validate={"max": MAX_TEXT_LENGTH})
        help_text = self._help_with_example()
        if help_text:  # Make refuses an empty help
            parameter["help"] = help_text
        return parameter

    def for_n8n(self) -> dict[str, Any]:
        """The field as an n8n resource-mapper field (``ResourceMapperField`` of n8n-workflow).

        Amounts are strings for the same reason as in Make: n8n's number check refuses "1 250,50".
        """
        field: dict[str, Any] = {
            "id": self.key,
            "displayName": self.label,
            "required": self.required,
            "defaultMatch": False,
            "canBeUsedToMatch": False,
            "display": True,
            "type": {"date": "dateTime", "list": "array"}.get(self.type, "string"),
        }
        if self.choices:
            field.update(type="options", options=[{"name": c, "value": c} for c in self.choices])
        return field

    def for_platform(self, platform: str) -> dict[str, Any]:
        """``public()``, ``for_make()`` or ``for_n8n()`` by name (one of PLATFORMS)."""
        if platform == "make":
            return self.for_make()
        if platform == "n8n":
            return self.for_n8n()
        return self.public()


class FieldDeclarationError(ValueError):
    """A field declaration is malformed; the message says which entry and why."""


def parse_field_specs(raw: Any) -> list[FieldSpec]:
    """Read a list of field declarations (dicts) into FieldSpecs, refusing anything ambiguous."""
    if not isinstance(raw, list):
        raise FieldDeclarationError("fields must be a list of objects")
    specs: list[FieldSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        where = f"fields[{index}]"
        if not isinstance(entry, dict):
            raise FieldDeclarationError(f"{where} must be an object")
        unknown = set(entry) - {"key", "label", "type", "required", "help", "help_text", "example", "choices"}
        if unknown:
            raise FieldDeclarationError(f"{where} has unknown properties: {', '.join(sorted(unknown))}")
        key = entry.get("key")
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise FieldDeclarationError(
                f"{where}.key must be lower-case letters, digits and underscores, starting with a letter"
            )
        if key in seen:
            raise FieldDeclarationError(f"{where}.key {key!r} is declared twice")
        seen.add(key)
        field_type = entry.get("type", "text")
        if field_type not in FIELD_TYPES:
            raise FieldDeclarationError(f"{where}.type must be one of {', '.join(FIELD_TYPES)}")
        label = entry.get("label", key)
        help_text = entry.get("help", entry.get("help_text", ""))
        required = entry.get("required", True)
        if not isinstance(label, str) or not isinstance(help_text, str) or not isinstance(required, bool):
            raise FieldDeclarationError(f"{where}: label and help must be strings, required a boolean")
        choices = entry.get("choices")
        if choices is not None and (
            not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices)
        ):
            raise FieldDeclarationError(f"{where}.choices must be a non-empty list of strings")
        specs.append(
            FieldSpec(
                key=key,
                label=label,
                type=field_type,
                required=required,
                help=help_text,
                example=entry.get("example"),
                choices=tuple(choices) if choices else None,
            )
        )
    return specs


def coerce_data(specs: list[FieldSpec], data: Any) -> dict[str, Any]:
    """Validate ``data`` against the declared fields and return the values the template sees.

    Every problem is collected before raising, so that a Zap shows all of them at once.
    Absent optional fields are given an empty value (so ``{% if field %}`` works under
    StrictUndefined); keys nobody declared are dropped, as automation platforms send extras.
    """
    if not isinstance(data, dict):
        raise TemplateDataError(
            [{"field": "data", "code": "invalid_type", "message": "data must be an object of field values."}]
        )
    values: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    for spec in specs:
        raw = data.get(spec.key)
        if _is_blank(raw):
            if spec.required:
                errors.append(_error(spec, "missing", f"« {spec.label} » is required."))
            values[spec.key] = [] if spec.type == "list" else None
            continue
        try:
            value = _COERCERS[spec.type](raw)
        except _Invalid as exc:
            errors.append(_error(spec, exc.code, f"« {spec.label} »: {exc}"))
            continue
        if spec.choices and value not in spec.choices:
            allowed = ", ".join(spec.choices)
            errors.append(_error(spec, "not_a_choice", f"« {spec.label} » must be one of: {allowed}."))
            continue
        values[spec.key] = value
    if errors:
        raise TemplateDataError(errors)
    return values


def _error(spec: FieldSpec, code: str, message: str) -> dict[str, str]:
    return {"field": f"data.{spec.key}", "code": code, "message": message}


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


class _Invalid(ValueError):
    def __init__(self, message: str, code: str = "invalid_format") -> None:
        super().__init__(message)
        self.code = code


def _as_text(value: Any, limit: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise _Invalid("expected a string.", "invalid_type")
    text = str(value).strip()
    if len(text) > limit:
        raise _Invalid(f"at most {limit} characters.", "too_long")
    return text


def _coerce_text(value: Any) -> str:
    return _as_text(value, MAX_TEXT_LENGTH)


def _coerce_long_text(value: Any) -> str:
    # Normalise line endings: CRM exports mix \r\n and \n, and the template splits on \n.
    return _as_text(value, MAX_LONG_TEXT_LENGTH).replace("\r\n", "\n").replace("\r", "\n")


# A letter's dates are of this world: outside these years the value is a typo (or a probe).
MIN_YEAR, MAX_YEAR = 1900, 2199


def _coerce_date(value: Any) -> date:
    if isinstance(value, datetime):
        return _bounded((value.astimezone(LETTER_TIMEZONE) if value.tzinfo else value).date(), str(value))
    if isinstance(value, date):
        return _bounded(value, value.isoformat())
    if not isinstance(value, str):
        raise _Invalid("expected a date as YYYY-MM-DD.", "invalid_type")
    text = value.strip()
    french = _FRENCH_DATE.match(text)
    try:
        if french:
            day, month, year = (int(part) for part in french.groups())
            return _bounded(date(year, month, day), text)
        if len(text) == 10:
            return _bounded(date.fromisoformat(text), text)
        # Platforms send instants ("2026-12-10T23:00:00.000Z" is 11 December in Paris, the day a
        # user there picked); the letter only needs the day, as seen in France.
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        _bounded(moment.date(), text)  # before the conversion, which overflows past year 9999
        return _bounded((moment.astimezone(LETTER_TIMEZONE) if moment.tzinfo else moment).date(), text)
    except _Invalid:
        raise
    except (ValueError, OverflowError) as exc:
        raise _Invalid("expected a date as YYYY-MM-DD (or DD/MM/YYYY).") from exc


def _bounded(day: date, shown: str) -> date:
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise _Invalid(f"{shown!r} reads as the year {day.year}; a letter's dates lie between "
                       f"{MIN_YEAR} and {MAX_YEAR}.", "out_of_range")
    return day


AMOUNT_EXAMPLES = "write it as 1250.50, 1250,50 or \"1 250,50\""
_GROUPING_SPACES = "[ \u00a0\u202f\u2009']"
# Accepted shapes, after the currency is removed. Digits grouped by spaces need groups of three;
# "." and "," together are unambiguous only when well grouped and the last one has 1 or 2 decimals.
_AMOUNT_SHAPES = (
    (re.compile(r"\d+"), None),
    (re.compile(r"\d+[.,]\d{1,2}"), None),
    (re.compile(rf"\d{{1,3}}(?:{_GROUPING_SPACES}\d{{3}})+(?:[.,]\d{{1,2}})?"), _GROUPING_SPACES),
    (re.compile(r"\d{1,3}(?:\.\d{3})+,\d{1,2}"), r"\."),
    (re.compile(r"\d{1,3}(?:,\d{3})+\.\d{1,2}"), ","),
)
_CURRENCY = re.compile(r"^(?:€|EUR)\s*|\s*(?:€|EUR)$", re.IGNORECASE)


def _coerce_amount(value: Any) -> Decimal:
    """An amount due, read only when it cannot be read two ways; never rounded, never negative."""
    if isinstance(value, bool):
        raise _Invalid(f"expected an amount; {AMOUNT_EXAMPLES}.", "invalid_type")
    if isinstance(value, int | Decimal):
        amount = Decimal(value)
    elif isinstance(value, float):
        # repr() gives the shortest decimal that round-trips, so 0.1 stays 0.1.
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        amount = _parse_amount_text(value)
    else:
        raise _Invalid(f"expected an amount; {AMOUNT_EXAMPLES}.", "invalid_type")
    if not amount.is_finite():
        raise _Invalid("expected a finite amount.")
    if amount < 0:
        raise _Invalid(f"{value!s} is negative; an amount due is written without a sign.", "negative_amount")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(Decimal("0.01")):
        raise _Invalid(f"{value!s} has more than two decimals; the bridge does not round a legal amount.",
                       "too_many_decimals")
    if abs(amount) >= Decimal("1e15"):
        raise _Invalid("amount out of range.", "out_of_range")
    return amount


def _parse_amount_text(value: str) -> Decimal:
    text = _CURRENCY.sub("", value.strip()).strip()
    negative = text.startswith("-")
    digits = text[1:].strip() if negative else text
    for shape, grouping in _AMOUNT_SHAPES:
        if shape.fullmatch(digits):
            plain = re.sub(grouping, "", digits) if grouping else digits
            if grouping in (r"\.", ","):  # the mixed forms: the other mark is the decimal one
                plain = plain.replace(",", ".")
            amount = Decimal(plain.replace(",", "."))
            return -amount if negative else amount
    raise _Invalid(*_explain_amount(value, digits))


def _explain_amount(value: str, digits: str) -> tuple[str, str]:
    """What the bridge understood of an amount it will not guess."""
    marks = re.findall(r"[.,]", digits)
    single = re.fullmatch(r"(\d+)([.,])(\d{3})", digits)
    if single:
        whole, mark, tail = single.groups()
        return (f"{value!r} is ambiguous: {mark!r} followed by three digits may separate thousands "
                f"({whole}{tail}) or decimals ({whole},{tail}); {AMOUNT_EXAMPLES}.", "ambiguous_amount")
    decimals = re.fullmatch(r"[\d\s\u00a0\u202f\u2009']*[.,](\d{3,})", digits)
    if decimals and len(marks) == 1:
        return (f"{value!r} has {len(decimals.group(1))} decimals; an amount has at most two "
                f"(the bridge does not round a legal amount).", "too_many_decimals")
    if len(marks) > 1:
        return (f"{value!r} has several separators ({' '.join(marks)}) that do not read as one amount; "
                f"{AMOUNT_EXAMPLES}.", "several_separators")
    return f"{value!r} is not an amount; {AMOUNT_EXAMPLES}.", "invalid_format"


def _coerce_email(value: Any) -> str:
    text = _as_text(value, 320)
    if not _EMAIL.match(text):
        raise _Invalid("expected an email address.")
    return text


def _coerce_list(value: Any) -> list[str]:
    if isinstance(value, str):
        # Zapier line items and form fields often arrive as one text, one item per line.
        items: list[Any] = [line for line in value.splitlines() if line.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise _Invalid("expected a list of texts.", "invalid_type")
    if len(items) > MAX_LIST_ITEMS:
        raise _Invalid(f"at most {MAX_LIST_ITEMS} items.", "too_long")
    result = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise _Invalid("every item must be a text.", "invalid_type")
        text = str(item).strip()
        if len(text) > MAX_LIST_ITEM_LENGTH:
            raise _Invalid(f"items are at most {MAX_LIST_ITEM_LENGTH} characters.", "too_long")
        if text:
            result.append(text)
    return result


_COERCERS = {
    "text": _coerce_text,
    "long_text": _coerce_long_text,
    "date": _coerce_date,
    "amount": _coerce_amount,
    "email": _coerce_email,
    "list": _coerce_list,
}
