"""Property-based fuzzing of the published OpenAPI documents (schemathesis): no 5xx, responses as documented.

The apps are served in-process (ASGI) around a real, idle worker and a real controller whose backend
has not started any process, so the fuzzer needs no broker and starts nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from starling.control.api.app import controller_app
from starling.control.api.worker_app import worker_app
from starling.control.auth import SharedSecret
from starling.control.backends.local import LocalBackend
from starling.control.controller import Controller
from starling.control.state import ControllerState, DesiredPipeline
from starling.transport.kafka.worker import StageWorker
from tests.support.kafka import chain_spec

_SCRATCH = Path(tempfile.mkdtemp(prefix="starling-fuzz-"))
_BASE = chain_spec("127.0.0.1:1", "fuzz", 10)  # never contacted: nothing here sends to Kafka
_SPEC = _BASE.model_copy(update={"kafka": _BASE.kafka.model_copy(update={"client": {"log_level": "0"}})})

worker = StageWorker(_SPEC, "filter", _SCRATCH / "worker")
_WORKER_SECRET = "stl_fuzz-worker-secret"
worker_schema = schemathesis.openapi.from_asgi(
    "/openapi.json", worker_app(worker, SharedSecret(_WORKER_SECRET))
)

_state = ControllerState(_SCRATCH / "controller" / "starling.db")
_OPERATOR = _state.create_token("operator", "fuzzer")
_USER = _state.create_token("user", "fuzzed")
_controller = Controller(_state, LocalBackend(_SPEC, _SCRATCH / "controller"), DesiredPipeline(spec=_SPEC))
controller_schema = schemathesis.openapi.from_asgi("/openapi.json", controller_app(_controller)).exclude(
    # Both would start real worker processes; test_controller.py and test_autoscaler.py cover them.
    path_regex="/(replicas|autoscaling)$"
)

# Whether a component is installed and whether a config fits its own model are checked when the
# request arrives, and refused with a 422 naming the field: a body valid by the OpenAPI schema alone
# may rightly be refused there. Every other check (no 5xx, documented codes, response schemas) runs.
_SEMANTIC_WORKER_PATHS = {"/components", "/config", "/wiring"}

_WORKER_AUTH = {"Authorization": f"Bearer {_WORKER_SECRET}"}
_FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@worker_schema.parametrize()
@_FUZZ
def test_worker_api(case: schemathesis.Case) -> None:
    if case.path == "/ready":
        # An idle worker is not ready, and says so with a documented 503 (the readiness-probe contract).
        case.call_and_validate(excluded_checks=[not_a_server_error])
    elif case.path in _SEMANTIC_WORKER_PATHS:
        case.call_and_validate(headers=_WORKER_AUTH, excluded_checks=[positive_data_acceptance])
    else:
        case.call_and_validate(headers=_WORKER_AUTH)


@controller_schema.parametrize()
@_FUZZ
def test_controller_api(case: schemathesis.Case) -> None:
    # A component's config and a filter's expression are checked beyond what a JSON schema can say
    # (the component's own model; the ADQL grammar and the field names), and a new stage names where it
    # goes, after a stage or beside one: a schema-valid one may be refused.
    # This controller gives users no Kafka access (no [kafka.users]): /kafka-credentials answers 409.
    semantic = case.path.startswith(
        ("/stages", "/filters", "/try-filter", "/watchlists", "/watchmaps", "/kafka-credentials")
    )
    excluded = [positive_data_acceptance] if semantic else []
    case.call_and_validate(headers={"Authorization": f"Bearer {_OPERATOR}"}, excluded_checks=excluded)


@controller_schema.parametrize()
@_FUZZ
def test_controller_api_as_a_user(case: schemathesis.Case) -> None:
    """The same document with a user's token: what it may not do is refused with a documented 403 or
    404, never a 5xx; what it may do answers as documented."""
    case.call_and_validate(
        headers={"Authorization": f"Bearer {_USER}"}, excluded_checks=[positive_data_acceptance]
    )
