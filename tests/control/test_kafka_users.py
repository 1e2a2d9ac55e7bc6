"""Users' own Kafka access, over the real broker's users' listener (SASL/SCRAM) and a real controller.

Ada and Bob get credentials from the controller (``POST /kafka-credentials``); Ada's filter sends its
matches to her topic; logged in as herself she reads them there, while Bob is refused her topic, her
consumer groups and the pipeline's own topics, and sees none of them listed. A wrong password is refused,
a rotated one stops working, a revoked credential too; the quotas are the operator's. The password is
shown once: in no other answer, not in the controller's log, in no file under its output directory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from fastapi.testclient import TestClient

from starling.adql.language import compile_filter
from starling.alert.decoder import AlertDecoder
from starling.control.api.app import controller_app
from starling.control.backends.local import LocalBackend
from starling.control.controller import Controller
from starling.control.kafka_users import KafkaAccessUnavailableError, admin_config, principal_name
from starling.control.state import ControllerState, DesiredPipeline
from starling.core.kafka_settings import KafkaUserAccess
from starling.core.spec import PipelineSpec
from starling.transport.kafka.client_quotas import user_quotas
from starling.transport.kafka.clients import delete_topics
from tests.support.controller import ControllerProcess
from tests.support.helpers import synthetic_messages, wait_until
from tests.support.kafka import UsersListener, chain_spec, read_topic, send_raw

pytestmark = pytest.mark.kafka

QUOTAS = {"kafka_consumer_byte_rate": 5_000_000, "kafka_producer_byte_rate": 4096}
EXPRESSION = "mag < 19"


@dataclass
class World:
    controller: ControllerProcess
    spec: PipelineSpec
    listener: UsersListener
    ada: str
    bob: str
    tokens: dict[str, dict[str, str]]
    passwords: list[str] = field(default_factory=list)  # every one the controller gave

    @staticmethod
    def principal(user: str) -> str:
        """A user's Kafka principal: in the users' namespace (``principal_prefix``), never a bare name."""
        return f"starling-u-{user}"

    def credentials(self, user: str) -> dict[str, Any]:
        made = httpx.post(f"{self.controller.url}/kafka-credentials", headers=self.tokens[user], timeout=60)
        assert made.status_code == 200, made.text
        assert made.headers["cache-control"] == "no-store"
        body: dict[str, Any] = made.json()
        self.passwords.append(body["password"])
        return body


@pytest.fixture(scope="module")
def world(
    kafka_bootstrap: str, kafka_users_listener: UsersListener, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    work = tmp_path_factory.mktemp("kafka-users")
    tag = f"k{work.name[-6:].lower()}"
    base = chain_spec(kafka_bootstrap, tag, 0)
    spec = base.model_copy(
        update={"kafka": base.kafka.model_copy(update={"users": kafka_users_listener.settings()})}
    )
    pipeline = work / "pipeline.json"
    pipeline.write_text(spec.model_dump_json())
    quotas = work / "quotas.toml"
    quotas.write_text("matches_per_minute = 10000000\n" + "".join(f"{k} = {v}\n" for k, v in QUOTAS.items()))
    output = work / "controller"
    output.mkdir()
    controller = ControllerProcess(pipeline, output, "--quotas", str(quotas))
    ada, bob = f"ada-{tag}", f"bob-{tag}"  # users of their own: other runs on this broker keep theirs
    tokens = {ada: controller.user_token(ada), bob: controller.user_token(bob)}
    try:
        yield World(controller, spec, kafka_users_listener, ada, bob, tokens)
    finally:
        for user in (ada, bob):  # no credential nor ACL left behind on the shared broker
            httpx.delete(f"{controller.url}/kafka-credentials", headers=tokens[user], timeout=60)
        controller.stop()
        delete_topics(spec.kafka, tag)


def _read_as(
    client: dict[str, Any], topic: str, group: str, expected: int, timeout_s: float = 60
) -> tuple[list[bytes], set[int]]:
    """What a consumer logged in with ``client`` reads of ``topic`` from its start, and the errors it
    meets; it stops at an error, or once ``expected`` came and it has been quiet for 2 s."""
    consumer = Consumer(
        {**client, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    errors: set[int] = set()
    deadline, quiet_since = time.monotonic() + timeout_s, time.monotonic()
    try:
        while time.monotonic() < deadline and not errors:
            message = consumer.poll(0.5)
            if message is None:
                if len(values) >= expected and time.monotonic() - quiet_since > 2:
                    break
            elif message.error():
                errors.add(message.error().code())
            else:
                values.append(message.value())
                quiet_since = time.monotonic()
    finally:
        consumer.close()
    return values, errors


def _login_refused(client: dict[str, Any], timeout_s: float = 15) -> bool:
    """Whether the broker refuses ``client``'s login (SASL authentication failed)."""
    seen: list[KafkaError] = []
    admin = AdminClient({**client, "error_cb": seen.append, "log_level": 0})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=2)
            return False
        except KafkaException:
            admin.poll(0.2)
        if any(error.code() == KafkaError._AUTHENTICATION for error in seen):
            return True
    return False


