"""Running a stage's components over batches: the part every runtime shares (embedded or Kafka).

The errors of one alert never stop the stream. A message that does not decode becomes a dead letter.
If a component fails on a batch, its alerts are retried one at a time through that component; those
that fail alone become dead letters (with the component's error as reason) and the others go on. An
annotator that fails on one alert costs that alert nothing but its annotation: the alert goes on
without it, and the failure is counted with its reason.

An outage (``starling.core.outage``) is not an alert's fault, so it is never isolated alert by alert:
it ends the batch. Inside :meth:`Chain.batch`, a batch is all or nothing as far as the chain's own
effects go: its dead letters are written and its counts kept only when it completes, so a batch taken
again after an outage is counted once and dead-letters nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from starling.alert.decoder import AlertDecoder
from starling.alert.model import Alert
from starling.core.component import Batch, Component, RawMessage, Sink
from starling.core.deadletter import DeadLetter, DeadLetterOutput, count_reason
from starling.core.outage import as_outage
from starling.errors import PROCESS_EXITS, AlertDecodeError

log = logging.getLogger("starling.chain")


@dataclass(slots=True)
class StageCounts:
    """Per component: alerts that came in, went out (for a filter: matched), and failed."""

    kind: str
    alerts_in: int = 0
    alerts_out: int = 0
    failed: int = 0
    # CPU seconds the stage's thread spent in it: what it costs, whatever else the machine runs.
    cpu_s: float = 0.0


@dataclass(slots=True)
class RunStats:
    messages_in: int = 0
    alerts_decoded: int = 0
    # CPU seconds of the runtime's thread in whole batches (its components, and a stage's own work around
    # them: envelopes, producing, committing), and the wall seconds those batches took (waits on Kafka's
    # acknowledgements and commits too: what a replica is occupied for), for a capacity plan.
    cpu_s: float = 0.0
    busy_s: float = 0.0
    # Where a Kafka stage's time goes besides its work (0 in the embedded runtime): within busy_s, the waits
    # for its producer's acknowledgements; outside it, the time it asked for a batch while at least a batch
    # of messages was waiting on the broker (a fetch, not a wait for alerts to come).
    ack_wait_s: float = 0.0
    fetch_wait_s: float = 0.0
    expected_messages: int | None = None
    stages: dict[str, StageCounts] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    # "<annotator>: <reason>" -> alerts that went on without that annotation
    annotation_failures: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> RunStats:
        """A copy of the counts, to put back if the batch in hand is abandoned."""
        return replace(
            self,
            stages={name: replace(counts) for name, counts in self.stages.items()},
            annotation_failures=Counter(self.annotation_failures),
        )

    def restore(self, snapshot: RunStats) -> None:
        self.messages_in, self.alerts_decoded = snapshot.messages_in, snapshot.alerts_decoded
        self.cpu_s, self.busy_s = snapshot.cpu_s, snapshot.busy_s
        self.ack_wait_s, self.fetch_wait_s = snapshot.ack_wait_s, snapshot.fetch_wait_s
        self.annotation_failures = snapshot.annotation_failures
        for name, counts in snapshot.stages.items():
            self.stages[name] = counts

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    @property
    def alerts_per_s(self) -> float:
        return self.alerts_decoded / self.elapsed_s if self.elapsed_s > 0 else 0.0


class Chain:
    """An ordered list of components, their counts, and where their dead letters go.

    ``payloads`` maps ``id(alert)`` to the message it came from, so a dead letter always carries the
    original bytes.
    """

    def __init__(
        self,
        components: Sequence[Component[Any]],
        dead_letters: DeadLetterOutput,
        stats: RunStats | None = None,
    ) -> None:
        self.components = components
        self.dead_letters = dead_letters
        self._held_letters: list[DeadLetter] | None = None
        self.stats = stats or RunStats()
        self.stats.stages.setdefault("decode", StageCounts("decoder"))
        for component in self.components:
            self.stats.stages.setdefault(component.name, StageCounts(component.kind))

    @property
    def components(self) -> list[Component[Any]]:
        return self._components

    @components.setter
    def components(self, components: Sequence[Component[Any]]) -> None:
        """A new list of components (a live change): who cooperates with whom is found again."""
        self._components = list(components)
        self._peers: dict[type[Component[Any]], list[Component[Any]]] | None = None

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One batch, all or nothing: on an outage (re-raised as an OutageError) its counts are put
        back and its dead letters dropped, for the runtime to take the batch again; else they are
        written when the batch completes."""
        before = self.stats.snapshot()
        self._held_letters = []
        try:
            yield
        except Exception as exc:
            outage = as_outage(exc)
            self.stats.restore(before)
            self._held_letters = None
            if outage is not None and outage is not exc:
                raise outage from exc
            raise
        held, self._held_letters = self._held_letters, None
        for letter in held or ():
            self.dead_letters.add(letter)

    def release_dead_letters(self) -> None:
        """Write the dead letters held so far (a runtime that must see them acknowledged before its
        commit calls this inside the batch; later ones are held again)."""
        if self._held_letters:
            held, self._held_letters = self._held_letters, []
            for letter in held:
                self.dead_letters.add(letter)

    def dead_letter(self, letter: DeadLetter) -> None:
        """Dead-letter a message: now, or when the batch in hand completes."""
        if self._held_letters is not None:
            self._held_letters.append(letter)
        else:
            self.dead_letters.add(letter)

    def decode(
        self, messages: Sequence[RawMessage], decoder: AlertDecoder
    ) -> tuple[list[Alert], dict[int, RawMessage]]:
        """Survey messages to alerts; what does not decode becomes a dead letter."""
        counts = self.stats.stages["decode"]
        alerts: list[Alert] = []
        payloads: dict[int, RawMessage] = {}
        started = time.thread_time()
        for message in messages:
            self._decode_one(message, decoder, alerts, payloads)
        counts.cpu_s += time.thread_time() - started
        counts.alerts_out += len(alerts)
        self.stats.alerts_decoded += len(alerts)
        return alerts, payloads

    def _decode_one(
        self, message: RawMessage, decoder: AlertDecoder, alerts: list[Alert], payloads: dict[int, RawMessage]
    ) -> None:
        counts = self.stats.stages["decode"]
        self.stats.messages_in += 1
        counts.alerts_in += 1
        try:
            decoded = decoder.decode(message.payload, message.origin)
        except AlertDecodeError as exc:
            counts.failed += 1
            self.dead_letter(DeadLetter(message.origin, "decode", "decoder", exc.reason, message.payload))
            return
        for alert in decoded:
            payloads[id(alert)] = message
        alerts.extend(decoded)

    def run(self, batch: Batch, payloads: dict[int, RawMessage]) -> Batch:
        peers = self._cooperating()
        done: set[type[Component[Any]]] = set()
        settled: dict[str, tuple[list[Alert], Sequence[Alert], float]] = {}
        for component in self.components:
            cls = type(component)
            if cls in peers and cls not in done:
                # Just before the first of them runs, so they see what the components before did.
                done.add(cls)
                settled.update(self._cooperate(cls, batch, peers[cls]))
            found = settled.pop(component.name, None)
            if found is not None and found[0] is batch.alerts:
                self._settle(component, batch, found[1], found[2], len(found[0]))
            else:  # not settled, or the batch changed since (a component before it retried alert by alert)
                batch = self._apply(component, batch, payloads)
        return batch

    def _cooperate(
        self, cls: type[Component[Any]], batch: Batch, peers: list[Component[Any]]
    ) -> dict[str, tuple[list[Alert], Sequence[Alert], float]]:
        """The peers' work done together: for each peer settled, (the alerts it judged, its matches, its
        share of the CPU time)."""
        started = time.thread_time()
        try:
            results = cls.cooperate(batch, peers) or {}
        except BaseException as exc:  # each then does its own work, and its own failure is isolated
            if isinstance(exc, PROCESS_EXITS):
                raise
            log.exception("%s could not prepare the batch together", cls.__name__)
            return {}
        share = (time.thread_time() - started) / max(1, len(results))
        names = {peer.name for peer in peers}
        return {name: (batch.alerts, matched, share) for name, matched in results.items() if name in names}

    def _settle(
        self, component: Component[Any], batch: Batch, matched: Sequence[Alert], cpu_s: float, alerts: int
    ) -> None:
        """A component whose work was done with its peers': its matches in place, counted as if it ran."""
        batch.matches[component.name] = matched
        counts = self.stats.stages[component.name]
        counts.alerts_in += alerts
        counts.alerts_out += len(matched)
        counts.cpu_s += cpu_s

    def _cooperating(self) -> dict[type[Component[Any]], list[Component[Any]]]:
        if self._peers is None:
            classes: dict[type[Component[Any]], list[Component[Any]]] = {}
            for component in self.components:
                if type(component).cooperate.__func__ is not Component.cooperate.__func__:  # type: ignore[attr-defined]
                    classes.setdefault(type(component), []).append(component)
            self._peers = classes
        return self._peers

    def _apply(self, component: Component[Any], batch: Batch, payloads: dict[int, RawMessage]) -> Batch:
        counts = self.stats.stages[component.name]
        counts.alerts_in += len(batch)
        started = time.thread_time()
        try:
            result = component.process(batch)
        except BaseException as exc:  # a component's bug or bad data (or a panic in a Rust extension)
            if isinstance(exc, PROCESS_EXITS) or as_outage(exc) is not None:
                raise
            result = self._apply_one_by_one(component, batch, payloads)
        if isinstance(component, Sink):
            component.flush()
        counts.cpu_s += time.thread_time() - started
        matched = result.matches.get(component.name)
        counts.alerts_out += len(matched) if matched is not None else len(result)
        return result

    def _apply_one_by_one(
        self, component: Component[Any], batch: Batch, payloads: dict[int, RawMessage]
    ) -> Batch:
        survivors: list[Alert] = []
        matches: dict[str, list[Alert]] = {name: [] for name in batch.matches}
        for alert in batch.alerts:
            single = Batch([alert], {k: [a for a in v if a is alert] for k, v in batch.matches.items()})
            try:
                out = component.process(single)
            except BaseException as exc:
                if isinstance(exc, PROCESS_EXITS) or as_outage(exc) is not None:
                    raise
                self.stats.stages[component.name].failed += 1
                reason = f"{type(exc).__name__}: {exc}"
                if component.kind == "annotator":  # the alert goes on, without this annotation
                    alert.annotations.pop(component.name, None)
                    count_reason(self.stats.annotation_failures, reason, component.name)
                    log.warning("%s gave no annotation for %s: %s", component.name, alert.alert_id, reason)
                    survivors.append(alert)
                    continue
                message = payloads.get(id(alert), RawMessage(b"", alert.origin))
                self.dead_letter(
                    DeadLetter(message.origin, component.kind, component.name, reason, message.payload)
                )
                continue
            survivors.append(alert)
            for name, matched in out.matches.items():
                matches.setdefault(name, []).extend(matched)
        return Batch(survivors, dict(matches.items()))
