"""What the store already holds of each object's history, where each alert's cutouts are, and the time
of each annotation.

``objects`` gains, per kind of history row (detections, non-detections, forced photometry), the span
of times whose rows are all stored (``*_from`` to ``*_through``): the writer skips the rows of a new
alert that fall inside it. ``alerts.cutouts`` says where the alert's cutouts are (JSON: the pack file,
relative to the store's cutout directory, and each stamp's offset and length in it).
``annotations.mjd`` is its alert's time, so retention can reach it.
Only columns are added (nullable, no default): a metadata-only change on both backends.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SPANS = ("det_from", "det_through", "nondet_from", "nondet_through", "forced_from", "forced_through")


def upgrade() -> None:
    for column in SPANS:
        op.add_column("objects", sa.Column(column, sa.Float(precision=53)))
    op.add_column("alerts", sa.Column("cutouts", sa.Text()))
    op.add_column("annotations", sa.Column("mjd", sa.Float(precision=53)))


def downgrade() -> None:
    op.drop_column("annotations", "mjd")
    op.drop_column("alerts", "cutouts")
    for column in reversed(SPANS):
        op.drop_column("objects", column)
