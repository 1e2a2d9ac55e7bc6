"""An index of annotations by time, for retention. Built online on PostgreSQL (CONCURRENTLY, outside a
transaction): writers go on inserting while it is built.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS annotations_by_time ON annotations (mjd)")
    else:
        op.execute("CREATE INDEX IF NOT EXISTS annotations_by_time ON annotations (mjd)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS annotations_by_time")
