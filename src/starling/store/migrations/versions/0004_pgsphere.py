"""pgSphere on PostgreSQL: exact spherical polygons of any size for TAP (q3c's indexed polygon search
is limited to about 23 degrees across). Nothing on SQLite.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_sphere")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP EXTENSION IF EXISTS pg_sphere")
