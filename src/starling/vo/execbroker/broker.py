"""The broker's answers: offers made from real free capacity, and the client's updates to its sessions.

An offer set request gets up to ``offers_per_set`` offers, each a session in phase OFFERED at a start
inside one of the requested intervals (or, with none, from ``lead`` from now on, one duration apart),
offering cores and memory within the asked ``[min, max]`` from what is free over the whole of its
schedule. Each offer holds what it offers until it expires (``offer_life``). A request that cannot be
offered gets NO, with every reason (``model``), or "nothing free" when capacity is what lacks.

Users see only their own: another's offer set or session is answered as if it did not exist. The clock
is given (tests move it).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid as uuids
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starling.vo.execbroker.ledger import Hold, Ledger
from starling.vo.execbroker.model import Reason, Wanted, read_request
from starling.vo.execbroker.normalize import normalize_request, normalize_update
from starling.vo.execbroker.sessions import FINAL, LIVE, Session, message

Check = Callable[[Wanted], list[Reason]]
# Offers one user may hold open at once (each holds capacity until it expires).
MAX_OPEN_OFFERS = 16


@dataclass
class OfferSet:
    uuid: str
    owner: str
    name: str
    created: dt.datetime
    sessions: list[str]
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def result(self) -> str:
        return "YES" if self.sessions else "NO"


class NotFoundError(Exception):
    """No such offer set or session for this user."""


class Broker:
    def __init__(
        self,
        ledger: Ledger,
        clock: Callable[[], dt.datetime],
        check: Check = lambda wanted: [],
        offers_per_set: int = 4,
        offer_life: dt.timedelta = dt.timedelta(minutes=5),
        lead: dt.timedelta = dt.timedelta(minutes=1),
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.check = check
        self.offers_per_set = offers_per_set
        self.offer_life = offer_life
        self.lead = lead
        self.sessions: dict[str, Session] = {}
        self.offersets: dict[str, OfferSet] = {}
        self.lock = threading.RLock()
        # Called with the broker's state (``snapshot``) after every change: where the controller keeps it.
        self.on_change: Callable[[dict[str, Any]], None] = lambda state: None

    def ask(self, document: Any, owner: str) -> OfferSet:
        """Offers for an offer-set request (any dialect), held until they expire; or NO with reasons."""
        with self.lock:
            now = self.clock()
            self._expire(now)
            wanted, reasons = read_request(normalize_request(document), now)
            if wanted is not None:
                reasons += self.check(wanted)
            created = OfferSet(str(uuids.uuid4()), owner, wanted.name if wanted else _name(document), now, [])
            open_offers = sum(s.owner == owner and s.phase == "OFFERED" for s in self.sessions.values())
            if open_offers >= MAX_OPEN_OFFERS:  # one user cannot hold the whole broker with offers
                reasons.append(
                    Reason(
                        path="(request)", text=f"you hold {open_offers} open offers: accept or reject some"
                    )
                )
            if wanted is not None and not reasons:
                created.sessions = [s.uuid for s in self._offer(wanted, created, now)]
                if not created.sessions:
                    reasons.append(self._nothing_free(wanted))
            created.messages = [message(r.path, r.text, now) for r in reasons]
            self.offersets[created.uuid] = created
            self.on_change(self.snapshot())
            return created

    def _offer(self, wanted: Wanted, offerset: OfferSet, now: dt.datetime) -> list[Session]:
        made: list[Session] = []
        for start in self._starts(wanted, now):
            if len(made) == self.offers_per_set:
                break
            free_cores, free_memory = self.ledger.free(start, start + wanted.duration, now)
            cores, memory = min(wanted.cores[1], free_cores), min(wanted.memory_gib[1], free_memory)
            if cores < wanted.cores[0] or memory < wanted.memory_gib[0] or cores <= 0 or memory <= 0:
                continue
            session = Session(
                uuid=str(uuids.uuid4()),
                offerset=offerset.uuid,
                owner=offerset.owner,
                name=f"{offerset.name}-offer-{len(made)}",
                executable=wanted.executable.model_dump(mode="json", exclude_none=True),
                cores=cores,
                memory_gib=memory,
                start=start,
                duration=wanted.duration,
                created=now,
                expires=min(now + self.offer_life, start),  # never accepted after it began
            )
            hold = Hold(
                session.uuid,
                offerset.uuid,
                offerset.owner,
                cores,
                memory,
                start,
                session.end,
                session.expires,
            )
            self.ledger.hold(hold)
            self.sessions[session.uuid] = session
            made.append(session)
        return made

    def _starts(self, wanted: Wanted, now: dt.datetime) -> list[dt.datetime]:
        """Candidate starts: in each requested interval from its beginning (not before ``lead`` from now),
        one duration apart; with none requested, from ``lead`` from now on."""
        earliest = (now + self.lead).replace(microsecond=0)
        windows = wanted.starts or [(earliest, earliest + wanted.duration * (self.offers_per_set * 4))]
        starts: list[dt.datetime] = []
        for begin, end in windows:
            start = max(begin, earliest)
            while start <= end and len(starts) < self.offers_per_set * 4:
                starts.append(start)
                start += wanted.duration
        return starts

    def _nothing_free(self, wanted: Wanted) -> Reason:
        capacity = self.ledger.capacity
        for path, low, total, unit in (
            ("compute.cores", wanted.cores[0], capacity.cores, "cores"),
            ("compute.memory", wanted.memory_gib[0], capacity.memory_gib, "GiB"),
        ):
            if low > total:
                return Reason(path=path, text=f"asks at least {low} {unit}; this broker has {total} in all")
        return Reason(
            path="schedule", text="nothing free in the requested intervals: it is held by other sessions"
        )

    def offerset(self, uuid: str, owner: str) -> tuple[OfferSet, list[Session]]:
        with self.lock:
            self._expire(self.clock())
            found = self.offersets.get(uuid)
            if found is None or found.owner != owner:
                raise NotFoundError(f"no offer set {uuid}")
            return found, [self.sessions[s] for s in found.sessions]

    def session(self, uuid: str, owner: str) -> Session:
        with self.lock:
            self._expire(self.clock())
            found = self.sessions.get(uuid)
            if found is None or found.owner != owner:
                raise NotFoundError(f"no session {uuid}")
            return found

    def mine(self, owner: str) -> list[Session]:
        with self.lock:
            self._expire(self.clock())
            return [s for s in self.sessions.values() if s.owner == owner]

    def update(self, uuid: str, document: Any, owner: str) -> Session:
        """A client's update (IllegalUpdateError if not allowed now). Accepting one offer rejects its siblings
        and lets their holds go; rejecting or cancelling lets the session's hold go."""
        with self.lock:
            now = self.clock()
            session = self.session(uuid, owner)
            update = normalize_update(document)
            phase = session.client_update(update if isinstance(update, dict) else {}, now)
            if phase == "ACCEPTED":
                self.ledger.keep(uuid)
                for sibling in self.offersets[session.offerset].sessions:
                    other = self.sessions[sibling]
                    if other.uuid != uuid and other.phase == "OFFERED":
                        other.phase = "REJECTED"
                        self.ledger.release(other.uuid)
            elif phase in FINAL:
                self.ledger.release(uuid)
            self.on_change(self.snapshot())
            return session

    def move(self, uuid: str, phase: str, only_from: tuple[str, ...] = ()) -> bool:
        """The service moves a session on (its scheduled phases), only from ``only_from`` if given (a
        client's cancel meanwhile wins); a final phase lets its hold go. Whether it moved."""
        with self.lock:
            if only_from and self.sessions[uuid].phase not in only_from:
                return False
            self.sessions[uuid].phase = phase
            if phase in FINAL:
                self.ledger.release(uuid)
            self.on_change(self.snapshot())
            return True

    def _expire(self, now: dt.datetime) -> None:
        expired = [s.uuid for s in self.sessions.values() if s.expire_if_due(now)]
        for session in expired:
            self.ledger.release(session)
        if expired:
            self.on_change(self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """Every offer set and session, as JSON-ready data (the holds follow from the sessions)."""
        with self.lock:
            return {
                "offersets": [
                    {**o.__dict__, "created": o.created.isoformat()} for o in self.offersets.values()
                ],
                "sessions": [s.to_data() for s in self.sessions.values()],
            }

    def restore(self, state: dict[str, Any]) -> None:
        """The broker as ``snapshot`` left it (a controller restarted): sessions, and what they hold."""
        with self.lock:
            for data in state.get("offersets", []):
                offerset = OfferSet(**{**data, "created": dt.datetime.fromisoformat(data["created"])})
                self.offersets[offerset.uuid] = offerset
            for data in state.get("sessions", []):
                session = Session.from_data(data)
                self.sessions[session.uuid] = session
                if session.phase == "OFFERED" or session.phase in LIVE:
                    expires = session.expires if session.phase == "OFFERED" else None
                    self.ledger.hold(
                        Hold(
                            session.uuid,
                            session.offerset,
                            session.owner,
                            session.cores,
                            session.memory_gib,
                            session.start,
                            session.end,
                            expires,
                        )
                    )


def _name(document: Any) -> str:
    meta = document.get("meta") if isinstance(document, dict) else None
    name = (meta or {}).get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else "no-name"
