"""``starling web``: serve TAP and the portal's data API (``/api``) over a store."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from starling.cli.terminal import console, report_error
from starling.store.location import is_postgres, sqlite_path


def default_cutouts(store: str) -> Path | None:
    """Where the store sink keeps cutouts when its config names none: ``cutouts`` in its output folder,
    beside its SQLite file (``StoreSinkConfig``). A PostgreSQL store has no folder beside it."""
    return None if is_postgres(store) else sqlite_path(store).parent / "cutouts"


def web(
    store: Annotated[str, typer.Option("--store", "-s", help="a SQLite file or a PostgreSQL URL")],
    port: Annotated[int, typer.Option(help="the port (0: a free one)")] = 8770,
    port_file: Annotated[Path | None, typer.Option(help="write the bound port here once serving")] = None,
    host: Annotated[str, typer.Option(help="the address to listen on")] = "127.0.0.1",
    query_timeout: Annotated[float, typer.Option(help="seconds a synchronous query may run")] = 30.0,
    controller: Annotated[
        str | None,
        typer.Option(help="the controller that checks users' tokens (none: anonymous requests only)"),
    ] = None,
    queries_per_client: Annotated[
        int, typer.Option(min=1, help="queries one client (a user, else an address) may run at once")
    ] = 4,
    jobs: Annotated[
        Path | None,
        typer.Option(
            help="where asynchronous jobs and their results are kept (default: beside a SQLite store, "
            "else var/tap-jobs)"
        ),
    ] = None,
    cutouts: Annotated[
        Path | None,
        typer.Option(
            help="the folder of the alerts' cutouts, as the store sink keeps them (default: 'cutouts' "
            "beside a SQLite store, the store sink's own default; none for PostgreSQL)"
        ),
    ] = None,
) -> None:
    """Serve TAP 1.1 with ADQL over the store (/tap/sync, /tap/tables, /tap/capabilities,
    /tap/availability) and the portal's data API (/api; its OpenAPI at /docs)"""
    from starling.control.server import BackgroundServer
    from starling.core.service import start_service_process
    from starling.errors import StarlingError
    from starling.web.app import close_web_app, web_app

    start_service_process()  # its log lines; its threads dumped on SIGUSR1
    try:
        folder = jobs or (Path(store).parent / "tap-jobs" if "://" not in store else Path("var") / "tap-jobs")
        app = web_app(
            store, folder, query_timeout, controller, queries_per_client, cutouts or default_cutouts(store)
        )
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(1) from None
    server = BackgroundServer(app, host=host, port=port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    bound = server.start()
    if port_file is not None:
        port_file.write_text(str(bound))
    console.print(
        f"TAP on http://{host}:{bound}/tap, the data API on /api (store {app.state.tap_store.shown})"
    )
    try:
        stop.wait()
    finally:
        server.stop()
        close_web_app(app)
