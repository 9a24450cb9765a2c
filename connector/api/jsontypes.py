"""Field types for request models that accept exactly what their JSON Schema says.

pydantic's lax mode converts on the way in: ``false`` becomes 0 for an integer, ``"5"`` becomes 5,
and the number 0 becomes 1970-01-01 for a date-time. The documented schema (generated from the same
models) says integer, number or date-time string, so a client reading the document, or a
generator such as schemathesis, expects those to be refused — and a legal date taken from a
number is a guess. These types refuse what the schema refuses and keep what it allows (``1.0`` is
an integer in JSON Schema, so it is one here too).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number")
    return value


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time text")
    return value


# The check alone, for a bounded field that may be null: ``Annotated[float, Field(ge=0), NUMBER_ONLY] | None``
# (bounds written on ``JsonNumber | None`` are checked, but pydantic leaves them in the JSON Schema
# as its own words, ge and le, which no OpenAPI reader knows).
NUMBER_ONLY = BeforeValidator(_number)
JsonInt = Annotated[int, BeforeValidator(_number)]
JsonNumber = Annotated[float, BeforeValidator(_number)]
JsonDateTime = Annotated[datetime, BeforeValidator(_text)]
