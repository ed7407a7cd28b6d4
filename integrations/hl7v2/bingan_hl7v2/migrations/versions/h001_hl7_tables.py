"""hl7v2: message log and visit state

Revision ID: h001_hl7v2
Revises:
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "h001_hl7v2"
down_revision = None
branch_labels = ("hl7v2",)
depends_on = "0003_intake"


def upgrade() -> None:
    op.create_table(
        "hl7_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=128), nullable=False),
        sa.Column("control_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=8), nullable=False),
        sa.Column("event_at", sa.DateTime(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("ack_text", sa.Text(), nullable=False),
        sa.Column("mrn", sa.String(length=32), nullable=True),
        sa.Column("admission_no", sa.String(length=32), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hl7_message")),
        sa.UniqueConstraint("sender", "control_id", name="uq_hl7_message_sender_control"),
    )
    with op.batch_alter_table("hl7_message", schema=None) as batch_op:
        batch_op.create_index("ix_hl7_message_status_adm", ["status", "admission_no"])
        batch_op.create_index(batch_op.f("ix_hl7_message_received_at"), ["received_at"])
    op.create_table(
        "hl7_visit_state",
        sa.Column("admission_no", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=8), nullable=False),
        sa.Column("event_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("admission_no", name=op.f("pk_hl7_visit_state")),
    )


def downgrade() -> None:
    op.drop_table("hl7_visit_state")
    op.drop_table("hl7_message")
