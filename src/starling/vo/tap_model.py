"""The metadata TAP serves of a table, a column and a foreign key (TAP 1.1 section 4, VODataService 1.1).

A column's ``name`` is its name in the database and in results (TAP_SCHEMA's ``size``);
:attr:`TapColumn.adql_name` is how ADQL writes it, a delimited identifier for a reserved word of ADQL
(``"size"``). Datatypes are VOTable's: ``double``, ``long``, ``int``, ``boolean``, ``char`` (arraysize
``*`` for text of any length) ...

A result is handed to its writer in chunks of rows (:func:`in_chunks`), then :class:`ResultEnd` says how
it ended.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

TAP_SCHEMA = "TAP_SCHEMA"
STARLING_SCHEMA = "starling"

# The names of served columns that ADQL 2.1 reserves (its BNF's SQL and ADQL reserved words): a test
# holds every served name either out of that list or in this one.
ADQL_RESERVED_NAMES = frozenset({"SIZE"})
_REGULAR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True)
class TapColumn:
    """One column as TAP serves it: its name, VOTable datatype (arraysize, xtype) and metadata."""

    name: str
    datatype: str
    description: str
    unit: str = ""
    ucd: str = ""
    principal: bool = False
    indexed: bool = False
    arraysize: str | None = None
    xtype: str | None = None

    @property
    def adql_name(self) -> str:
        """The name as ADQL writes it: in double quotes when it is a reserved word or no regular
        identifier (``"xmatch.gaia.dist_arcsec"``; TAP 1.1 section 4.3: TAP_SCHEMA and VOSI-tables give
        a delimited name with its quotes)."""
        if self.name.upper() in ADQL_RESERVED_NAMES or not _REGULAR_NAME.fullmatch(self.name):
            return f'"{self.name}"'
        return self.name

    @property
    def size(self) -> int | None:
        """TAP 1.0's ``"size"``: the arraysize as a number when it is one-dimensional and bounded."""
        if self.arraysize is None or "x" in self.arraysize:
            return None
        digits = self.arraysize.rstrip("*")
        return int(digits) if digits else None


@dataclass(frozen=True)
class TapKey:
    """A foreign key: ``columns`` pairs each column of ``from_table`` with the one of ``target_table``
    it refers to."""

    from_table: str
    target_table: str
    columns: tuple[tuple[str, str], ...]
    description: str


@dataclass(frozen=True)
class TapTable:
    """A served table: ``name`` is unqualified; :attr:`qualified_name` is how TAP clients write it."""

    schema: str
    name: str
    description: str
    columns: tuple[TapColumn, ...]
    primary_key: tuple[str, ...]

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> TapColumn:
        """The column of this name, in any case, bare or as ADQL writes it (``size``, ``"size"``)."""
        wanted = name.strip().lower()
        for column in self.columns:
            if wanted in (column.name.lower(), column.adql_name.lower()):
                return column
        raise KeyError(f"{self.qualified_name} has no column {name!r}")


# ---- a result as it is read ----------------------------------------------------------------------------

CHUNK_ROWS = 1000  # rows per chunk when a result is handed on in chunks: one chunk is what a writer holds


@dataclass
class ResultEnd:
    """How a result ended, known only once its last row was read: a streamed document says it after its
    rows. ``overflow``: MAXREC cut the result short. ``error``: the message of a failure after rows were
    already sent (the query's time ran out while they were fetched): the rows before it stand, the rest
    are missing. Mutable: whoever reads the rows sets it when they run out."""

    overflow: bool = False
    error: str | None = None


def in_chunks(rows: Iterable[Sequence[object]], size: int = CHUNK_ROWS) -> Iterator[list[Sequence[object]]]:
    """``rows`` as lists of at most ``size`` rows, read as they are needed (for a writer of chunks given
    rows one by one)."""
    chunk: list[Sequence[object]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
