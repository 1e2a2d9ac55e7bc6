"""The functions PostgreSQL needs to run translated ADQL with the meaning the stream filters give it
(``numpy_functions.py``), made by the TAP service in a schema of its own (``SCHEMA``) when it starts.

PostgreSQL raises an error where the filters' maths gives NULL (a NaN or an infinity is NULL there):
``SQRT`` of a negative number, ``LOG`` of zero, ``ACOS(2)``, ``EXP`` past a double's range, a negative
number to a fractional power; its ``ROUND`` of a double rounds halves to even; its ``%`` takes no
doubles. Each function here is the filters' arithmetic, in the same order of operations on doubles, so
both give the same bits: domain errors are NULL, an underflow is 0, halves round away from zero, and
``MOD`` of doubles is C's exact ``fmod``.

Not guarded (an error here, NULL in a filter; no alert's value comes near): an overflow of ``*`` or
``/`` past 1e308, of ``POWER`` with an exponent beyond 1e300, and of ``ROUND``/``TRUNCATE`` whose
scaling (x times 10^n) leaves a double's range.
"""

from __future__ import annotations

SCHEMA = "starling_tap"

_LAST_FINITE_EXP = "709.782712893384"  # exp of anything larger is an infinity (NULL)
_LAST_ZERO_EXP = "-745.1332191019412"  # exp of this or less is 0 (PostgreSQL calls it an underflow)


def qualified(name: str) -> str:
    """A function of the schema by its full name, as the translated SQL calls it."""
    return f"{SCHEMA}.{name}"


def _sql_function(signature: str, returns: str, body: str) -> str:
    return (
        f"CREATE FUNCTION {SCHEMA}.{signature} RETURNS {returns} "
        f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {body} $$"
    )


_D = "double precision"
_ONE = f"(x {_D})"

# C's fmod, exact: the divisor scaled by a power of two to the largest multiple of it not past the
# remainder, subtracted (exact: Sterbenz), until the remainder is below the divisor. Scaling by powers of
# two is exact; each pass clears the remainder's leading bit, so passes are at most the bits of the
# quotient (about 60 for an alert's values).
_FMOD = f"""
CREATE FUNCTION {SCHEMA}.modulo(x {_D}, y {_D}) RETURNS {_D}
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    r {_D} := abs(x);
    d {_D} := abs(y);
    t {_D};
    k integer;
BEGIN
    IF d = 0 OR x = 'NaN' OR y = 'NaN' OR r = 'Infinity' THEN
        RETURN NULL;
    END IF;
    IF d = 'Infinity' THEN
        RETURN x;
    END IF;
    WHILE r >= d LOOP
        k := greatest(floor((pg_catalog.ln(r) - pg_catalog.ln(d)) / pg_catalog.ln(2.0::float8)) - 1, 0);
        t := d;
        WHILE k > 1000 LOOP
            t := t * 2.0::float8 ^ 1000;
            k := k - 1000;
        END LOOP;
        t := t * 2.0::float8 ^ k;
        WHILE t <= r - t LOOP
            t := t * 2;
        END LOOP;
        r := r - t;
    END LOOP;
    RETURN CASE WHEN x < 0 THEN -r ELSE r END;
END $$
"""

DDL: tuple[str, ...] = (
    _sql_function(f"sqrt{_ONE}", _D, "CASE WHEN x >= 0 THEN pg_catalog.sqrt(x) END"),
    _sql_function(f"ln{_ONE}", _D, "CASE WHEN x > 0 THEN pg_catalog.ln(x) END"),
    _sql_function(
        f"log(b {_D}, x {_D})",
        _D,
        "CASE WHEN b > 0 AND b <> 1 AND x > 0 THEN pg_catalog.ln(x) / pg_catalog.ln(b) END",
    ),
    _sql_function(
        f"exp{_ONE}",
        _D,
        f"CASE WHEN x > {_LAST_FINITE_EXP} THEN NULL WHEN x <= {_LAST_ZERO_EXP} THEN 0 "
        "ELSE pg_catalog.exp(x) END",
    ),
    _sql_function(
        f"power(b {_D}, e {_D})",
        _D,
        "CASE WHEN b = 0 AND e < 0 THEN NULL WHEN b < 0 AND e <> pg_catalog.trunc(e) THEN NULL "
        "WHEN b = 0 OR e = 0 OR abs(e) >= 1e300 THEN pg_catalog.power(b, e) "
        f"WHEN e * pg_catalog.ln(abs(b)) > {_LAST_FINITE_EXP} THEN NULL "
        f"WHEN e * pg_catalog.ln(abs(b)) <= {_LAST_ZERO_EXP} THEN 0 "
        "ELSE pg_catalog.power(b, e) END",
    ),
    _sql_function(f"acos{_ONE}", _D, "CASE WHEN x BETWEEN -1 AND 1 THEN pg_catalog.acos(x) END"),
    _sql_function(f"asin{_ONE}", _D, "CASE WHEN x BETWEEN -1 AND 1 THEN pg_catalog.asin(x) END"),
    _sql_function(f"cot{_ONE}", _D, "CASE WHEN pg_catalog.tan(x) <> 0 THEN 1.0 / pg_catalog.tan(x) END"),
    # numpy_functions: sign(x) * floor(|x| * 10^n + 0.5) / 10^n, and trunc(x * 10^n) / 10^n
    _sql_function(
        f"round(x {_D}, n integer)",
        _D,
        "pg_catalog.sign(x) * pg_catalog.floor(abs(x) * 10.0::float8 ^ n + 0.5) / 10.0::float8 ^ n",
    ),
    _sql_function(
        f"truncate(x {_D}, n integer)", _D, "pg_catalog.trunc(x * 10.0::float8 ^ n) / 10.0::float8 ^ n"
    ),
    _sql_function("modulo(x bigint, y bigint)", "bigint", "CASE WHEN y <> 0 THEN x % y END"),
    _FMOD.strip(),
)
