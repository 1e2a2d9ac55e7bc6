"""SQLite: objects and alerts indexed by declination, so that a TAP cone reads a thin band of the table
(the exact distance is then computed for the band only). PostgreSQL has q3c's index since 0001.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute("CREATE INDEX IF NOT EXISTS objects_by_dec ON objects (dec)")
        op.execute("CREATE INDEX IF NOT EXISTS alerts_by_dec ON alerts (dec)")


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP INDEX IF EXISTS alerts_by_dec")
        op.execute("DROP INDEX IF EXISTS objects_by_dec")
