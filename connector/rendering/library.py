"""The template library: built-in templates from ``templates/`` and each account's uploads.

A custom template with the name of a built-in shadows it for that account. Its versions continue
the built-in's numbering, so ``(name, version)`` recorded on a letter names one source only.
Deleting a custom template marks all its versions deleted (letters keep pointing at them).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.models import TemplateVersion, utcnow
from connector.rendering.environment import (
    BASE_TEMPLATE,
    BUILTIN_DIR,
    check_source,
    extends_base,
    undeclared_variables,
)
from connector.rendering.errors import TemplateNotFound, TemplateSourceError
from connector.rendering.fields import FieldDeclarationError, FieldSpec, parse_field_specs

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
MAX_TITLE_LENGTH = 300
MAX_DESCRIPTION_LENGTH = 1000


class TemplateConflict(Exception):
    """The operation clashes with what exists (API: 409); ``code`` says how."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TemplateSpec:
    """One version of a template, built-in or custom: everything needed to render it."""

    name: str
    version: int
    title: str
    source: str
    fields: list[FieldSpec]
    origin: str  # "builtin" | "custom"
    description: str = ""
    created_at: datetime | None = None
    sha256: str = field(default="")

    def summary(self) -> dict[str, Any]:
        """The template as ``GET /v1/templates`` lists it."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "version": self.version,
            "origin": self.origin,
            "sha256": self.sha256,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }

    def public(self) -> dict[str, Any]:
        """The template with its fields, as ``GET /v1/templates/{name}`` serves it."""
        return {**self.summary(), "fields": [spec.public() for spec in self.fields]}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- built-in templates -------------------------------------------------------------------------


@functools.cache
def _standard_fields() -> dict[str, FieldSpec]:
    raw = json.loads((BUILTIN_DIR / "_standard_fields.json").read_text(encoding="utf-8"))
    return {spec.key: spec for spec in parse_field_specs(raw["fields"])}


def _standard_fields_used(tree_fields: set[str]) -> list[FieldSpec]:
    """The shared sender/recipient fields, in their declared order, that a template reads."""
    return [spec for key, spec in _standard_fields().items() if key in tree_fields]


@functools.cache
def builtin_templates() -> dict[str, TemplateSpec]:
    """Every built-in template, read once from ``templates/<name>.json`` + ``.html``."""
    templates: dict[str, TemplateSpec] = {}
    for declaration in sorted(BUILTIN_DIR.glob("*.json")):
        if declaration.name.startswith("_"):
            continue
        name = declaration.stem
        meta = json.loads(_read(declaration))
        source = _read(declaration.with_suffix(".html"))
        own = parse_field_specs(meta.get("fields", []))
        # The standard fields are declared once, in _standard_fields.json, and join every template
        # built on base.html (in the order sender, recipient, place... then the letter's own).
        used = _base_variables() if extends_base(check_source(source)) else set()
        standard = [spec for spec in _standard_fields_used(used) if spec.key not in {s.key for s in own}]
        templates[name] = TemplateSpec(
            name=name,
            version=int(meta.get("version", 1)),
            title=meta["title"],
            description=meta.get("description", ""),
            source=source,
            fields=standard + own,
            origin="builtin",
            sha256=_sha256(source),
        )
    return templates


def _read(path: Any) -> str:
    return str(path.read_text(encoding="utf-8"))


# --- custom templates ---------------------------------------------------------------------------


def _custom_versions(
    session: Session, account_id: str, name: str, *, include_deleted: bool = False, limit: int | None = None
) -> list[TemplateVersion]:
    """The account's versions of ``name``, newest first."""
    query = select(TemplateVersion).where(
        TemplateVersion.account_id == account_id, TemplateVersion.name == name
    )
    if not include_deleted:
        query = query.where(TemplateVersion.deleted_at.is_(None))
    return list(session.scalars(query.order_by(TemplateVersion.version.desc()).limit(limit)))


def _spec_from_row(row: TemplateVersion) -> TemplateSpec:
    return TemplateSpec(
        name=row.name,
        version=row.version,
        title=row.title,
        source=row.source,
        fields=parse_field_specs(row.fields or []),
        origin="custom",
        description=row.description or "",
        created_at=row.created_at,
        sha256=row.sha256,
    )


def resolve_template(session: Session, account_id: str, name: str) -> TemplateSpec:
    """The version of ``name`` a new letter of this account uses: its latest upload, else the built-in.

    When ``session`` has no transaction open, the lookup runs in a short one of its own and leaves
    ``session`` idle: on SQLite every transaction holds the write lock, and the caller is about to
    spend a whole render before writing anything.
    """
    if isinstance(name, str) and NAME_PATTERN.match(name):
        if session.in_transaction():
            latest = _custom_versions(session, account_id, name, limit=1)
            custom = _spec_from_row(latest[0]) if latest else None
        else:
            with Session(bind=session.get_bind()) as reader:
                latest = _custom_versions(reader, account_id, name, limit=1)
                custom = _spec_from_row(latest[0]) if latest else None
        if custom is not None:
            return custom
        builtin = builtin_templates().get(name)
        if builtin is not None:
            return builtin
    raise TemplateNotFound(name)


