"""The copies report of the reports page (``register_reports``) against a brute-force count
over generated requests: per day, week, month and department, one department alone."""

from __future__ import annotations

import datetime as dt
import random

from bingan.core import records
from bingan.hooks.types import AdmissionIn, PatientIn, ReportParams

from bingan_copying.models import CopyRequest
from bingan_copying.stats import report_rows

CN = dt.timezone(dt.timedelta(hours=8))


def _generate(rt) -> list[dict]:
    rng = random.Random(5)
    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn="00700001", name="钱某", sex="F"), admission_no="ZY202611000001",
            visit_no=1, admitted_at=dt.datetime(2026, 10, 1, tzinfo=CN),
            discharged_at=dt.datetime(2026, 10, 9, tzinfo=CN)))
        out = []
        for i in range(80):
            r = dict(status=rng.choice(["registered", "approved", "printed", "pending",
                                        "rejected", "cancelled"]),
                     department=rng.choice(["1001", "2001", None]), copies=rng.randint(1, 3),
                     pages=rng.randint(1, 40), fee_fen=rng.randint(0, 5000),
                     created_at=dt.datetime(2026, 11, 1, tzinfo=CN)
                     + dt.timedelta(minutes=rng.randint(0, 60 * 24 * 45)))
            s.add(CopyRequest(request_no=f"FY{i:06d}", patient_id=adm.patient_id, mrn="00700001",
                              applicant_type="patient", applicant_name="钱某", purpose="insurance",
                              consent_at=r["created_at"], consent_text="同意", operator_no="REC1",
                              identity_until=r["created_at"], **r))
            out.append(r)
    return out


def test_copies_report_matches_brute_force(rt):
    reqs = _generate(rt)
    counted = [r for r in reqs if r["status"] in ("registered", "approved", "printed")]
    start, end = dt.date(2026, 11, 3), dt.date(2026, 12, 6)

    def expect(pred):
        sel = [r for r in counted if start <= r["created_at"].astimezone(CN).date() <= end
               and pred(r)]
        return (len(sel), sum(r["copies"] for r in sel), sum(r["pages"] * r["copies"] for r in sel),
                round(sum(r["fee_fen"] for r in sel) / 100, 2))

    with rt.sessions() as s:
        for group in ("day", "week", "month"):
            p = ReportParams(start, end, CN, group=group)
            rows = report_rows(s, rt, p)
            assert [r["period"] for r in rows] == p.buckets()
            for r in rows:
                got = (r["requests"], r["copies"], r["pages"], r["fee"])
                assert got == expect(lambda x, b=r["period"], g=p: g.bucket(x["created_at"]) == b)
        rows = report_rows(s, rt, ReportParams(start, end, CN, group="department"))
        assert {r["period"] for r in rows} <= {"1001", "2001", "未填科室"}
        assert sum(r["requests"] for r in rows) == expect(lambda x: True)[0]
        one = report_rows(s, rt, ReportParams(start, end, CN, group="month", department="2001"))
        assert sum(r["requests"] for r in one) == expect(lambda x: x["department"] == "2001")[0]
        assert sum(r["fee"] for r in one) == expect(lambda x: x["department"] == "2001")[3]
