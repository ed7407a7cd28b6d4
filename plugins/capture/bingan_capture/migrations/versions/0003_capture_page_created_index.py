"""capture: index of pages by the time they were stored (the production report of one month
reads its pages by range instead of scanning every page of the archive)

Revision ID: 0003_capture_page_created
Revises: 0002_capture_conditions
Create Date: 2026-12-07
"""
from alembic import op


revision = "0003_capture_page_created"
down_revision = "0002_capture_conditions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # (created_at, admission_id): the report counts pages and distinct records per day from
    # the index alone
    op.create_index("ix_capture_page_created", "page", ["created_at", "admission_id"])


def downgrade() -> None:
    op.drop_index("ix_capture_page_created", table_name="page")
