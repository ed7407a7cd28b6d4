"""search: covering indexes over the small front-page columns

Revision ID: search_0002
Revises: search_0001
Create Date: 2026-11-27

Combinations of age, length of stay, payment method and discharge way have no selective
index of their own. Two indexes make them cheap (bench/search.py, 3 million admissions):

- ``search_ix_admission_age_los``: (age, length of stay, payment method, patient) — a count
  of such a combination is an index-only range scan (plus a patient probe for a sex or name
  condition) instead of reading admission rows until ``count_limit`` matches;
- the discharge-date index that a large result is read in (newest first, one page) now also
  carries those columns, so each admission is tested without reading its row;
- the department + discharge date index carries the patient and the discharge way, and on
  PostgreSQL the admission-date and department indexes carry the admission id (SQLite's
  indexes hold the row id already), so a department or date range with a discharge way is
  counted and collected from the index alone.
"""
from alembic import op
import sqlalchemy as sa


revision = "search_0002"
down_revision = "search_0001"
branch_labels = None
depends_on = None

FRONT = ["patient_id", "age_years", "los_days", "payment_method", "discharge_way"]


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _dept_and_dates(front: bool) -> None:
    """The department and admission-date indexes: with the front columns, or as search_0001
    made them (``front`` False)."""
    op.drop_index("search_ix_admission_dept_discharged", table_name="admission")
    if _pg():
        op.drop_index("search_ix_admission_admitted_cover", table_name="admission")
        op.create_index("search_ix_admission_dept_discharged", "admission",
                        ["discharge_department", "discharged_at"],
                        postgresql_include=["id", "patient_id", "discharge_way"] if front
                        else None)
        op.create_index("search_ix_admission_admitted_cover", "admission",
                        ["admitted_at", "discharged_at", "patient_id"],
                        postgresql_include=["id"] if front else None)
    else:
        op.create_index("search_ix_admission_dept_discharged", "admission",
                        ["discharge_department", "discharged_at"]
                        + (["patient_id", "discharge_way"] if front else []))


def upgrade() -> None:
    op.create_index("search_ix_admission_age_los", "admission",
                    ["age_years", "los_days", "payment_method", "patient_id"])
    _dept_and_dates(front=True)
    if _pg():
        op.drop_index("search_ix_admission_discharged_desc", table_name="admission")
        op.create_index("search_ix_admission_discharged_desc", "admission",
                        [sa.text("discharged_at DESC NULLS LAST"), sa.text("id DESC")],
                        postgresql_include=FRONT)
    else:
        # SQLite reads this one backwards for the newest-first order (empty dates last)
        op.drop_index("search_ix_admission_discharged_patient", table_name="admission")
        op.create_index("search_ix_admission_discharged_patient", "admission",
                        ["discharged_at", "id", *FRONT])


def downgrade() -> None:
    _dept_and_dates(front=False)
    if _pg():
        op.drop_index("search_ix_admission_discharged_desc", table_name="admission")
        op.create_index("search_ix_admission_discharged_desc", "admission",
                        [sa.text("discharged_at DESC NULLS LAST"), sa.text("id DESC")],
                        postgresql_include=["patient_id"])
    else:
        op.drop_index("search_ix_admission_discharged_patient", table_name="admission")
        op.create_index("search_ix_admission_discharged_patient", "admission",
                        ["discharged_at", "id", "patient_id"])
    op.drop_index("search_ix_admission_age_los", table_name="admission")
