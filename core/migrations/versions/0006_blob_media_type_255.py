"""blob.media_type holds any media type: 64 characters were too few for xlsx
(application/vnd.openxmlformats-officedocument.spreadsheetml.sheet is 65; RFC 6838 allows
127 + 1 + 127)

Revision ID: 0006_blob_media_type
Revises: 0005_audit_truncate
Create Date: 2026-12-07 21:35:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006_blob_media_type'
down_revision = '0005_audit_truncate'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite does not enforce VARCHAR lengths: rebuilding the blob table there would only cost
    # time on a large archive
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("blob", "media_type", type_=sa.String(255),
                        existing_type=sa.String(64), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("blob", "media_type", type_=sa.String(64),
                        existing_type=sa.String(255), existing_nullable=False)
