"""Each alert's provenance: the stages of the chain it passed, in order, with their versions (JSON).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE alerts ADD COLUMN provenance TEXT")


def downgrade() -> None:
    op.execute("ALTER TABLE alerts DROP COLUMN provenance")
