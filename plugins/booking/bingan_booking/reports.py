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


def _tally(session, start: dt.datetime, end: dt.datetime, label_of, rows: dict[Any, list]
           ) -> None:
    """Add every event in [start, end) to ``rows[label_of(time)]`` (label + 9 figures):
    bookings made, paid (count, fen), approved, rejected, refunds (count, fen), shipped, done."""
    def bucket(t: dt.datetime | None) -> list | None:
        if t is None or not start <= t < end:
            return None
        return rows.get(label_of(t))

    cols = [Booking.created_at, Booking.paid_at, Booking.reviewed_at, Booking.refunded_at,
            Booking.shipped_at, Booking.done_at]
    q = select(Booking).where(or_(*[c.between(start, end) for c in cols]))
    for b in session.scalars(q):
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


def build(rt, period: str, month: str | None = None, year: str | None = None) -> Report:
    key, period, start, end, labels = _range(rt, period, month, year)
    rows: dict[Any, list[Any]] = {lab: [lab] + [0] * 9 for lab in labels}

    def label_of(t: dt.datetime) -> str:
        local = t.astimezone(rt.tz)
        return local.date().isoformat() if period == "daily" else f"{local:%Y-%m}"

    with rt.sessions() as s:
        _tally(s, start, end, label_of, rows)
    out = list(rows.values())
    total: list[Any] = ["合计"] + [sum(r[i] for r in out) for i in range(1, 10)]
    title = (f"网上预约日报_{key}" if period == "daily" else f"网上预约月报_{key}")
    return Report(period=period, month=key if period == "daily" else "",
                  year=key if period == "monthly" else "", title=title, rows=out, total=total)


# --------------------------------------------------------------------------------------------
# The reports plugin's registry (``register_reports``): the same figures by day, week or month
# of any period, beside the hospital's other reports, with their Excel export
# --------------------------------------------------------------------------------------------

KEYS = ["created", "paid", "income", "approved", "rejected", "refunds", "refunded", "shipped",
        "done"]


def report_rows(session, rt, params) -> list[dict]:
    """Rows of the registry's report: one per day / week / month bucket of the period."""
    lo, hi = params.bounds()
    rows: dict[Any, list[Any]] = {b: [b] + [0] * 9 for b in params.buckets()}
    _tally(session, lo, hi, params.bucket, rows)
    out = []
    for r in rows.values():
        d = dict(zip(["period", *KEYS], r))
        d["income"], d["refunded"] = round(r[3] / 100, 2), round(r[7] / 100, 2)
        out.append(d)
    return out


def report_specs() -> list:
    from bingan.hooks.types import ReportChart, ReportColumn, ReportSpec

    return [ReportSpec(
        key="booking.bookings", area="复印", title="网上预约复印统计",
        description="微信公众号网上预约：新增预约、支付与收款、审核、退款、寄出与办结"
                    "（按发生日计，医院时区）",
        query=report_rows, permission="booking.reports",
        columns=(ReportColumn("period", "日期", "period", total="none"),
                 ReportColumn("created", "新增预约"), ReportColumn("paid", "支付笔数"),
                 ReportColumn("income", "收款（元）", "money"),
                 ReportColumn("approved", "审核通过"), ReportColumn("rejected", "审核不通过"),
                 ReportColumn("refunds", "退款笔数"),
                 ReportColumn("refunded", "退款（元）", "money"),
                 ReportColumn("shipped", "快递寄出"), ReportColumn("done", "办结")),
        chart=ReportChart("bar", "period", ("created", "paid", "approved", "rejected")),
        groups=("day", "month", "week"), department_filter=False,
        dashboards=("records",), order=40)]


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
