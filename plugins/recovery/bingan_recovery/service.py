"""Recovery of paper records: due lists, recovering a record (record room or phone upload),
idempotent uploads with per-item conflicts, 补单, and the 2-working-day archiving rate.

Every write runs in the caller's transaction and audits itself; bad input raises
``RecoveryError`` (a Chinese message for the page) before anything is written.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bingan.core import audit, records
from bingan.core.models import Admission, Signer, Staff, utcnow
from bingan.core.staff import department_names
from bingan.hooks.types import PaperRecordEvent

from bingan_recovery import calendar as wcal
from bingan_recovery.models import (
    CheckedYear, Handover, HospitalDay, Recovery, Scan, Supplement, DAY_KINDS, OUTCOME_LABELS,
    SOURCE_LABELS,
)
from bingan_recovery.settings import RecoverySettings

MAX_DUE_ROWS = 5000
DUE_WINDOW_DAYS = 400  # the due list looks this far back for records never recovered
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class RecoveryError(ValueError):
    """Input the recovery plugin refuses; the message is shown to the user."""


def local_date(rt, t: dt.datetime) -> dt.date:
    return t.astimezone(rt.tz).date()


# ============================================================================================
# The hospital's holiday table
# ============================================================================================


def set_day(session: Session, rt, day: dt.date, kind: str, note: str, *, by: str,
            actor: audit.Actor | None = None) -> HospitalDay:
    """Add or change a day of the hospital's table (closure / make-up workday)."""
    if kind not in DAY_KINDS:
        raise RecoveryError("类型应为“停诊”或“调休上班”")
    note = (note or "").strip()
    if len(note) > 128:
        raise RecoveryError("说明最多 128 个字")
    if not 2000 <= day.year <= 2100:
        raise RecoveryError("日期超出范围")
    row = session.scalar(select(HospitalDay).where(HospitalDay.day == day))
    if row is None:
        row = HospitalDay(day=day, kind=kind, note=note, created_by=by)
        session.add(row)
    else:
        row.kind, row.note, row.created_by = kind, note, by
    session.flush()
    audit.record(session, rt, "recovery.calendar_set", actor=actor or audit.Actor(staff_no=by),
                 detail={"day": day.isoformat(), "kind": kind, "note": note})
    return row


def remove_day(session: Session, rt, day: dt.date, *, by: str,
               actor: audit.Actor | None = None) -> None:
    row = session.scalar(select(HospitalDay).where(HospitalDay.day == day))
    if row is None:
        raise RecoveryError(f"{day} 不在本院节假日设置中")
    session.delete(row)
    session.flush()
    audit.record(session, rt, "recovery.calendar_remove", actor=actor or audit.Actor(staff_no=by),
                 detail={"day": day.isoformat()})


def check_year(session: Session, rt, year: int, *, by: str,
               actor: audit.Actor | None = None) -> None:
    """The hospital says it entered every make-up workday of ``year`` itself."""
    if not 2000 <= year <= 2100:
        raise RecoveryError("年份超出范围")
    if session.get(CheckedYear, year) is None:
        session.add(CheckedYear(year=year, checked_by=by))
        session.flush()
    audit.record(session, rt, "recovery.calendar_check", actor=actor or audit.Actor(staff_no=by),
                 detail={"year": year})


# ============================================================================================
# Due list and overdue
# ============================================================================================


@dataclass
class DueRow:
    admission_id: int
    barcode: str
    mrn: str
    admission_no: str
    name: str
    ward: str
    department: str
    attending: str
    discharge_date: dt.date
    due_date: dt.date
    overdue_days: int  # working days past the due date (0: not overdue)


def _attending(session: Session, adm_ids: list[int]) -> dict[int, str]:
    if not adm_ids:
        return {}
    rows = session.execute(
        select(Signer.admission_id, Signer.staff_no, Staff.name)
        .outerjoin(Staff, Staff.staff_no == Signer.staff_no)
        .where(Signer.admission_id.in_(adm_ids), Signer.role == "attending")).all()
    return {a: (n or no) for a, no, n in rows}


def ward_of(adm: Admission, depts: dict[str, str]) -> str:
    if adm.ward:
        return adm.ward
    code = adm.discharge_department or ""
    return depts.get(code, code) or "未分病区"


