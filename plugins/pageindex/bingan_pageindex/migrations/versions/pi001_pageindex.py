"""pageindex tables: page text, clerk overrides, record state

Revision ID: pi001_pageindex
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "pi001_pageindex"
down_revision = None
branch_labels = ("pageindex",)
depends_on = "0002_tasks"


def upgrade() -> None:
    op.create_table(
        "pageindex_text",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("blocks", sa.JSON(), nullable=False),
        sa.Column("engine", sa.String(length=64), nullable=False),
        sa.Column("ms", sa.Integer(), nullable=False),
        sa.Column("guess_type", sa.String(length=32), nullable=True),
        sa.Column("guess_confidence", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["page_id"], ["page.id"],
                                name=op.f("fk_pageindex_text_page_id_page")),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_pageindex_text_admission_id_admission")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pageindex_text")),
        sa.UniqueConstraint("page_id", "image_sha256", name="uq_pageindex_text_page_image"),
    )
    with op.batch_alter_table("pageindex_text", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pageindex_text_page_id"), ["page_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pageindex_text_admission_id"), ["admission_id"],
                              unique=False)

    op.create_table(
        "pageindex_override",
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("page_type", sa.String(length=32), nullable=False),
        sa.Column("staff_no", sa.String(length=32), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["page_id"], ["page.id"],
                                name=op.f("fk_pageindex_override_page_id_page")),
        sa.PrimaryKeyConstraint("page_id", name=op.f("pk_pageindex_override")),
    )

    op.create_table(
        "pageindex_state",
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("low_pages", sa.Integer(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(), nullable=True),
        sa.Column("corrected_at", sa.DateTime(), nullable=True),
        sa.Column("corrected_by", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"],
                                name=op.f("fk_pageindex_state_admission_id_admission")),
        sa.PrimaryKeyConstraint("admission_id", name=op.f("pk_pageindex_state")),
    )
    with op.batch_alter_table("pageindex_state", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pageindex_state_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pageindex_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pageindex_state_status"))
    op.drop_table("pageindex_state")
    op.drop_table("pageindex_override")
    with op.batch_alter_table("pageindex_text", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pageindex_text_admission_id"))
        batch_op.drop_index(batch_op.f("ix_pageindex_text_page_id"))
    op.drop_table("pageindex_text")
