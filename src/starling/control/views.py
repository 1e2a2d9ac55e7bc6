"""What each principal may see of the pipeline: an operator everything but secrets; a user the shape
of the pipeline and its own objects, nothing of another user's.

A user's view keeps every stage, its replicas, topics, counts and the names of the operator's
components, with their configs emptied (a ``deliver`` sink's routes hold every user's webhooks; a
``watchlists`` annotator every user's targets). Other users' filters are left out altogether, and so
are the workers' addresses and the dead letters' reasons that name another user's component (their
count stays in the stage's total).
"""

from __future__ import annotations

from typing import Any

from starling.control.tokens import Principal
from starling.core.secrets import redact_secrets


def _owner(component: dict[str, Any]) -> str | None:
    owner = component.get("config", {}).get("owner")
    return str(owner) if owner is not None else None


def _user_component(component: dict[str, Any], user: str) -> dict[str, Any] | None:
    owner = _owner(component)
    if owner == user:
        return component
    if owner is not None:
        return None  # another user's
    return {**component, "config": {}}


def _reason_component(reason: str) -> str:
    """The component a dead letter's reason names: reasons read ``<stage>/<component>: <why>``."""
    return reason.split(":", 1)[0].partition("/")[2]


def pipeline_view(view: dict[str, Any], who: Principal) -> dict[str, Any]:
    """The controller's pipeline view as ``who`` may see it (secrets redacted for everyone)."""
    view = redact_secrets(view)
    if who.role == "operator":
        return view
    stages = []
    for stage in view["stages"]:
        components = [_user_component(c, who.user) for c in stage["components"]]
        others = {c["name"] or c["use"] for c in stage["components"] if _owner(c) not in (None, who.user)}
        workers = [{**w, "url": None} for w in stage["workers"]]
        reasons = {
            reason: count
            for reason, count in stage.get("dead_letter_reasons", {}).items()
            if _reason_component(reason) not in others
        }
        stages.append(
            {
                **stage,
                "components": [c for c in components if c is not None],
                "workers": workers,
                "dead_letter_reasons": reasons,
            }
        )
    return {**view, "stages": stages}