def due_rows(session: Session, rt, today: dt.date | None = None, ward: str | None = None,
             cal: wcal.WorkCalendar | None = None) -> list[DueRow]:
    """Discharged, not cancelled, not yet recovered records with their due dates (oldest
    discharge first), at most MAX_DUE_ROWS."""
    st = rt.settings(RecoverySettings)
    cal = cal or wcal.load(session)
    today = today or local_date(rt, utcnow())
    since = dt.datetime.combine(today - dt.timedelta(days=DUE_WINDOW_DAYS), dt.time(),
                                tzinfo=rt.tz)
    q = (select(Admission).options(joinedload(Admission.patient))
         .outerjoin(Recovery, Recovery.admission_id == Admission.id)
         .where(Recovery.id.is_(None), Admission.discharged_at.is_not(None),
                Admission.discharged_at >= since, Admission.cancelled_at.is_(None))
         .order_by(Admission.discharged_at, Admission.id).limit(MAX_DUE_ROWS))
    adms = list(session.scalars(q).unique())
    depts = department_names(session)
    att = _attending(session, [a.id for a in adms])
    out = []
    for a in adms:
        w = ward_of(a, depts)
        if ward and w != ward:
            continue
        d = local_date(rt, a.discharged_at)
        due = cal.add_working_days(d, st.due_working_days)
        late = cal.working_days_between(due, today) if today > due else 0
        code = a.discharge_department or ""
        out.append(DueRow(a.id, a.barcode, a.patient.mrn, a.admission_no, a.patient.name, w,
                          depts.get(code, code), att.get(a.id, ""), d, due, late))
    return out


def due_counts(session: Session, rt, today: dt.date | None = None,
               attending: str | None = None,
               cal: wcal.WorkCalendar | None = None) -> tuple[int, int]:
    """(not yet recovered, of which past due) over the same records as ``due_rows``, counted
    without loading them (the home page); ``attending``: only the records this staff number
    signed as attending physician."""
    st = rt.settings(RecoverySettings)
    cal = cal or wcal.load(session)
    today = today or local_date(rt, utcnow())
    since = dt.datetime.combine(today - dt.timedelta(days=DUE_WINDOW_DAYS), dt.time(),
                                tzinfo=rt.tz)
    q = (select(Admission.discharged_at)
         .outerjoin(Recovery, Recovery.admission_id == Admission.id)
         .where(Recovery.id.is_(None), Admission.discharged_at.is_not(None),
                Admission.discharged_at >= since, Admission.cancelled_at.is_(None))
         .limit(MAX_DUE_ROWS))
    if attending is not None:
        q = q.where(select(Signer.id).where(Signer.admission_id == Admission.id,
                                            Signer.role == "attending",
                                            Signer.staff_no == attending).exists())
    due = late = 0
    late_of: dict[dt.date, bool] = {}  # per discharge day: past due by a working day (due_rows)
    for (discharged,) in session.execute(q):
        d = local_date(rt, discharged)
        if d not in late_of:
            by = cal.add_working_days(d, st.due_working_days)
            late_of[d] = today > by and cal.working_days_between(by, today) > 0
        due += 1
        late += late_of[d]
    return due, late


def record_status(session: Session, rt, admission_id: int,
                  today: dt.date | None = None) -> dict | None:
    """Where the paper record of one admission is in recovery, for its record page: not
    discharged (None), waiting (with its due date and working days overdue), or recovered
    (when, by whom, how: a ward handover or the record room's desk) with its 补单."""
    adm = session.get(Admission, admission_id)
    if adm is None or adm.discharged_at is None or adm.cancelled_at is not None:
        return None
    st = rt.settings(RecoverySettings)
    cal = wcal.load(session)
    today = today or local_date(rt, utcnow())
    discharged = local_date(rt, adm.discharged_at)
    due = cal.add_working_days(discharged, st.due_working_days)
    rec = session.scalar(select(Recovery).where(Recovery.admission_id == admission_id))
    out: dict = {"discharged": discharged, "due": due, "due_days": st.due_working_days}
    if rec is None:
        out.update(state="waiting",
                   overdue=cal.working_days_between(due, today) if today > due else 0)
        return out
    name = session.scalar(select(Staff.name).where(Staff.staff_no == rec.recovered_by))
    handover = session.get(Handover, rec.handover_id) if rec.handover_id else None
    got = local_date(rt, rec.recovered_at)
    out.update(state="recovered", at=rec.recovered_at, on_time=got <= due,
               by=f"{name or rec.recovered_by}（{rec.recovered_by}）",
               source=SOURCE_LABELS.get(rec.source, rec.source), ward=rec.ward or "",
               handover_at=handover.uploaded_at if handover else None,
               label_printed=rec.label_printed_at is not None,
               supplements=[(s.kind, s.sheets, s.received_at, s.status) for s in session.scalars(
                   select(Supplement).where(Supplement.admission_id == admission_id)
                   .order_by(Supplement.received_at))])
    return out


