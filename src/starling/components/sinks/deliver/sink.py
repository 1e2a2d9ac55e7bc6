"""``deliver``: the distribute stage's sink that sends each filter's matches where its owner asked.

Its routes (filter name -> outputs) come from the filters' own configs: ``starling.assembly`` derives
them for a pipeline file, and the controller keeps them in step when users change their filters.

- ``kafka``: a topic per filter (default ``<prefix>.filter.<name>``), Avro (one container per message,
  schema ``starling.v1.alert``, as ZTF distributes alerts) or JSON; produced with acks=all and
  flushed before the stage commits, so a match is delivered at least once.
- ``webhook``: queued, signed, retried, kept for redelivery (``starling.components.sinks.deliver.webhook``).
- ``voevent``: VOEvent 2.0 packets as files (``voevent/<filter>/``) and on a topic if one is named.
- ``files``: JSON lines and Avro files per filter, as the ``files`` sink writes them.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any, ClassVar

import fastavro
from confluent_kafka import Producer
from pydantic import Field

from starling.alert.export import OUTPUT_SCHEMA, output_record, to_json_ready
from starling.alert.model import Alert
from starling.components.outputs import (
    FilesOutput,
    KafkaOutput,
    Output,
    VOEventOutput,
    WebhookOutput,
)
from starling.components.sinks.deliver.voevent import voevent_xml
from starling.components.sinks.deliver.webhook import WebhookDeliverer
from starling.components.sinks.files import FileSink, FileSinkConfig
from starling.core.component import Batch, ComponentConfig, RunContext, Sink
from starling.core.kafka_settings import KafkaSettings
from starling.errors import KafkaUnavailableError
from starling.transport.kafka.clients import DeliveryTracker, ensure_topics, producer_config

_ACK_WAIT_S = 60.0


class DeliverConfig(ComponentConfig):
    routes: dict[str, list[Output]] = Field(default_factory=dict, description="filter name -> its outputs")
    expressions: dict[str, str] = Field(default_factory=dict, description="filter name -> expression")
    queue_size: int = Field(10_000, ge=1, description="webhook deliveries waiting to be sent, at most")
    redeliver_every_s: float = Field(30.0, gt=0, description="how often failed webhooks are tried again")
    retry_backoff_s: float = Field(0.5, gt=0, le=60, description="first webhook retry delay (then doubled)")


class DeliverSink(Sink[DeliverConfig]):
    Config: ClassVar[type[ComponentConfig]] = DeliverConfig

    def setup(self, context: RunContext) -> None:
        self.context = context
        self.kafka: KafkaSettings = context.kafka or KafkaSettings()
        self.delivered: Counter[str] = Counter()
        self._schema = fastavro.parse_schema(OUTPUT_SCHEMA)
        self._producer: Producer | None = None
        self._tracker = DeliveryTracker()
        self._webhooks: WebhookDeliverer | None = None
        self._files: FileSink | None = None
        topics = [
            self.topic(f, o)
            for f, outputs in self.config.routes.items()
            for o in outputs
            if self._on_kafka(o)
        ]
        if topics:
            ensure_topics(self.kafka, sorted(set(topics)))
            self._producer = Producer(producer_config(self.kafka))
        if any(isinstance(o, WebhookOutput) for outputs in self.config.routes.values() for o in outputs):
            self._webhooks = WebhookDeliverer(
                context.output_dir / "deliveries" / "webhooks",
                self.config.queue_size,
                self.config.redeliver_every_s,
                self.config.retry_backoff_s,
            )
        file_filters = tuple(
            f for f, outputs in self.config.routes.items() if any(isinstance(o, FilesOutput) for o in outputs)
        )
        if file_filters:
            self._files = FileSink(FileSinkConfig(filters=file_filters), f"{self.name}.files")
            self._files.setup(context)

    @staticmethod
    def _on_kafka(output: Output) -> bool:
        return isinstance(output, KafkaOutput) or (
            isinstance(output, VOEventOutput) and output.topic is not None
        )

    def topic(self, filter_name: str, output: Output) -> str:
        named = getattr(output, "topic", None)
        return str(named) if named else self.kafka.topic(f"filter.{filter_name}")

    def write(self, batch: Batch) -> None:
        for filter_name, outputs in self.config.routes.items():
            matched = batch.matches.get(filter_name) or []
            if not matched:
                continue
            for output in outputs:
                if isinstance(output, FilesOutput):
                    continue  # the file sink below takes the whole batch once
                for alert in matched:
                    self._deliver(filter_name, output, alert)
                self.delivered[filter_name] += len(matched) if not isinstance(output, WebhookOutput) else 0
        if self._files is not None:
            self._files.write(batch)
            for name in self._files.config.filters or ():
                self.delivered[name] += len(batch.matches.get(name) or [])

    def _deliver(self, filter_name: str, output: Output, alert: Alert) -> None:
        key = f"{alert.survey}:{alert.alert_id}".encode()
        headers: list[tuple[str, str | bytes | None]] = [("starling-filter", filter_name.encode())]
        if isinstance(output, KafkaOutput):
            record = output_record(alert, filter_name, output.cutouts)
            if output.format == "json":
                value = json.dumps(to_json_ready(record)).encode()
            else:
                buffer = io.BytesIO()
                fastavro.writer(buffer, self._schema, [record])
                value = buffer.getvalue()
            self._produce(self.topic(filter_name, output), key, value, headers)
        elif isinstance(output, WebhookOutput):
            assert self._webhooks is not None
            payload = to_json_ready(output_record(alert, filter_name, False))
            self._webhooks.submit(
                filter_name, str(output.url), output.secret, payload, output.timeout_s, output.max_attempts
            )
        elif isinstance(output, VOEventOutput):
            packet = voevent_xml(
                alert, filter_name, self.config.expressions.get(filter_name, ""), output.role
            )
            folder = self.context.output_dir / "voevent" / filter_name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{alert.survey}-{alert.alert_id}.xml").write_bytes(packet)
            if output.topic:
                self._produce(output.topic, key, packet, headers)

    def _produce(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, str | bytes | None]]
    ) -> None:
        assert self._producer is not None
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=self._tracker.callback
                )
                return
            except BufferError:
                self._producer.poll(0.1)

    def flush(self) -> None:
        """Everything of the batch is acknowledged (Kafka) or in the outbox (webhooks) before the commit."""
        if self._producer is not None:
            waiting = self._producer.flush(_ACK_WAIT_S)
            self._tracker.raise_if_failed()
            if waiting:  # the stage takes the batch again; nothing is committed before Kafka has it
                raise KafkaUnavailableError(
                    f"{waiting} matches not acknowledged by Kafka after {_ACK_WAIT_S:.0f} s"
                )
        if self._webhooks is not None:
            self._webhooks.flush()
        if self._files is not None:
            self._files.flush()

    def counters(self) -> dict[str, Any]:
        delivered = dict(self.delivered)
        result: dict[str, Any] = {"delivered": delivered, "failed": {}, "waiting": {}}
        if self._webhooks is not None:
            hooks = self._webhooks.counters()
            for name, count in hooks["delivered"].items():
                delivered[name] = delivered.get(name, 0) + count
            result.update(failed=hooks["failed"], waiting=hooks["waiting"], webhooks_queued=hooks["queued"])
        return result

    def describe(self) -> dict[str, Any]:
        return self.counters()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(60)
        if self._webhooks is not None:
            self._webhooks.close()
        if self._files is not None:
            self._files.close()
