"""Query parameters shared by several routes, as pydantic models the OpenAPI document is made from.

The views read ``request.args`` with the helpers of ``connector.api.common`` (``limit_arg``,
``iso_datetime_arg``…), which answer 400 with the bridge's own error codes; these models say the same
thing for the document (``connector.api.openapi.model_parameters``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from connector.api.common import INSTANT_QUERY, MAX_LIMIT


def choice(values: Iterable[str]) -> Any:
    """An optional query argument taking one of ``values``, or empty: the views read it as
    ``if status:``, and Zapier, Make and n8n send an optional field left blank as ``status=``."""
    return Literal[(*values, "")] | None  # type: ignore[valid-type]


# A date, a date-time or empty (common.iso_datetime_arg).
Instant = Annotated[str | None, WithJsonSchema(INSTANT_QUERY)]


class PageQuery(BaseModel):
    """``limit`` and ``cursor`` (common.limit_arg, common.page)."""

    limit: int = Field(20, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, description="next_cursor of the previous page")
