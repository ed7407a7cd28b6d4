"""The report registry (M13): every plugin's ``register_reports`` answer, the parameters a
reader chose, the rows with their totals row, and the Excel workbook of the same figures."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bingan.hooks.types import GROUP_LABELS, ReportParams, ReportSpec, StaffRef

MAX_DAYS = 3 * 366  # the longest period one report covers
AREA_ORDER = ["生产", "质控", "阅览", "复印", "回收", "库房", "死亡病例", "审计"]


class ReportError(ValueError):
    """A report request that cannot be answered (bad dates, unknown grouping ...)."""


def all_reports(rt) -> dict[str, ReportSpec]:
    """Every registered report by key; a key registered twice is an error naming both."""
    out: dict[str, ReportSpec] = {}
    for group in rt.pm.hook.register_reports():
        for spec in group or []:
            if spec.key in out:
                raise ReportError(f"报表 {spec.key} 被重复注册")
            keys = {c.key for c in spec.columns}
            for c in spec.columns:
                if c.total == "ratio" and not (c.ratio and set(c.ratio) <= keys):
                    raise ReportError(f"报表 {spec.key} 的列 {c.key} 的比率引用了不存在的列")
            out[spec.key] = spec
    return out


def may_run(spec: ReportSpec, staff: StaffRef) -> bool:
    return spec.permission is None or spec.permission in staff.permissions


def visible(rt, staff: StaffRef) -> list[tuple[str, list[ReportSpec]]]:
    """The reports ``staff`` may run, by area (the known areas first, in their order)."""
    by_area: dict[str, list[ReportSpec]] = {}
    for spec in all_reports(rt).values():
        if may_run(spec, staff):
            by_area.setdefault(spec.area, []).append(spec)
    rank = {a: i for i, a in enumerate(AREA_ORDER)}
    return [(a, sorted(by_area[a], key=lambda s: (s.order, s.title)))
            for a in sorted(by_area, key=lambda a: (rank.get(a, 99), a))]


def _date(v: str | None, default: dt.date, what: str) -> dt.date:
    if not v:
        return default
    try:
        return dt.date.fromisoformat(v.strip())
    except ValueError:
        raise ReportError(f"{what}格式应为 年-月-日") from None


def parse_params(spec: ReportSpec, tz: dt.tzinfo, staff: StaffRef | None, *,
                 start: str | None = None, end: str | None = None,
                 department: str | None = None, group: str | None = None,
                 today: dt.date | None = None) -> ReportParams:
    """The parameters of a request, checked: both dates (default: the last 30 days), at
    most MAX_DAYS apart, a grouping the report offers, a department only where it filters."""
    today = today or dt.datetime.now(tz).date()
    e = _date(end, today, "结束日期")
    b = _date(start, e - dt.timedelta(days=29), "开始日期")
    if e < b:
        raise ReportError("结束日期早于开始日期")
    if (e - b).days > MAX_DAYS:
        raise ReportError(f"统计区间不能超过 {MAX_DAYS} 天")
    g = group or (spec.groups[0] if spec.groups else "")
    if spec.groups and g not in spec.groups:
        raise ReportError(f"此报表不能{GROUP_LABELS.get(g, '这样')}分组")
    dept = (department or "").strip() or None
    if dept and not spec.department_filter:
        dept = None
    if dept and len(dept) > 32:
        raise ReportError("科室代码过长")
    return ReportParams(start=b, end=e, tz=tz, department=dept, group=g, staff=staff)


@dataclass
class Result:
    spec: ReportSpec
    params: ReportParams
    rows: list[dict[str, Any]]
    total: dict[str, Any]


def totals(spec: ReportSpec, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The totals row: sums, ratios of sums, empty otherwise; the first column reads 合计."""
    out: dict[str, Any] = {}
    sums: dict[str, float] = {}
    for c in spec.columns:
        if c.total == "sum" and c.kind in ("int", "float", "money"):
            s = sum((r.get(c.key) or 0) for r in rows)
            sums[c.key] = s
            out[c.key] = round(s, 2) if c.kind != "int" else int(s)
    for c in spec.columns:
        if c.total == "ratio" and c.ratio:
            num = sum((r.get(c.ratio[0]) or 0) for r in rows)
            den = sum((r.get(c.ratio[1]) or 0) for r in rows)
            out[c.key] = round(100.0 * num / den, 1) if den else None
    first = spec.columns[0].key
    out[first] = "合计"
    return out


