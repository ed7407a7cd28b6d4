"""Daily and monthly figures by the hospital's clock, and the Excel export read back."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
from sqlalchemy import select

from bingan.hooks.types import ReportParams

from bingan_booking import reports
from bingan_booking.models import Booking
from booking_world import PASSWORD, book, sign_in, verify_phone
from test_flow import _pay
from webutil import login, web_client

UTC = dt.timezone.utc


def test_daily_monthly_and_excel(rt, world):
    with web_client(rt) as c:
        sign_in(c)
        verify_phone(c, rt)
        pids = [book(c).headers["location"].split("/")[3] for _ in range(3)]
        for pid in pids[:2]:
            _pay(c, rt, pid)
    # move the bookings onto known days: 23:30 Beijing on 30 Nov is 15:30 UTC (30 Nov),
    # 00:30 Beijing on 1 Dec is 16:30 UTC on 30 Nov (a December booking by the hospital's clock)
    with rt.sessions() as s, s.begin():
        rows = {b.public_id: b for b in s.scalars(select(Booking))}
        a, b, u = rows[pids[0]], rows[pids[1]], rows[pids[2]]
        a.created_at = a.paid_at = dt.datetime(2026, 11, 30, 15, 30, tzinfo=UTC)
        b.created_at = b.paid_at = dt.datetime(2026, 11, 30, 16, 30, tzinfo=UTC)
        b.status, b.reviewed_at = "rejected", dt.datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
        b.pay_status, b.refunded_at = "refunded", dt.datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
        u.created_at = dt.datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
        fee = a.fee_fen
    nov = reports.build(rt, "daily", "2026-11")
    assert nov.rows[29][:4] == ["2026-11-30", 1, 1, fee] and nov.total[1] == 1
    dec = reports.build(rt, "daily", "2026-12")
    assert dec.rows[0][:4] == ["2026-12-01", 2, 1, fee]
    assert dec.rows[1][5:8] == [1, 1, fee]  # rejected and refunded on 2 Dec
    year = reports.build(rt, "monthly", year="2026")
    assert year.rows[10][:4] == ["2026-11", 1, 1, fee]
    assert year.rows[11][:8] == ["2026-12", 2, 1, fee, 0, 1, 1, fee]
    assert year.total[1:4] == [3, 2, 2 * fee]
    for bad in (("daily", "2026-13", None), ("monthly", None, "26"), ("weekly", None, None)):
        try:
            reports.build(rt, *bad)
            raise AssertionError(f"{bad} was accepted")
        except reports.ReportError:
            pass
    with web_client(rt) as staff:
        login(staff, "REC1", PASSWORD)
        r = staff.get("/booking/reports", params={"period": "daily", "month": "2026-12"})
        assert r.status_code == 200 and "2026-12-01" in r.text
        r = staff.get("/booking/reports.xlsx", params={"period": "monthly", "year": "2026"})
        assert r.status_code == 200
        assert "filename*=UTF-8''" in r.headers["content-disposition"]
        ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
        cells = [[c.value for c in row] for row in ws.iter_rows()]
        assert cells[0][:4] == ["月份", "新增预约", "支付笔数", "收款（元）"]
        assert cells[12][:4] == ["2026-12", 2, 1, fee / 100]
        assert cells[13][0] == "合计" and cells[13][1] == 3
        assert staff.get("/booking/reports.xlsx", params={"period": "daily",
                                                          "month": "x"}).status_code == 400
    with web_client(rt) as phy:
        login(phy, "PHY1", PASSWORD)
        assert phy.get("/booking/reports.xlsx").status_code == 403
        assert phy.get("/reports/view/booking.bookings").status_code == 403
    # the same figures in the reports plugin's registry, among the hospital's other reports
    spec = {sp.key: sp for group in rt.pm.hook.register_reports() for sp in group}[
        "booking.bookings"]
    assert spec.permission == "booking.reports" and spec.area == "复印"
    with rt.sessions() as s:
        days = reports.report_rows(s, rt, ReportParams(dt.date(2026, 11, 30),
                                                       dt.date(2026, 12, 2), rt.tz))
        months = reports.report_rows(s, rt, ReportParams(dt.date(2026, 1, 1),
                                                         dt.date(2026, 12, 31), rt.tz,
                                                         group="month"))
    assert [(d["period"], d["created"], d["paid"], d["income"]) for d in days] == [
        (dt.date(2026, 11, 30), 1, 1, fee / 100), (dt.date(2026, 12, 1), 2, 1, fee / 100),
        (dt.date(2026, 12, 2), 0, 0, 0)]
    assert (days[2]["rejected"], days[2]["refunds"], days[2]["refunded"]) == (1, 1, fee / 100)
    assert [m["created"] for m in months] == [0] * 10 + [1, 2]
    with web_client(rt) as staff:
        login(staff, "REC1", PASSWORD)
        assert "网上预约复印统计" in staff.get("/reports").text
        q = {"start": "2026-11-30", "end": "2026-12-02", "group": "day"}
        r = staff.get("/reports/view/booking.bookings", params=q)
        assert r.status_code == 200 and "2026-12-01" in r.text
        r = staff.get("/reports/view/booking.bookings/xlsx", params=q)
        assert r.status_code == 200, r.text
        ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
        cells = [[c.value for c in row] for row in ws.iter_rows(min_row=4)]
        assert cells[0][:4] == ["日期", "新增预约", "支付笔数", "收款（元）"]
        assert cells[2][1:4] == [2, 1, fee / 100]
        assert cells[3][5:8] == [1, 1, fee / 100]
        assert cells[4][0] == "合计" and cells[4][1:4] == [3, 2, 2 * fee / 100]
