"""Production figures for the reports page (M13, ``register_reports``): pages and records
digitized per day / week / month against the batches' daily plan, and rework opened and
closed. Pages and records are counted by the database, one range query per bucket on the
index page(created_at, admission_id) (bench/reports.py). A page counts on the day it was stored (a re-captured page counts again: it is work
done); a record counts once per bucket in which any of its pages was stored. The plan is the
hospital's (capture's batch plan), so it is shown for the whole hospital only."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from bingan.core.models import Admission, Page

from bingan_capture.models import CapturePlan, CaptureRework


def production_rows(session: Session, rt, params) -> list[dict[str, Any]]:
    lo, hi = params.bounds()
    rows: dict[Any, dict[str, Any]] = {
        b: {"period": b, "pages": 0, "records": 0, "plan": 0, "done": None,
            "rework_opened": 0, "rework_closed": 0}
        for b in params.buckets()}
    # one counting query per bucket (index range on page(created_at, admission_id)): the
    # database counts, nothing of a month's pages is carried into Python
    starts = params.buckets()
    for i, b in enumerate(starts):
        lo_d = max(b, params.start)
        hi_d = starts[i + 1] if i + 1 < len(starts) else params.end + dt.timedelta(days=1)
        b_lo = dt.datetime.combine(lo_d, dt.time(), params.tz)
        b_hi = dt.datetime.combine(hi_d, dt.time(), params.tz)
        q = select(func.count(), func.count(distinct(Page.admission_id))).where(
            Page.created_at >= b_lo, Page.created_at < b_hi)
        if params.department:
            q = q.join(Admission, Admission.id == Page.admission_id).where(
                Admission.discharge_department == params.department)
        pages_n, records_n = session.execute(q).one()
        rows[b]["pages"], rows[b]["records"] = pages_n, records_n
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
