"""Every exception Starling raises on purpose, in one place.

    StarlingError                 base of everything below
    ├── AlertDecodeError          a message could not be turned into alerts (reason in .reason)
    │   └── UnknownSchemaError    a Rubin schema id that neither the registry nor the package knows
    ├── OutageError               infrastructure failed (not the alert's fault): back off, take it again
    │   ├── SchemaSourceUnavailableError  a schema registry cannot be reached
    │   ├── StoreUnavailableError     the store is locked, full, read-only or unreachable
    │   └── KafkaUnavailableError     Kafka did not acknowledge what a stage produced
    ├── ConfigError               a pipeline or component configuration is invalid
    ├── ComponentNotFoundError    no component of that name is installed (entry points)
    ├── StoreError                the store refused a write or a query
    ├── ControllerUnreachableError  the controller did not answer (``control.client``)
    └── ControllerRefusedError    the controller answered 4xx/5xx; ``status`` and its ``detail``

An AlertDecodeError never stops a stream: the runtime turns it into a dead letter with its reason.
An OutageError never turns good alerts into dead letters: the stage waits and takes the batch again.
"""

from __future__ import annotations

# What a blanket ``except`` must still let through: the process being asked to end. Anything else a
# component raises, a Rust extension's panic (a BaseException) included, is the component's failure.
PROCESS_EXITS = (KeyboardInterrupt, SystemExit, GeneratorExit)


class StarlingError(Exception):
    """Base class of Starling's own errors."""


class AlertDecodeError(StarlingError):
    """A message could not be decoded or normalized; ``reason`` says why, in words for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownSchemaError(AlertDecodeError):
    """The Confluent wire-format schema id is not known to any configured schema source."""

    def __init__(self, schema_id: int, detail: str = "") -> None:
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"unknown schema id {schema_id}{suffix}")
        self.schema_id = schema_id


class OutageError(StarlingError):
    """A piece of infrastructure failed: a store, a disk, Kafka, a schema registry. Not the alert's
    fault: a stage backs off and takes the batch again; nothing of it is dead-lettered or committed."""


class SchemaSourceUnavailableError(OutageError):
    """A schema registry did not answer (down, unreachable, a 5xx)."""


class StoreUnavailableError(OutageError):
    """The store could not be written for a reason of its own (locked, disk full, read-only, down)."""


class KafkaUnavailableError(OutageError):
    """Kafka did not acknowledge messages a stage produced, within the producer's timeout."""


class ConfigError(StarlingError):
    """A configuration is invalid; the message names what is wrong and where.

    ``problems`` lists them one by one (``{"loc": [...], "msg": ...}``), for an API to return as 422.
    """

    def __init__(self, message: str, problems: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [{"loc": [], "msg": message}]


class ComponentNotFoundError(ConfigError):
    """No installed component has the requested name."""


class StoreError(StarlingError):
    """The store could not carry out an operation."""


class ControllerUnreachableError(StarlingError):
    """The controller did not answer (not running, wrong URL, a network failure)."""


class ControllerRefusedError(StarlingError):
    """The controller answered with an error status; ``detail`` is its reason as it gave it."""

    def __init__(self, status: int, detail: object) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail
