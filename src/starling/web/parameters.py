"""DALI's request parameters: from the query string and a POSTed form, their names in any case."""

from __future__ import annotations

from fastapi import Request


async def parameters_of(request: Request) -> dict[str, str]:
    """Every parameter, the name upper-cased (DALI: names are case-insensitive; values are not)."""
    found = {key.upper(): value for key, value in request.query_params.items()}
    if request.method == "POST":
        form = await request.form()
        found.update({key.upper(): str(value) for key, value in form.items()})
    return found
