"""reading: rules and applications

Revision ID: r001_reading
Revises:
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "r001_reading"
down_revision = None
branch_labels = ("reading",)
depends_on = "0002_tasks"


def upgrade() -> None:
    op.create_table(
        "reading_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("effect", sa.String(length=8), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("record_scope", sa.String(length=32), nullable=True),
        sa.Column("until", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_rule")),
    )
    op.create_index("ix_reading_rule_subject", "reading_rule", ["subject_type", "subject"])
    op.create_table(
        "reading_application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("applicant_id", sa.Integer(), nullable=False),
        sa.Column("applicant_department", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("approvers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("deadline", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["applicant_id"], ["staff.id"], ondelete="CASCADE",
                                name=op.f("fk_reading_application_applicant_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_application")),
    )
    op.create_index("ix_reading_application_applicant_id", "reading_application",
                    ["applicant_id"])
    op.create_index("ix_reading_application_status", "reading_application", ["status"])
    op.create_table(
        "reading_application_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("grant_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["reading_application.id"],
                                ondelete="CASCADE",
                                name=op.f("fk_reading_application_item_application_id_reading_application")),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_reading_application_item_admission_id_admission")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"],
                                name=op.f("fk_reading_application_item_patient_id_patient")),
        sa.ForeignKeyConstraint(["grant_id"], ["grant.id"],
                                name=op.f("fk_reading_application_item_grant_id_grant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_application_item")),
    )
    op.create_index("ix_reading_application_item_application_id", "reading_application_item",
                    ["application_id"])
    op.create_index("ix_reading_application_item_admission_id", "reading_application_item",
                    ["admission_id"])
    op.create_index("ix_reading_application_item_patient_id", "reading_application_item",
                    ["patient_id"])


def downgrade() -> None:
    op.drop_table("reading_application_item")
    op.drop_table("reading_application")
    op.drop_index("ix_reading_rule_subject", table_name="reading_rule")
    op.drop_table("reading_rule")
