"""PostgreSQL: row-level security on ``annotations`` for the role TAP reads as, as on ``filter_matches``
(0006): a reader sees the annotations of the broker's own annotators and those kept as the viewer's
(``<viewer>.<annotator>``: the hits of its own watchlists and watchmaps) only, never another user's. The
view ``starling_tap.alert_fields`` reads the public rows. Nothing on SQLite (its readers are guarded per
connection).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from starling.store.access import READER_ROLE, postgres_visible

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE annotations ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY readers_see_their_annotations ON annotations FOR SELECT TO {READER_ROLE} "
        f"USING ({postgres_visible('annotator')})"
    )
    # Row-level security denies what no policy allows: writers go on seeing and writing every row.
    op.execute(
        f"CREATE POLICY writers_see_every_annotation ON annotations FOR ALL TO PUBLIC "
        f"USING (current_user <> '{READER_ROLE}') WITH CHECK (current_user <> '{READER_ROLE}')"
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP POLICY IF EXISTS writers_see_every_annotation ON annotations")
    op.execute("DROP POLICY IF EXISTS readers_see_their_annotations ON annotations")
    op.execute("ALTER TABLE annotations DISABLE ROW LEVEL SECURITY")
