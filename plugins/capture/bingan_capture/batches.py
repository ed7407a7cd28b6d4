"""Batches, daily plans, progress against plan and the weekly progress report (D1, D9).

A batch is a set of records with the page count each is expected to have (from the record
room's list, typed or imported from xlsx/csv). The count check compares the record's current
pages with that number. A batch has a plan: pages per working day from its start date until
all expected pages are covered (editable per day). Progress is the pages stored per day for
the batch's records (re-captures counted apart as rework).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bingan_capture.hookspecs import BatchInfo, BatchRecord
from bingan.core import audit
from bingan.core.models import Admission, Page
from bingan.core.records import to_ref
from bingan_capture.ingest import CaptureError, resolve_admission
from bingan_capture.models import (
    BatchCondition, CaptureBatch, CaptureBatchItem, CaptureFile, CaptureFrame, CapturePlan,
    CaptureRework, RecordCondition,
)
from bingan_capture.settings import CaptureSettings

def local_day(ts: dt.datetime, tz: dt.tzinfo) -> dt.date:
    """The hospital's calendar day (``tz``) of a stored time."""
    return ts.astimezone(tz).date()


def today(tz: dt.tzinfo) -> dt.date:
    """Today in the hospital (``tz``)."""
    return dt.datetime.now(tz).date()


# --------------------------------------------------------------------------------------------
# Import of a batch list
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    line: int
    record: str  # admission number or record barcode
    expected: int


_HEAD = re.compile(r"住院号|病案条码|admission|条码|编号", re.I)


def _row(line: int, cells: list) -> Row | None:
    cells = [("" if c is None else str(c)).strip() for c in cells]
    cells = [c for c in cells if c != ""]
    if not cells:
        return None
    if len(cells) < 2:
        raise CaptureError(f"第 {line} 行：需要“住院号, 应有页数”两列")
    record, count = cells[0], cells[1]
    if _HEAD.search(record) and not count.replace(".", "").isdigit():
        return None  # header row
    try:
        n = float(count)
    except ValueError:
        raise CaptureError(f"第 {line} 行：应有页数 {count!r} 不是数字") from None
    if n != int(n) or n < 1 or n > 10000:
        raise CaptureError(f"第 {line} 行：应有页数须为 1–10000 的整数")
    return Row(line, record, int(n))


MAX_LIST_ROWS = 20_000  # records in one batch list
MAX_LIST_BYTES = 5 * 1024 * 1024


def parse_rows(filename: str, data: bytes) -> list[Row]:
    """Rows of a batch list: an xlsx (first sheet) or csv/txt file with the admission number
    (or record barcode) in the first column and the expected page count in the second. Read
    through core.spreadsheets (bounded before and while parsing), at most MAX_LIST_ROWS."""
    from bingan.core.spreadsheets import SheetError, SheetLimits, decode_text, kind_of, read_rows

    rows: list[Row] = []
    try:
        if kind_of(filename, data) == "xlsx":
            for i, values in enumerate(read_rows(data, filename, limits=SheetLimits(
                    max_bytes=MAX_LIST_BYTES, max_columns=2)), start=1):
                r = _row(i, list(values)[:2])
                if r:
                    rows.append(r)
                if len(rows) > MAX_LIST_ROWS:
                    break
        else:
            if len(data) > MAX_LIST_BYTES:
                raise SheetError(f"文件过大（上限 {MAX_LIST_BYTES // 1024 // 1024} MB）")
            rows = parse_text(decode_text(data))
    except SheetError as exc:
        raise CaptureError(f"{filename}：{exc}") from exc
    if len(rows) > MAX_LIST_ROWS:
        raise CaptureError(f"{filename}：病案过多（一个批次最多 {MAX_LIST_ROWS} 份）")
    if not rows:
        raise CaptureError(f"{filename}：没有读到任何病案")
    return rows


