"""``deliver``: the distribute stage's sink that sends each filter's matches where its owner asked.

Its routes (filter name -> outputs) come from the filters' own configs: ``starling.assembly`` derives
them for a pipeline file, and the controller keeps them in step when users change their filters.

- ``kafka``: a topic per filter (default ``<prefix>.filter.<name>``), Avro (one container per message,
  schema ``starling.v1.alert``, as ZTF distributes alerts) or JSON; produced with acks=all and
  flushed before the stage commits, so a match is delivered at least once.
- ``webhook``: queued per endpoint, signed, retried with capped back-off behind a circuit breaker, kept
  for redelivery, and only to addresses the egress policy allows: public ones, and the networks or hosts
  of ``allow_networks`` (with ``STARLING_EGRESS_ALLOW``) (``starling.components.sinks.deliver.webhook``).
- ``voevent``: VOEvent 2.0 packets as files (``voevent/<filter>/``) and on a topic if one is named.
- ``files``: JSON lines and Avro files per filter, as the ``files`` sink writes them.
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from typing import Any, ClassVar

import fastavro
from confluent_kafka import Producer
from pydantic import Field, TypeAdapter, ValidationInfo, field_validator, model_validator

from starling.alert.export import OUTPUT_SCHEMA, json_bytes, output_record, to_json_ready
from starling.alert.model import Alert
from starling.components.outputs import (
    CONTEXT_KEY,
    EgressPolicy,
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
from starling.transport.kafka.clients import DeliveryTracker, create_topics, producer_config

_ACK_WAIT_S = 60.0
log = logging.getLogger("starling.components.sinks.deliver")


_ROUTES: TypeAdapter[dict[str, list[Output]]] = TypeAdapter(dict[str, list[Output]])


class DeliverConfig(ComponentConfig):
    routes: dict[str, list[Output]] = Field(default_factory=dict, description="filter name -> its outputs")
    expressions: dict[str, str] = Field(default_factory=dict, description="filter name -> expression")
    queue_size: int = Field(
        100, ge=1, description="webhook deliveries held in memory per healthy endpoint (the rest on disk)"
    )
    redeliver_every_s: float = Field(30.0, gt=0, description="how often failed webhooks are tried again")
    retry_backoff_s: float = Field(
        0.5, gt=0, le=60, description="first webhook retry delay (then doubled, up to max_backoff_s)"
    )
    max_backoff_s: float = Field(300.0, gt=0, le=3600, description="the longest webhook retry delay")
    breaker_failures: int = Field(5, ge=1, description="failures in a row that open an endpoint's circuit")
    breaker_cool_down_s: float = Field(
        60.0, gt=0, le=3600, description="how long an open circuit waits before a probe"
    )
    webhook_senders: int = Field(4, ge=2, le=64, description="threads sending webhooks (all endpoints)")
    allow_networks: list[str] = Field(
        default_factory=list,
        description="networks (10.0.0.0/8) or host names webhooks may reach besides public addresses",
    )

    @field_validator("allow_networks")
    @classmethod
    def _valid_entries(cls, entries: list[str]) -> list[str]:
        EgressPolicy.of(entries)  # names the entry that is neither a network nor a host name
        return entries

    @model_validator(mode="before")
    @classmethod
    def _routes_under_the_allow_list(cls, data: Any, info: ValidationInfo) -> Any:
        """The routes' URLs are checked against this sink's allow-list too, not only the operator's."""
        allowed = data.get("allow_networks") if isinstance(data, dict) else None
        if not allowed or not isinstance(allowed, list) or not data.get("routes"):
            return data
        given = info.context.get(CONTEXT_KEY, []) if isinstance(info.context, dict) else []
        context = {CONTEXT_KEY: [*given, *(str(entry) for entry in allowed)]}
        return {**data, "routes": _ROUTES.validate_python(data["routes"], context=context)}


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
        # A topic Kafka refuses costs only the filters that write to it (``topics``), never the stage.
        self.refused_topics = create_topics(self.kafka, sorted(set(topics)))
        self.refused_matches: Counter[str] = Counter()
        for topic, reason in self.refused_topics.items():
            log.error(
                "deliver: Kafka refuses the topic %s (%s); matches to it are not delivered", topic, reason
            )
        if topics:
            self._producer = Producer(producer_config(self.kafka))
        if any(isinstance(o, WebhookOutput) for outputs in self.config.routes.values() for o in outputs):
            config = self.config
            self._webhooks = WebhookDeliverer(
                context.output_dir / "deliveries" / "webhooks",
                config.queue_size,
                config.redeliver_every_s,
                config.retry_backoff_s,
                max_backoff_s=config.max_backoff_s,
                breaker_failures=config.breaker_failures,
                breaker_cool_down_s=config.breaker_cool_down_s,
                senders=config.webhook_senders,
                allow=config.allow_networks,
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
                if isinstance(output, KafkaOutput) and self.topic(filter_name, output) in self.refused_topics:
                    self.refused_matches[filter_name] += len(matched)
                    continue
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
        if alert.passed:  # the stages it passed, with their versions (over Kafka)
            headers.append(("starling-provenance", json.dumps(alert.passed).encode()))
        if isinstance(output, KafkaOutput):
            record = output_record(alert, filter_name, output.cutouts)
            if output.format == "json":
                value = json_bytes(record)
            else:
                buffer = io.BytesIO()
                fastavro.writer(buffer, self._schema, [record])
                value = buffer.getvalue()
            self._produce(self.topic(filter_name, output), key, value, headers)
        elif isinstance(output, WebhookOutput):
            assert self._webhooks is not None
            payload = to_json_ready(output_record(alert, filter_name, False))
            self._webhooks.submit(
                filter_name,
                str(output.url),
                output.secret,
                payload,
                output.timeout_s,
                output.max_attempts,
                key=f"{alert.survey}:{alert.alert_id}",
            )
        elif isinstance(output, VOEventOutput):
            packet = voevent_xml(
                alert, filter_name, self.config.expressions.get(filter_name, ""), output.role
            )
            folder = self.context.output_dir / "voevent" / filter_name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{alert.survey}-{alert.alert_id}.xml").write_bytes(packet)
            if output.topic and output.topic not in self.refused_topics:
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
        result: dict[str, Any] = {"delivered": delivered, "failed": dict(self.refused_matches), "waiting": {}}
        if self.refused_topics:
            result["refused_topics"] = dict(self.refused_topics)
        if self._webhooks is not None:
            hooks = self._webhooks.counters()
            for name, count in hooks["delivered"].items():
                delivered[name] = delivered.get(name, 0) + count
            failed = result["failed"]
            for name, count in hooks["failed"].items():
                failed[name] = failed.get(name, 0) + count
            result.update(
                waiting=hooks["waiting"],
                webhooks_queued=hooks["queued"],
                webhook_failure_reasons=hooks["reasons"],
                webhook_endpoints=hooks["endpoints"],
            )
        return result

    def describe(self) -> dict[str, Any]:
        """The counts for a run's summary (each endpoint's state is in ``counters``, for /status)."""
        described = self.counters()
        described.pop("webhook_endpoints", None)
        return described

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(60)
        if self._webhooks is not None:
            self._webhooks.close()
        if self._files is not None:
            self._files.close()
