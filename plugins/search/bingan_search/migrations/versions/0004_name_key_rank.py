"""search: the rank of each pinyin key's reading, so common readings come first on every page

Revision ID: search_0004
Revises: search_0003
Create Date: 2026-12-08

Results found by pinyin were ordered by reading (common first) one page at a time, after the
page was read, so a name found by its common reading could sit on page 2 below names on page
1 that only a rare reading spells so. The rank of each key (``names.key_ranks``: 0 for the
common reading) is now stored with it and the query orders by it. Existing keys are given
their rank from the name, in chunks (a pure function of the name, as search_0003).
"""
from alembic import op
import sqlalchemy as sa


revision = "search_0004"
down_revision = "search_0003"
branch_labels = None
depends_on = None

CHUNK = 1000


def upgrade() -> None:
    from bingan_search.names import RANK_MAX, key_ranks

    op.add_column("search_name_key", sa.Column("rank", sa.SmallInteger(), nullable=False,
                                               server_default="0"))
    bind = op.get_bind()
    keys = sa.table("search_name_key", sa.column("name", sa.String), sa.column("key", sa.String),
                    sa.column("rank", sa.SmallInteger))
    names = [r[0] for r in bind.execute(sa.select(keys.c.name).distinct().order_by(keys.c.name))]
    update = (keys.update().where(keys.c.name == sa.bindparam("n"), keys.c.key == sa.bindparam("k"))
              .values(rank=sa.bindparam("r")))
    for i in range(0, len(names), CHUNK):
        part = names[i:i + CHUNK]
        have = {tuple(r) for r in bind.execute(sa.select(keys.c.name, keys.c.key)
                                                .where(keys.c.name.in_(part)))}
        rows = [{"n": n, "k": k, "r": min(r, RANK_MAX)} for n in part
                for k, r in key_ranks(n).items() if r and (n, k) in have]
        if rows:
            bind.execute(update, rows)


def downgrade() -> None:
    with op.batch_alter_table("search_name_key") as batch:
        batch.drop_column("rank")