def parse_text(text: str) -> list[Row]:
    out = []
    for i, line in enumerate(csv.reader(io.StringIO(text.replace("\t", ",").replace("，", ","))),
                             start=1):
        if len(line) == 1 and " " in line[0].strip():
            line = line[0].split()
        r = _row(i, line)
        if r:
            out.append(r)
    return out


# --------------------------------------------------------------------------------------------
# Batches and plans
# --------------------------------------------------------------------------------------------


def create_batch(session: Session, rt, name: str, start: dt.date, daily_pages: int,
                 rows: list[Row], *, note: str | None = None, by: str | None = None,
                 actor: audit.Actor | None = None) -> CaptureBatch:
    """Create a batch with its records and plan; every row is checked first and the batch
    is created whole or not at all (errors list every bad row)."""
    name = (name or "").strip()
    if not name:
        raise CaptureError("请填写批次名称")
    if daily_pages < 1:
        raise CaptureError("每日计划页数须大于 0")
    if not rows:
        raise CaptureError("批次中没有病案")
    if session.scalar(select(CaptureBatch).where(CaptureBatch.name == name)):
        raise CaptureError(f"批次名称 {name} 已存在")
    errors: list[str] = []
    seen: dict[int, int] = {}
    items: list = []
    for r in rows:
        try:
            adm = resolve_admission(session, r.record)
        except CaptureError as exc:
            errors.append(f"第 {r.line} 行：{exc}")
            continue
        if adm.id in seen:
            errors.append(f"第 {r.line} 行：住院号 {adm.admission_no} 与第 {seen[adm.id]} 行重复")
            continue
        seen[adm.id] = r.line
        items.append((adm, r.expected))
    if errors:
        more = f"（另有 {len(errors) - 20} 处）" if len(errors) > 20 else ""
        raise CaptureError("批次清单有误，未创建：" + "；".join(errors[:20]) + more)
    batch = CaptureBatch(name=name, note=note, start_date=start, daily_pages=daily_pages,
                         status="open", created_by=by)
    session.add(batch)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise CaptureError(f"批次名称 {name} 已存在") from exc
    for adm, expected in items:
        session.add(CaptureBatchItem(batch_id=batch.id, admission_id=adm.id,
                                     expected_pages=expected))
    session.flush()
    # records captured before they joined this batch: their expected count is new now
    captured = set(session.scalars(select(Page.admission_id).where(
        Page.admission_id.in_([adm.id for adm, _ in items])).distinct()))
    for adm, _expected in items:
        if adm.id in captured:
            rt.pm.hook.digitization_blockers_changed(rt=rt, session=session, admission=to_ref(adm))
    total = sum(e for _, e in items)
    for day, pages in spread_plan(start, daily_pages, total,
                                  rt.settings(CaptureSettings).plan_weekdays,
                                  rt.pm.hook.working_calendar(session=session, rt=rt)):
        session.add(CapturePlan(batch_id=batch.id, day=day, planned_pages=pages))
    session.flush()
    audit.record(session, rt, "capture.batch.create", actor=actor or audit.Actor(staff_no=by),
                 detail={"batch_id": batch.id, "name": name, "records": len(items),
                         "expected_pages": total})
    return batch


def spread_plan(start: dt.date, daily: int, total: int, weekdays: list[int],
                calendar=None) -> list[tuple[dt.date, int]]:
    """Planned pages per working day from ``start`` until ``total`` is covered. The working
    days are the hospital's (``calendar``, from the ``working_calendar`` hook: holidays,
    make-up workdays, closures); with no calendar, the ``weekdays`` of the settings."""
    out, left, day = [], total, start
    while left > 0:
        if calendar.is_workday(day) if calendar is not None else day.weekday() in weekdays:
            n = min(daily, left)
            out.append((day, n))
            left -= n
        day += dt.timedelta(days=1)
    return out