def overdue_summary(rows: list[DueRow], by: str) -> list[tuple[str, int, int]]:
    """(group, due, overdue) per ward / department / attending, most overdue first."""
    key = {"ward": lambda r: r.ward, "department": lambda r: r.department or "未填科室",
           "attending": lambda r: r.attending or "未填主治医师"}[by]
    acc: dict[str, list[int]] = {}
    for r in rows:
        v = acc.setdefault(key(r), [0, 0])
        v[0] += 1
        v[1] += r.overdue_days > 0
    return sorted(((k, v[0], v[1]) for k, v in acc.items()), key=lambda x: (-x[2], -x[1], x[0]))


# ============================================================================================
# Recovering a record
# ============================================================================================


@dataclass
class Outcome:
    outcome: str  # recovered / duplicate / taken / unknown / invalid / not_discharged
    message: str
    admission: Admission | None = None
    recovery: Recovery | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("recovered", "duplicate")


def find_by_barcode(session: Session, code: str) -> tuple[Admission | None, str]:
    code = (code or "").strip().upper()
    try:
        records.parse_barcode(code)
    except records.RecordError:
        return None, "invalid"
    adm = session.scalar(select(Admission).options(joinedload(Admission.patient))
                         .where(Admission.barcode == code))
    return adm, ("" if adm is not None else "unknown")


def recover(session: Session, rt, code: str, *, staff_no: str, source: str,
            ward: str | None = None, handover: Handover | None = None,
            at: dt.datetime | None = None, actor: audit.Actor | None = None) -> Outcome:
    """Mark the record of ``code`` recovered unless it already is; never raises for a bad
    barcode (the outcome says what happened, for per-item reporting)."""
    adm, why = find_by_barcode(session, code)
    shown = (code or "").strip()[:64]
    if adm is None:
        text = ("不是病案条码（或校验位不符，可能误读）" if why == "invalid"
                else "系统中没有这份病案")
        return Outcome(why, f"{shown}：{text}")
    if adm.discharged_at is None or adm.cancelled_at is not None:
        return Outcome("not_discharged",
                       f"{adm.patient.name}（{adm.admission_no}）尚未出院或已撤销", adm)
    rec = session.scalar(select(Recovery).where(Recovery.admission_id == adm.id))
    if rec is not None:
        if rec.recovered_by == staff_no:
            return Outcome("duplicate", f"{adm.patient.name} 已由本人回收", adm, rec)
        when = rec.recovered_at.astimezone(rt.tz)
        return Outcome("taken", f"{adm.patient.name} 已于 {when:%m-%d %H:%M} 由 "
                       f"{rec.recovered_by} 回收", adm, rec)
    depts = department_names(session)
    rec = Recovery(admission_id=adm.id, recovered_at=at or utcnow(), recovered_by=staff_no,
                   source=source, ward=ward or ward_of(adm, depts),
                   handover_id=handover.id if handover else None)
    session.add(rec)
    session.flush()
    audit.record(session, rt, "recovery.recover", actor=actor or audit.Actor(staff_no=staff_no),
                 mrn=adm.patient.mrn, admission_no=adm.admission_no,
                 detail={"source": source, "ward": rec.ward,
                         "handover": handover.client_id if handover else None})
    act = actor or audit.Actor(staff_no=staff_no)
    rt.pm.hook.paper_record_event(
        session=session, admission=records.to_ref(adm), rt=rt,
        event=PaperRecordEvent("recovered", staff_no=staff_no, client_ip=act.client_ip,
                               computer_name=act.computer_name,
                               location=rec.ward or "", note=SOURCE_LABELS.get(source, "")))
    return Outcome("recovered", f"{adm.patient.name}（{adm.patient.mrn}）已回收", adm, rec)


# ============================================================================================
# Upload from the phone (idempotent)
# ============================================================================================


