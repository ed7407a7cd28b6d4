"""The reading reports (``register_reports``) against a brute-force count over generated
audit events and applications: by the reader's department and by day, and one physician's
own figures (the dashboard's report)."""

from __future__ import annotations

import datetime as dt
import random

from bingan.core import audit
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles, get_staff, staff_ref
from bingan.hooks.types import ReportParams

from bingan_reading.models import ReadingApplication
from bingan_reading.stats import department_rows, my_rows

CN = dt.timezone(dt.timedelta(hours=8))
KINDS = [("record.view", "ok", "reads"), ("record.view", "denied", "refused"),
         ("record.view", "failed", None), ("search.simple", "ok", "searches"),
         ("search.fulltext", "ok", "searches"), ("search.combined", "failed", None),
         ("reading.lookup", "ok", None)]


def test_reading_reports_match_brute_force(rt):
    rng = random.Random(23)
    staff = {"PHY1": "1001", "PHY2": "1001", "PHY3": "2001"}
    ev, apps = [], []
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_department(s, "2001", "普外科")
        ids = {no: add_staff(s, no, no, "Correct-horse-9", d, ["physician"]).id
               for no, d in staff.items()}
        for _ in range(120):
            who = rng.choice(list(staff))
            action, outcome, kind = rng.choice(KINDS)
            ts = dt.datetime(2026, 11, 1, tzinfo=CN) + dt.timedelta(minutes=rng.randint(0, 30000))
            audit.record(s, rt, action, actor=audit.Actor(staff_no=who), outcome=outcome, ts=ts)
            ev.append((who, ts, kind))
        for _ in range(25):
            who = rng.choice(list(staff))
            ts = dt.datetime(2026, 11, 1, tzinfo=CN) + dt.timedelta(minutes=rng.randint(0, 30000))
            st = rng.choice(["pending", "approved", "rejected", "cancelled"])
            s.add(ReadingApplication(applicant_id=ids[who], applicant_department=staff[who],
                                     reason="科研", days=3, status=st, created_at=ts))
            apps.append((who, ts, st))
    start, end = dt.date(2026, 11, 2), dt.date(2026, 11, 18)

    def inp(t):
        return start <= t.astimezone(CN).date() <= end

    def check(r, evs, aps):
        for k in ("reads", "refused", "searches"):
            assert r[k] == sum(1 for e in evs if e[2] == k), k
        assert r["applied"] == len(aps)
        assert r["approved"] == sum(1 for a in aps if a[2] == "approved")
        assert r["rejected"] == sum(1 for a in aps if a[2] == "rejected")

    with rt.sessions() as s:
        p = ReportParams(start, end, CN, group="department")
        rows = {r["period"]: r for r in department_rows(s, rt, p)}
        assert set(rows) == {"心血管内科", "普外科"}
        for name, code in (("心血管内科", "1001"), ("普外科", "2001")):
            check(rows[name], [e for e in ev if staff[e[0]] == code and inp(e[1])],
                  [a for a in apps if staff[a[0]] == code and inp(a[1])])
        p = ReportParams(start, end, CN, group="day", department="2001")
        for r in department_rows(s, rt, p):
            check(r, [e for e in ev if staff[e[0]] == "2001" and inp(e[1])
                      and p.bucket(e[1]) == r["period"]],
                  [a for a in apps if staff[a[0]] == "2001" and inp(a[1])
                   and p.bucket(a[1]) == r["period"]])
        me = staff_ref(get_staff(s, "PHY2"))
        p = ReportParams(start, end, CN, group="week", staff=me)
        for r in my_rows(s, rt, p):
            check(r, [e for e in ev if e[0] == "PHY2" and inp(e[1])
                      and p.bucket(e[1]) == r["period"]],
                  [a for a in apps if a[0] == "PHY2" and inp(a[1])
                   and p.bucket(a[1]) == r["period"]])