def run(session: Session, rt, spec: ReportSpec, params: ReportParams) -> Result:
    try:
        rows = spec.query(session, rt, params)
    except ReportError:
        raise
    except ValueError as exc:
        raise ReportError(str(exc)) from exc
    return Result(spec, params, rows, totals(spec, rows))


def show(value: Any, kind: str, params: ReportParams) -> str:
    """A cell as the page shows it."""
    if value is None:
        return "—" if kind == "percent" else ""
    if kind == "period" and isinstance(value, dt.date):
        return params.bucket_label(value)
    if kind == "date" and isinstance(value, dt.date):
        return value.isoformat()
    if kind == "percent":
        return f"{value:.1f}%"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "float":
        return f"{value:,.2f}"
    if kind == "int" and isinstance(value, (int, float)):
        return f"{int(value):,}"
    return str(value)


def chart_data(result: Result) -> dict[str, Any]:
    """What the page's chart script draws: categories, one series per chart column."""
    spec, ch = result.spec, result.spec.chart
    if ch is None:
        return {}
    labels = {c.key: c.label for c in spec.columns}
    kinds = {c.key: c.kind for c in spec.columns}
    cats = [show(r.get(ch.x), kinds.get(ch.x, "text"), result.params) for r in result.rows]
    return {"kind": ch.kind, "categories": cats,
            "series": [{"name": labels[k], "right": k in ch.right,
                        "data": [r.get(k) for r in result.rows]}
                       for k in (*ch.series, *ch.right)]}


def workbook(result: Result, hospital: str, department_label: str) -> bytes:
    """The report as an .xlsx (xlsxwriter): a title, the filters, a header row, the rows with
    numbers as numbers and dates as dates, and a bold totals row."""
    import xlsxwriter

    spec, p = result.spec, result.params
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                   "strings_to_urls": False, "strings_to_numbers": False})
    ws = wb.add_worksheet(spec.title[:31].replace("/", "-"))
    title = wb.add_format({"bold": True, "font_size": 14})
    head = wb.add_format({"bold": True, "bg_color": "#E8EEF7", "border": 1})
    fmts: dict[tuple[str, bool], Any] = {}
    date_fmt = {"day": "yyyy-mm-dd", "week": "yyyy-mm-dd", "month": "yyyy-mm"}.get(
        p.group, "yyyy-mm-dd")
    num = {"int": "#,##0", "float": "#,##0.00", "money": "#,##0.00", "percent": "0.0",
           "date": "yyyy-mm-dd", "period": date_fmt, "text": "@"}

    def fmt(kind: str, bold: bool):
        key = (kind, bold)
        if key not in fmts:
            fmts[key] = wb.add_format({"num_format": num[kind], "bold": bold})
        return fmts[key]

    ws.write_string(0, 0, f"{hospital} {spec.title}", title)
    filt = f"统计区间 {p.start} 至 {p.end}"
    if spec.groups:
        filt += f"，{GROUP_LABELS.get(p.group, p.group)}"
    if spec.department_filter:
        filt += f"，科室：{department_label}"
    ws.write_string(1, 0, filt)
    heads = [c.label + ("（%）" if c.kind == "percent" else "") for c in spec.columns]
    ws.write_row(3, 0, heads, head)
    line = 4
    for row, bold in [(r, False) for r in result.rows] + [(result.total, True)]:
        for i, c in enumerate(spec.columns):
            v = row.get(c.key)
            if v is None:
                ws.write_blank(line, i, None, fmt("text", bold))
            elif c.kind in ("date", "period") and isinstance(v, dt.date):
                ws.write_datetime(line, i, dt.datetime.combine(v, dt.time()), fmt(c.kind, bold))
            elif c.kind in ("int", "float", "money", "percent") and isinstance(v, (int, float)):
                ws.write_number(line, i, v, fmt(c.kind, bold))
            else:
                ws.write_string(line, i, str(v), fmt("text", bold))
        line += 1
    for i, c in enumerate(spec.columns):
        ws.set_column(i, i, max(12, len(c.label) * 2 + 4))
    ws.freeze_panes(4, 0)
    wb.close()
    return buf.getvalue()