def _topics_seen(client: dict[str, Any]) -> set[str]:
    return set(AdminClient(client).list_topics(timeout=15).topics)


def test_each_user_reads_only_their_own_topic(world: World) -> None:
    url, spec, listener, ada, bob = world.controller.url, world.spec, world.listener, world.ada, world.bob
    mine = world.credentials(ada)
    theirs = world.credentials(bob)
    topic_prefix = spec.kafka.topic(f"user.{ada}.")
    assert mine["username"] == world.principal(ada)
    assert (mine["topic_prefix"], mine["group_prefix"]) == (topic_prefix, f"{ada}.")
    assert (mine["bootstrap_servers"], mine["mechanism"]) == (listener.bootstrap_servers, "SCRAM-SHA-512")
    assert mine["client"] == {
        k: v for k, v in listener.client(world.principal(ada), "").items() if k != "sasl.password"
    }

    made = httpx.post(
        f"{url}/filters",
        headers=world.tokens[ada],
        json={"name": "bright", "expression": EXPRESSION, "outputs": [{"type": "kafka", "format": "json"}]},
        timeout=60,
    )
    assert made.status_code == 201, made.text
    night = synthetic_messages(600, alerts_per_visit=200, cutouts=False)
    send_raw(spec, night)
    alerts = [a for origin, payload in night for a in AlertDecoder().decode(payload, origin)]
    expected = int(sum(compile_filter(EXPRESSION).evaluate_alerts(alerts)))
    assert expected > 0
    topic = f"{topic_prefix}bright"

    ada_client = listener.client(mine["username"], mine["password"])
    read, errors = _read_as(ada_client, topic, f"{ada}.reader", expected, timeout_s=180)
    assert errors == set()
    assert len(read) == expected
    internal = read_topic(spec.kafka.bootstrap_servers, topic, expected)  # the pipeline's own listener
    assert sorted(read) == sorted(m.value() for m in internal)
    assert _topics_seen(ada_client) == {topic}  # her own, none of the pipeline's

    bob_client = listener.client(theirs["username"], theirs["password"])
    _, errors = _read_as(bob_client, topic, f"{bob}.spy", 1, timeout_s=30)
    assert errors == {KafkaError.TOPIC_AUTHORIZATION_FAILED}
    _, errors = _read_as(bob_client, topic, f"{ada}.reader", 1, timeout_s=30)  # her consumer group
    assert errors & {KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED}
    _, errors = _read_as(bob_client, spec.kafka.raw_topic, f"{bob}.spy", 1, timeout_s=30)
    assert errors == {KafkaError.TOPIC_AUTHORIZATION_FAILED}
    assert _topics_seen(bob_client) == set()  # not even listed
    assert _login_refused(listener.client(mine["username"], "not-her-password"))
    assert _login_refused(listener.client(theirs["username"], mine["password"]))
    assert _login_refused(listener.client(ada, mine["password"]))  # the bare user name is no principal


def test_asking_again_rotates_the_password(world: World) -> None:
    listener, ada = world.listener, world.ada
    first = world.credentials(ada)["password"]
    her = world.principal(ada)
    wait_until(lambda: not _login_refused(listener.client(her, first)), 30, "the first password to work")
    second = world.credentials(ada)["password"]
    assert second != first
    wait_until(lambda: _login_refused(listener.client(her, first)), 30, "the old password to be refused")
    assert not _login_refused(listener.client(her, second))
    state = httpx.get(f"{world.controller.url}/kafka-credentials", headers=world.tokens[ada], timeout=60)
    assert state.status_code == 200
    assert state.json()["has_credential"] is True
    assert "password" not in state.json()


