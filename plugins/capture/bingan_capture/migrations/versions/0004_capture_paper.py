"""capture: the paper a photographed file shows (A4, A5, B5, 16K), as the photographer chose it

Revision ID: 0004_capture_paper
Revises: 0003_capture_page_created
Create Date: 2026-12-07

A phone photo's effective DPI follows from the sheet found in it and the paper's size; the
phone page lets the photographer say which paper it is. Null: nobody said (the imaging
settings' camera_paper_mm applies).
"""
from alembic import op
import sqlalchemy as sa


revision = "0004_capture_paper"
down_revision = "0003_capture_page_created"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("capture_file") as batch:
        batch.add_column(sa.Column("paper", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("capture_file") as batch:
        batch.drop_column("paper")
