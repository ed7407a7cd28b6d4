"""Core's report (M13, ``register_reports``): what the audit chain says about access to
records — decisions refused, exports and prints — per staff member or per day, for the
auditor. The figures come from ``audit_event`` only (no record content)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.hooks import hookimpl
from bingan.hooks.types import ReportChart, ReportColumn, ReportParams, ReportSpec


def classify(action: str, outcome: str) -> str | None:
    """Which figure an audit event counts in: ``denied`` (an access decision refused or an
    action refused), ``export`` / ``print`` (done, not the decision before it), ``view``
    (a record opened), else None."""
    if outcome in ("deny", "denied"):
        return "denied"
    if outcome not in ("ok", "allow"):
        return None
    if action.startswith("access."):
        return None
    name = action.split(".", 1)[-1]
    if "export" in name or "download" in name:
        return "export"
    if "print" in name:
        return "print"
    if name == "view":
        return "view"
    return None


def audit_activity(session: Session, rt, params: ReportParams) -> list[dict[str, Any]]:
    from bingan.core.audit import actor_label
    from bingan.core.models import AuditEvent, Department, Staff

    lo, hi = params.bounds()
    staff = {no: (name, dept) for no, name, dept in session.execute(
        select(Staff.staff_no, Staff.name, Department.code)
        .outerjoin(Department, Department.id == Staff.department_id))}
    by_staff = params.group == "staff"
    rows: dict[Any, dict[str, Any]] = {}
    if not by_staff:
        for b in params.buckets():
            rows[b] = {"period": b, "denied": 0, "export": 0, "print": 0, "view": 0, "events": 0}
    q = (select(AuditEvent.ts, AuditEvent.staff_no, AuditEvent.action, AuditEvent.outcome)
         .where(AuditEvent.ts >= lo, AuditEvent.ts < hi))
    for ts, no, action, outcome in session.execute(q.execution_options(yield_per=5000)):
        if params.department and staff.get(no or "", ("", None))[1] != params.department:
            continue
        if by_staff:
            name = staff.get(no or "", (None, None))[0]
            label = f"{name}（{no}）" if name else (actor_label(no) or "系统")
            row = rows.setdefault(no or "", {"period": label, "denied": 0, "export": 0,
                                             "print": 0, "view": 0, "events": 0})
        else:
            row = rows[params.bucket(ts)]
        row["events"] += 1
        kind = classify(action, outcome)
        if kind:
            row[kind] += 1
    out = list(rows.values())
    if by_staff:
        out.sort(key=lambda r: (-r["denied"], -r["export"], -r["events"], r["period"]))
    return out


@hookimpl
def register_reports() -> list[ReportSpec]:
    return [ReportSpec(
        key="core.audit", area="审计", title="访问与导出审计",
        description="被拒绝的访问、导出、打印与查阅次数，按人员或按时间",
        query=audit_activity, permission="audit.read",
        columns=(ReportColumn("period", "人员 / 时间", "period", total="none"),
                 ReportColumn("denied", "被拒绝"), ReportColumn("export", "导出"),
                 ReportColumn("print", "打印"), ReportColumn("view", "查阅"),
                 ReportColumn("events", "审计事件")),
        chart=ReportChart("bar", "period", ("denied", "export", "print")),
        groups=("staff", "day", "week", "month"), dashboards=("auditor",), order=10)]
