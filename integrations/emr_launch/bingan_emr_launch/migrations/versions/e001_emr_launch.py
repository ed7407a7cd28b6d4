"""emr_launch: used link nonces

Revision ID: e001_emr_launch
Revises:
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "e001_emr_launch"
down_revision = None
branch_labels = ("emr_launch",)
depends_on = "0004_accounts"


def upgrade() -> None:
    op.create_table(
        "emr_launch_nonce",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("system", "nonce", name="uq_emr_launch_nonce"),
    )
    op.create_index("ix_emr_launch_nonce_expires", "emr_launch_nonce", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_emr_launch_nonce_expires", table_name="emr_launch_nonce")
    op.drop_table("emr_launch_nonce")
