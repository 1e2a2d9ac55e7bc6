"""Shared fixtures. The real survey samples are read in place from ../shared/data (or $STARLING_SAMPLES)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from starling.alert.decoder import AlertDecoder
from starling.alert.schemas import PackagedRubinSchemas
from tests.support.paths import samples_dir


@pytest.fixture(scope="session")
def samples() -> Path:
    """The shared sample data. In CI it must be there: missing data fails the run instead of skipping."""
    found = samples_dir()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("shared sample data not found at ../shared/data nor $STARLING_SAMPLES")
        pytest.skip("shared sample data not found (set STARLING_SAMPLES)")
    return found


@pytest.fixture(scope="session")
def packaged_schemas() -> PackagedRubinSchemas:
    return PackagedRubinSchemas()


@pytest.fixture
def decoder(packaged_schemas: PackagedRubinSchemas) -> AlertDecoder:
    return AlertDecoder(packaged_schemas)


@pytest.fixture
def output_dir(tmp_path: Path) -> Iterator[Path]:
    out = tmp_path / "out"
    out.mkdir()
    return out


# A headless Chromium (Debian's, with its driver), installed when missing, for the portal's pages.
from tests.support.browser import browser  # noqa: E402, F401

# The Kafka fixtures (a real broker, started once per session) for tests/kafka and tests/control.
from tests.support.kafka import kafka_bootstrap, kafka_users_listener, prefix  # noqa: E402, F401

# PostgreSQL (a real server, started once per session; a database per test) for tests/store and others.
from tests.support.postgres import postgres_server, postgres_url  # noqa: E402, F401

# STILTS (taplint), installed from Debian when missing, for tests/web.
from tests.support.stilts import stilts  # noqa: E402, F401
