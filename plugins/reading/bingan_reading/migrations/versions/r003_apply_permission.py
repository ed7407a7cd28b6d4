"""reading: the reading.apply capability for the roles that could apply before it existed

Applications were open to every signed-in person; now they need ``reading.apply``, which
the system administrator, security administrator and auditor never get (三员分立: they read
no records). Every other role of an existing database keeps what it had.

Revision ID: r003_apply_permission
Revises: r002_paper_requests
Create Date: 2026-12-08
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "r003_apply_permission"
down_revision = "r002_paper_requests"
branch_labels = None
depends_on = None

PERMISSION = "reading.apply"
DUTY_ROLES = ("admin", "secadmin", "auditor")  # bingan.core.staff.DUTY_ROLES, frozen here

role = sa.table("role", sa.column("id", sa.Integer), sa.column("name", sa.String),
                sa.column("permissions", sa.JSON))


def _perms(value) -> list:
    if isinstance(value, str):  # a driver that hands JSON back as text
        value = json.loads(value)
    return list(value or [])


def upgrade() -> None:
    conn = op.get_bind()
    for rid, name, perms in conn.execute(sa.select(role.c.id, role.c.name, role.c.permissions)):
        perms = _perms(perms)
        if name in DUTY_ROLES or PERMISSION in perms:
            continue
        conn.execute(role.update().where(role.c.id == rid)
                     .values(permissions=sorted(perms + [PERMISSION])))


def downgrade() -> None:
    conn = op.get_bind()
    for rid, _name, perms in conn.execute(sa.select(role.c.id, role.c.name, role.c.permissions)):
        perms = _perms(perms)
        if PERMISSION in perms:
            conn.execute(role.update().where(role.c.id == rid)
                         .values(permissions=[p for p in perms if p != PERMISSION]))
