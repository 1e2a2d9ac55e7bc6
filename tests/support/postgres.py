"""PostgreSQL for the tests: a real server started by scripts/postgres (or $STARLING_POSTGRES_URL), and a
database of its own for each test, dropped when the test ends."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.support.paths import REPO

SCRIPT = REPO / "scripts" / "postgres"
EXTERNAL_URL = os.environ.get("STARLING_POSTGRES_URL")


def postgres_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=900, check=False
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a running server's ``starling`` database (a superuser's: tests create databases)."""
    if EXTERNAL_URL:
        yield EXTERNAL_URL
        return
    was_running = postgres_script("status").returncode == 0
    started = postgres_script("start")
    assert started.returncode == 0, started.stdout + started.stderr
    yield postgres_script("url").stdout.strip()
    if not was_running:
        postgres_script("stop")


@contextlib.contextmanager
def own_database(server: str) -> Iterator[str]:
    """A new, empty database on ``server``, dropped when the block ends."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    base, _, _ = server.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database for one test."""
    with own_database(postgres_server) as url:
        yield url
