"""The IVOA's ADQL test queries (``lyonetia``, in ../shared/data/lyonetia/adql): every query the suite calls
valid is read by the TAP front end, and every one it calls invalid is refused, with a line and column.

Validity here is the grammar's: a valid query may still use an ADQL function this service does not
offer (AREA, IN_UNIT, ...) or a coordinate system other than ICRS, which the service then refuses when
it checks the query against its tables; an invalid query may be invalid for its meaning (a function
no one defined), which the function check finds. ESO's obscore queries call ESO's own functions: for
them only the grammar is asked."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from starling.adql.parse import FilterSyntaxError
from starling.adql.query import check_functions, parse_query

pytestmark = pytest.mark.samples


def _queries(samples: Path) -> list[tuple[str, str, bool]]:
    found = []
    for path in sorted((samples / "lyonetia" / "adql").glob("*/*.xml")):
        for query in ET.parse(path).getroot().iter("query"):
            for adql in query.iter("adql"):
                found.append((path.name, adql.text or "", adql.get("valid") == "true"))
    return found


def _refusal(name: str, text: str) -> FilterSyntaxError | None:
    try:
        tree = parse_query(text)
    except FilterSyntaxError as exc:
        return exc
    if name.startswith("X1_obscore_eso"):
        return None
    try:
        check_functions(tree, text)
    except FilterSyntaxError as exc:  # a function no one defined; not one ADQL has and this service lacks
        return exc if "unknown function" in exc.message else None
    return None


def test_every_valid_query_is_read_and_every_invalid_one_refused_where_it_goes_wrong(samples: Path) -> None:
    queries = _queries(samples)
    assert len(queries) > 200
    wrong = []
    for name, text, valid in queries:
        refused = _refusal(name, text)
        if valid and refused is not None:
            wrong.append(f"{name}: valid, refused: {refused.message}\n{text.strip()}")
        if not valid:
            if refused is None:
                wrong.append(f"{name}: invalid, accepted:\n{text.strip()}")
            elif not (1 <= refused.line <= text.count("\n") + 1 and refused.column >= 1):
                wrong.append(f"{name}: refused without a place: {refused}")
    assert not wrong, "\n\n".join(wrong)