def set_plan(session: Session, rt, batch_id: int, day: dt.date, pages: int, *,
             by: str | None = None, actor: audit.Actor | None = None) -> None:
    """Set (or with 0 pages, remove) the planned pages of one day."""
    if session.get(CaptureBatch, batch_id) is None:
        raise CaptureError(f"批次 {batch_id} 不存在")
    if pages < 0 or pages > 1_000_000:
        raise CaptureError("计划页数须为 0–1000000")
    row = session.scalar(select(CapturePlan).where(CapturePlan.batch_id == batch_id,
                                                   CapturePlan.day == day))
    if pages == 0:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(CapturePlan(batch_id=batch_id, day=day, planned_pages=pages))
    else:
        row.planned_pages = pages
    session.flush()
    audit.record(session, rt, "capture.plan.set", actor=actor or audit.Actor(staff_no=by),
                 detail={"batch_id": batch_id, "day": day.isoformat(), "pages": pages})


# --------------------------------------------------------------------------------------------
# Counts
# --------------------------------------------------------------------------------------------


def expected_pages(session: Session, admission_id: int) -> int | None:
    """The page count the newest batch holding the record declared for it (None: the record
    is in no batch)."""
    return session.scalar(
        select(CaptureBatchItem.expected_pages)
        .where(CaptureBatchItem.admission_id == admission_id)
        .order_by(CaptureBatchItem.added_at.desc(), CaptureBatchItem.id.desc()).limit(1))


def page_counts(session: Session, admission_ids: list[int]) -> dict[int, tuple[int, int]]:
    """admission id -> (current pages, current pages that failed QC)."""
    if not admission_ids:
        return {}
    out: dict[int, tuple[int, int]] = {}
    for i in range(0, len(admission_ids), 500):
        chunk = admission_ids[i:i + 500]
        q = (select(Page.admission_id, func.count(),
                    func.sum(case((Page.qc_status == "fail", 1), else_=0)))
             .where(Page.admission_id.in_(chunk), Page.replaced_by_id.is_(None))
             .group_by(Page.admission_id))
        for adm_id, n, failing in session.execute(q).all():
            out[adm_id] = (n, int(failing or 0))
    return out


