"""Results as the service sends them: streamed chunk by chunk (a failure once rows are flowing ends the
table with its error), in every format including Parquet, and at most a few queries per client at once."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from astropy.io.votable import parse

from starling.control.server import BackgroundServer
from starling.store.open import open_store
from starling.web.app import close_web_app, web_app
from tests.support.helpers import synthetic_alerts, wait_until

ALERTS = 600
# Every pair of alerts: 360,000 rows, far more than a chunk, cheap for SQLite to make.
PAIRS = "SELECT a.alert_id, b.mjd FROM starling.alerts AS a, starling.alerts AS b"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    location = str(tmp_path_factory.mktemp("results") / "s.db")
    written = open_store(location)
    try:
        written.write(synthetic_alerts(ALERTS, objects=100, seed=3), {})
    finally:
        written.close()
    return location


def _serve(store: str, folder: Path, **options: float) -> Iterator[str]:
    app = web_app(store, folder / "jobs", **options)  # type: ignore[arg-type]
    server = BackgroundServer(app)
    try:
        yield f"http://127.0.0.1:{server.start()}/tap"
    finally:
        server.stop()
        close_web_app(app)


@pytest.fixture
def tap(store: str, tmp_path: Path) -> Iterator[str]:
    yield from _serve(store, tmp_path, queries_per_client=1)


def test_a_large_result_streams_whole_in_every_format(tap: str) -> None:
    wanted = {"QUERY": PAIRS, "MAXREC": "1000000"}
    csv = httpx.get(f"{tap}/sync", params={**wanted, "RESPONSEFORMAT": "csv"}, timeout=120)
    assert csv.status_code == 200
    assert csv.headers.get("content-length") is None  # sent in chunks, not as one document
    assert len(csv.text.strip().splitlines()) == 1 + ALERTS * ALERTS
    parquet = httpx.get(f"{tap}/sync", params={**wanted, "RESPONSEFORMAT": "parquet"}, timeout=120)
    assert parquet.headers["content-type"].startswith("application/vnd.apache.parquet")
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == ALERTS * ALERTS
    assert table.schema.field("alert_id").type == "int64"
    votable = httpx.get(f"{tap}/sync", params=wanted, timeout=120)
    rows = parse(io.BytesIO(votable.content)).get_first_table().array
    assert len(rows) == ALERTS * ALERTS


def test_maxrec_cuts_a_streamed_result_with_an_overflow(tap: str) -> None:
    answer = httpx.get(f"{tap}/sync", params={"QUERY": PAIRS, "MAXREC": "2500"}, timeout=60)
    document = parse(io.BytesIO(answer.content))
    assert len(document.get_first_table().array) == 2500
    assert b'name="QUERY_STATUS" value="OVERFLOW"' in answer.content.split(b"</TABLE>")[1]


def test_a_query_that_runs_out_of_time_mid_stream_ends_with_its_error(store: str, tmp_path: Path) -> None:
    for base in _serve(store, tmp_path, query_timeout_s=0.5):
        triples = PAIRS + ", starling.alerts AS c"  # 216 million rows: its time runs out while it streams
        answer = httpx.get(f"{base}/sync", params={"QUERY": triples, "MAXREC": "1000000"}, timeout=120)
        assert answer.status_code == 200  # the rows had begun to flow ...
        after = answer.content.split(b"</TABLE>")[1]
        assert b'name="QUERY_STATUS" value="ERROR"' in after  # ... and the document says why they stop
        assert b"longer than 0.5 s" in after
        assert 0 < len(parse(io.BytesIO(answer.content)).get_first_table().array) < 1_000_000


def test_one_client_runs_at_most_its_share_of_queries_at_once(tap: str) -> None:
    with httpx.Client(timeout=60) as client:
        params = {"QUERY": PAIRS, "MAXREC": "1000000", "RESPONSEFORMAT": "csv"}
        with client.stream("GET", f"{tap}/sync", params=params) as first:
            assert first.status_code == 200  # running, its body not read yet: it holds the slot
            second = httpx.get(f"{tap}/sync", params={"QUERY": "SELECT TOP 1 alert_id FROM starling.alerts"})
            assert second.status_code == 429
            assert second.headers["retry-after"] == "1"
            assert b"queries running already" in second.content
            assert sum(1 for _ in first.iter_lines()) == 1 + ALERTS * ALERTS
        # The slot comes back once the first answer has ended (just after its last byte).
        wait_until(
            lambda: (
                httpx.get(
                    f"{tap}/sync", params={"QUERY": "SELECT TOP 1 alert_id FROM starling.alerts"}
                ).status_code
                == 200
            ),
            10,
            "the client's slot to come back",
        )