@dataclass
class ItemIn:
    client_id: str
    barcode: str
    scanned_at: dt.datetime


@dataclass
class UploadIn:
    handover_id: str
    ward: str
    started_at: dt.datetime
    items: list[ItemIn] = field(default_factory=list)


def _time(v, what: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError as exc:
        raise RecoveryError(f"{what}时间格式不对") from exc
    if t.tzinfo is None:
        raise RecoveryError(f"{what}时间缺少时区")
    if not 2000 <= t.year <= 2100:
        raise RecoveryError(f"{what}时间超出范围")
    try:
        return t.astimezone(dt.timezone.utc)
    except OverflowError as exc:
        raise RecoveryError(f"{what}时间超出范围") from exc


def parse_upload(data, max_items: int) -> UploadIn:
    """Check the whole upload before anything is written."""
    if not isinstance(data, dict):
        raise RecoveryError("上传内容应为 JSON 对象")
    hid, ward = str(data.get("handover_id") or ""), str(data.get("ward") or "").strip()
    if not CLIENT_ID.fullmatch(hid):
        raise RecoveryError("交接单编号无效")
    if not ward or len(ward) > 64:
        raise RecoveryError("请选择病区")
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise RecoveryError("没有扫描记录")
    if len(items) > max_items:
        raise RecoveryError(f"一次最多上传 {max_items} 条")
    out = UploadIn(hid, ward, _time(data.get("started_at"), "交接开始"))
    seen = set()
    for i, it in enumerate(items, 1):
        if not isinstance(it, dict):
            raise RecoveryError(f"第 {i} 条格式不对")
        cid, code = str(it.get("client_id") or ""), str(it.get("barcode") or "").strip()
        if not CLIENT_ID.fullmatch(cid):
            raise RecoveryError(f"第 {i} 条编号无效")
        if cid in seen:
            raise RecoveryError(f"第 {i} 条编号重复")
        seen.add(cid)
        if not code or len(code) > 64:
            raise RecoveryError(f"第 {i} 条条码为空或过长")
        out.items.append(ItemIn(cid, code, _time(it.get("scanned_at"), f"第 {i} 条扫描")))
    return out


def upload(session: Session, rt, up: UploadIn, staff, *,
           actor: audit.Actor | None = None) -> tuple[Handover, list[dict]]:
    """Register an upload; an item already uploaded (same client id) answers what it answered
    the first time and writes nothing, so replaying an upload changes nothing."""
    ho = session.scalar(select(Handover).where(Handover.client_id == up.handover_id))
    if ho is None:
        ho = Handover(client_id=up.handover_id, ward=up.ward, staff_no=staff.staff_no,
                      staff_name=staff.name, started_at=up.started_at)
        session.add(ho)
        session.flush()
    elif ho.staff_no != staff.staff_no:
        raise RecoveryError("这张交接单属于另一位回收人员")
    results = []
    new = 0
    for it in up.items:
        old = session.scalar(select(Scan).where(Scan.client_id == it.client_id))
        if old is not None:
            results.append({"client_id": it.client_id, "outcome": old.outcome,
                            "label": OUTCOME_LABELS[old.outcome], "message": old.message,
                            "replayed": True})
            continue
        o = recover(session, rt, it.barcode, staff_no=staff.staff_no, source="ward",
                    ward=up.ward, handover=ho, at=it.scanned_at, actor=actor)
        session.add(Scan(client_id=it.client_id, handover_id=ho.id, barcode=it.barcode[:64],
                         scanned_at=it.scanned_at, outcome=o.outcome, message=o.message[:256],
                         admission_id=o.admission.id if o.admission else None))
        new += 1
        results.append({"client_id": it.client_id, "outcome": o.outcome,
                        "label": OUTCOME_LABELS[o.outcome], "message": o.message,
                        "replayed": False})
    session.flush()
    if new:
        audit.record(session, rt, "recovery.upload", actor=actor or
                     audit.Actor(staff_no=staff.staff_no),
                     detail={"handover": ho.client_id, "ward": ho.ward, "items": new})
    return ho, results


def handover_lines(session: Session, ho: Handover) -> list[tuple[Admission, Scan]]:
    """The records this ward handed over in ``ho`` (recovered or already one's own)."""
    scans = session.scalars(select(Scan).where(Scan.handover_id == ho.id,
                                               Scan.outcome.in_(("recovered", "duplicate")))
                            .order_by(Scan.scanned_at, Scan.id)).all()
    out, seen = [], set()
    for sc in scans:
        if sc.admission_id in seen:
            continue
        seen.add(sc.admission_id)
        adm = session.scalar(select(Admission).options(joinedload(Admission.patient))
                             .where(Admission.id == sc.admission_id))
        out.append((adm, sc))
    return out


# ============================================================================================
# 补单
# ============================================================================================


def register_supplement(session: Session, rt, code: str, kind: str, sheets: int,
                        from_ward: str, description: str, *, by: str,
                        received_at: dt.datetime | None = None,
                        actor: audit.Actor | None = None) -> Supplement:
    """Register supplementary documents for a record that was already recovered; capture
    takes them next and the archive makes a new version of the record."""
    st = rt.settings(RecoverySettings)
    adm, _ = find_by_barcode(session, code)
    if adm is None:
        # the record room may also type the admission number
        adm = session.scalar(select(Admission).options(joinedload(Admission.patient))
                             .where(Admission.admission_no == (code or "").strip().upper()))
        if adm is None:
            raise RecoveryError("没有这份病案（请扫描病案首页条码或输入住院号）")
    if session.scalar(select(Recovery.id).where(Recovery.admission_id == adm.id)) is None:
        raise RecoveryError(f"{adm.patient.name}（{adm.admission_no}）尚未回收："
                            "补单只登记在已回收的病案上")
    if kind not in st.supplement_kinds:
        raise RecoveryError("请选择补单类型")
    if not 1 <= sheets <= 500:
        raise RecoveryError("张数应在 1 到 500 之间")
    from_ward = (from_ward or "").strip()
    if not from_ward or len(from_ward) > 64:
        raise RecoveryError("请填写送交病区")
    description = (description or "").strip()
    if len(description) > 500:
        raise RecoveryError("说明最多 500 个字")
    sup = Supplement(admission_id=adm.id, kind=kind, sheets=sheets, from_ward=from_ward,
                     description=description, received_at=received_at or utcnow(),
                     registered_by=by, status="waiting")
    session.add(sup)
    session.flush()
    audit.record(session, rt, "recovery.supplement", actor=actor or audit.Actor(staff_no=by),
                 mrn=adm.patient.mrn, admission_no=adm.admission_no,
                 detail={"kind": kind, "sheets": sheets, "from_ward": from_ward})
    return sup


def supplements_captured(session: Session, admission_id: int) -> int:
    """Pages of the record were captured: its waiting supplements are captured now."""
    n = 0
    for sup in session.scalars(select(Supplement).where(Supplement.admission_id == admission_id,
                                                        Supplement.status == "waiting")):
        sup.status, sup.captured_at = "captured", utcnow()
        n += 1
    session.flush()
    return n


def supplements_archived(session: Session, admission_id: int, version: int) -> int:
    """A new version of the record was made: its captured supplements are in it."""
    n = 0
    for sup in session.scalars(select(Supplement).where(Supplement.admission_id == admission_id,
                                                        Supplement.status == "captured")):
        sup.status, sup.document_version = "archived", version
        n += 1
    session.flush()
    return n


# ============================================================================================
# The 2-working-day archiving rate (出院患者病历2日归档率)
# ============================================================================================


@dataclass
class RateRow:
    month: str
    department: str
    discharged: int
    on_time: int
    recovered: int

    @property
    def rate(self) -> float | None:
        return round(100.0 * self.on_time / self.discharged, 1) if self.discharged else None


def archiving_rate(session: Session, rt, start: dt.date, end: dt.date,
                   cal: wcal.WorkCalendar | None = None) -> list[RateRow]:
    """Per month and discharge department: discharged records, those recovered within the
    due working days after discharge, and those recovered at all."""
    if end < start:
        raise RecoveryError("结束日期早于开始日期")
    if (end - start).days > 3 * 366:
        raise RecoveryError("统计区间最长三年")
    st = rt.settings(RecoverySettings)
    cal = cal or wcal.load(session)
    tz = rt.tz
    lo = dt.datetime.combine(start, dt.time(), tzinfo=tz)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    rows = session.execute(
        select(Admission.discharged_at, Admission.discharge_department, Recovery.recovered_at)
        .outerjoin(Recovery, Recovery.admission_id == Admission.id)
        .where(Admission.discharged_at >= lo, Admission.discharged_at < hi,
               Admission.cancelled_at.is_(None))).all()
    depts = department_names(session)
    acc: dict[tuple[str, str], RateRow] = {}
    for dis, dept, rec in rows:
        d = dis.astimezone(tz).date()
        name = depts.get(dept or "", dept or "") or "未填科室"
        r = acc.setdefault((f"{d:%Y-%m}", name), RateRow(f"{d:%Y-%m}", name, 0, 0, 0))
        r.discharged += 1
        if rec is not None:
            r.recovered += 1
            if rec.astimezone(tz).date() <= cal.add_working_days(d, st.due_working_days):
                r.on_time += 1
    return sorted(acc.values(), key=lambda r: (r.month, r.department))


def rate_totals(rows: list[RateRow]) -> list[RateRow]:
    """One row per month over all departments."""
    acc: dict[str, RateRow] = {}
    for r in rows:
        t = acc.setdefault(r.month, RateRow(r.month, "全院", 0, 0, 0))
        t.discharged += r.discharged
        t.on_time += r.on_time
        t.recovered += r.recovered
    return [acc[k] for k in sorted(acc)]


def rate_workbook(rows: list[RateRow], start: dt.date, end: dt.date, hospital: str,
                  due_days: int) -> bytes:
    import io

    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False})
    ws = wb.add_worksheet("归档率")
    bold = wb.add_format({"bold": True})
    pct = wb.add_format({"num_format": "0.0"})
    ws.write(0, 0, f"{hospital} 出院患者病历{due_days}日归档率 {start} 至 {end}", bold)
    heads = ["月份", "科室", "出院人数", f"{due_days}个工作日内回收", "已回收", "归档率（%）"]
    ws.write_row(2, 0, heads, bold)
    line = 3
    for r in rows + rate_totals(rows):
        ws.write_row(line, 0, [r.month, r.department, r.discharged, r.on_time, r.recovered])
        if r.rate is not None:
            ws.write_number(line, 5, r.rate, pct)
        line += 1
    ws.set_column(0, 0, 10)
    ws.set_column(1, 1, 18)
    ws.set_column(2, 5, 14)
    wb.close()
    return buf.getvalue()


