"""PostgreSQL: the role TAP reads as (``starling_reader``), allowed to read the tables TAP serves and
nothing else, and row-level security on ``filter_matches`` so that it sees the operator's filters'
matches and the matches of the viewer named by ``starling.viewer`` only (see ``starling.store.access``).
Partitions are not granted: a reader reaches rows through the parent table, where the policy holds.
Nothing on SQLite (its readers are guarded per connection).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

from starling.store.access import POSTGRES_VISIBLE, READER_ROLE

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_READ = (
    "objects",
    "alerts",
    "detections",
    "non_detections",
    "forced_photometry",
    "annotations",
    "filter_matches",
)


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    # A role belongs to the cluster, not the database: made once, granted to whoever migrates, so
    # that the service (connecting as that user) may SET ROLE to it.
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER_ROLE}') "
        f"THEN CREATE ROLE {READER_ROLE} NOLOGIN; END IF; END $$"
    )
    op.execute(f"GRANT {READER_ROLE} TO CURRENT_USER")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {READER_ROLE}")
    op.execute(f"GRANT SELECT ON {', '.join(_READ)} TO {READER_ROLE}")
    op.execute("ALTER TABLE filter_matches ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY readers_see_their_matches ON filter_matches FOR SELECT TO {READER_ROLE} "
        f"USING ({POSTGRES_VISIBLE})"
    )
    # Row-level security denies what no policy allows: writers that do not own the table (a role of
    # their own, granted INSERT) go on seeing and writing every row.
    op.execute(
        f"CREATE POLICY writers_see_every_match ON filter_matches FOR ALL TO PUBLIC "
        f"USING (current_user <> '{READER_ROLE}') WITH CHECK (current_user <> '{READER_ROLE}')"
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP POLICY IF EXISTS writers_see_every_match ON filter_matches")
    op.execute("DROP POLICY IF EXISTS readers_see_their_matches ON filter_matches")
    op.execute("ALTER TABLE filter_matches DISABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE SELECT ON {', '.join(_READ)} FROM {READER_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {READER_ROLE}")
