"""The ``starling`` command: one module per command group, gathered here."""

from __future__ import annotations

import typer

from starling.cli import catalog, control, deadletters, deploy, filters, plan, run, stages, store, watch, web

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Starling: an alert broker for ZTF and Rubin."
)

app.command()(run.run)
app.command()(run.synth)
app.command()(stages.serve)
app.command()(stages.feed)
app.command()(stages.up)
app.command()(control.controller)
app.command()(run.components)
app.add_typer(control.ctl_app, name="ctl")
app.add_typer(deploy.deploy_app, name="deploy")
app.add_typer(filters.filter_app, name="filter")
app.add_typer(deadletters.deadletters_app, name="deadletters")
app.add_typer(catalog.catalog_app, name="catalog")
app.add_typer(store.store_app, name="store")
app.command("web")(web.web)
app.command("plan")(plan.plan_command)
app.add_typer(watch.watchlist_app, name="watchlist")
app.add_typer(watch.watchmap_app, name="watchmap")
app.add_typer(control.token_app, name="token")
