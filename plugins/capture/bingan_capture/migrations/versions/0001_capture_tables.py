"""capture tables: files, frames, rework queue, batches and plans

Revision ID: 0001_capture
Revises:
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa


revision = "0001_capture"
down_revision = None
branch_labels = ("capture",)
depends_on = "0002_tasks"


def upgrade() -> None:
    op.create_table(
        "capture_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("daily_pages", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_batch")),
        sa.UniqueConstraint("name", name=op.f("uq_capture_batch_name")),
    )
    op.create_table(
        "capture_batch_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("expected_pages", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_capture_batch_item_admission_id_admission")),
        sa.ForeignKeyConstraint(["batch_id"], ["capture_batch.id"],
                                name=op.f("fk_capture_batch_item_batch_id_capture_batch")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_batch_item")),
        sa.UniqueConstraint("batch_id", "admission_id", name="uq_capture_batch_item_record"),
    )
    op.create_index("ix_capture_batch_item_batch_id", "capture_batch_item", ["batch_id"])
    op.create_index("ix_capture_batch_item_admission_id", "capture_batch_item", ["admission_id"])
    op.create_table(
        "capture_plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("planned_pages", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["capture_batch.id"],
                                name=op.f("fk_capture_plan_batch_id_capture_batch")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_plan")),
        sa.UniqueConstraint("batch_id", "day", name="uq_capture_plan_day"),
    )
    op.create_index("ix_capture_plan_batch_id", "capture_plan", ["batch_id"])
    op.create_table(
        "capture_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=160), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("device", sa.String(length=16), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("replace_page_id", sa.Integer(), nullable=True),
        sa.Column("rework_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("received_by", sa.String(length=32), nullable=True),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["sha256"], ["blob.sha256"],
                                name=op.f("fk_capture_file_sha256_blob")),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_capture_file_admission_id_admission")),
        sa.ForeignKeyConstraint(["batch_id"], ["capture_batch.id"],
                                name=op.f("fk_capture_file_batch_id_capture_batch")),
        sa.ForeignKeyConstraint(["replace_page_id"], ["page.id"],
                                name=op.f("fk_capture_file_replace_page_id_page")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_file")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_capture_file_dedupe_key")),
    )
    op.create_index("ix_capture_file_sha256", "capture_file", ["sha256"])
    op.create_index("ix_capture_file_admission_id", "capture_file", ["admission_id"])
    op.create_index("ix_capture_file_batch_id", "capture_file", ["batch_id"])
    op.create_index("ix_capture_file_status", "capture_file", ["status"])
    op.create_index("ix_capture_file_received_at", "capture_file", ["received_at"])
    op.create_table(
        "capture_frame",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("capture_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("dpi", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("target_admission_id", sa.Integer(), nullable=True),
        sa.Column("admission_id", sa.Integer(), nullable=True),
        sa.Column("page_id", sa.Integer(), nullable=True),
        sa.Column("barcode", sa.String(length=64), nullable=True),
        sa.Column("qc_status", sa.String(length=8), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sa.Column("stored_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["capture_id"], ["capture_file.id"],
                                name=op.f("fk_capture_frame_capture_id_capture_file")),
        sa.ForeignKeyConstraint(["blob_sha256"], ["blob.sha256"],
                                name=op.f("fk_capture_frame_blob_sha256_blob")),
        sa.ForeignKeyConstraint(["target_admission_id"], ["admission.id"],
                                name=op.f("fk_capture_frame_target_admission_id_admission")),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_capture_frame_admission_id_admission")),
        sa.ForeignKeyConstraint(["page_id"], ["page.id"],
                                name=op.f("fk_capture_frame_page_id_page")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_frame")),
        sa.UniqueConstraint("capture_id", "idx", name="uq_capture_frame_idx"),
    )
    op.create_index("ix_capture_frame_capture_id", "capture_frame", ["capture_id"])
    op.create_index("ix_capture_frame_status", "capture_frame", ["status"])
    op.create_index("ix_capture_frame_admission_id", "capture_frame", ["admission_id"])
    op.create_index("ix_capture_frame_stored_at", "capture_frame", ["stored_at"])
    op.create_table(
        "capture_rework",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=32), nullable=True),
        sa.Column("new_page_id", sa.Integer(), nullable=True),
        sa.Column("capture_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_capture_rework_admission_id_admission")),
        sa.ForeignKeyConstraint(["page_id"], ["page.id"],
                                name=op.f("fk_capture_rework_page_id_page")),
        sa.ForeignKeyConstraint(["new_page_id"], ["page.id"],
                                name=op.f("fk_capture_rework_new_page_id_page")),
        sa.ForeignKeyConstraint(["capture_id"], ["capture_file.id"],
                                name=op.f("fk_capture_rework_capture_id_capture_file")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_rework")),
    )
    op.create_index("ix_capture_rework_admission_id", "capture_rework", ["admission_id"])
    op.create_index("ix_capture_rework_page_id", "capture_rework", ["page_id"])
    op.create_index("ix_capture_rework_status", "capture_rework", ["status"])


def downgrade() -> None:
    for t in ("capture_rework", "capture_frame", "capture_file", "capture_plan",
              "capture_batch_item", "capture_batch"):
        op.drop_table(t)
