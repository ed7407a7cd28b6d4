"""qc tables: samples, sampled records, inspections, page verdicts

Revision ID: 0001_qc
Revises:
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa


revision = "0001_qc"
down_revision = None
branch_labels = ("qc",)
depends_on = "0002_tasks"


def upgrade() -> None:
    op.create_table(
        "qc_sample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("batch_name", sa.String(length=128), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("drawn_at", sa.DateTime(), nullable=False),
        sa.Column("drawn_by", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_sample")),
        sa.UniqueConstraint("batch_id", name=op.f("uq_qc_sample_batch_id")),
    )
    op.create_table(
        "qc_sample_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["sample_id"], ["qc_sample.id"],
                                name=op.f("fk_qc_sample_item_sample_id_qc_sample")),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_qc_sample_item_admission_id_admission")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_sample_item")),
        sa.UniqueConstraint("sample_id", "admission_id", name="uq_qc_sample_item"),
    )
    op.create_index("ix_qc_sample_item_sample_id", "qc_sample_item", ["sample_id"])
    op.create_index("ix_qc_sample_item_admission_id", "qc_sample_item", ["admission_id"])
    op.create_table(
        "qc_inspection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("result", sa.String(length=8), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("failed_pages", sa.Integer(), nullable=False),
        sa.Column("record_reason", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("rework_ids", sa.JSON(), nullable=False),
        sa.Column("inspector", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["qc_sample_item.id"],
                                name=op.f("fk_qc_inspection_item_id_qc_sample_item")),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_qc_inspection_admission_id_admission")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_inspection")),
    )
    op.create_index("ix_qc_inspection_item_id", "qc_inspection", ["item_id"])
    op.create_index("ix_qc_inspection_admission_id", "qc_inspection", ["admission_id"])
    op.create_index("ix_qc_inspection_created_at", "qc_inspection", ["created_at"])
    op.create_table(
        "qc_page_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inspection_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("result", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["inspection_id"], ["qc_inspection.id"],
                                name=op.f("fk_qc_page_check_inspection_id_qc_inspection")),
        sa.ForeignKeyConstraint(["page_id"], ["page.id"],
                                name=op.f("fk_qc_page_check_page_id_page")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_page_check")),
    )
    op.create_index("ix_qc_page_check_inspection_id", "qc_page_check", ["inspection_id"])
    op.create_index("ix_qc_page_check_page_id", "qc_page_check", ["page_id"])


def downgrade() -> None:
    for t in ("qc_page_check", "qc_inspection", "qc_sample_item", "qc_sample"):
        op.drop_table(t)
