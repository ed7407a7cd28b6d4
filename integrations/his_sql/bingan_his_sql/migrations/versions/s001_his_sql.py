"""his_sql: pull state and refused rows

Revision ID: s001_his_sql
Revises:
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "s001_his_sql"
down_revision = None
branch_labels = ("his_sql",)
depends_on = "0003_intake"


def upgrade() -> None:
    op.create_table(
        "his_sql_state",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("watermark", sa.Text(), nullable=True),
        sa.Column("last_key", sa.String(length=128), nullable=True),
        sa.Column("last_run_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_table(
        "his_sql_issue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("row_key", sa.String(length=128), nullable=False),
        sa.Column("watermark", sa.Text(), nullable=True),
        sa.Column("column", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_his_sql_issue_source_key", "his_sql_issue", ["source", "row_key"])
    op.create_index("ix_his_sql_issue_seen_at", "his_sql_issue", ["seen_at"])


def downgrade() -> None:
    op.drop_table("his_sql_issue")
    op.drop_table("his_sql_state")
