"""copying: copy requests, pages, identity documents, print register

Revision ID: c001_copying
Revises:
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "c001_copying"
down_revision = None
branch_labels = ("copying",)
depends_on = "0002_tasks"


def upgrade() -> None:
    op.create_table(
        "copy_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_no", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("mrn", sa.String(length=32), nullable=False),
        sa.Column("applicant_type", sa.String(length=32), nullable=False),
        sa.Column("applicant_name", sa.String(length=64), nullable=False),
        sa.Column("applicant_phone", sa.String(length=32), nullable=True),
        sa.Column("organization", sa.String(length=128), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("purpose_note", sa.Text(), nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("fee_fen", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=32), nullable=True),
        sa.Column("consent_at", sa.DateTime(), nullable=False),
        sa.Column("consent_text", sa.Text(), nullable=False),
        sa.Column("operator_no", sa.String(length=32), nullable=False),
        sa.Column("operator_name", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=True),
        sa.Column("repeat_of", sa.JSON(), nullable=False),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("identity_until", sa.DateTime(), nullable=False),
        sa.Column("identity_purged_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"],
                                name=op.f("fk_copy_request_patient_id_patient")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_copy_request")),
        sa.UniqueConstraint("request_no", name=op.f("uq_copy_request_request_no")),
    )
    op.create_index("ix_copy_request_patient_id", "copy_request", ["patient_id"])
    op.create_index("ix_copy_request_created_at", "copy_request", ["created_at"])
    op.create_index("ix_copy_request_status", "copy_request", ["status"])
    op.create_table(
        "copy_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("page_type", sa.String(length=32), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["copy_request.id"], ondelete="CASCADE",
                                name=op.f("fk_copy_item_request_id_copy_request")),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_copy_item_admission_id_admission")),
        sa.ForeignKeyConstraint(["page_id"], ["page.id"],
                                name=op.f("fk_copy_item_page_id_page")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_copy_item")),
    )
    op.create_index("ix_copy_item_request_id", "copy_item", ["request_id"])
    op.create_index("ix_copy_item_admission_id", "copy_item", ["admission_id"])
    op.create_table(
        "copy_identity_document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("purged_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["copy_request.id"], ondelete="CASCADE",
                                name=op.f("fk_copy_identity_document_request_id_copy_request")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_copy_identity_document")),
    )
    op.create_index("ix_copy_identity_document_request_id", "copy_identity_document",
                    ["request_id"])
    op.create_table(
        "copy_print_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("operator_no", sa.String(length=32), nullable=False),
        sa.Column("printer", sa.String(length=128), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("cups_job", sa.String(length=128), nullable=True),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=True),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("computer_name", sa.String(length=255), nullable=True),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["copy_request.id"],
                                name=op.f("fk_copy_print_job_request_id_copy_request")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_copy_print_job")),
    )
    op.create_index("ix_copy_print_job_request_id", "copy_print_job", ["request_id"])
    op.create_index("ix_copy_print_job_at", "copy_print_job", ["at"])


def downgrade() -> None:
    op.drop_table("copy_print_job")
    op.drop_table("copy_identity_document")
    op.drop_table("copy_item")
    op.drop_table("copy_request")
