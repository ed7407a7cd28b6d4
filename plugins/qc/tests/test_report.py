"""The QC pass-rate report (``register_reports``) against a brute-force count over generated
inspections, per day / month and per discharge department."""

from __future__ import annotations

import datetime as dt
import random

from bingan.core import records
from bingan.hooks.types import AdmissionIn, PatientIn, ReportParams

from bingan_qc.models import QcInspection
from bingan_qc.stats import qc_rows

CN = dt.timezone(dt.timedelta(hours=8))


def test_pass_rate_matches_brute_force(rt):
    rng = random.Random(9)
    made = []
    with rt.sessions() as s, s.begin():
        adms = []
        for i in range(5):
            adm, _ = records.upsert_admission(s, rt, AdmissionIn(
                patient=PatientIn(mrn=f"0040{i:04d}", name="吴某", sex="M"),
                admission_no=f"ZY20261200{i:04d}", visit_no=1,
                admitted_at=dt.datetime(2026, 10, 1, tzinfo=CN),
                discharged_at=dt.datetime(2026, 10, 8, tzinfo=CN),
                discharge_department=["1001", "2001", "3001"][i % 3]))
            adms.append(adm)
        for _ in range(70):
            adm = rng.choice(adms)
            at = dt.datetime(2026, 11, 1, tzinfo=CN) + dt.timedelta(minutes=rng.randint(0, 86400))
            result = rng.choice(["pass", "pass", "fail"])
            pages = rng.randint(3, 30)
            failed = 0 if result == "pass" else rng.randint(1, pages)
            rw = list(range(rng.randint(0, 3))) if result == "fail" else []
            s.add(QcInspection(kind=rng.choice(["sample", "spot"]), admission_id=adm.id,
                               result=result, pages=pages, failed_pages=failed, rework_ids=rw,
                               inspector="QC1", created_at=at))
            made.append((at, adm.discharge_department, result, pages, failed, len(rw)))
    start, end = dt.date(2026, 11, 10), dt.date(2026, 12, 31)
    inp = [m for m in made if start <= m[0].astimezone(CN).date() <= end]
    with rt.sessions() as s:
        for group in ("day", "month", "department"):
            p = ReportParams(start, end, CN, group=group)
            rows = qc_rows(s, rt, p)
            for r in rows:
                sel = [m for m in inp if (m[1] if group == "department" else p.bucket(m[0]))
                       == r["period"]]
                n, ok = len(sel), sum(1 for m in sel if m[2] == "pass")
                assert (r["inspected"], r["passed"]) == (n, ok)
                assert r["rate"] == (round(100 * ok / n, 1) if n else None)
                assert r["pages"] == sum(m[3] for m in sel)
                assert r["failed_pages"] == sum(m[4] for m in sel)
                assert r["rework"] == sum(m[5] for m in sel)
            assert sum(r["inspected"] for r in rows) == len(inp)
        one = qc_rows(s, rt, ReportParams(start, end, CN, group="month", department="3001"))
        assert sum(r["inspected"] for r in one) == sum(1 for m in inp if m[1] == "3001")
