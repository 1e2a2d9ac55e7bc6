"""Filter matches indexed by object, for the portal's "which filters matched this object". Built online
on PostgreSQL: the partitioned table gets an index of its own ``ON ONLY`` itself, each partition's is built
CONCURRENTLY (writers go on inserting) and attached, after which the parent's is valid and partitions made
later get theirs when they are made.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_PARTITIONS = """
SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'filter_matches' ORDER BY c.relname
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        op.execute("CREATE INDEX IF NOT EXISTS matches_by_object ON filter_matches (survey, object_id)")
        return
    op.execute("CREATE INDEX IF NOT EXISTS matches_by_object ON ONLY filter_matches (survey, object_id)")
    partitions = [str(row[0]) for row in op.get_bind().execute(text(_PARTITIONS))]
    with op.get_context().autocommit_block():
        for partition in partitions:
            index = f"{partition}_by_object"
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {partition} (survey, object_id)")
            op.execute(f"ALTER INDEX matches_by_object ATTACH PARTITION {index}")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS matches_by_object")
