"""The production report (``register_reports``) against a brute-force count over generated
pages, plans and rework: pages and records per day / week / month, the plan and its
completion, rework opened and closed; one department alone (no plan then)."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import update

from bingan.core import pages, records
from bingan.core.models import Page
from bingan.hooks.types import AdmissionIn, PatientIn, ReportParams

from bingan_capture.models import CaptureBatch, CapturePlan, CaptureRework
from bingan_capture.stats import production_rows

CN = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 1, tzinfo=CN)


def test_production_matches_brute_force(rt):
    rng = random.Random(3)
    made, plans, rework = [], [], []
    with rt.sessions() as s, s.begin():
        adms = []
        for i in range(6):
            adm, _ = records.upsert_admission(s, rt, AdmissionIn(
                patient=PatientIn(mrn=f"0050{i:04d}", name="周某", sex="F"),
                admission_no=f"ZY20261100{i:04d}", visit_no=1,
                admitted_at=T0 - dt.timedelta(days=20), discharged_at=T0 - dt.timedelta(days=10),
                discharge_department="1001" if i % 2 else "2001"))
            adms.append(adm)
        for n in range(120):
            adm = rng.choice(adms)
            p = pages.add_page(s, rt, adm, pages.NewPage(image=b"page %d" % n))
            at = T0 + dt.timedelta(minutes=rng.randint(0, 60 * 24 * 40))
            s.execute(update(Page).where(Page.id == p.id).values(created_at=at))
            made.append((at, adm.id, adm.discharge_department))
        b = CaptureBatch(name="十一月", start_date=dt.date(2026, 11, 1), daily_pages=5)
        s.add(b)
        s.flush()
        for k in range(40):
            day = dt.date(2026, 11, 1) + dt.timedelta(days=k)
            if day.weekday() < 5:
                s.add(CapturePlan(batch_id=b.id, day=day, planned_pages=rng.randint(1, 9)))
                plans.append(day)
        s.flush()
        plan_of = {pl.day: pl.planned_pages for pl in s.query(CapturePlan)}
        for k in range(15):
            adm = rng.choice(adms)
            opened = T0 + dt.timedelta(hours=rng.randint(0, 24 * 40))
            closed = opened + dt.timedelta(hours=rng.randint(1, 200)) if k % 3 else None
            s.add(CaptureRework(admission_id=adm.id, reason="模糊", origin="qc", created_at=opened,
                                resolved_at=closed, status="done" if closed else "open"))
            rework.append((opened, closed, adm.discharge_department))
    start, end = dt.date(2026, 11, 5), dt.date(2026, 12, 4)
    with rt.sessions() as s:
        for group in ("day", "week", "month"):
            p = ReportParams(start, end, CN, group=group)
            rows = production_rows(s, rt, p)
            assert [r["period"] for r in rows] == p.buckets()
            for r in rows:
                def inb(t):
                    return t is not None and start <= t.astimezone(CN).date() <= end \
                        and p.bucket(t) == r["period"]
                sel = [m for m in made if inb(m[0])]
                assert r["pages"] == len(sel)
                assert r["records"] == len({m[1] for m in sel})
                plan = sum(v for d, v in plan_of.items() if start <= d <= end
                           and p.bucket(d) == r["period"])
                assert r["plan"] == plan
                assert r["done"] == (round(100 * len(sel) / plan, 1) if plan else None)
                assert r["rework_opened"] == sum(1 for o, _, _ in rework if inb(o))
                assert r["rework_closed"] == sum(1 for _, c, _ in rework if inb(c))
        one = production_rows(s, rt, ReportParams(start, end, CN, group="month",
                                                  department="1001"))
        assert sum(r["pages"] for r in one) == sum(
            1 for t, _, d in made if d == "1001" and start <= t.astimezone(CN).date() <= end)
        assert all(r["plan"] == 0 and r["done"] is None for r in one)
