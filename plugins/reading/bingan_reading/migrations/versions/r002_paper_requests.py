"""reading: requests for the paper record (when the warehouse plugin does not handle them)

Revision ID: r002_paper_requests
Revises: r001_reading
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "r002_paper_requests"
down_revision = "r001_reading"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reading_paper_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("applicant_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("handled_by", sa.String(length=32), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_reading_paper_request_admission_id_admission")),
        sa.ForeignKeyConstraint(["applicant_id"], ["staff.id"],
                                name=op.f("fk_reading_paper_request_applicant_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_paper_request")),
    )
    op.create_index("ix_reading_paper_request_status", "reading_paper_request", ["status"])
    op.create_index("ix_reading_paper_request_applicant_id", "reading_paper_request",
                    ["applicant_id"])


def downgrade() -> None:
    op.drop_table("reading_paper_request")
