"""capture: condition notes of the paper (per batch and per record)

Revision ID: 0002_capture_conditions
Revises: 0001_capture
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa


revision = "0002_capture_conditions"
down_revision = "0001_capture"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capture_batch_condition",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("assessed_by", sa.String(length=32), nullable=True),
        sa.Column("assessed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["capture_batch.id"],
                                name=op.f("fk_capture_batch_condition_batch_id_capture_batch")),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_capture_batch_condition")),
    )
    op.create_table(
        "capture_record_condition",
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("assessed_by", sa.String(length=32), nullable=True),
        sa.Column("assessed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_capture_record_condition_admission_id_admission")),
        sa.ForeignKeyConstraint(["batch_id"], ["capture_batch.id"],
                                name=op.f("fk_capture_record_condition_batch_id_capture_batch")),
        sa.PrimaryKeyConstraint("admission_id", name=op.f("pk_capture_record_condition")),
    )


def downgrade() -> None:
    op.drop_table("capture_record_condition")
    op.drop_table("capture_batch_condition")
