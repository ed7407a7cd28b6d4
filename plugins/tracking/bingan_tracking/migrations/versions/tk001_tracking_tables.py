"""tracking: current state per paper record, every move

Revision ID: tk001_tracking
Revises:
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "tk001_tracking"
down_revision = None
branch_labels = ("tracking",)
depends_on = "0002_tasks"


def upgrade() -> None:
    op.create_table(
        "tracking_move",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("staff_no", sa.String(length=32), nullable=True),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("computer_name", sa.String(length=128), nullable=True),
        sa.Column("location", sa.String(length=128), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tracking_move_admission", "tracking_move", ["admission_id", "id"])
    op.create_index("ix_tracking_move_at", "tracking_move", ["at"])
    op.create_table(
        "tracking_state",
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("last_move_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"]),
        sa.ForeignKeyConstraint(["last_move_id"], ["tracking_move.id"]),
        sa.PrimaryKeyConstraint("admission_id"),
    )
    op.create_index("ix_tracking_state_state_since", "tracking_state", ["state", "since"])


def downgrade() -> None:
    op.drop_index("ix_tracking_state_state_since", "tracking_state")
    op.drop_table("tracking_state")
    op.drop_index("ix_tracking_move_at", "tracking_move")
    op.drop_index("ix_tracking_move_admission", "tracking_move")
    op.drop_table("tracking_move")
