"""Execution sessions: the phases an offer goes through, what a client may change, and how each is shown.

::

    OFFERED --client--> ACCEPTED (its siblings REJECTED) --> WAITING --> PREPARING --> AVAILABLE
       |  \\--client--> REJECTED                                               |
       \\--time-------> EXPIRED                     RUNNING <--at its start----/
                                                      |
                                   at its end --> RELEASING --> COMPLETED
    ACCEPTED .. RUNNING --client--> CANCELLED;   any phase the service drives --error--> FAILED

A client changes a phase with an update (``{kind: uri:enum-value-update, path: phase, value: ...}``);
each session lists the updates it allows next (its ``options``). Anything else is refused, saying why
(``IllegalUpdateError``). The service drives the rest at the session's scheduled times (``starling.control``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from starling.vo.execbroker.normalize import EB_PREFIX

SESSION_KIND = EB_PREFIX + "session/scheduled-execution-session-1.0"
OFFERSET_KIND = EB_PREFIX + "offerset/execution-offerset-1.0"
ENUM_UPDATE = "uri:enum-value-update"
ENUM_OPTION = "uri:enum-value-option"

LIVE = ("ACCEPTED", "WAITING", "PREPARING", "AVAILABLE", "RUNNING")
FINAL = ("REJECTED", "EXPIRED", "COMPLETED", "CANCELLED", "FAILED")
# What a client may set, from each phase.
CLIENT_MOVES: dict[str, tuple[str, ...]] = {
    "OFFERED": ("ACCEPTED", "REJECTED"),
    **dict.fromkeys(LIVE, ("CANCELLED",)),
}
# How long before its start a session begins to prepare (its stage is started, held).
PREPARATION = dt.timedelta(seconds=30)
RELEASE = dt.timedelta(seconds=10)


class IllegalUpdateError(Exception):
    """An update a session does not allow now (the message says what it allows)."""


@dataclass
class Session:
    uuid: str
    offerset: str
    owner: str
    name: str
    executable: dict[str, Any]
    cores: int
    memory_gib: int
    start: dt.datetime
    duration: dt.timedelta
    created: dt.datetime
    expires: dt.datetime
    phase: str = "OFFERED"
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def end(self) -> dt.datetime:
        return self.start + self.duration

    def to_data(self) -> dict[str, Any]:
        times = {k: getattr(self, k).isoformat() for k in ("start", "created", "expires")}
        return {**self.__dict__, **times, "duration": self.duration.total_seconds()}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Session:
        times = {k: dt.datetime.fromisoformat(data[k]) for k in ("start", "created", "expires")}
        return cls(**{**data, **times, "duration": dt.timedelta(seconds=data["duration"])})

    def options(self) -> list[dict[str, Any]]:
        values = CLIENT_MOVES.get(self.phase, ())
        return [{"kind": ENUM_OPTION, "path": "phase", "values": list(values)}] if values else []

    def client_update(self, update: dict[str, Any], now: dt.datetime) -> str:
        """Apply a client's update (IllegalUpdateError if it is not one of the options); the new phase."""
        if update.get("kind") != ENUM_UPDATE or update.get("path") != "phase":
            raise IllegalUpdateError(
                f"only {{kind: {ENUM_UPDATE}, path: phase, value: ...}} updates are understood; "
                f"got kind {update.get('kind')!r}, path {update.get('path')!r}"
            )
        self.expire_if_due(now)
        value = update.get("value")
        allowed = CLIENT_MOVES.get(self.phase, ())
        if value not in allowed:
            to = ", ".join(allowed) or "nothing (it is over)"
            raise IllegalUpdateError(
                f"session {self.uuid} is {self.phase}: it may become {to}, not {value!r}"
            )
        self.phase = str(value)
        return self.phase

    def expire_if_due(self, now: dt.datetime) -> bool:
        if self.phase == "OFFERED" and now >= self.expires:
            self.phase = "EXPIRED"
            return True
        return False

    def render(self, base_url: str) -> dict[str, Any]:
        """The session in the newest dialect, with the updates it allows in ``meta.options``."""
        meta: dict[str, Any] = {
            "uuid": self.uuid,
            "name": self.name,
            "url": f"{base_url}/sessions/{self.uuid}",
            "created": _instant(self.created),
            "options": self.options(),
        }
        if self.messages:
            meta["messages"] = self.messages
        preparing = self.start - PREPARATION
        return {
            "kind": SESSION_KIND,
            "meta": meta,
            "executable": self.executable,
            "compute": {
                "kind": EB_PREFIX + "compute/simple-compute-resource-1.0",
                "meta": {"name": f"{self.name}-compute"},
                "cores": {"min": self.cores, "max": self.cores},
                "memory": {"min": self.memory_gib, "max": self.memory_gib},
            },
            "phase": self.phase,
            "expires": _instant(self.expires),
            "schedule": {
                "preparing": {"start": _instant(preparing), "duration": _duration(PREPARATION)},
                "available": {"start": f"{_instant(self.start)}/PT0S", "duration": _duration(self.duration)},
                "releasing": {"start": _instant(self.end), "duration": _duration(RELEASE)},
            },
        }


def render_offerset(
    uuid: str,
    name: str,
    created: dt.datetime,
    offers: list[Session],
    messages: list[dict[str, Any]],
    base_url: str,
) -> dict[str, Any]:
    """An offer set in the newest dialect: YES exactly when it has offers, with messages saying why not."""
    meta: dict[str, Any] = {
        "uuid": uuid,
        "name": name,
        "url": f"{base_url}/offersets/{uuid}",
        "created": _instant(created),
    }
    if messages:
        meta["messages"] = messages
    return {
        "kind": OFFERSET_KIND,
        "meta": meta,
        "result": "YES" if offers else "NO",
        "offers": [offer.render(base_url) for offer in offers],
    }


def message(path: str, text: str, now: dt.datetime, level: str = "ERROR") -> dict[str, Any]:
    return {
        "level": level,
        "time": _instant(now),
        "template": "{path}: {text}",
        "values": {"path": path, "text": text},
        "message": f"{path}: {text}",
    }


def _instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _duration(length: dt.timedelta) -> str:
    seconds = int(length.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (
        "PT"
        + (f"{hours}H" if hours else "")
        + (f"{minutes}M" if minutes else "")
        + (f"{seconds}S" if seconds else "")
    )
    return text if text != "PT" else "PT0S"
