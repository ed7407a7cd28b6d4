"""warehouse: warehouses, shelves, boxes, boxed records, movements, loans

Revision ID: wh001_warehouse
Revises:
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "wh001_warehouse"
down_revision = None
branch_labels = ("warehouse",)
depends_on = "0002_tasks"


def upgrade() -> None:
    op.create_table(
        "warehouse_warehouse",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("building", sa.String(length=64), nullable=False),
        sa.Column("floor", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "warehouse_shelf",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("col", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["warehouse_id"], ["warehouse_warehouse.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
        sa.UniqueConstraint("warehouse_id", "row", "col", "level"),
    )
    op.create_index("ix_warehouse_shelf_warehouse_id", "warehouse_shelf", ["warehouse_id"])
    op.create_table(
        "warehouse_box",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("box_no", sa.String(length=32), nullable=False),
        sa.Column("shelf_id", sa.Integer(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["shelf_id"], ["warehouse_shelf.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("box_no"),
    )
    op.create_index("ix_warehouse_box_shelf_id", "warehouse_box", ["shelf_id"])
    op.create_table(
        "warehouse_boxed",
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("box_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("boxed_at", sa.DateTime(), nullable=False),
        sa.Column("boxed_by", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"]),
        sa.ForeignKeyConstraint(["box_id"], ["warehouse_box.id"]),
        sa.PrimaryKeyConstraint("admission_id"),
    )
    op.create_index("ix_warehouse_boxed_box", "warehouse_boxed", ["box_id", "position"])
    op.create_table(
        "warehouse_movement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=True),
        sa.Column("box_id", sa.Integer(), nullable=True),
        sa.Column("from_shelf_id", sa.Integer(), nullable=True),
        sa.Column("to_shelf_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("staff_no", sa.String(length=32), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"]),
        sa.ForeignKeyConstraint(["box_id"], ["warehouse_box.id"]),
        sa.ForeignKeyConstraint(["from_shelf_id"], ["warehouse_shelf.id"]),
        sa.ForeignKeyConstraint(["to_shelf_id"], ["warehouse_shelf.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_warehouse_movement_at", "warehouse_movement", ["at"])
    op.create_index("ix_warehouse_movement_admission_id", "warehouse_movement", ["admission_id"])
    op.create_table(
        "warehouse_loan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("borrower_no", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("due_back", sa.Date(), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=True),
        sa.Column("lent_at", sa.DateTime(), nullable=True),
        sa.Column("lent_by", sa.String(length=32), nullable=True),
        sa.Column("returned_at", sa.DateTime(), nullable=True),
        sa.Column("returned_to", sa.String(length=32), nullable=True),
        sa.Column("answer", sa.String(length=200), nullable=False),
        sa.Column("reminded_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["admission_id"], ["admission.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_warehouse_loan_admission_id", "warehouse_loan", ["admission_id"])
    op.create_index("ix_warehouse_loan_status", "warehouse_loan", ["status", "due_back"])


def downgrade() -> None:
    for t in ("warehouse_loan", "warehouse_movement", "warehouse_boxed", "warehouse_box",
              "warehouse_shelf", "warehouse_warehouse"):
        op.drop_table(t)
