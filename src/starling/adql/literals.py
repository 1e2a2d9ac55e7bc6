"""Values written into ADQL text as literals, for services that build queries from their parameters.

A value from a request is never pasted as it came: a string becomes a string literal (ADQL doubles a
single quote inside one, as SQL does), a number is written from the parsed number, never from the
text the client sent, so nothing a client sends can end a literal and start a clause.
"""

from __future__ import annotations

import math

__all__ = ["adql_number", "adql_string"]


def adql_string(value: str) -> str:
    """``value`` as an ADQL string literal. A NUL cannot be in one (PostgreSQL's text holds none)."""
    if "\x00" in value:
        raise ValueError("a NUL character cannot be in an ADQL string")
    return "'" + value.replace("'", "''") + "'"


def adql_number(value: int | float) -> str:
    """A finite number as an ADQL numeric literal (``repr`` keeps every digit of a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"ADQL has no literal for {value!r}")
    return repr(int(value)) if isinstance(value, int) else repr(float(value))
