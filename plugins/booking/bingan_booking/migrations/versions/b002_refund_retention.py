"""booking: the refund's own state (re-queried until final), the photo purge time

Revision ID: b002_refund_retention
Revises: b001_booking
Create Date: 2026-12-07 23:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = "b002_refund_retention"
down_revision = "b001_booking"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("booking", sa.Column("refund_status", sa.String(length=16), nullable=True))
    op.add_column("booking", sa.Column("refund_id", sa.String(length=64), nullable=True))
    op.add_column("booking", sa.Column("refund_checked_at", sa.DateTime(), nullable=True))
    op.add_column("booking", sa.Column("photos_purged_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("booking") as b:
        for c in ("photos_purged_at", "refund_checked_at", "refund_id", "refund_status"):
            b.drop_column(c)
