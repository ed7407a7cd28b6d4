"""Copy statistics (M13): requests, copies, pages and fees by day, month, purpose, department
or operator over a date range (China time), and the Excel workbook of the same figures."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core.staff import department_names

from bingan_copying.models import CopyRequest

GROUPS = {"day": "按日", "month": "按月", "purpose": "按用途", "department": "按科室",
          "operator": "按经办人"}
COUNTED = ("registered", "approved", "printed")
MAX_DAYS = 3660


@dataclass
class Row:
    key: str
    label: str
    requests: int = 0
    copies: int = 0
    pages: int = 0
    fee_fen: int = 0


def period(start: dt.date, end: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    if end < start:
        raise ValueError("结束日期早于开始日期")
    if (end - start).days > MAX_DAYS:
        raise ValueError(f"统计区间不能超过 {MAX_DAYS} 天")
    lo = dt.datetime.combine(start, dt.time(), tz)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz)
    return lo, hi


def compute(session: Session, settings, start: dt.date, end: dt.date,
            group: str, tz: dt.tzinfo) -> list[Row]:
    """One row per group key, sorted by key (days and months) or by requests (the others)."""
    if group not in GROUPS:
        raise ValueError(f"未知的分组 {group!r}")
    lo, hi = period(start, end, tz)
    rows: dict[str, Row] = {}
    depts = department_names(session)
    q = select(CopyRequest.created_at, CopyRequest.purpose, CopyRequest.department,
               CopyRequest.operator_no, CopyRequest.operator_name, CopyRequest.copies,
               CopyRequest.pages, CopyRequest.fee_fen).where(
        CopyRequest.created_at >= lo, CopyRequest.created_at < hi,
        CopyRequest.status.in_(COUNTED))
    for at, purpose, dept, op_no, op_name, copies, pages, fee in session.execute(q):
        local = at.astimezone(tz)
        if group == "day":
            key = label = local.strftime("%Y-%m-%d")
        elif group == "month":
            key = label = local.strftime("%Y-%m")
        elif group == "purpose":
            key, label = purpose, settings.purposes.get(purpose, purpose)
        elif group == "department":
            key = dept or "-"
            label = f"{depts.get(dept, dept)}（{dept}）" if dept else "未填科室"
        else:
            key, label = op_no, f"{op_name}（{op_no}）"
        r = rows.setdefault(key, Row(key, label))
        r.requests += 1
        r.copies += copies
        r.pages += pages * copies
        r.fee_fen += fee
    out = list(rows.values())
    if group in ("day", "month"):
        out.sort(key=lambda r: r.key)
    else:
        out.sort(key=lambda r: (-r.requests, r.key))
    return out


def total(rows: list[Row]) -> Row:
    t = Row("total", "合计")
    for r in rows:
        t.requests += r.requests
        t.copies += r.copies
        t.pages += r.pages
        t.fee_fen += r.fee_fen
    return t


def workbook(rows: list[Row], group: str, start: dt.date, end: dt.date, hospital: str) -> bytes:
    """The statistics as an .xlsx (xlsxwriter): a title, the rows, the total."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False})
    ws = wb.add_worksheet("复印统计")
    bold = wb.add_format({"bold": True})
    money = wb.add_format({"num_format": "0.00"})
    ws.write(0, 0, f"{hospital} 病历复印统计（{GROUPS[group]}，{start} 至 {end}）",
             wb.add_format({"bold": True, "font_size": 14}))
    heads = ["分组", "申请数", "份数", "页数（含份数）", "收费（元）"]
    for c, h in enumerate(heads):
        ws.write(2, c, h, bold)
    r = 3
    for row in rows + [total(rows)]:
        ws.write_string(r, 0, row.label, bold if row.key == "total" else None)
        ws.write_number(r, 1, row.requests)
        ws.write_number(r, 2, row.copies)
        ws.write_number(r, 3, row.pages)
        ws.write_number(r, 4, row.fee_fen / 100, money)
        r += 1
    ws.set_column(0, 0, 28)
    ws.set_column(1, 4, 14)
    wb.close()
    return buf.getvalue()


def report_rows(session: Session, rt, params) -> list[dict]:
    """The copies report of the reports page (``register_reports``): requests, copies, pages
    and fees per day / week / month or per department, for one department or all."""
    from bingan_copying.settings import CopyingSettings

    lo, hi = params.bounds()
    by_dept = params.group == "department"
    depts = department_names(session)
    rows: dict = {}
    if not by_dept:
        for b in params.buckets():
            rows[b] = {"period": b, "requests": 0, "copies": 0, "pages": 0, "fee": 0.0}
    q = select(CopyRequest.created_at, CopyRequest.department, CopyRequest.copies,
               CopyRequest.pages, CopyRequest.fee_fen).where(
        CopyRequest.created_at >= lo, CopyRequest.created_at < hi,
        CopyRequest.status.in_(COUNTED))
    if params.department:
        q = q.where(CopyRequest.department == params.department)
    rt.settings(CopyingSettings)  # the plugin is configured (fails loudly otherwise)
    for at, dept, copies, pages, fee in session.execute(q):
        if by_dept:
            label = depts.get(dept, dept) if dept else "未填科室"
            r = rows.setdefault(dept or "", {"period": label, "requests": 0, "copies": 0,
                                             "pages": 0, "fee": 0.0})
        else:
            r = rows[params.bucket(at)]
        r["requests"] += 1
        r["copies"] += copies
        r["pages"] += pages * copies
        r["fee"] += fee / 100
    out = list(rows.values())
    for r in out:
        r["fee"] = round(r["fee"], 2)
    if by_dept:
        out.sort(key=lambda r: (-r["requests"], r["period"]))
    return out
