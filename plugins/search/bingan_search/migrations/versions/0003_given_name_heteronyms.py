"""search: pinyin keys for every reading of given-name characters

Revision ID: search_0003
Revises: search_0002
Create Date: 2026-12-07

Keys used to cover the heteronyms of surnames only (陈长林 was found by ``czl`` but not by
``ccl``). The keys are a pure function of the name (``bingan_search.names.name_keys``): this
adds the missing keys of every name already indexed, in chunks. Downgrade leaves the extra keys
(they only make more prefixes match the same names).
"""
from alembic import op
import sqlalchemy as sa


revision = "search_0003"
down_revision = "search_0002"
branch_labels = None
depends_on = None

CHUNK = 1000


def upgrade() -> None:
    from bingan_search.names import name_keys

    bind = op.get_bind()
    keys = sa.table("search_name_key", sa.column("name", sa.String), sa.column("key", sa.String))
    names = [r[0] for r in bind.execute(sa.select(keys.c.name).distinct().order_by(keys.c.name))]
    for i in range(0, len(names), CHUNK):
        part = names[i:i + CHUNK]
        have: set[tuple[str, str]] = set(
            (n, k) for n, k in bind.execute(sa.select(keys.c.name, keys.c.key)
                                            .where(keys.c.name.in_(part))))
        rows = [{"name": n, "key": k} for n in part for k in sorted(name_keys(n))
                if (n, k) not in have]
        if rows:
            bind.execute(keys.insert(), rows)


def downgrade() -> None:
    pass