def _open_rework(session: Session, admission_ids: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for i in range(0, len(admission_ids), 500):
        chunk = admission_ids[i:i + 500]
        out.update(dict(session.execute(
            select(CaptureRework.admission_id, func.count())
            .where(CaptureRework.status == "open", CaptureRework.admission_id.in_(chunk))
            .group_by(CaptureRework.admission_id)).all()))
    return out


def batch_records(session: Session, batch_id: int) -> list[BatchRecord] | None:
    """The batch's records with the count check and the digitized flag (None: no batch)."""
    if session.get(CaptureBatch, batch_id) is None:
        return None
    items = list(session.execute(
        select(CaptureBatchItem, Admission).join(Admission, Admission.id ==
                                                 CaptureBatchItem.admission_id)
        .where(CaptureBatchItem.batch_id == batch_id).order_by(CaptureBatchItem.id)).all())
    ids = [a.id for _, a in items]
    counts = page_counts(session, ids)
    rework = _open_rework(session, ids)
    out = []
    for item, adm in items:
        n, failing = counts.get(adm.id, (0, 0))
        open_rw = rework.get(adm.id, 0)
        out.append(BatchRecord(
            admission=to_ref(adm), expected_pages=item.expected_pages, captured_pages=n,
            failing_pages=failing, open_rework=open_rw,
            digitized=n > 0 and n >= item.expected_pages and failing == 0 and open_rw == 0))
    return out


def batch_infos(session: Session) -> list[BatchInfo]:
    out = []
    for b in session.scalars(select(CaptureBatch).order_by(CaptureBatch.id.desc())):
        recs = batch_records(session, b.id) or []
        out.append(BatchInfo(
            id=b.id, name=b.name, created_at=b.created_at, records=len(recs),
            expected_pages=sum(r.expected_pages for r in recs),
            captured_pages=sum(r.captured_pages for r in recs),
            digitized=sum(r.digitized for r in recs), status=b.status))
    return out


# --------------------------------------------------------------------------------------------
# Progress against plan
# --------------------------------------------------------------------------------------------


def _batch_admissions(session: Session, batch_id: int | None) -> list[int] | None:
    if batch_id is None:
        return None
    return list(session.scalars(select(CaptureBatchItem.admission_id).where(
        CaptureBatchItem.batch_id == batch_id)))


def actual_by_day(session: Session, batch_id: int | None, tz: dt.tzinfo) -> tuple[dict[dt.date, int],
                                                                    dict[dt.date, int]]:
    """Pages stored per local day for the batch's records (all records when None):
    (first captures, re-captures)."""
    ids = _batch_admissions(session, batch_id)
    q = (select(CaptureFrame.stored_at, CaptureFile.replace_page_id)
         .join(CaptureFile, CaptureFile.id == CaptureFrame.capture_id)
         .where(CaptureFrame.status == "stored"))
    captured: dict[dt.date, int] = {}
    rework: dict[dt.date, int] = {}
    chunks = [None] if ids is None else [ids[i:i + 500] for i in range(0, len(ids), 500)]
    for chunk in chunks:
        qq = q if chunk is None else q.where(CaptureFrame.admission_id.in_(chunk))
        for stored_at, replace in session.execute(qq):
            if stored_at is None:
                continue
            day = local_day(stored_at, tz)
            target = rework if replace is not None else captured
            target[day] = target.get(day, 0) + 1
    return captured, rework


def plan_by_day(session: Session, batch_id: int | None) -> dict[dt.date, int]:
    q = select(CapturePlan.day, func.sum(CapturePlan.planned_pages)).group_by(CapturePlan.day)
    if batch_id is not None:
        q = q.where(CapturePlan.batch_id == batch_id)
    return {d: int(n) for d, n in session.execute(q).all()}


def progress(session: Session, batch_id: int | None, tz: dt.tzinfo) -> dict:
    """Planned and actual pages per day and cumulated, for the chart (JSON-ready)."""
    plan = plan_by_day(session, batch_id)
    actual, rework = actual_by_day(session, batch_id, tz)
    days = sorted(set(plan) | set(actual) | set(rework))
    if days:
        span = [days[0] + dt.timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]
    else:
        span = []
    cum_p = cum_a = 0
    out: dict[str, list] = {"days": [], "planned": [], "actual": [], "rework": [], "cum_planned": [],
           "cum_actual": []}
    for d in span:
        p, a = plan.get(d, 0), actual.get(d, 0)
        cum_p += p
        cum_a += a
        out["days"].append(d.isoformat())
        out["planned"].append(p)
        out["actual"].append(a)
        out["rework"].append(rework.get(d, 0))
        out["cum_planned"].append(cum_p)
        out["cum_actual"].append(cum_a)
    return out


@dataclass(frozen=True)
class WeekRow:
    week: str  # ISO week, e.g. 2026-W18
    start: dt.date
    end: dt.date
    planned: int
    actual: int
    rework: int
    cum_planned: int
    cum_actual: int

    @property
    def rate(self) -> float | None:
        """This week's pages over this week's plan (may pass 100 % in a week ahead of plan)."""
        return round(self.actual / self.planned * 100, 1) if self.planned else None

    @property
    def cum_rate(self) -> float | None:
        """Pages so far over the plan so far: how far the batch stands against its plan."""
        return round(self.cum_actual / self.cum_planned * 100, 1) if self.cum_planned else None


def weekly(session: Session, batch_id: int | None, tz: dt.tzinfo) -> list[WeekRow]:
    """Progress per ISO week (Monday to Sunday)."""
    p = progress(session, batch_id, tz)
    weeks: dict[tuple[int, int], list[int]] = {}
    for d, pl, ac, rw in zip(p["days"], p["planned"], p["actual"], p["rework"], strict=True):
        day = dt.date.fromisoformat(d)
        y, w, _ = day.isocalendar()
        acc = weeks.setdefault((y, w), [0, 0, 0])
        acc[0] += pl
        acc[1] += ac
        acc[2] += rw
    out, cp, ca = [], 0, 0
    for (y, w), (pl, ac, rw) in sorted(weeks.items()):
        cp += pl
        ca += ac
        start = dt.date.fromisocalendar(y, w, 1)
        out.append(WeekRow(f"{y}-W{w:02d}", start, start + dt.timedelta(days=6), pl, ac, rw,
                           cp, ca))
    return out


def weekly_xlsx(session: Session, batch_id: int | None, title: str, tz: dt.tzinfo) -> bytes:
    """The weekly progress report: a sheet per week with a chart, and the count check."""
    import xlsxwriter

    rows = weekly(session, batch_id, tz)
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                   "strings_to_urls": False})
    bold = wb.add_format({"bold": True, "bg_color": "#E8EEF7", "border": 1})
    pct = wb.add_format({"num_format": "0.0"})
    ws = wb.add_worksheet("周进度")
    ws.write(0, 0, title, wb.add_format({"bold": True, "font_size": 14}))
    headers = ["周次", "开始日期", "结束日期", "本周计划页数", "本周完成页数", "本周完成率(%)",
               "返工页数", "累计计划", "累计完成", "累计完成率(%)"]
    for c, h in enumerate(headers):
        ws.write(2, c, h, bold)
    for r, w in enumerate(rows, start=3):
        ws.write_row(r, 0, [w.week, w.start.isoformat(), w.end.isoformat(), w.planned,
                            w.actual])
        ws.write_row(r, 6, [w.rework, w.cum_planned, w.cum_actual])
        for col, value in ((5, w.rate), (9, w.cum_rate)):
            if value is not None:
                ws.write_number(r, col, value, pct)
            else:
                ws.write_blank(r, col, None)
    ws.set_column(0, 2, 13)
    ws.set_column(3, 9, 12)
    if rows:
        last = 2 + len(rows)
        chart = wb.add_chart({"type": "column"})
        chart.add_series({"name": "计划页数", "categories": ["周进度", 3, 0, last, 0],
                          "values": ["周进度", 3, 3, last, 3]})
        chart.add_series({"name": "完成页数", "categories": ["周进度", 3, 0, last, 0],
                          "values": ["周进度", 3, 4, last, 4]})
        line = wb.add_chart({"type": "line"})
        line.add_series({"name": "累计完成", "categories": ["周进度", 3, 0, last, 0],
                         "values": ["周进度", 3, 8, last, 8], "y2_axis": True})
        line.add_series({"name": "累计计划", "categories": ["周进度", 3, 0, last, 0],
                         "values": ["周进度", 3, 7, last, 7], "y2_axis": True,
                         "line": {"dash_type": "dash"}})
        chart.combine(line)
        chart.set_title({"name": "计划与完成（页）"})
        chart.set_size({"width": 720, "height": 360})
        ws.insert_chart(last + 2, 0, chart)
    # count check per record
    ws2 = wb.add_worksheet("页数核对")
    h2 = ["批次", "住院号", "病案号", "姓名", "应有页数", "已采页数", "差额", "质检不合格页",
          "待返工", "状态", "纸张状况"]
    for c, h in enumerate(h2):
        ws2.write(0, c, h, bold)
    r = 1
    batches = ([session.get(CaptureBatch, batch_id)] if batch_id is not None else
               list(session.scalars(select(CaptureBatch).order_by(CaptureBatch.id))))
    from bingan_capture.conditions import CONDITIONS, assessor_label, record_conditions

    for b in batches:
        recs = batch_records(session, b.id) or []
        conds = record_conditions(session, [rec.admission.id for rec in recs])
        for rec in recs:
            cond = conds[rec.admission.id]
            ws2.write_row(r, 0, [b.name, rec.admission.admission_no, rec.admission.mrn,
                                 rec.admission.patient_name, rec.expected_pages,
                                 rec.captured_pages, rec.captured_pages - rec.expected_pages,
                                 rec.failing_pages, rec.open_rework, record_state(rec),
                                 "；".join(cond.labels + cond.notes)])
            r += 1
    ws2.set_column(0, 3, 14)
    ws2.set_column(4, 9, 11)
    ws2.set_column(10, 10, 40)
    ws2.freeze_panes(1, 0)
    # the on-site assessment of the paper: per batch, then per record, with what it means for
    # the source (the tender asks the digitizer to assess before capture)
    ws3 = wb.add_worksheet("纸张状况")
    for c_, h in enumerate(["批次", "住院号", "姓名", "状况", "说明", "不宜进纸器",
                            "评估人", "评估时间"]):
        ws3.write(0, c_, h, bold)
    r = 1
    for b in batches:
        bc = session.get(BatchCondition, b.id)
        if bc is not None:
            ws3.write_row(r, 0, [b.name, "（整批）", "",
                                 "、".join(CONDITIONS[f].label for f in bc.flags or []
                                          if f in CONDITIONS), bc.note or "",
                                 "是" if any(CONDITIONS[f].feeder_unsafe for f in bc.flags or []
                                            if f in CONDITIONS) else "否",
                                 assessor_label(session, bc.assessed_by),
                                 bc.assessed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")])
            r += 1
        ids = {rec.admission.id: rec for rec in batch_records(session, b.id) or []}
        for rc in session.scalars(select(RecordCondition).where(
                RecordCondition.admission_id.in_(list(ids)))):
            rec = ids[rc.admission_id]
            labels = [CONDITIONS[f] for f in rc.flags or [] if f in CONDITIONS]
            ws3.write_row(r, 0, [b.name, rec.admission.admission_no, rec.admission.patient_name,
                                 "、".join(k.label for k in labels), rc.note or "",
                                 "是" if any(k.feeder_unsafe for k in labels) else "否",
                                 assessor_label(session, rc.assessed_by),
                                 rc.assessed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")])
            r += 1
    ws3.set_column(0, 2, 14)
    ws3.set_column(3, 4, 36)
    ws3.set_column(5, 7, 12)
    ws3.freeze_panes(1, 0)
    wb.close()
    return buf.getvalue()


def record_state(rec: BatchRecord) -> str:
    if rec.digitized:
        return "已完成"
    if rec.captured_pages == 0:
        return "未采集"
    if rec.failing_pages or rec.open_rework:
        return "待返工"
    if rec.captured_pages < rec.expected_pages:
        return "缺页"
    return "未完成"


def today_counts(session: Session, tz: dt.tzinfo) -> dict[str, int]:
    """Today's work for the capture home page."""
    start = dt.datetime.combine(today(tz), dt.time(0), tz)
    files = session.scalar(select(func.count()).select_from(CaptureFile).where(
        CaptureFile.received_at >= start)) or 0
    pages = session.scalar(select(func.count()).select_from(CaptureFrame).where(
        CaptureFrame.status == "stored", CaptureFrame.stored_at >= start)) or 0
    queued = session.scalar(select(func.count()).select_from(CaptureFile).where(
        CaptureFile.status == "queued")) or 0
    unidentified = session.scalar(select(func.count()).select_from(CaptureFrame).where(
        CaptureFrame.status == "unidentified")) or 0
    rework = session.scalar(select(func.count()).select_from(CaptureRework).where(
        CaptureRework.status == "open")) or 0
    failed = session.scalar(select(func.count()).select_from(CaptureFile).where(
        CaptureFile.status == "failed")) or 0
    return {"files": files, "pages": pages, "queued": queued, "unidentified": unidentified,
            "rework": rework, "failed": failed}


__all__ = ["Row", "batch_infos", "batch_records", "create_batch", "parse_rows",
           "parse_text", "progress", "set_plan", "spread_plan", "today_counts", "weekly",
           "weekly_xlsx"]
