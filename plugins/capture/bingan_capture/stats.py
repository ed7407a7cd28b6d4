"""Production figures for the reports page (M13, ``register_reports``): pages and records
digitized per day / week / month against the batches' daily plan, and rework opened and
closed. A page counts on the day it was stored (a re-captured page counts again: it is work
done); a record counts once per bucket in which any of its pages was stored. The plan is the
hospital's (capture's batch plan), so it is shown for the whole hospital only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core.models import Admission, Page

from bingan_capture.models import CapturePlan, CaptureRework


def production_rows(session: Session, rt, params) -> list[dict[str, Any]]:
    lo, hi = params.bounds()
    rows: dict[Any, dict[str, Any]] = {
        b: {"period": b, "pages": 0, "records": 0, "plan": 0, "done": None,
            "rework_opened": 0, "rework_closed": 0}
        for b in params.buckets()}
    seen: set[tuple[Any, int]] = set()
    q = select(Page.created_at, Page.admission_id).where(Page.created_at >= lo,
                                                         Page.created_at < hi)
    if params.department:
        q = q.join(Admission, Admission.id == Page.admission_id).where(
            Admission.discharge_department == params.department)
    for at, adm in session.execute(q.execution_options(yield_per=10000)):
        b = params.bucket(at)
        r = rows[b]
        r["pages"] += 1
        if (b, adm) not in seen:
            seen.add((b, adm))
            r["records"] += 1
    if not params.department:
        for day, planned in session.execute(
                select(CapturePlan.day, CapturePlan.planned_pages)
                .where(CapturePlan.day >= params.start, CapturePlan.day <= params.end)):
            rows[params.bucket(day)]["plan"] += planned
    for col, key in ((CaptureRework.created_at, "rework_opened"),
                     (CaptureRework.resolved_at, "rework_closed")):
        q2 = select(col).where(col >= lo, col < hi)
        if params.department:
            q2 = q2.join(Admission, Admission.id == CaptureRework.admission_id).where(
                Admission.discharge_department == params.department)
        for (at,) in session.execute(q2):
            rows[params.bucket(at)][key] += 1
    out = list(rows.values())
    for r in out:
        r["done"] = round(100.0 * r["pages"] / r["plan"], 1) if r["plan"] else None
    return out
