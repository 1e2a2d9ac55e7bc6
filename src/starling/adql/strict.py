"""What ADQL 2.1 refuses that sqlglot, a reader of many SQL dialects, would let through: the strict
rules a TAP query is held to before any table is looked at (``query.py``).

- Names: an unquoted name starts with a letter and is not one of ADQL's or SQL's reserved words
  (``distance``, ``size``, ``count`` as column names must be quoted); functions are the language's own.
- Shape: a SELECT lists something and reads FROM a table; a JOIN says how (ON, USING, NATURAL or CROSS);
  WITH stands only at the head of the whole query; TOP and OFFSET take a whole number, not negative.
- Meaning: a WHERE or HAVING is a condition (a comparison, not a bare value or a POINT); CAST goes to
  one of ADQL's types; a CIRCLE's centre is a POINT when it has two arguments.

Each fault names its line and column.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from starling.adql.catalogue import catalogue_name, function_arguments
from starling.adql.parse import FilterSyntaxError, Sql, fault, line_column


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


ADQL_RESERVED = _words(
    "ABS ACOS AREA ASIN ATAN ATAN2 BIGINT BOX CEILING CENTROID CIRCLE CONTAINS COORD1 COORD2 COORDSYS "
    "COS COT DEGREES DISTANCE EXP FLOOR ILIKE INTERSECTS IN_UNIT LOG LOG10 MOD OFFSET PI POINT "
    "POLYGON POWER RADIANS REGION RAND ROUND SIN SQRT TOP TAN TRUNCATE "
)
SQL_RESERVED = _words(
    "ABSOLUTE ACTION ADD ALL ALLOCATE ALTER AND ANY ARE AS ASC ASSERTION AT AUTHORIZATION AVG BEGIN "
    "BETWEEN BIT BIT_LENGTH BOTH BY CASCADE CASCADED CASE CAST CATALOG CHAR CHARACTER CHAR_LENGTH "
    "CHARACTER_LENGTH CHECK CLOSE COALESCE COLLATE COLLATION COLUMN COMMIT CONNECT CONNECTION "
    "CONSTRAINT CONSTRAINTS CONTINUE CONVERT CORRESPONDING COUNT CREATE CROSS CURRENT CURRENT_DATE "
    "CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATE DAY DEALLOCATE DECIMAL DECLARE DEFAULT "
    "DEFERRABLE DEFERRED DELETE DESC DESCRIBE DESCRIPTOR DIAGNOSTICS DISCONNECT DISTINCT DOMAIN "
    "DOUBLE DROP ELSE END END-EXEC ESCAPE EXCEPT EXCEPTION EXEC EXECUTE EXISTS EXTERNAL EXTRACT FALSE "
    "FETCH FIRST FLOAT FOR FOREIGN FOUND FROM FULL GET GLOBAL GO GOTO GRANT GROUP HAVING HOUR "
    "IDENTITY IMMEDIATE IN INDICATOR INITIALLY INNER INPUT INSENSITIVE INSERT INT INTEGER INTERSECT "
    "INTERVAL INTO IS ISOLATION JOIN KEY LANGUAGE LAST LEADING LEFT LEVEL LIKE LOCAL LOWER MATCH MAX "
    "MIN MINUTE MODULE MONTH NAMES NATIONAL NATURAL NCHAR NEXT NO NOT NULL NULLIF NUMERIC "
    "OCTET_LENGTH OF ON ONLY OPEN OPTION OR ORDER OUTER OUTPUT OVERLAPS PAD PARTIAL POSITION "
    "PRECISION PREPARE PRESERVE PRIMARY PRIOR PRIVILEGES PROCEDURE PUBLIC READ REAL REFERENCES "
    "RELATIVE RESTRICT REVOKE RIGHT ROLLBACK ROWS SCHEMA SCROLL SECOND SECTION SELECT SESSION "
    "SESSION_USER SET SIZE SMALLINT SOME SPACE SQL SQLCODE SQLERROR SQLSTATE SUBSTRING SUM "
    "SYSTEM_USER TABLE TEMPORARY THEN TIME TIMESTAMP TIMEZONE_HOUR TIMEZONE_MINUTE TO TRAILING "
    "TRANSACTION TRANSLATE TRANSLATION TRIM TRUE UNION UNIQUE UNKNOWN UPDATE UPPER USAGE USER USING "
    "VALUE VALUES VARCHAR VARYING VIEW WHEN WHENEVER WHERE WITH WORK WRITE YEAR ZONE "
)
RESERVED = ADQL_RESERVED | SQL_RESERVED
# ADQL 2.1's CAST targets (section 4.8.1), by the words that start them.
CAST_TYPES = frozenset({"POINT", "CIRCLE", "POLYGON"}) | frozenset(
    {"SMALLINT", "INTEGER", "BIGINT", "REAL", "DOUBLE", "CHAR", "VARCHAR", "TIMESTAMP", "INT"}
)
_CONDITIONS = (
    exp.Predicate,
    exp.Connector,
    exp.Not,
    exp.Exists,
    exp.Between,
    exp.In,
    exp.Is,
    exp.Like,
    exp.ILike,
    exp.Escape,
)


def check_tokens(tokens: list[Any], text: str) -> None:
    """The rules a token stream shows: names, CAST targets, TOP and OFFSET counts, JOINs."""
    targets = {index + 1 for index in _cast_alias_tokens(tokens)}
    for index, token in enumerate(tokens):
        name = token.token_type.name
        if index in targets:
            if token.text.split()[0].upper() not in CAST_TYPES:
                raise _at(
                    text,
                    token,
                    f"CAST cannot make a {token.text}; ADQL casts to {', '.join(sorted(CAST_TYPES))}",
                )
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        calls = following is not None and following.token_type.name == "L_PAREN"
        if name == "VAR" and not calls:
            word = token.text
            if not word[:1].isalpha():
                raise _at(text, token, f'the name {word!r} must start with a letter (or be quoted: "{word}")')
            if word.upper() in RESERVED:
                raise _at(
                    text,
                    token,
                    f'{word!r} is a reserved word in ADQL: quote it ("{word}") to use it as a name',
                )
        if (
            name in ("TOP", "OFFSET")
            and following is not None
            and (following.token_type.name != "NUMBER" or not following.text.isdigit())
        ):
            raise _at(text, following, f"{token.text.upper()} takes a whole number of rows (0 or more)")
        if name == "JOIN":
            _check_join(tokens, index, text)


_JOIN_WORDS = ("INNER", "LEFT", "RIGHT", "FULL", "OUTER", "NATURAL", "CROSS")
_CLAUSE_ENDS = (
    "WHERE",
    "GROUP_BY",
    "ORDER_BY",
    "HAVING",
    "JOIN",
    "COMMA",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "LIMIT",
)


def _check_join(tokens: list[Any], at: int, text: str) -> None:
    """A JOIN (not a comma between tables) says how: NATURAL, CROSS, or an ON or USING after it."""
    before = at - 1
    while before >= 0 and tokens[before].token_type.name in _JOIN_WORDS:
        if tokens[before].token_type.name in ("NATURAL", "CROSS"):
            return
        before -= 1
    depth = 0
    for token in tokens[at + 1 :]:
        kind = token.token_type.name
        if kind == "L_PAREN":
            depth += 1
        elif kind == "R_PAREN":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and kind in ("ON", "USING"):
            return
        elif depth == 0 and kind in _CLAUSE_ENDS:
            break
    raise _at(text, tokens[at], "a JOIN says how: ON a condition, USING (columns), NATURAL or CROSS")


def _cast_alias_tokens(tokens: list[Any]) -> list[int]:
    """Where the AS of each CAST(value AS type) is (sqlglot reads CAST as a name; ADQL as a keyword)."""
    found = []
    for start, token in enumerate(tokens):
        if (
            token.text.upper() != "CAST"
            or start + 1 >= len(tokens)
            or tokens[start + 1].token_type.name != "L_PAREN"
        ):
            continue
        depth = 0
        for index in range(start + 1, len(tokens)):
            kind = tokens[index].token_type.name
            depth += {"L_PAREN": 1, "R_PAREN": -1}.get(kind, 0)
            if depth == 0:
                break
            if depth == 1 and kind == "ALIAS" and index + 1 < len(tokens):
                found.append(index)
                break
    return found


def check_shape(tree: Sql, text: str) -> None:
    """The rules the parsed query shows."""
    for with_clause in tree.find_all(exp.With):
        if with_clause.parent is not tree:
            raise fault(text, with_clause, "WITH stands at the head of the whole query, not inside it")
    for select in tree.find_all(exp.Select):
        if not select.expressions:
            raise fault(text, select, "SELECT lists what to return: columns, expressions or *")
        if select.args.get("from") is None and select.args.get("from_") is None:
            raise fault(text, select, "a SELECT reads FROM a table")
        for clause in ("where", "having"):
            node = select.args.get(clause)
            condition = node.this if node is not None else None
            while isinstance(condition, exp.Paren):
                condition = condition.this
            if node is not None and not isinstance(condition, _CONDITIONS):
                raise fault(
                    text, node.this, f"{clause.upper()} takes a condition (a comparison), not a value"
                )
    for node in tree.find_all(exp.Func):
        if catalogue_name(node) == "POLYGON":
            args = [a for a in function_arguments(node) if not (isinstance(a, exp.Literal) and a.is_string)]
            if len(args) < 6 or len(args) % 2:
                raise fault(text, node, "POLYGON takes three or more vertices, as ra, dec pairs")
    for node in tree.find_all(exp.Func):
        if catalogue_name(node) == "CIRCLE":
            args = [a for a in function_arguments(node) if not (isinstance(a, exp.Literal) and a.is_string)]
            if len(args) == 2 and not (isinstance(args[0], exp.Func) and catalogue_name(args[0]) == "POINT"):
                raise fault(text, node, "CIRCLE takes a POINT and a radius, or ra, dec and a radius")


def _at(text: str, token: Any, message: str) -> FilterSyntaxError:
    return FilterSyntaxError(message, text, *line_column(text, token.start))
