"""recovery: hospital holiday table, checked years, recoveries, handovers, scans, supplements

Revision ID: rc001_recovery
Revises:
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "rc001_recovery"
down_revision = None
branch_labels = ("recovery",)
depends_on = "0002_tasks"


def upgrade() -> None:
    op.create_table(
        "recovery_hospital_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=128), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day"),
    )
    op.create_table(
        "recovery_checked_year",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("checked_by", sa.String(length=32), nullable=True),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("year"),
    )
    op.create_table(
        "recovery_handover",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("ward", sa.String(length=64), nullable=False),
        sa.Column("staff_no", sa.String(length=32), nullable=False),
        sa.Column("staff_name", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
    )
    op.create_table(
        "recovery_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("recovered_at", sa.DateTime(), nullable=False),
        sa.Column("recovered_by", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("ward", sa.String(length=64), nullable=True),
        sa.Column("handover_id", sa.Integer(), nullable=True),
        sa.Column("label_printed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"]),
        sa.ForeignKeyConstraint(["handover_id"], ["recovery_handover.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("admission_id"),
    )
    op.create_index("ix_recovery_record_recovered_at", "recovery_record", ["recovered_at"])
    op.create_table(
        "recovery_scan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("handover_id", sa.Integer(), nullable=False),
        sa.Column("barcode", sa.String(length=64), nullable=False),
        sa.Column("scanned_at", sa.DateTime(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("message", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"]),
        sa.ForeignKeyConstraint(["handover_id"], ["recovery_handover.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
    )
    op.create_index("ix_recovery_scan_handover_id", "recovery_scan", ["handover_id"])
    op.create_table(
        "recovery_supplement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("sheets", sa.Integer(), nullable=False),
        sa.Column("from_ward", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("registered_by", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("captured_at", sa.DateTime(), nullable=True),
        sa.Column("document_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_recovery_supplement_admission_id", "recovery_supplement",
                    ["admission_id"])


def downgrade() -> None:
    op.drop_index("ix_recovery_supplement_admission_id", table_name="recovery_supplement")
    op.drop_table("recovery_supplement")
    op.drop_index("ix_recovery_scan_handover_id", table_name="recovery_scan")
    op.drop_table("recovery_scan")
    op.drop_index("ix_recovery_record_recovered_at", table_name="recovery_record")
    op.drop_table("recovery_record")
    op.drop_table("recovery_handover")
    op.drop_table("recovery_checked_year")
    op.drop_table("recovery_hospital_day")