def test_the_quotas_are_the_operators(world: World) -> None:
    answered = world.credentials(world.bob)
    assert answered["consumer_byte_rate"] == QUOTAS["kafka_consumer_byte_rate"]
    assert answered["producer_byte_rate"] == QUOTAS["kafka_producer_byte_rate"]
    assert world.spec.kafka.users is not None
    found = user_quotas(admin_config(world.spec.kafka.users), world.principal(world.bob))
    assert found == {
        "consumer_byte_rate": QUOTAS["kafka_consumer_byte_rate"],
        "producer_byte_rate": QUOTAS["kafka_producer_byte_rate"],
    }


def test_a_revoked_credential_is_refused(world: World) -> None:
    url, listener, bob, token = world.controller.url, world.listener, world.bob, world.tokens[world.bob]
    password = world.credentials(bob)["password"]
    his = world.principal(bob)
    wait_until(lambda: not _login_refused(listener.client(his, password)), 30, "the password to work")
    revoked = httpx.delete(f"{url}/kafka-credentials", headers=token, timeout=60)
    assert revoked.status_code == 200, revoked.text
    wait_until(lambda: _login_refused(listener.client(his, password)), 30, "the credential to be gone")
    assert httpx.get(f"{url}/kafka-credentials", headers=token, timeout=60).json()["has_credential"] is False
    assert httpx.delete(f"{url}/kafka-credentials", headers=token, timeout=60).status_code == 404
    assert world.spec.kafka.users is not None
    assert user_quotas(admin_config(world.spec.kafka.users), his) == {}


def test_a_password_is_shown_once_and_kept_nowhere(world: World) -> None:
    """Runs last: every password given above is in no other answer, no log line, no file."""
    assert len(world.passwords) >= 5
    url, operator, ada = world.controller.url, world.controller.operator, world.tokens[world.ada]
    answers = [
        httpx.get(f"{url}{path}", headers=headers, timeout=60).text
        for path in ("/kafka-credentials", "/pipeline", "/filters", "/status")
        for headers in (operator, ada)
    ]
    output = world.controller.output
    files = [p for p in output.rglob("*") if p.is_file()]
    assert output / "controller.log" in files
    for password in world.passwords:
        assert not any(password in answer for answer in answers)
        leaked = [p for p in files if password.encode() in p.read_bytes()]
        assert leaked == []


def test_without_a_users_listener_the_route_says_so(tmp_path: Path) -> None:
    spec = chain_spec("127.0.0.1:1", "nousers", 0)  # never contacted
    state = ControllerState(tmp_path / "starling.db")
    token = state.create_token("user", "ada")
    controller = Controller(state, LocalBackend(spec, tmp_path), DesiredPipeline(spec=spec))
    client = TestClient(controller_app(controller))
    for method in ("GET", "POST", "DELETE"):
        answer = client.request(method, "/kafka-credentials", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 409
        assert "Kafka access for users is not configured here" in answer.json()["detail"]
    state.close()


def test_no_user_name_is_the_admins_principal() -> None:
    """SCRAM users are the whole cluster's: a user named as the admin (or as the pipeline's own principal)
    must not get, or rotate, that principal's password. Users' principals are in a namespace of their own,
    and an admin inside that namespace is refused outright."""
    spec = chain_spec("127.0.0.1:1", "names", 0)
    users = KafkaUserAccess(bootstrap_servers="127.0.0.1:2", admin_user="kafka-admin")
    named = spec.model_copy(update={"kafka": spec.kafka.model_copy(update={"users": users})})
    assert principal_name(named, "kafka-admin") == "starling-u-kafka-admin"  # not the admin's
    clash = users.model_copy(update={"admin_user": "starling-u-root"})
    inside = spec.model_copy(update={"kafka": spec.kafka.model_copy(update={"users": clash})})
    with pytest.raises(KafkaAccessUnavailableError, match="principal_prefix"):
        principal_name(inside, "root")
