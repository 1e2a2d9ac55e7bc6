"""``stilts taplint``, the validator TAP users run, against the service on SQLite and on PostgreSQL: no
error in any stage the service serves (metadata from /tables and TAP_SCHEMA and their agreement, the
capabilities and availability documents against their schemas, synchronous queries by GET and POST,
result columns against the declared metadata, asynchronous jobs and UWS, uploads, examples): all of
taplint's stages."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from starling.control.server import BackgroundServer
from starling.store.open import open_store
from starling.web.app import close_web_app, web_app
from tests.support.helpers import synthetic_alerts

STAGES = "TMV TME TMS TMC CPV CAP AVV QGE QPO QAS UWS MDQ UPL EXA"


@pytest.fixture(params=["sqlite", "postgresql"])
def tap_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # taplint serves the tables it uploads by URL from this machine: the operator allows loopback here.
    monkeypatch.setenv("STARLING_EGRESS_ALLOW", "127.0.0.1,::1")
    location = (
        request.getfixturevalue("postgres_url") if request.param == "postgresql" else str(tmp_path / "s.db")
    )
    alerts = synthetic_alerts(400, objects=80, seed=9)
    store = open_store(location)
    try:
        store.write(alerts, {"bright": [a for a in alerts if a.mag is not None and a.mag < 19.0]})
    finally:
        store.close()
    app = web_app(location, tmp_path / "jobs")
    server = BackgroundServer(app)
    port = server.start()
    try:
        yield f"http://127.0.0.1:{port}/tap"
    finally:
        server.stop()
        close_web_app(app)


def test_taplint_finds_no_error(stilts: str, tap_url: str) -> None:
    done = subprocess.run(
        [stilts, "taplint", f"tapurl={tap_url}", f"stages={STAGES}", "report=EWF"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = done.stdout + done.stderr
    totals = re.search(r"Totals: Errors: (\d+); Warnings: (\d+)", report)
    assert totals is not None, report
    errors = [line for line in report.splitlines() if line.startswith(("E-", "F-"))]
    assert totals.group(1) == "0", "\n".join(errors)
    assert not errors, "\n".join(errors)
