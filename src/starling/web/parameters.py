"""DALI's request parameters: from the query string and a POSTed form, their names in any case."""

from __future__ import annotations

from fastapi import Request


async def parameters_of(request: Request) -> dict[str, str]:
    """Every parameter, the name upper-cased (DALI: names are case-insensitive; values are not); the
    files of a multipart form are not parameters (see :func:`uploaded_parts`)."""
    found = {key.upper(): value for key, value in request.query_params.items()}
    if request.method == "POST":
        form = await request.form()
        found.update({key.upper(): value for key, value in form.items() if isinstance(value, str)})
    return found


async def uploaded_parts(request: Request, limit_bytes: int) -> dict[str, bytes]:
    """The files of a multipart form, by part name (what ``UPLOAD=name,param:part`` points at); a part
    over ``limit_bytes`` is cut there (the upload's reader then refuses it for its size)."""
    if request.method != "POST":
        return {}
    form = await request.form()
    parts: dict[str, bytes] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            parts[key] = await value.read(limit_bytes + 1)
    return parts
