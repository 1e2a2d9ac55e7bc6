"""The webhooks' durable outbox: every delivery not yet taken by its endpoint, on disk (SQLite).

A delivery is written here before the stage commits its input, and deleted when its endpoint takes it,
so a worker that dies loses none: the next one sends what the outbox holds. A row is ``queued`` (to be
sent, in ``turn`` order per endpoint) or ``waiting`` (its attempts spent, or refused; tried again at the
next redelivery, or as soon as its endpoint recovers). Memory holds only a bounded window of each
endpoint's queue; the rest waits here. A delivery's id is stable (see ``delivery_id``), so one that is
submitted again while it is still here (a batch taken twice) is kept once.

It also keeps what is known of each endpoint's health (failures in a row, slow, seen to work), so that
after a restart a failing endpoint is still treated as one, and a healthy one as healthy.

Outboxes written by earlier versions (``outbox.jsonl``, ``done.txt``, ``waiting.jsonl``) are taken in
once and removed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from starling.core.secrets import private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    turn INTEGER NOT NULL,
    filter TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT,
    body BLOB NOT NULL,
    timeout_s REAL NOT NULL,
    max_attempts INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    failed INTEGER NOT NULL DEFAULT 0,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS by_endpoint ON deliveries (filter, url, state, turn);
CREATE TABLE IF NOT EXISTS endpoints (
    filter TEXT NOT NULL,
    url TEXT NOT NULL,
    failures INTEGER NOT NULL,
    slow INTEGER NOT NULL,
    proven INTEGER NOT NULL,
    seen REAL NOT NULL,
    PRIMARY KEY (filter, url)
);
"""
_COLUMNS = "id, filter, url, secret, body, timeout_s, max_attempts, turn"


def delivery_id(filter_name: str, key: str, url: str) -> str:
    """The same for every attempt and redelivery of one match to one output: a receiver can deduplicate."""
    return hashlib.sha256(f"{filter_name}\n{key}\n{url}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    filter: str
    url: str
    secret: str | None
    body: bytes
    timeout_s: float
    max_attempts: int
    turn: int = 0

    @property
    def endpoint(self) -> tuple[str, str]:
        return (self.filter, self.url)


class Outbox:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Its owner's only: a delivery keeps its webhook's signing secret until it is sent.
        path = private_file(directory / "outbox.sqlite")
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT COALESCE(MAX(turn), 0) FROM deliveries").fetchone()
        self._next_turn = int(row[0]) + 1
        _take_in_legacy(self, directory)

    def add(self, deliveries: list[Delivery], state: str = "queued") -> list[Delivery]:
        """Write deliveries in one transaction; those not already here, with their turns."""
        added: list[Delivery] = []
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for delivery in deliveries:
                    turned = replace(delivery, turn=self._next_turn)
                    cursor = self._db.execute(
                        f"INSERT OR IGNORE INTO deliveries ({_COLUMNS}, state, failed) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            *(getattr(turned, c.strip()) for c in _COLUMNS.split(",")),
                            state,
                            state == "waiting",
                        ),
                    )
                    if cursor.rowcount:
                        self._next_turn += 1
                        added.append(turned)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added

    def done(self, delivery_ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM deliveries WHERE id = ?", [(i,) for i in delivery_ids])

    def wait(self, delivery: Delivery, reason: str) -> bool:
        """The delivery waits for redelivery; whether this is its first failure."""
        with self._lock:
            row = self._db.execute("SELECT failed FROM deliveries WHERE id = ?", (delivery.id,)).fetchone()
            self._db.execute(
                "UPDATE deliveries SET state = 'waiting', failed = 1, reason = ? WHERE id = ?",
                (reason, delivery.id),
            )
        return row is not None and not row[0]

    def requeue(self, endpoint: tuple[str, str]) -> int:
        """The endpoint's waiting deliveries are queued again, after everything queued; how many."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE deliveries SET state = 'queued', turn = turn + ? "
                "WHERE filter = ? AND url = ? AND state = 'waiting'",
                (self._next_turn, *endpoint),
            )
            row = self._db.execute("SELECT COALESCE(MAX(turn), 0) FROM deliveries").fetchone()
            self._next_turn = int(row[0]) + 1
            return int(cursor.rowcount)

    def page(self, endpoint: tuple[str, str], after_turn: int, limit: int) -> list[Delivery]:
        """The endpoint's next queued deliveries after ``after_turn``, in turn order."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE filter = ? AND url = ? AND state = 'queued' "
                "AND turn > ? ORDER BY turn LIMIT ?",
                (*endpoint, after_turn, limit),
            ).fetchall()
        return [
            Delivery(r[0], r[1], r[2], r[3], bytes(r[4]), float(r[5]), int(r[6]), int(r[7])) for r in rows
        ]

    def endpoints(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Every endpoint with deliveries here: (queued, waiting)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT filter, url, SUM(state = 'queued'), SUM(state = 'waiting') FROM deliveries "
                "GROUP BY filter, url"
            ).fetchall()
        return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}

    def health(self, endpoint: tuple[str, str]) -> tuple[int, bool, bool] | None:
        """What was last known of an endpoint: failures in a row, slow, proven."""
        with self._lock:
            row = self._db.execute(
                "SELECT failures, slow, proven FROM endpoints WHERE filter = ? AND url = ?", endpoint
            ).fetchone()
        return None if row is None else (int(row[0]), bool(row[1]), bool(row[2]))

    def remember(self, endpoint: tuple[str, str], health: tuple[int, bool, bool]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO endpoints VALUES (?, ?, ?, ?, ?, ?)",
                (*endpoint, *health, time.time()),
            )

    def forget_endpoints(self, unseen_for_s: float) -> None:
        """Forget the health of endpoints not heard of for so long (filters come and go)."""
        with self._lock:
            self._db.execute("DELETE FROM endpoints WHERE seen < ?", (time.time() - unseen_for_s,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _take_in_legacy(outbox: Outbox, directory: Path) -> None:
    """Take in an outbox of the JSON-lines kind (before the SQLite one), then remove its files."""
    files = [directory / n for n in ("outbox.jsonl", "done.txt", "waiting.jsonl")]
    if not any(f.exists() for f in files):
        return
    sent, done_file, waiting_file = files
    done = set(done_file.read_text().split()) if done_file.exists() else set()

    def read(path: Path) -> list[Delivery]:
        if not path.exists():
            return []
        lines = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)
        return [Delivery(**{**d, "body": d["body"].encode()}) for d in lines]

    outbox.add(read(waiting_file), state="waiting")
    outbox.add([d for d in read(sent) if d.id not in done])  # the waiting ones are already in
    for path in files:
        path.unlink(missing_ok=True)
