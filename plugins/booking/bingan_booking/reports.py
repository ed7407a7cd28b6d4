"""Daily and monthly figures of online bookings, and their Excel export.

Each event counts on the day it happened by the hospital's clock (``rt.tz``): a booking on
the day it was made, money on the day it was paid or refunded, a review on its day. Daily:
the days of one month; monthly: the months of one year; both with a total row.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select

from bingan.core.exporting import to_xlsx as core_xlsx
from bingan.core.models import utcnow

from bingan_booking.models import Booking
from bingan_booking.service import yuan

COLUMNS = ["日期", "新增预约", "支付笔数", "收款（元）", "审核通过", "审核不通过", "退款笔数",
           "退款（元）", "快递寄出", "办结"]


class ReportError(ValueError):
    """A report that cannot be made (bad month or year)."""


@dataclass
class Report:
    period: str          # daily / monthly
    month: str           # YYYY-MM (daily)
    year: str            # YYYY (monthly)
    title: str
    rows: list[list] = field(default_factory=list)   # label + 9 figures (money in fen)
    total: list = field(default_factory=list)


def _range(rt, period: str, month: str | None, year: str | None
           ) -> tuple[str, str, dt.datetime, dt.datetime, list[str]]:
    today = utcnow().astimezone(rt.tz).date()
    if period == "daily":
        month = (month or f"{today:%Y-%m}").strip()
        if not re.fullmatch(r"(19|20)\d\d-(0[1-9]|1[0-2])", month):
            raise ReportError("月份格式应为 2026-12")
        y, m = int(month[:4]), int(month[5:])
        start = dt.date(y, m, 1)
        end = dt.date(y + (m == 12), m % 12 + 1, 1)
        labels = [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days)]
        key = month
    elif period == "monthly":
        year = (year or f"{today:%Y}").strip()
        if not re.fullmatch(r"(19|20)\d\d", year):
            raise ReportError("年份格式应为 2026")
        start, end = dt.date(int(year), 1, 1), dt.date(int(year) + 1, 1, 1)
        labels = [f"{year}-{m:02d}" for m in range(1, 13)]
        key = year
    else:
        raise ReportError("报表类型应为日报或月报")

    def at(d: dt.date) -> dt.datetime:
        return dt.datetime.combine(d, dt.time(), rt.tz).astimezone(dt.timezone.utc)

    return key, period, at(start), at(end), labels


def build(rt, period: str, month: str | None = None, year: str | None = None) -> Report:
    key, period, start, end, labels = _range(rt, period, month, year)
    idx = {lab: i for i, lab in enumerate(labels)}
    rows: list[list[Any]] = [[lab] + [0] * 9 for lab in labels]

    def bucket(t: dt.datetime | None) -> list | None:
        if t is None or not start <= t < end:
            return None
        local = t.astimezone(rt.tz)
        lab = local.date().isoformat() if period == "daily" else f"{local:%Y-%m}"
        return rows[idx[lab]] if lab in idx else None

    cols = [Booking.created_at, Booking.paid_at, Booking.reviewed_at, Booking.refunded_at,
            Booking.shipped_at, Booking.done_at]
    with rt.sessions() as s:
        q = select(Booking).where(or_(*[c.between(start, end) for c in cols]))
        for b in s.scalars(q):
            if (r := bucket(b.created_at)) is not None:
                r[1] += 1
            if (r := bucket(b.paid_at)) is not None:
                r[2] += 1
                r[3] += b.paid_fen or 0
            if (r := bucket(b.reviewed_at)) is not None:
                r[4 if b.status != "rejected" else 5] += 1
            if (r := bucket(b.refunded_at)) is not None:
                r[6] += 1
                r[7] += b.paid_fen or 0
            if (r := bucket(b.shipped_at)) is not None:
                r[8] += 1
            if (r := bucket(b.done_at)) is not None:
                r[9] += 1
    total: list[Any] = ["合计"] + [sum(r[i] for r in rows) for i in range(1, 10)]
    title = (f"网上预约日报_{key}" if period == "daily" else f"网上预约月报_{key}")
    return Report(period=period, month=key if period == "daily" else "",
                  year=key if period == "monthly" else "", title=title, rows=rows, total=total)


def display(row: list) -> list:
    """Money columns in 元 for the page and the workbook."""
    return [yuan(v) if i in (3, 7) else v for i, v in enumerate(row)]


def to_xlsx(rt, rep: Report) -> bytes:
    """The report as a workbook (money as numbers in 元), a total row last."""
    head = list(COLUMNS)
    head[0] = "日期" if rep.period == "daily" else "月份"
    rows = [[v / 100 if i in (3, 7) else v for i, v in enumerate(r)]
            for r in [*rep.rows, rep.total]]
    return core_xlsx(rep.title, head, rows, tz=rt.tz)
