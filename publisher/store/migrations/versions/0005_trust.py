"""trust: a keyed audit chain, channel outages

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        # "sha256": the chain of the first release, unkeyed; "hmac-sha256": keyed with the
        # audit key from the environment, whose id (not the key) is kept in key_id.
        batch_op.add_column(
            sa.Column("scheme", sa.String(length=16), nullable=False, server_default="sha256")
        )
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))

    with op.batch_alter_table("channel_state", schema=None) as batch_op:
        # When the current block (outage, throttling, credentials) began, and how many probes
        # of an unreachable channel have failed since: the probe's backoff.
        batch_op.add_column(sa.Column("blocked_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("probes", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("channel_state", schema=None) as batch_op:
        batch_op.drop_column("probes")
        batch_op.drop_column("blocked_since")

    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("key_id")
        batch_op.drop_column("scheme")
