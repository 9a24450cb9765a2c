"""A batch's rows: read from JSON or a spreadsheet's CSV export, mapped to letter fields, and
validated all together, so that one answer names every bad row.

Pure functions over plain values (no Flask, no database): the caller gives the template's fields
and the set of e-mail addresses holding a consent.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pydantic import ValidationError

from connector.batches.csvfile import MAX_ROWS
from connector.letters.requests import LetterIn
from connector.letters.requests import _loc_to_field as loc_to_field
from connector.letters.service import CONSENT_REQUIRED
from connector.rendering.errors import TemplateDataError
from connector.rendering.fields import FieldSpec, coerce_data

MAX_ERRORS = 100
# In a CSV cell, list fields (ordre du jour, lots) take one item per line, or items separated by " | ".
LIST_SEPARATOR = " | "

RECIPIENT_KEYS = ("type", "email", "first_name", "last_name", "company", "legal_basis")
ROW_KEYS = ("reference", "message", "sandbox_outcome")
IGNORE = "ignore"

# Column names a French or English spreadsheet uses for the recipient, compared without accents,
# case or punctuation. A template field of the same name wins over these.
_ALIASES: dict[str, str] = {
    **{name: "recipient.email" for name in ("email", "e_mail", "mail", "courriel", "adresse_email",
                                            "adresse_e_mail", "recipient_email", "recipient.email")},
    **{name: "recipient.type" for name in ("type", "recipient_type", "recipient.type", "type_destinataire")},
    **{name: "recipient.first_name" for name in ("first_name", "prenom", "recipient_first_name",
                                                 "recipient.first_name")},
    **{name: "recipient.last_name" for name in ("last_name", "nom", "nom_de_famille", "recipient_last_name",
                                                "recipient.last_name")},
    **{name: "recipient.company" for name in ("company", "societe", "raison_sociale", "recipient_company",
                                              "recipient.company")},
    **{name: "recipient.legal_basis" for name in ("legal_basis", "base_legale", "recipient_legal_basis",
                                                  "recipient.legal_basis")},
    **{name: "reference" for name in ("reference", "ref", "letter.reference")},
    "message": "message",
    "sandbox_outcome": "sandbox_outcome",
}


@dataclass(frozen=True)
class RowError:
    """One problem of one row: its number (1 = first data row), the column and what is wrong."""

    row: int | None
    column: str | None
    field: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "field": self.field, "code": self.code,
                "message": self.message}


@dataclass
class ValidRow:
    """A row ready to be stored: the letter it will become (without its documents)."""

    row: int
    letter: LetterIn
    data: dict[str, Any] = field(default_factory=dict)  # the row's own template values (not the common ones)


@dataclass(frozen=True)
class NoticeRule:
    """A minimum notice between the letter and a date it announces (e.g. an AG convocation)."""

    field: str
    days: int
    message: str


# Décret n° 67-223, art. 9: the convocation reaches co-owners at least 21 days before the assembly;
# with a registered letter the period runs from the day after its first presentation, so the day
# of sending itself cannot count (art. 64). Hence days + 1 below.
NOTICE_RULES: dict[str, NoticeRule] = {
    "convocation_ag_copropriete": NoticeRule(
        "date_assemblee", 21,
        "The assembly must be at least 21 days after the day following the convocation's notification "
        "(décret n° 67-223, art. 9 and 64). Send it earlier, or set allow_short_notice for an urgent assembly."),
}


# --- mapping ------------------------------------------------------------------------------------


def _norm(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return "".join(c if c.isalnum() or c == "." else "_" for c in ascii_name.strip().lower()).strip("_")


def _valid_target(target: str, template_keys: set[str]) -> bool:
    head, _, rest = target.partition(".")
    if head == "recipient":
        return rest in RECIPIENT_KEYS
    if head in ("data", "metadata"):
        return bool(rest) and "." not in rest and (head == "metadata" or not template_keys or rest in template_keys)
    return target in ROW_KEYS or target == IGNORE


def flatten(row: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON row's nested ``recipient``/``data``/``metadata`` objects as dotted columns."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if key in ("recipient", "data", "metadata") and isinstance(value, Mapping):
            for sub, item in value.items():
                flat[f"{key}.{sub}"] = item
        else:
            flat[key] = value
    return flat


def column_targets(columns: Iterable[str], mapping: Mapping[str, str | None], template_keys: set[str],
                   errors: list[RowError]) -> dict[str, str]:
    """Where each column goes (``recipient.email``, ``data.lots``, ``reference``… or ``ignore``).

    An explicit ``mapping`` wins; then a template field of that name; then the usual names. A
    column that goes nowhere is an error, not silently dropped: it may be a misspelt field.
    """
    targets: dict[str, str] = {}
    for column in columns:
        if column in mapping:
            target = mapping[column] or IGNORE
            if not _valid_target(target, template_keys):
                errors.append(RowError(None, column, "mapping", "invalid_mapping",
                                       f"Column {column!r} is mapped to {target!r}, which is not recipient.<type, "
                                       "email, first_name, last_name, company>, data.<template field>, "
                                       "metadata.<key>, reference, message, sandbox_outcome or ignore."))
                continue
        elif column in template_keys:
            target = f"data.{column}"
        elif _valid_target(column, template_keys) and "." in column:
            target = column
        elif _norm(column) in _ALIASES:
            target = _ALIASES[_norm(column)]
        elif _norm(column) in template_keys:
            target = f"data.{_norm(column)}"
        else:
            errors.append(RowError(None, column, "mapping", "unknown_column",
                                   f"Column {column!r} matches no recipient field and no field of the template. "
                                   f"Map it in mapping (e.g. {{\"{column}\": \"data.<field>\"}}), or to null to "
                                   "ignore it."))
            continue
        targets[column] = target
    used: dict[str, str] = {}
    for column, target in targets.items():
        if target != IGNORE and target in used:
            errors.append(RowError(None, column, "mapping", "duplicate_column",
                                   f"Columns {used[target]!r} and {column!r} both fill {target}."))
        used.setdefault(target, column)
    return targets


# --- validation ---------------------------------------------------------------------------------


@dataclass
class BatchContext:
    """What the rows are checked against."""

    fields: list[FieldSpec] | None  # the template's, or None when one PDF is sent to all
    common_data: dict[str, Any]
    # Letter fields common to all rows: message, reference, sandbox_outcome, metadata, and the defaults
    # of recipient_type and legal_basis.
    common: dict[str, Any]
    # (e-mail, needs consent, legal basis or None) → None when the letter may go out on that basis,
    # else (code, message): the consent register, the co-owners' paper register (connector.consent).
    legal_basis: Callable[[str, bool, str | None], tuple[str, str] | None]
    template_name: str | None = None
    today: date | None = None
    allow_short_notice: bool = False
    mapping: dict[str, str | None] = field(default_factory=dict)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _cell(value: Any, spec: FieldSpec | None) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if spec is not None and spec.type == "list" and LIST_SEPARATOR.strip() in value and "\n" not in value:
            return [part.strip() for part in value.split(LIST_SEPARATOR.strip()) if part.strip()]
    return value


def validate_rows(raw_rows: list[Any], ctx: BatchContext) -> tuple[list[ValidRow], list[RowError], int]:
    """Every row checked (recipient, consent, duplicates, template data, notice); returns the valid
    rows, the first ``MAX_ERRORS`` errors and the total number of errors."""
    errors: list[RowError] = []
    total_errors = 0

    def add(error: RowError) -> None:
        nonlocal total_errors
        total_errors += 1
        if len(errors) < MAX_ERRORS:
            errors.append(error)

    if not raw_rows:
        add(RowError(None, None, "rows", "empty_rows", "The batch has no rows: give one row per recipient."))
        return [], errors, total_errors
    if len(raw_rows) > MAX_ROWS:
        add(RowError(None, None, "rows", "too_many_rows", f"A batch holds at most {MAX_ROWS} rows."))
        return [], errors, total_errors
    specs = {spec.key: spec for spec in ctx.fields or []}
    flat_rows: list[dict[str, Any] | None] = []
    columns: dict[str, None] = {}
    for number, raw in enumerate(raw_rows, start=1):
        if not isinstance(raw, Mapping):
            add(RowError(number, None, f"rows.{number - 1}", "invalid_row",
                         "A row must be an object (column → value)."))
            flat_rows.append(None)
            continue
        if isinstance(raw.get("data"), str):
            # A platform's line item carries the row's own template values as one JSON text.
            try:
                parsed_data = json.loads(raw["data"]) if raw["data"].strip() else {}
            except json.JSONDecodeError:
                parsed_data = None
            if not isinstance(parsed_data, dict):
                add(RowError(number, "data", "data", "invalid_json",
                             'data must be a JSON object of template values, e.g. {"lots": ["Lot 12"]}.'))
                flat_rows.append(None)
                continue
            raw = {**raw, "data": parsed_data}
        flat = flatten(raw)
        flat_rows.append(flat)
        columns.update(dict.fromkeys(flat))
    header_errors: list[RowError] = []
    targets = column_targets(columns, ctx.mapping, set(specs), header_errors)
    for error in header_errors:
        add(error)
    column_of = {target: column for column, target in targets.items() if target != IGNORE}

    valid: list[ValidRow] = []
    seen: dict[str, int] = {}
    rule = NOTICE_RULES.get(ctx.template_name or "") if not ctx.allow_short_notice else None
    for number, flat in enumerate(flat_rows, start=1):
        if flat is None:
            continue
        recipient: dict[str, Any] = {}
        data: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        letter: dict[str, Any] = {}
        for column, value in flat.items():
            target = targets.get(column)
            if target is None or target == IGNORE:
                continue
            head, _, rest = target.partition(".")
            if head == "data":
                if not _blank(value):
                    data[rest] = _cell(value, specs.get(rest))
            elif _blank(value):
                continue
            elif head == "recipient":
                recipient[rest] = value.strip().lower() if rest == "type" and isinstance(value, str) else value
            elif head == "metadata":
                metadata[rest] = value
            else:
                letter[target] = value.strip() if isinstance(value, str) else value
        row_errors: list[RowError] = []

        def column_for(field_path: str | None) -> str | None:
            if field_path is None:
                return None
            if field_path.startswith("metadata"):
                return column_of.get(field_path) or "metadata"
            return column_of.get(field_path)

        merged = {**ctx.common_data, **data}
        if "type" not in recipient and ctx.common.get("recipient_type"):
            recipient["type"] = ctx.common["recipient_type"]
        if "legal_basis" not in recipient and ctx.common.get("legal_basis"):
            recipient["legal_basis"] = ctx.common["legal_basis"]
        body = {
            "recipient": recipient,
            "message": letter.get("message", ctx.common.get("message")),
            "reference": letter.get("reference") or (merged.get("reference") if "reference" in specs else None)
            or ctx.common.get("reference"),
            "metadata": {**ctx.common.get("metadata", {}), **metadata},
            "sandbox_outcome": letter.get("sandbox_outcome", ctx.common.get("sandbox_outcome")),
        }
        parsed: LetterIn | None = None
        try:
            parsed = LetterIn.model_validate(body)
        except ValidationError as exc:
            for err in exc.errors():
                path = loc_to_field(err["loc"])
                if path == "recipient" and err["type"] == "value_error":
                    path = "recipient"
                message = err["msg"].removeprefix("Value error, ")
                if path and path.startswith("recipient.") and err["type"] == "missing":
                    message = f"{path.split('.')[1]} is required for every recipient."
                row_errors.append(RowError(number, column_for(path), path, err["type"], message))
        email = str(recipient.get("email") or "").strip().lower()
        if parsed is not None:
            email = parsed.recipient.email.lower()
            refused = ctx.legal_basis(email, parsed.recipient.type in CONSENT_REQUIRED,
                                      getattr(parsed.recipient, "legal_basis", None))
            if refused is not None:
                code, message = refused
                column = column_of.get("recipient.legal_basis") if code != "consent_required" else None
                row_errors.append(RowError(number, column or column_of.get("recipient.email"), "recipient.email",
                                           code, message))
        if email:
            if email in seen:
                row_errors.append(RowError(number, column_of.get("recipient.email"), "recipient.email",
                                           "duplicate_recipient",
                                           f"{email} is already the recipient of row {seen[email]}."))
            else:
                seen[email] = number
        values: dict[str, Any] | None = None
        if ctx.fields is not None:
            try:
                values = coerce_data(ctx.fields, merged)
            except TemplateDataError as exc:
                for err in exc.errors:
                    key = str(err["field"]).removeprefix("data.")
                    column = column_of.get(f"data.{key}")
                    where = column if column else ("data (common to every row)" if key in ctx.common_data else None)
                    message = err["message"]
                    if where is None and err.get("code") == "missing":
                        message = f"{key} is required: add a column {key!r} or give it in data for every row."
                    row_errors.append(RowError(number, where, f"data.{key}", str(err.get("code", "invalid")),
                                               message))
        elif data:
            row_errors.append(RowError(number, next(iter(column_of.get(f"data.{k}") for k in data)), "data",
                                       "data_without_template", "Template fields are only used with a template."))
        if rule is not None and values is not None and ctx.today is not None:
            when = values.get(rule.field)
            if isinstance(when, date) and when < ctx.today + timedelta(days=rule.days + 1):
                row_errors.append(RowError(number, column_of.get(f"data.{rule.field}") or "data", f"data.{rule.field}",
                                           "notice_too_short",
                                           f"{when.isoformat()} is too soon: {rule.message}"))
        for error in row_errors:
            add(error)
        if not row_errors and parsed is not None:
            valid.append(ValidRow(number, parsed, data))
    return valid, errors, total_errors
