"""Reading figures for the reports page (M13, ``register_reports``): searches, records read
and refused (the viewer's audit events), applications made, approved and rejected — by the
reader's department or by day / week / month; and a physician's own figures for the
dashboard. Counts come from the audit chain and the applications table (no record content)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core.models import AuditEvent, Department, Staff
from bingan.core.staff import department_names

from bingan_reading.models import ReadingApplication

SEARCHES = ("search.simple", "search.combined", "search.batch", "search.fulltext")
FIELDS = ("searches", "reads", "refused", "applied", "approved", "rejected")


def _blank(label: Any) -> dict[str, Any]:
    return {"period": label, **{f: 0 for f in FIELDS}}


def _rows(session: Session, params, only_staff: str | None) -> list[dict[str, Any]]:
    lo, hi = params.bounds()
    staff_dept = {no: (code, sid) for no, code, sid in session.execute(
        select(Staff.staff_no, Department.code, Staff.id)
        .outerjoin(Department, Department.id == Staff.department_id))}
    by_dept = params.group == "department"
    names = department_names(session)
    rows: dict[Any, dict[str, Any]] = {}
    if not by_dept:
        for b in params.buckets():
            rows[b] = _blank(b)

    def row(ts, dept):
        if by_dept:
            return rows.setdefault(dept or "", _blank(names.get(dept or "", dept or "")
                                                      or "未填科室"))
        return rows[params.bucket(ts)]

    q = (select(AuditEvent.ts, AuditEvent.staff_no, AuditEvent.action, AuditEvent.outcome)
         .where(AuditEvent.ts >= lo, AuditEvent.ts < hi,
                AuditEvent.action.in_(SEARCHES + ("record.view",))))
    if only_staff:
        q = q.where(AuditEvent.staff_no == only_staff)
    for ts, no, action, outcome in session.execute(q.execution_options(yield_per=5000)):
        dept = staff_dept.get(no or "", (None, None))[0]
        if params.department and dept != params.department:
            continue
        r = row(ts, dept)
        if action == "record.view":
            if outcome == "ok":
                r["reads"] += 1
            elif outcome == "denied":
                r["refused"] += 1
        elif outcome == "ok":
            r["searches"] += 1
    q2 = (select(ReadingApplication.created_at, ReadingApplication.applicant_department,
                 ReadingApplication.status)
          .where(ReadingApplication.created_at >= lo, ReadingApplication.created_at < hi))
    if only_staff:
        sid = staff_dept.get(only_staff, (None, -1))[1]
        q2 = q2.where(ReadingApplication.applicant_id == sid)
    if params.department:
        q2 = q2.where(ReadingApplication.applicant_department == params.department)
    for ts, dept, status in session.execute(q2):
        r = row(ts, dept)
        r["applied"] += 1
        if status in ("approved", "rejected"):
            r[status] += 1
    out = list(rows.values())
    if by_dept:
        out.sort(key=lambda r: (-(r["reads"] + r["searches"]), r["period"]))
    return out


def department_rows(session: Session, rt, params) -> list[dict[str, Any]]:
    """The hospital's reading activity (or one department's)."""
    return _rows(session, params, None)


def my_rows(session: Session, rt, params) -> list[dict[str, Any]]:
    """The asking staff member's own searches, reads and applications."""
    if params.staff is None:
        raise ValueError("此报表只统计本人的查阅")
    return _rows(session, params, params.staff.staff_no)
