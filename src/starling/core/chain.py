"""Running a stage's components over batches: the part every runtime shares (embedded or Kafka).

The errors of one alert never stop the stream. A message that does not decode becomes a dead letter
at once. If a component fails on a batch, its alerts are retried one at a time through that
component; those that fail alone become dead letters (with the component's error as reason) and the
others go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starling.alert.decoder import AlertDecoder
from starling.alert.model import Alert
from starling.core.component import Batch, Component, RawMessage, Sink
from starling.core.deadletter import DeadLetter, DeadLetterOutput
from starling.errors import AlertDecodeError, SchemaSourceUnavailableError

log = logging.getLogger("starling.chain")


@dataclass(slots=True)
class StageCounts:
    """Per component: alerts that came in, went out (for a filter: matched), and failed."""

    kind: str
    alerts_in: int = 0
    alerts_out: int = 0
    failed: int = 0


@dataclass(slots=True)
class RunStats:
    messages_in: int = 0
    alerts_decoded: int = 0
    expected_messages: int | None = None
    stages: dict[str, StageCounts] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None

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
        self.components = list(components)
        self.dead_letters = dead_letters
        self.stats = stats or RunStats()
        self.stats.stages.setdefault("decode", StageCounts("decoder"))
        for component in self.components:
            self.stats.stages.setdefault(component.name, StageCounts(component.kind))

    def decode(
        self, messages: Sequence[RawMessage], decoder: AlertDecoder
    ) -> tuple[list[Alert], dict[int, RawMessage]]:
        """Survey messages to alerts; what does not decode becomes a dead letter."""
        counts = self.stats.stages["decode"]
        alerts: list[Alert] = []
        payloads: dict[int, RawMessage] = {}
        before = (self.stats.messages_in, counts.alerts_in, counts.failed)
        try:
            for message in messages:
                self._decode_one(message, decoder, alerts, payloads)
        except SchemaSourceUnavailableError:
            # The batch will be taken again: its counts start over. (A bad message met before the
            # outage is dead-lettered again then: dead letters are at least once, like everything.)
            self.stats.messages_in, counts.alerts_in, counts.failed = before
            raise
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
            self.dead_letters.add(
                DeadLetter(message.origin, "decode", "decoder", exc.reason, message.payload)
            )
            return
        for alert in decoded:
            payloads[id(alert)] = message
        alerts.extend(decoded)

    def run(self, batch: Batch, payloads: dict[int, RawMessage]) -> Batch:
        peers = self._cooperating()
        done: set[type[Component[Any]]] = set()
        for component in self.components:
            cls = type(component)
            if cls in peers and cls not in done:
                # Just before the first of them runs, so they see what the components before did.
                done.add(cls)
                try:
                    cls.cooperate(batch, peers[cls])
                except Exception:  # each then does its own work, and its own failure is isolated
                    log.exception("%s could not prepare the batch together", cls.__name__)
            batch = self._apply(component, batch, payloads)
        return batch

    def _cooperating(self) -> dict[type[Component[Any]], list[Component[Any]]]:
        classes: dict[type[Component[Any]], list[Component[Any]]] = {}
        for component in self.components:
            if type(component).cooperate.__func__ is not Component.cooperate.__func__:  # type: ignore[attr-defined]
                classes.setdefault(type(component), []).append(component)
        return classes

    def _apply(self, component: Component[Any], batch: Batch, payloads: dict[int, RawMessage]) -> Batch:
        counts = self.stats.stages[component.name]
        counts.alerts_in += len(batch)
        try:
            result = component.process(batch)
        except Exception:  # a component's bug or bad data: isolate the alerts at fault below
            result = self._apply_one_by_one(component, batch, payloads)
        if isinstance(component, Sink):
            component.flush()
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
            except Exception as exc:
                self.stats.stages[component.name].failed += 1
                message = payloads.get(id(alert), RawMessage(b"", alert.origin))
                reason = f"{type(exc).__name__}: {exc}"
                self.dead_letters.add(
                    DeadLetter(message.origin, component.kind, component.name, reason, message.payload)
                )
                continue
            survivors.append(alert)
            for name, matched in out.matches.items():
                matches.setdefault(name, []).extend(matched)
        return Batch(survivors, matches)