def report_rows(session: Session, rt, params, today: dt.date | None = None) -> list[dict]:
    """The recovery report of the reports page (``register_reports``): per discharge day /
    week / month or per discharge department, the records discharged, recovered within the
    due working days, recovered at all, the rate, and those past due and still not back."""
    st = rt.settings(RecoverySettings)
    cal = wcal.load(session)
    tz = rt.tz
    today = today or local_date(rt, utcnow())
    lo, hi = params.bounds()
    q = (select(Admission.discharged_at, Admission.discharge_department, Recovery.recovered_at)
         .outerjoin(Recovery, Recovery.admission_id == Admission.id)
         .where(Admission.discharged_at >= lo, Admission.discharged_at < hi,
                Admission.cancelled_at.is_(None)))
    if params.department:
        q = q.where(Admission.discharge_department == params.department)
    by_dept = params.group == "department"
    depts = department_names(session)
    rows: dict = {}

    def blank(label):
        return {"period": label, "discharged": 0, "on_time": 0, "recovered": 0, "rate": None,
                "overdue": 0}

    if not by_dept:
        for b in params.buckets():
            rows[b] = blank(b)
    due_of: dict[dt.date, dt.date] = {}
    for dis, dept, rec in session.execute(q):
        d = dis.astimezone(tz).date()
        due = due_of.get(d)
        if due is None:
            due = due_of[d] = cal.add_working_days(d, st.due_working_days)
        if by_dept:
            r = rows.setdefault(dept or "", blank(depts.get(dept or "", dept or "") or "未填科室"))
        else:
            r = rows[params.bucket(d)]
        r["discharged"] += 1
        if rec is not None:
            r["recovered"] += 1
            if rec.astimezone(tz).date() <= due:
                r["on_time"] += 1
        elif due < today:
            r["overdue"] += 1
    out = list(rows.values())
    for r in out:
        r["rate"] = round(100.0 * r["on_time"] / r["discharged"], 1) if r["discharged"] else None
    if by_dept:
        out.sort(key=lambda r: (-r["overdue"], r["period"]))
    return out
