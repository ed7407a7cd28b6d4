"""The recovery report (``register_reports``) against a brute-force count: discharges in a
month without holidays, each recovered on time, late or not at all; due dates counted here by
skipping weekends, independently of the plugin's calendar."""

from __future__ import annotations

import datetime as dt
import random

from bingan.core import records
from bingan.hooks.types import AdmissionIn, PatientIn, ReportParams

from bingan_recovery.models import Recovery
from bingan_recovery.service import report_rows

CN = dt.timezone(dt.timedelta(hours=8))


def _due(d: dt.date, n: int = 2) -> dt.date:
    while n:
        d += dt.timedelta(days=1)
        if d.weekday() < 5:
            n -= 1
    return d


def test_rate_and_overdue_match_brute_force(rt):
    rng = random.Random(11)
    made = []
    with rt.sessions() as s, s.begin():
        for i in range(60):
            dis = dt.datetime(2026, 11, 2, 8, tzinfo=CN) + dt.timedelta(
                days=rng.randint(0, 27), hours=rng.randint(0, 14))
            dept = rng.choice(["1001", "2001"])
            adm, _ = records.upsert_admission(s, rt, AdmissionIn(
                patient=PatientIn(mrn=f"0060{i:04d}", name="孙某", sex="M"),
                admission_no=f"ZY2026110{i:05d}", visit_no=1,
                admitted_at=dis - dt.timedelta(days=5), discharged_at=dis,
                discharge_department=dept))
            lag = rng.choice([None, 0, 1, 2, 3, 4, 6])
            rec = None
            if lag is not None:
                rec = dis + dt.timedelta(days=lag)
                s.add(Recovery(admission_id=adm.id, recovered_at=rec, recovered_by="REC1",
                               source="room"))
            made.append((dis.date(), dept, rec.date() if rec else None))
    today = dt.date(2026, 12, 2)
    with rt.sessions() as s:
        for group in ("day", "week", "month", "department"):
            p = ReportParams(dt.date(2026, 11, 1), dt.date(2026, 11, 30), CN, group=group)
            rows = report_rows(s, rt, p, today=today)
            for r in rows:
                if group == "department":
                    sel = [m for m in made if m[1] == r["period"]]
                else:
                    sel = [m for m in made if p.bucket(m[0]) == r["period"]]
                on_time = sum(1 for d, _, rec in sel if rec and rec <= _due(d))
                assert r["discharged"] == len(sel)
                assert r["recovered"] == sum(1 for m in sel if m[2])
                assert r["on_time"] == on_time
                assert r["overdue"] == sum(1 for d, _, rec in sel if rec is None and _due(d) < today)
                assert r["rate"] == (round(100 * on_time / len(sel), 1) if sel else None)
            assert sum(r["discharged"] for r in rows) == 60
        one = report_rows(s, rt, ReportParams(dt.date(2026, 11, 1), dt.date(2026, 11, 30), CN,
                                              group="month", department="2001"), today=today)
        assert one[0]["discharged"] == sum(1 for m in made if m[1] == "2001")
