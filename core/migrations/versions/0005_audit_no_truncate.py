"""audit chain: refuse TRUNCATE on PostgreSQL (row triggers do not see it)

Revision ID: 0005_audit_truncate
Revises: 0004_accounts
Create Date: 2026-12-07 14:30:00
"""
from alembic import op

revision = '0005_audit_truncate'
down_revision = '0004_accounts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite has no TRUNCATE (its DELETE without WHERE fires the row trigger of 0001).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()")
        op.execute(
            "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_truncate ON audit_head")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
