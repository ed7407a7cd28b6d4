"""archive tables: digitization status and PDF build keys

Revision ID: a001_archive
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "a001_archive"
down_revision = None
branch_labels = ("archive",)
depends_on = "0002_tasks"


def upgrade() -> None:
    op.create_table(
        "archive_record",
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=False),
        sa.Column("expected_pages", sa.Integer(), nullable=True),
        sa.Column("document_version", sa.Integer(), nullable=True),
        sa.Column("digitized_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_archive_record_admission_id_admission")),
        sa.PrimaryKeyConstraint("admission_id", name=op.f("pk_archive_record")),
    )
    with op.batch_alter_table("archive_record") as b:
        b.create_index(b.f("ix_archive_record_status"), ["status"], unique=False)
    op.create_table(
        "archive_document",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("content_key", sa.String(length=64), nullable=False),
        sa.Column("built_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_archive_document_admission_id_admission")),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"],
                                name=op.f("fk_archive_document_document_id_document")),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_archive_document")),
    )
    with op.batch_alter_table("archive_document") as b:
        b.create_index(b.f("ix_archive_document_admission_id"), ["admission_id"], unique=False)


def downgrade() -> None:
    op.drop_table("archive_document")
    op.drop_table("archive_record")
