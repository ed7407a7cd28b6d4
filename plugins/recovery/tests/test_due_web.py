"""The due list per ward with overdue by ward/department/attending, the holiday page with a
flagged year, the 2-working-day archiving rate with its Excel export and chart data."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
from sqlalchemy import select

from bingan.core.models import AuditEvent

from bingan_recovery import calendar as wcal
from bingan_recovery import service
from ward_world import CN, PASSWORD, RECORDS
from webutil import csrf_token, login, web_client


def _recover(rt, barcode, staff="CLK1", at=None):
    with rt.sessions() as s, s.begin():
        return service.recover(s, rt, barcode, staff_no=staff, source="room", at=at).outcome


def test_due_rows_and_overdue_groups(world):
    rt = world.rt
    today = dt.date(2026, 12, 7)
    with rt.sessions() as s:
        rows = service.due_rows(s, rt, today)
    by = {r.admission_no: r for r in rows}
    # the patient still in hospital is not due
    assert set(by) == {r.admission_no for r in RECORDS if r.discharged}
    sf = by[RECORDS[0].admission_no]
    assert (sf.discharge_date, sf.due_date) == (dt.date(2026, 2, 13), dt.date(2026, 2, 24))
    assert sf.ward == "心内一病区" and sf.department == "心血管内科" and sf.attending == "陈主治"
    assert by[RECORDS[3].admission_no].due_date == dt.date(2026, 12, 3)
    assert by[RECORDS[3].admission_no].overdue_days == 2  # Fri 4th and Mon 7th
    wards = service.overdue_summary(rows, "ward")
    assert wards == [("心内一病区", 2, 2), ("普外二病区", 2, 2)]
    assert service.overdue_summary(rows, "attending") == [("陈主治", 4, 4)]
    # recovered records leave the list
    assert _recover(rt, world.rec(RECORDS[0].admission_no).barcode) == "recovered"
    with rt.sessions() as s:
        left = {r.admission_no for r in service.due_rows(s, rt, today)}
    assert RECORDS[0].admission_no not in left


def test_due_and_calendar_pages(world):
    rt = world.rt
    with web_client(rt) as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        r = c.get("/recovery", params={"ward": "普外二病区", "by": "department"})
        assert r.status_code == 200, r.text
        assert "孙平安" in r.text and "李春华" not in r.text and "普通外科" in r.text
        r = c.get("/api/recovery/due")
        assert r.status_code == 200
        assert {i["name"] for i in r.json()["items"]} == {"李春华", "赵国庆", "孙平安", "周冬梅"}
        later = max(wcal.chinese_calendar_years()) + 1
        r = c.get("/recovery/calendar", params={"year": later})
        assert r.status_code == 200 and f'data-year="{later}"' in r.text and "没有调休" in r.text
        r = c.get("/recovery/calendar", params={"year": 2026})
        assert "春节调休上班" in r.text and "国庆节" in r.text
        tok = csrf_token(c)
        r = c.post("/recovery/calendar", data={"_csrf_token": tok, "day": f"{later}-02-06",
                                                "kind": "workday", "note": "春节调休上班"},
                   follow_redirects=False)
        assert r.status_code in (302, 303)
        r = c.post("/recovery/calendar", data={"_csrf_token": tok, "day": "2026-13-01",
                                                "kind": "closure"})
        assert r.status_code == 400 and "日期格式" in r.text
        r = c.post("/recovery/calendar/check", data={"_csrf_token": tok, "year": str(later)},
                   follow_redirects=False)
        assert r.status_code in (302, 303)
        r = c.get("/recovery/calendar", params={"year": later})
        assert f'data-year="{later}"' not in r.text and "本院调休上班" in r.text
    with web_client(rt) as c:
        login(c, "CLK1", PASSWORD)  # clerks see the page but may not change the table
        r = c.post("/recovery/calendar", data={"_csrf_token": csrf_token(c),
                                                "day": "2026-10-09", "kind": "closure"})
        assert r.status_code == 403
    with rt.sessions() as s:
        assert wcal.load(s).hospital == {dt.date(later, 2, 6): ("workday", "春节调休上班")}


def test_archiving_rate_excel_and_chart(world):
    rt = world.rt
    recs = [world.rec(r.admission_no) for r in RECORDS]
    # Spring Festival record back on the 2nd working day (Tue 24 Feb): on time;
    # National Day record back on Oct 12 (3rd working day): late
    assert _recover(rt, recs[0].barcode, at=dt.datetime(2026, 2, 24, 17, tzinfo=CN)) == "recovered"
    assert _recover(rt, recs[1].barcode, at=dt.datetime(2026, 10, 12, 9, tzinfo=CN)) == "recovered"
    assert _recover(rt, recs[2].barcode, at=dt.datetime(2026, 12, 1, 9, tzinfo=CN)) == "recovered"
    with rt.sessions() as s:
        rows = service.archiving_rate(s, rt, dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    got = {(r.month, r.department): (r.discharged, r.on_time, r.recovered) for r in rows}
    assert got == {("2026-02", "心血管内科"): (1, 1, 1), ("2026-09", "心血管内科"): (1, 0, 1),
                   ("2026-11", "普通外科"): (1, 1, 1), ("2026-12", "普通外科"): (1, 0, 0)}
    with web_client(rt) as c:
        login(c, "REC1", PASSWORD)
        q = {"start": "2026-01-01", "end": "2026-12-31"}
        r = c.get("/recovery/stats", params=q)
        assert r.status_code == 200 and "/static/recovery/vendor/echarts.min.js" in r.text
        d = c.get("/api/recovery/stats", params=q).json()
        assert d["months"] == ["2026-02", "2026-09", "2026-11", "2026-12"]
        assert d["total"] == [100.0, 0.0, 100.0, 0.0]
        r = c.get("/recovery/stats.xlsx", params=q)
        assert r.status_code == 200 and "filename*=UTF-8''" in r.headers["content-disposition"]
        ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
        table = [[c.value for c in row] for row in ws.iter_rows(min_row=3) if row[0].value]
        assert table[0][:3] == ["月份", "科室", "出院人数"]
        assert ["2026-09", "心血管内科", 1, 0, 1, 0] in table
        assert ["2026-02", "全院", 1, 1, 1, 100] in table
        r = c.get("/recovery/stats", params={"start": "2026-05-01", "end": "2026-01-01"})
        assert r.status_code == 400 and "结束日期早于开始日期" in r.text
    with rt.sessions() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "recovery.export"))
