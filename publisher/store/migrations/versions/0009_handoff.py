"""handoff: when a post was handed off by mail to a portal's editorial desk

The ``handed_off`` state itself needs no change of schema (states are stored as text).

Revision ID: 0009
Revises: 0007 (the merger rechains it after 0008)
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handed_off_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.drop_column("handed_off_at")
