"""The sandboxed Jinja2 environment letters are rendered in, its French filters, and source checks.

Uploaded templates are untrusted code. These layers keep them in their box:

1. ``check_source`` refuses, at upload, what a letter never needs: dunder attribute access,
   ``include``/``import``, ``extends`` of anything but the built-in ``base.html``, and loops
   nested deeper than two.
2. The ImmutableSandboxedEnvironment refuses unsafe attribute access and mutation at render time,
   whatever slipped past the static check.
3. Work is bounded: ``range`` is small, ``*`` and ``**`` cannot build huge values, every call
   checks a render deadline, and the output has a size limit (in ``render.py``).
4. The loader knows exactly one template, ``base.html``; nothing else on disk can be named.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from jinja2 import FunctionLoader, StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from connector.rendering.errors import TemplateSourceError

BASE_TEMPLATE = "base.html"
# The built-in letters live in the top-level templates/ folder; connector/assets/templates is a link
# to it, so that a wheel (which only carries package files) ships them too.
BUILTIN_DIR = Path(__file__).resolve().parents[1] / "assets" / "templates"

# Variables the renderer provides itself; never asked of the caller.
PROVIDED_VARIABLES = frozenset({"date_lettre", "titre_document"})

MAX_SOURCE_BYTES = 200_000
MAX_LOOP_NESTING = 2
MAX_RANGE = 1_000
# Bits of an integer a template may compute with ** (2**100_000 is already 30,000 digits).
MAX_POWER_BITS = 100_000
RENDER_SECONDS = 5.0
# Rendered HTML beyond this is a runaway loop, not a letter (xhtml2pdf would choke on it anyway).
MAX_OUTPUT_CHARS = 2_000_000

MONTHS_FR = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip

NNBSP = "\u202f"
NBSP = "\u00a0"


def date_fr(value: date | datetime | str | None) -> str:
    """A date the French way: ``27 novembre 2026``, with ``1er`` for the first of the month."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {MONTHS_FR[value.month - 1]} {value.year}"


def montant(value: Decimal | int | float | str | None, currency: str = "€") -> str:
    """An amount the French way: ``1 250,00 €``.

    Digits are grouped with a narrow no-break space and the currency follows a no-break space,
    as the French typographic convention (and CLDR) has it.
    """
    if value is None or value == "":
        return ""
    amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    units, cents = f"{abs(amount):.2f}".split(".")
    groups = []
    while len(units) > 3:
        groups.insert(0, units[-3:])
        units = units[:-3]
    groups.insert(0, units)
    text = f"{sign}{NNBSP.join(groups)},{cents}"
    return f"{text}{NBSP}{currency}" if currency else text


def nl2br(value: str | None) -> Markup:
    """Line breaks of a long text as ``<br>``, the text itself escaped."""
    if not value:
        return Markup("")
    return Markup("<br>\n").join(escape(line) for line in str(value).split("\n"))


def paragraphs(value: str | None) -> Markup:
    """A long text as HTML paragraphs: blank lines separate them, single newlines break lines."""
    if not value:
        return Markup("")
    blocks = [block.strip("\n") for block in re.split(r"\n\s*\n", str(value)) if block.strip()]
    return Markup("\n").join(Markup("<p>%s</p>") % nl2br(block) for block in blocks)


def _load_base(name: str) -> str | None:
    if name != BASE_TEMPLATE:
        return None
    return (BUILTIN_DIR / BASE_TEMPLATE).read_text(encoding="utf-8")


_deadline: ContextVar[float | None] = ContextVar("template_render_deadline", default=None)


@contextmanager
def render_deadline(seconds: float | None = None) -> Iterator[None]:
    """Bound the time of the template code run inside the block (checked at every call)."""
    token = _deadline.set(time.monotonic() + (seconds if seconds is not None else RENDER_SECONDS))
    try:
        yield
    finally:
        _deadline.reset(token)


def _limited_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise SecurityError(f"range() is limited to {MAX_RANGE} items in a letter template.")
    return numbers


class LetterSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus bounds on the work a template can ask for."""

    # Intercepting an operator also stops Jinja folding it at compile time, where
    # {{ 9**9**9 }} would otherwise hang the upload itself.
    intercepted_binops = frozenset({"*", "**"})

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        deadline = _deadline.get()
        if deadline is not None and time.monotonic() > deadline:
            raise SecurityError("The template ran for longer than a letter may take.")
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*" and isinstance(right, int) and isinstance(left, str | list | tuple):
            left, right = right, left
        if operator == "*" and isinstance(left, int) and isinstance(right, str | list | tuple):
            if left * len(right) > MAX_OUTPUT_CHARS:
                raise SecurityError("The template repeats a value too many times.")
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and max(left.bit_length(), 1) * right > MAX_POWER_BITS:
                raise SecurityError("The template computes a number too large for a letter.")
        return super().call_binop(context, operator, left, right)


def _make_environment() -> LetterSandbox:
    env = LetterSandbox(
        loader=FunctionLoader(_load_base),
        undefined=StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # The base template never changes while the process runs.
        auto_reload=False,
    )
    env.filters.update(date_fr=date_fr, montant=montant, nl2br=nl2br, paragraphes=paragraphs)
    env.globals["range"] = _limited_range
    return env


ENV: LetterSandbox = _make_environment()


def check_source(source: str) -> nodes.Template:
    """Parse an uploaded template and refuse what a letter never needs. Returns the AST.

    Raises TemplateSourceError with the line of the first problem.
    """
    if len(source.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise TemplateSourceError(f"The template is larger than {MAX_SOURCE_BYTES // 1000} kB.")
    try:
        tree = ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateSourceError(f"Syntax error: {exc.message}", exc.lineno) from exc
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport)):
        raise TemplateSourceError(
            "include and import are not allowed; extend \"base.html\" for the shared layout.", node.lineno
        )
    for node in tree.find_all(nodes.Extends):
        if not (isinstance(node.template, nodes.Const) and node.template.value == BASE_TEMPLATE):
            raise TemplateSourceError('Only {% extends "base.html" %} is allowed.', node.lineno)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name = _accessed_name(node)
        if name is not None and name.startswith("_"):
            raise TemplateSourceError(f"Access to the private name {name!r} is not allowed.", node.lineno)
    _check_loop_nesting(tree, 0)
    return tree


def _check_loop_nesting(node: nodes.Node, depth: int) -> None:
    """Refuse loops nested deeper than a letter needs: each level multiplies the work."""
    if isinstance(node, nodes.For):
        depth += 1
        if depth > MAX_LOOP_NESTING:
            raise TemplateSourceError(f"Loops may be nested at most {MAX_LOOP_NESTING} deep.", node.lineno)
    for child in node.iter_child_nodes():
        _check_loop_nesting(child, depth)


def _accessed_name(node: nodes.Node) -> str | None:
    """The attribute name an expression reaches for, when it is written literally."""
    if isinstance(node, nodes.Getattr):
        return str(node.attr)
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return node.arg.value if isinstance(node.arg.value, str) else None
    if isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
        first = node.args[0]
        if isinstance(first, nodes.Const) and isinstance(first.value, str):
            return first.value
    return None


def extends_base(tree: nodes.Template) -> bool:
    """Whether the template builds on the shared letter layout."""
    return any(True for _ in tree.find_all(nodes.Extends))


def undeclared_variables(tree: nodes.Template) -> set[str]:
    """The variables a template reads that it does not define itself (field discovery)."""
    return set(meta.find_undeclared_variables(tree)) - PROVIDED_VARIABLES


class CompiledTemplates:
    """A bounded cache of compiled templates keyed by the SHA-256 of their source.

    Compiling costs more than rendering a letter, and a Zap sends the same template again and again.
    """

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha256: str, source: str) -> Any:
        with self._lock:
            template = self._items.get(sha256)
            if template is not None:
                self._items.move_to_end(sha256)
                return template
        try:
            template = ENV.from_string(source)
        except TemplateSyntaxError as exc:
            raise TemplateSourceError(f"Syntax error: {exc.message}", exc.lineno) from exc
        with self._lock:
            self._items[sha256] = template
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return template


COMPILED = CompiledTemplates()