def list_specs(session: Session, account_id: str) -> list[TemplateSpec]:
    """The templates an account can use (latest version each), sorted by name."""
    latest = (
        select(TemplateVersion.name, func.max(TemplateVersion.version).label("version"))
        .where(TemplateVersion.account_id == account_id, TemplateVersion.deleted_at.is_(None))
        .group_by(TemplateVersion.name)
        .subquery()
    )
    rows = session.scalars(
        select(TemplateVersion).join(
            latest,
            (TemplateVersion.name == latest.c.name) & (TemplateVersion.version == latest.c.version),
        ).where(TemplateVersion.account_id == account_id)
    )
    specs = dict(builtin_templates())
    for row in rows:
        specs[row.name] = _spec_from_row(row)
    return [specs[name] for name in sorted(specs)]


def prepare_upload(
    name: str, title: Any, source: Any, fields: Any, known: list[FieldSpec] | None = None
) -> tuple[str, list[FieldSpec]]:
    """Check an uploaded template and settle its fields: declared, else discovered.

    Discovered fields keep their declaration from ``known`` (the previous version) when it has one,
    so a new version of a template does not lose its labels and types for want of a ``fields`` list.
    Raises TemplateSourceError (``field`` tells which part of the request is at fault).
    """
    _check_name(name)
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE_LENGTH:
        raise TemplateSourceError(f"title must be a non-empty text of at most {MAX_TITLE_LENGTH} characters.",
                                  field="title")
    if not isinstance(source, str) or not source.strip():
        raise TemplateSourceError("source must be the template's HTML (Jinja2) as a string.", field="source")
    tree = check_source(source)
    used = undeclared_variables(tree)
    standard = _standard_fields_used(_base_variables()) if extends_base(tree) else []
    if fields is None:
        # Discovery: the template's own variables become required text fields, in name order;
        # the shared layout's fields keep their declared labels and types.
        previous = {spec.key: spec for spec in known or []}
        standard_keys = {spec.key for spec in standard}
        discovered = used - standard_keys
        # Previously declared fields first, in their order; new variables after them, by name.
        own = [spec for spec in known or [] if spec.key in discovered] + [
            FieldSpec(key=key, label=key.replace("_", " ").capitalize())
            for key in sorted(discovered - set(previous))
        ]
        return source, standard + own
    try:
        specs = parse_field_specs(fields)
    except FieldDeclarationError as exc:
        raise TemplateSourceError(str(exc), field="fields") from exc
    declared = {spec.key for spec in specs}
    missing = sorted(used - declared - {s.key for s in standard})
    if missing:
        raise TemplateSourceError(
            "The template uses variables its fields do not declare: " + ", ".join(missing) + ".",
            field="fields",
        )
    return source, [s for s in standard if s.key not in declared] + specs


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise TemplateSourceError(
            "name must be 1-100 lower-case letters, digits, '_' or '-', starting with a letter or digit.",
            field="name",
        )


@functools.cache
def _base_variables() -> set[str]:
    return undeclared_variables(check_source(_read(BUILTIN_DIR / BASE_TEMPLATE)))


def add_version(
    session: Session,
    account_id: str,
    name: str,
    title: Any,
    source: Any,
    fields: Any,
    *,
    must_exist: bool,
    description: Any = None,
) -> TemplateSpec:
    """Store a new version of a custom template (``must_exist``: PUT, else POST) and return it."""
    _check_name(name)
    live = _custom_versions(session, account_id, name)
    builtin = builtin_templates().get(name)
    current = _spec_from_row(live[0]) if live else builtin
    if must_exist and title is None and current is not None:
        title = current.title  # a new version keeps its title unless given another
    if must_exist and description is None and current is not None:
        description = current.description  # ... and its description
    if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH):
        raise TemplateSourceError(
            f"description must be a text of at most {MAX_DESCRIPTION_LENGTH} characters.", field="description"
        )
    checked_source, specs = prepare_upload(name, title, source, fields, current.fields if current else None)
    if must_exist and not live and builtin is None:
        raise TemplateNotFound(name)
    if not must_exist and live:
        raise TemplateConflict(
            "template_exists",
            f"A template named {name!r} already exists; PUT /v1/templates/{name} adds a version.",
        )
    every = _custom_versions(session, account_id, name, include_deleted=True)
    version = max([row.version for row in every] + [builtin.version if builtin else 0]) + 1
    row = TemplateVersion(
        account_id=account_id,
        name=name,
        version=version,
        title=title.strip(),
        description=description.strip() if description else None,
        source=checked_source,
        fields=[_declaration(spec) for spec in specs],
        sha256=_sha256(checked_source),
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _spec_from_row(row)


def _declaration(spec: FieldSpec) -> dict[str, Any]:
    declaration: dict[str, Any] = {
        "key": spec.key, "label": spec.label, "type": spec.type, "required": spec.required, "help": spec.help,
        "example": spec.example,
    }
    if spec.choices:
        declaration["choices"] = list(spec.choices)
    return declaration


def delete_custom(session: Session, account_id: str, name: str) -> None:
    """Mark every version of a custom template deleted; a shadowed built-in becomes visible again."""
    rows = _custom_versions(session, account_id, name)
    if not rows:
        if name in builtin_templates():
            raise TemplateConflict(
                "builtin_template", f"{name!r} is a built-in template and cannot be deleted."
            )
        raise TemplateNotFound(name)
    now = utcnow()
    for row in rows:
        row.deleted_at = now
    session.flush()


def version_history(session: Session, account_id: str, name: str) -> list[TemplateSpec]:
    """Every live version of ``name`` for the account, newest first, the built-in last."""
    specs = [_spec_from_row(row) for row in _custom_versions(session, account_id, name)]
    builtin = builtin_templates().get(name)
    if builtin is not None:
        specs.append(builtin)
    if not specs:
        raise TemplateNotFound(name)
    return specs
