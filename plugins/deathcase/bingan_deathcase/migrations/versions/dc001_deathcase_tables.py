"""deathcase: cases (labels, charge list), exports (versions), batches (zip + manifest)

Revision ID: dc001_deathcase
Revises:
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "dc001_deathcase"
down_revision = None
branch_labels = ("deathcase",)
depends_on = "0002_tasks"


def upgrade() -> None:
    op.create_table(
        "deathcase_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), sa.ForeignKey("admission.id"), nullable=False),
        sa.Column("labels_at", sa.DateTime(), nullable=True),
        sa.Column("labels_by", sa.String(length=32), nullable=True),
        sa.Column("charge_sha256", sa.String(length=64), sa.ForeignKey("blob.sha256"),
                  nullable=True),
        sa.Column("charge_pages", sa.Integer(), nullable=True),
        sa.Column("charge_source", sa.String(length=8), nullable=True),
        sa.Column("charge_filename", sa.String(length=255), nullable=True),
        sa.Column("charge_total", sa.Float(), nullable=True),
        sa.Column("charge_at", sa.DateTime(), nullable=True),
        sa.Column("charge_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("admission_id"),
    )
    op.create_table(
        "deathcase_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_no", sa.String(length=32), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("zip_sha256", sa.String(length=64), sa.ForeignKey("blob.sha256"),
                  nullable=False),
        sa.Column("zip_size", sa.BigInteger(), nullable=False),
        sa.Column("manifest_xlsx_sha256", sa.String(length=64), sa.ForeignKey("blob.sha256"),
                  nullable=False),
        sa.Column("manifest_csv_sha256", sa.String(length=64), sa.ForeignKey("blob.sha256"),
                  nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(), nullable=True),
        sa.Column("uploaded_by", sa.String(length=32), nullable=True),
        sa.Column("upload_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_no"),
    )
    op.create_table(
        "deathcase_export",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), sa.ForeignKey("admission.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("deathcase_batch.id"), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), sa.ForeignKey("blob.sha256"),
                  nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("page_ids", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("admission_id", "version", name="uq_deathcase_export_version"),
    )
    op.create_index("ix_deathcase_export_admission_id", "deathcase_export", ["admission_id"])
    op.create_index("ix_deathcase_export_batch_id", "deathcase_export", ["batch_id"])


def downgrade() -> None:
    op.drop_table("deathcase_export")
    op.drop_table("deathcase_batch")
    op.drop_table("deathcase_case")
