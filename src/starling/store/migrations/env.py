"""Alembic's entry point: run the revisions on the connection ``starling.store.migrate`` hands over."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
# One transaction per revision: a revision that builds an index CONCURRENTLY commits the ones before it.
context.configure(
    connection=connection, transactional_ddl=True, transaction_per_migration=True, render_as_batch=True
)
with context.begin_transaction():
    context.run_migrations()
