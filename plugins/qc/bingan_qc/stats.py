"""QC figures for the reports page (M13, ``register_reports``): inspections (sample and
spot checks) per day / week / month or per discharge department, records passed, the pass
rate, pages checked and failed, and the rework the failures opened."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core.models import Admission
from bingan.core.staff import department_names

from bingan_qc.models import QcInspection


def qc_rows(session: Session, rt, params) -> list[dict[str, Any]]:
    lo, hi = params.bounds()
    by_dept = params.group == "department"
    names = department_names(session)

    def blank(label):
        return {"period": label, "inspected": 0, "passed": 0, "rate": None, "pages": 0,
                "failed_pages": 0, "rework": 0}

    rows: dict[Any, dict[str, Any]] = {} if by_dept else {b: blank(b) for b in params.buckets()}
    q = (select(QcInspection.created_at, Admission.discharge_department, QcInspection.result,
                QcInspection.pages, QcInspection.failed_pages, QcInspection.rework_ids)
         .join(Admission, Admission.id == QcInspection.admission_id)
         .where(QcInspection.created_at >= lo, QcInspection.created_at < hi))
    if params.department:
        q = q.where(Admission.discharge_department == params.department)
    for at, dept, result, pages, failed, rework in session.execute(q):
        if by_dept:
            r = rows.setdefault(dept or "", blank(names.get(dept or "", dept or "") or "未填科室"))
        else:
            r = rows[params.bucket(at)]
        r["inspected"] += 1
        r["passed"] += result == "pass"
        r["pages"] += pages
        r["failed_pages"] += failed
        r["rework"] += len(rework or [])
    out = list(rows.values())
    for r in out:
        r["rate"] = round(100.0 * r["passed"] / r["inspected"], 1) if r["inspected"] else None
    if by_dept:
        out.sort(key=lambda r: (r["rate"] if r["rate"] is not None else 101, r["period"]))
    return out
