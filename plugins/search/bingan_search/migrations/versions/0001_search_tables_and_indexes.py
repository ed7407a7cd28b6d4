"""search: name keys, term dictionary, saved queries, and indexes on core tables

Revision ID: search_0001
Revises:
Create Date: 2026-11-27

The indexes on core tables are named ``search_ix_*`` and belong to this branch: they make the
structured searches use index range scans (see bench/search.py, which prints the query plans).
On PostgreSQL, prefix matches compile to ``LIKE 'p%'``, which needs ``text_pattern_ops`` unless
the column collation is "C"; on SQLite they compile to ``>= p AND < p'`` over the plain index.
"""
from alembic import op
import sqlalchemy as sa


revision = "search_0001"
down_revision = None
branch_labels = ("search",)
depends_on = "0002_tasks"


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "search_name_key",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("name", "key", name=op.f("pk_search_name_key")),
    )
    op.create_index("search_ix_name_key_key", "search_name_key", ["key", "name"],
                    postgresql_ops={"key": "text_pattern_ops"})
    op.create_table(
        "search_term",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("text", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("kind", "text", name=op.f("pk_search_term")),
    )
    op.create_table(
        "search_saved_query",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_no", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("query_json", sa.Text(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_saved_query")),
        sa.UniqueConstraint("staff_no", "name", name="uq_search_saved_query_owner_name"),
    )
    op.create_index("ix_search_saved_query_staff_no", "search_saved_query", ["staff_no"])

    # Indexes on core tables used by the search (covering where it pays).
    op.create_index("search_ix_diagnosis_code", "diagnosis", ["code", "kind", "admission_id"],
                    postgresql_ops={"code": "text_pattern_ops"})
    op.create_index("search_ix_diagnosis_name", "diagnosis", ["name", "kind", "admission_id"])
    # probing one admission's diagnoses (a broad condition read in sort order, the main
    # diagnosis of a result page) without reading diagnosis rows
    op.create_index("search_ix_diagnosis_admission", "diagnosis",
                    ["admission_id", "kind", "code"])
    op.create_index("search_ix_operation_code", "operation", ["code", "admission_id"],
                    postgresql_ops={"code": "text_pattern_ops"})
    op.create_index("search_ix_operation_name", "operation", ["name", "admission_id"])
    op.create_index("search_ix_signer_staff", "signer", ["staff_no", "role", "admission_id"])
    op.create_index("search_ix_admission_dept_discharged", "admission",
                    ["discharge_department", "discharged_at"])
    # a large result is read in date order, testing each admission; with patient_id in the
    # index a patient condition is tested without reading the admission row
    op.create_index("search_ix_admission_discharged_patient", "admission",
                    ["discharged_at", "id", "patient_id"])
    op.create_index("search_ix_admission_admitted_cover", "admission",
                    ["admitted_at", "discharged_at", "patient_id"])
    if _pg():
        # core's ix_patient_name serves equality; prefix LIKE needs the pattern operator class
        op.create_index("search_ix_patient_name_pattern", "patient", ["name"],
                        postgresql_ops={"name": "text_pattern_ops"},
                        postgresql_include=["id"])
        # results are sorted newest first with empty dates last: PostgreSQL reads a plain
        # index backwards as DESC NULLS FIRST, so this order needs its own index
        op.create_index("search_ix_admission_discharged_desc", "admission",
                        [sa.text("discharged_at DESC NULLS LAST"), sa.text("id DESC")],
                        postgresql_include=["patient_id"])
        # collecting a result's sort keys by id without visiting the heap (SQLite's table is
        # stored by id already)
        op.create_index("search_ix_admission_id_sort", "admission", ["id"],
                        postgresql_include=["discharged_at", "admitted_at"])


def downgrade() -> None:
    if _pg():
        op.drop_index("search_ix_admission_id_sort", table_name="admission")
        op.drop_index("search_ix_admission_discharged_desc", table_name="admission")
        op.drop_index("search_ix_patient_name_pattern", table_name="patient")
    op.drop_index("search_ix_admission_admitted_cover", table_name="admission")
    op.drop_index("search_ix_admission_discharged_patient", table_name="admission")
    op.drop_index("search_ix_admission_dept_discharged", table_name="admission")
    op.drop_index("search_ix_signer_staff", table_name="signer")
    op.drop_index("search_ix_operation_name", table_name="operation")
    op.drop_index("search_ix_operation_code", table_name="operation")
    op.drop_index("search_ix_diagnosis_admission", table_name="diagnosis")
    op.drop_index("search_ix_diagnosis_name", table_name="diagnosis")
    op.drop_index("search_ix_diagnosis_code", table_name="diagnosis")
    op.drop_index("ix_search_saved_query_staff_no", table_name="search_saved_query")
    op.drop_table("search_saved_query")
    op.drop_table("search_term")
    op.drop_index("search_ix_name_key_key", table_name="search_name_key")
    op.drop_table("search_name_key")
