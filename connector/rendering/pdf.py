"""HTML → PDF with xhtml2pdf: A4, the embedded DejaVu font, metadata, byte-for-byte reproducible.

The PDF's hash is evidence, so the same HTML and letter time must give the same bytes. ReportLab
stamps each file with the wall-clock time and derives the document ID from it; under
``SOURCE_DATE_EPOCH`` and ``invariant`` it uses the given time instead and the ID follows. Both are
process-global, so they are set only while this module's lock is held (xhtml2pdf renders one
document at a time per process anyway, under its own lock).
"""

from __future__ import annotations

import functools
import io
import os
import threading
from datetime import datetime
from pathlib import Path

from reportlab import rl_config
from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy
from xhtml2pdf.default import DEFAULT_FONT

from connector.rendering.errors import TemplateSourceError

FONT_DIR = Path(__file__).resolve().parents[1] / "assets" / "fonts"
FONT_FAMILY = "LreSans"
_FACES = {
    # (bold, italic) -> (ReportLab name, file). No bold-italic file: bold stands in for it.
    (0, 0): (FONT_FAMILY, "DejaVuSans.ttf"),
    (1, 0): (f"{FONT_FAMILY}-Bold", "DejaVuSans-Bold.ttf"),
    (0, 1): (f"{FONT_FAMILY}-Oblique", "DejaVuSans-Oblique.ttf"),
    (1, 1): (f"{FONT_FAMILY}-Bold", "DejaVuSans-Bold.ttf"),
}

# A rendered letter reads nothing: no file, no URL. Fonts are registered beforehand, and
# images, if a custom template wants one, come inline as data: URIs.
_POLICY = ResourceAccessPolicy.server(None, allow_remote=False, max_render_seconds=30)
_LOCK = threading.Lock()


@functools.cache
def register_fonts() -> str:
    """Register the embedded font with ReportLab and xhtml2pdf, once per process.

    Parsing a TTF costs milliseconds per face; doing it per letter would be most of a render.
    Returns the CSS family name to use.
    """
    for (bold, italic), (name, filename) in _FACES.items():
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(FONT_DIR / filename)))
        addMapping(FONT_FAMILY, bold, italic, name)
    # xhtml2pdf copies this table into every document it renders: the family is then known to
    # all of them without an @font-face rule (which would re-read the font files each time).
    DEFAULT_FONT[FONT_FAMILY.lower()] = FONT_FAMILY
    return FONT_FAMILY


def html_to_pdf(html: str, *, title: str, author: str, created_at: datetime) -> bytes:
    """Render ``html`` to PDF bytes; the same arguments always give the same bytes.

    ``created_at`` (timezone-aware) becomes the document's creation date and seeds its ID.
    Raises TemplateSourceError when xhtml2pdf cannot lay the document out.
    """
    register_fonts()
    epoch = str(int(created_at.timestamp()))
    out = io.BytesIO()
    with _LOCK:
        previous_epoch = os.environ.get("SOURCE_DATE_EPOCH")
        previous_invariant = rl_config.invariant
        os.environ["SOURCE_DATE_EPOCH"] = epoch
        rl_config.invariant = 1
        try:
            status = pisa.pisaDocument(
                html,
                dest=out,
                encoding="utf-8",
                context_meta={"title": title, "author": author, "subject": title},
                resource_policy=_POLICY,
                raise_exception=False,
            )
        finally:
            rl_config.invariant = previous_invariant
            if previous_epoch is None:
                del os.environ["SOURCE_DATE_EPOCH"]
            else:
                os.environ["SOURCE_DATE_EPOCH"] = previous_epoch
    if getattr(status, "err", 0):
        raise TemplateSourceError("The letter could not be laid out as a PDF; check the template's HTML.")
    return out.getvalue()
