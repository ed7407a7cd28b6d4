"""Issue 10's "Done when": a 10,000-row front-page xlsx with 50 bad rows (the eight kinds of
BREAKS in turn) -> 9,950 admissions in, the 50 reported with their row and column, on SQLite
and PostgreSQL. (Its speed is bench/admission_import.py's business, not this test's.)"""

from __future__ import annotations

import sys
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bingan.core import audit
from bingan.core.models import Admission, AuditEvent
from import_world import hospital, rows, write_xlsx


def test_ten_thousand_rows_fifty_bad(rt, tmp_path):
    from bingan_admission_import.service import import_file

    hospital(rt)
    data, broken = rows(10_000, bad_every=200)
    assert len(broken) == 50
    path = write_xlsx(tmp_path / "首页.xlsx", data)

    rep = import_file(rt, path, actor=audit.Actor(staff_no="R0001"))
    assert rep.refused is None
    assert (rep.total, rep.accepted, rep.created, rep.rejected_rows) == (10_000, 9_950, 9_950, 50)
    assert {i.row for i in rep.issues} == set(broken)
    for row, column in broken.items():
        assert any(i.row == row and i.column == column for i in rep.issues), (row, column)
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Admission)) == 9_950
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "admission.upsert")) == 9_950
        run = s.scalar(select(AuditEvent).where(AuditEvent.action == "admission_import.run"))
        assert '"rejected": 50' in run.detail and '"rows": 10000' in run.detail

    # the rejected rows, as they were, ready to fix: exactly the 50
    out = tmp_path / "rejected.xlsx"
    out.write_bytes(rep.rejected_xlsx())
    got = list(load_workbook(out, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert [r[0] for r in got[1:]] == sorted(broken)
