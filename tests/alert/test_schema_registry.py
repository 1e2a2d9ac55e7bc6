"""Rubin schemas from a Confluent Schema Registry served over HTTP on 127.0.0.1 by the test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from starling.alert.decoder import AlertDecoder
from starling.alert.schemas import ChainedSchemas, ConfluentSchemaRegistry, PackagedRubinSchemas
from starling.errors import SchemaSourceUnavailableError, UnknownSchemaError
from tests.support.helpers import synthetic_messages
from tests.support.registry_server import Registry as _Registry


@pytest.fixture
def registry() -> Iterator[_Registry]:
    from lsst.alert.packet import SchemaRegistry

    packaged = SchemaRegistry.all_schemas_from_filesystem()
    server = _Registry({1100: json.dumps(packaged.get_by_id(1100).definition)})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_wire_messages_decode_with_schemas_from_the_registry(registry: _Registry) -> None:
    url = f"http://127.0.0.1:{registry.server_address[1]}"
    decoder = AlertDecoder(ConfluentSchemaRegistry(url))
    rubin = [payload for origin, payload in synthetic_messages(30, surveys=("rubin",), cutouts=False)]
    alerts = [alert for payload in rubin for alert in decoder.decode(payload, "kafka")]
    assert len(alerts) == len(rubin)
    assert {a.schema_version for a in alerts} == {"11.0"}
    assert registry.requests == ["/schemas/ids/1100"]  # asked once, then cached by id


def test_an_id_the_registry_lacks_is_a_clear_error(registry: _Registry) -> None:
    url = f"http://127.0.0.1:{registry.server_address[1]}"
    with pytest.raises(UnknownSchemaError, match=r"unknown schema id 705.*has no such id"):
        ConfluentSchemaRegistry(url).get(705)


def test_chained_sources_fall_back_to_the_package(registry: _Registry) -> None:
    url = f"http://127.0.0.1:{registry.server_address[1]}"
    chained = ChainedSchemas(ConfluentSchemaRegistry(url), PackagedRubinSchemas())
    assert chained.get(701).full_name == "lsst.v7_1.alert"
    assert chained.get(1100).full_name.endswith("v11_0.alert")


def test_an_unreachable_registry_means_wait_not_unknown() -> None:
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = ConfluentSchemaRegistry(f"http://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(SchemaSourceUnavailableError, match="unreachable"):
        down.get(1100)
    chained = ChainedSchemas(down, PackagedRubinSchemas())
    assert chained.get(1100).full_name.endswith("v11_0.alert")  # the package knows it: no need to wait
    with pytest.raises(SchemaSourceUnavailableError):  # only the registry might know this one: wait for it
        chained.get(99_999)
