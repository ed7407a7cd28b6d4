"""Acceptance sampling and inspection (D7, D8).

Per capture batch, a seeded random sample of the *digitized* records (every expected page
present, none failing QC, no rework open; the capture plugin says which through the
``batch_records`` hook) is drawn: ``max(min_sample, ceil(rate * N))`` of N, 5% by default,
at least one. The seed is stored with the sample, so anyone can replay the draw:
``random.Random(seed).sample(sorted admission ids, size)``.

An inspector checks each sampled record page by page, pass or fail with a reason. A failed
record goes back to rework (``request_rework``: the failing pages, or the record as a whole
for a record-level fault such as a missing page); once the pages are re-captured
(``pages_captured``) it waits for re-inspection, and is inspected again, round after round,
until it passes. The batch is accepted when every sampled record has passed and no record of
the batch has rework open. Per-record spot checks right after capture are inspections of kind
``spot``, recorded the same way.

Acceptance must be earned: no verdict is preset, and a page can be passed only by an inspector
who opened its image (the ``qc.page.view`` audit event of that inspector and page). A batch
with records not yet digitized is sampled only after the inspector confirmed, having been told
which records the sample leaves out and why.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import random
import secrets
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bingan.core import audit
from bingan.core.models import Admission, Page
from bingan.core.pages import current_pages
from bingan.core.records import to_ref
from bingan_qc.models import QcInspection, QcPageCheck, QcSample, QcSampleItem
from bingan_qc.settings import QcSettings

STATUS_LABELS = {"pending": "待检", "passed": "合格", "failed": "不合格·返工中",
                 "reinspect": "已返工·待复检"}


class QcError(ValueError):
    """An inspection request that cannot be done; the message says why (in Chinese)."""


@dataclass
class Excluded:
    """A record of the batch that a sample drawn now leaves out, and why."""

    admission_no: str
    name: str
    why: str


class NeedsConfirmation(QcError):
    """The batch is unfinished: sampling it leaves out ``excluded``; ask before drawing."""

    def __init__(self, excluded: list[Excluded], population: int) -> None:
        self.excluded, self.population = excluded, population
        super().__init__(f"该批次还有 {len(excluded)} 份病案未完成数字化，抽样将不包含它们"
                         f"（仅从 {population} 份已完成的病案中抽取），请确认")


def _why_not_digitized(r) -> str:
    parts = []
    if r.captured_pages < r.expected_pages or r.captured_pages == 0:
        parts.append(f"已采集 {r.captured_pages}/{r.expected_pages} 页")
    if r.failing_pages:
        parts.append(f"{r.failing_pages} 页图像质检不合格")
    if r.open_rework:
        parts.append(f"{r.open_rework} 项返工未完成")
    return "，".join(parts) or "未完成数字化"


def sample_size(population: int, rate: float, minimum: int = 1) -> int:
    """How many of ``population`` records are drawn (never more than there are)."""
    if population <= 0:
        return 0
    return min(population, max(minimum, math.ceil(population * rate - 1e-9)))


def draw(admission_ids: list[int], size: int, seed: int) -> list[int]:
    """The seeded draw: reproducible from (ids, size, seed)."""
    return sorted(random.Random(seed).sample(sorted(admission_ids), size))


def batch_name(session: Session, rt, batch_id: int) -> str | None:
    for group in rt.pm.hook.capture_batches(rt=rt, session=session):
        for b in group or []:
            if b.id == batch_id:
                return b.name
    return None


def draw_sample(session: Session, rt, batch_id: int, *, by: str,
                actor: audit.Actor | None = None, seed: int | None = None,
                confirm_unfinished: bool = False) -> QcSample:
    """Draw and record the acceptance sample of a batch (once per batch). A batch with records
    not yet digitized raises NeedsConfirmation (listing them) unless ``confirm_unfinished``."""
    settings = rt.settings(QcSettings)
    if session.scalar(select(QcSample).where(QcSample.batch_id == batch_id)) is not None:
        raise QcError("该批次已经抽样，不能重复抽取")
    records = rt.pm.hook.batch_records(rt=rt, session=session, batch_id=batch_id)
    if records is None:
        raise QcError(f"批次 {batch_id} 不存在")
    population = [r.admission.id for r in records if r.digitized]
    if not population:
        raise QcError("该批次还没有完成数字化的病案（页数齐全、质检合格、无待返工），无法抽样")
    excluded = [Excluded(r.admission.admission_no, r.admission.patient_name or "",
                         _why_not_digitized(r)) for r in records if not r.digitized]
    if excluded and not confirm_unfinished:
        raise NeedsConfirmation(excluded, len(population))
    size = sample_size(len(population), settings.sample_rate, settings.min_sample)
    if seed is None:
        seed = settings.seed if settings.seed is not None else secrets.randbelow(2 ** 31)
    chosen = draw(population, size, seed)
    sample = QcSample(batch_id=batch_id, batch_name=batch_name(session, rt, batch_id) or "",
                      seed=seed, rate=settings.sample_rate, population=len(population),
                      size=size, drawn_by=by)
    session.add(sample)
    session.flush()
    for adm_id in chosen:
        session.add(QcSampleItem(sample_id=sample.id, admission_id=adm_id, status="pending",
                                 rounds=0))
    session.flush()
    audit.record(session, rt, "qc.sample", actor=actor or audit.Actor(staff_no=by),
                 detail={"batch_id": batch_id, "population": len(population), "size": size,
                         "seed": seed, "rate": settings.sample_rate, "admission_ids": chosen,
                         "excluded": [e.admission_no for e in excluded]})
    return sample


def pages_seen(session: Session, staff_no: str, admission_no: str) -> set[int]:
    """Ids of the pages of a record whose image this inspector has opened (audited views)."""
    import json

    from bingan.core.models import AuditEvent

    seen: set[int] = set()
    for detail in session.scalars(select(AuditEvent.detail).where(
            AuditEvent.action == "qc.page.view", AuditEvent.outcome == "ok",
            AuditEvent.staff_no == staff_no,
            AuditEvent.admission_no == admission_no)):
        try:
            pid = json.loads(detail or "{}").get("page_id")
        except ValueError:
            continue
        if isinstance(pid, int):
            seen.add(pid)
    return seen


@dataclass
class Verdict:
    """The inspector's verdict on one page."""

    page_id: int
    ok: bool
    reason: str = ""


def inspect(session: Session, rt, admission_id: int, verdicts: list[Verdict], *, by: str,
            kind: str = "sample", item_id: int | None = None, record_reason: str = "",
            note: str = "", actor: audit.Actor | None = None) -> QcInspection:
    """Record an inspection of a record, page by page. Every current page needs a verdict and
    every failed page a reason. A failed inspection sends the record back to rework."""
    if kind not in ("sample", "spot"):
        raise QcError("检查类型无效")
    adm = session.get(Admission, admission_id)
    if adm is None:
        raise QcError("病案不存在")
    item = None
    if kind == "sample":
        item = session.get(QcSampleItem, item_id) if item_id is not None else None
        if item is None or item.admission_id != admission_id:
            raise QcError("抽检样本不存在")
        if item.status == "passed":
            raise QcError("该病案已抽检合格")
    pages = current_pages(session, admission_id)
    if not pages:
        raise QcError(f"病案 {adm.admission_no} 还没有页面")
    by_id = {v.page_id: v for v in verdicts}
    missing = [p.seq for p in pages if p.id not in by_id]
    if missing:
        raise QcError("以下页面尚未给出结论：第 " + "、".join(map(str, missing)) + " 页")
    extra = set(by_id) - {p.id for p in pages}
    if extra:
        raise QcError("结论中含有不属于本病案当前页面的页（页面可能刚被替换，请刷新）")
    for p in pages:
        v = by_id[p.id]
        if not v.ok and not v.reason.strip():
            raise QcError(f"第 {p.seq} 页判为不合格，请填写原因")
    seen = pages_seen(session, by, adm.admission_no)
    unseen = [p.seq for p in pages if by_id[p.id].ok and p.id not in seen]
    if unseen:
        raise QcError("以下页面尚未打开查看，不能判为合格：第 " + "、".join(map(str, unseen)) + " 页")
    record_reason = (record_reason or "").strip()
    failed = [(p, by_id[p.id]) for p in pages if not by_id[p.id].ok]
    result = "fail" if failed or record_reason else "pass"
    round_no = (item.rounds + 1) if item is not None else 1 + (session.scalar(
        select(func.count()).select_from(QcInspection).where(
            QcInspection.admission_id == admission_id, QcInspection.kind == "spot")) or 0)
    insp = QcInspection(kind=kind, item_id=item.id if item else None, admission_id=admission_id,
                        round=round_no, result=result, pages=len(pages),
                        failed_pages=len(failed), record_reason=record_reason or None,
                        note=(note or "").strip() or None, rework_ids=[], inspector=by)
    session.add(insp)
    session.flush()
    for p in pages:
        v = by_id[p.id]
        session.add(QcPageCheck(inspection_id=insp.id, page_id=p.id, seq=p.seq,
                                result="pass" if v.ok else "fail",
                                reason=v.reason.strip() or None))
    rework: list[int] = []
    if result == "fail":
        ref = to_ref(adm)
        label = "抽检" if kind == "sample" else "现场抽查"
        by_reason: dict[str, list[int]] = {}
        for p, v in failed:
            by_reason.setdefault(v.reason.strip(), []).append(p.id)
        for reason, ids in by_reason.items():
            for group in rt.pm.hook.request_rework(rt=rt, session=session, admission=ref, page_ids=ids,
                                                   reason=f"{label}不合格：{reason}", by=by):
                rework.extend(group or [])
        if record_reason:
            for group in rt.pm.hook.request_rework(rt=rt, session=session, admission=ref, page_ids=[],
                                                   reason=f"{label}不合格：{record_reason}",
                                                   by=by):
                rework.extend(group or [])
        if not rework:
            raise QcError("没有启用返工队列（capture 插件），无法退回返工")
    insp.rework_ids = rework
    if item is not None:
        item.rounds = round_no
        item.status = "passed" if result == "pass" else "failed"
    audit.record(session, rt, f"qc.inspect.{kind}", actor=actor or audit.Actor(staff_no=by),
                 outcome="ok", mrn=adm.patient.mrn, admission_no=adm.admission_no,
                 detail={"inspection_id": insp.id, "round": round_no, "result": result,
                         "failed_pages": [p.seq for p, _ in failed],
                         "record_reason": record_reason or None, "rework_ids": rework})
    session.flush()
    return insp


def on_pages_captured(rt, admission_id: int, page_ids: list[int]) -> int:
    """``pages_captured``: sampled records that failed inspection move to re-inspection once
    the failed pages were replaced (or, for a record-level fault, new pages arrived)."""
    moved = 0
    with rt.sessions() as s, s.begin():
        items = list(s.scalars(select(QcSampleItem).where(
            QcSampleItem.admission_id == admission_id, QcSampleItem.status == "failed")))
        for item in items:
            last = s.scalar(select(QcInspection).where(QcInspection.item_id == item.id)
                            .order_by(QcInspection.id.desc()).limit(1))
            if last is None:
                continue
            failed_pages = list(s.scalars(select(QcPageCheck.page_id).where(
                QcPageCheck.inspection_id == last.id, QcPageCheck.result == "fail")))
            replaced = all(s.get(Page, pid).replaced_by_id is not None for pid in failed_pages)
            if replaced and (failed_pages or (last.record_reason and page_ids)):
                item.status = "reinspect"
                moved += 1
    return moved


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


@dataclass
class ItemRow:
    item: QcSampleItem
    admission_no: str
    mrn: str
    name: str
    pages: int
    inspections: list[QcInspection] = field(default_factory=list)
    first_reasons: list[str] = field(default_factory=list)

    @property
    def first(self) -> QcInspection | None:
        return self.inspections[0] if self.inspections else None

    @property
    def last(self) -> QcInspection | None:
        return self.inspections[-1] if self.inspections else None

    @property
    def rework_items(self) -> int:
        return sum(len(i.rework_ids or []) for i in self.inspections)


@dataclass
class Report:
    sample: QcSample
    rows: list[ItemRow]
    open_rework: list[Excluded] = field(default_factory=list)  # batch records with rework open

    @property
    def inspected(self) -> int:
        return sum(1 for r in self.rows if r.inspections)

    @property
    def first_failed(self) -> int:
        return sum(1 for r in self.rows if r.first is not None and r.first.result == "fail")

    @property
    def failed_pages(self) -> int:
        return sum(r.first.failed_pages for r in self.rows if r.first is not None)

    @property
    def reworked(self) -> int:
        return sum(1 for r in self.rows if r.rework_items)

    @property
    def passed(self) -> int:
        return sum(1 for r in self.rows if r.item.status == "passed")

    @property
    def sample_passed(self) -> bool:
        return bool(self.rows) and self.passed == len(self.rows)

    @property
    def acceptance(self) -> str:
        if self.sample_passed and not self.open_rework:
            return "验收合格"
        if self.sample_passed:
            return f"样本合格，{len(self.open_rework)} 份病案返工未完成"
        if any(r.item.status in ("failed", "reinspect") for r in self.rows):
            return "返工中，待复检"
        return "抽检中"

    @property
    def accepted(self) -> bool:
        return self.sample_passed and not self.open_rework


def report(session: Session, sample: QcSample, rt=None) -> Report:
    """The sample's report; with ``rt`` the batch's open rework (capture, ``batch_records``)
    is looked up too, and a batch with rework open is not accepted."""
    items = list(session.scalars(select(QcSampleItem).where(QcSampleItem.sample_id == sample.id)
                                 .order_by(QcSampleItem.id)))
    rows = []
    for item in items:
        adm = session.get(Admission, item.admission_id)
        insps = list(session.scalars(select(QcInspection).where(QcInspection.item_id == item.id)
                                     .order_by(QcInspection.id)))
        reasons: list[str] = []
        if insps:
            reasons = [f"第{c.seq}页：{c.reason}" for c in session.scalars(
                select(QcPageCheck).where(QcPageCheck.inspection_id == insps[0].id,
                                          QcPageCheck.result == "fail")
                .order_by(QcPageCheck.seq))]
            if insps[0].record_reason:
                reasons.append(f"整份：{insps[0].record_reason}")
        rows.append(ItemRow(item, adm.admission_no, adm.patient.mrn, adm.patient.name,
                            len(current_pages(session, adm.id)), insps, reasons))
    open_rework: list[Excluded] = []
    if rt is not None:
        for r in rt.pm.hook.batch_records(rt=rt, session=session, batch_id=sample.batch_id) or []:
            if r.open_rework:
                open_rework.append(Excluded(r.admission.admission_no,
                                            r.admission.patient_name or "",
                                            f"{r.open_rework} 项返工未完成"))
    return Report(sample, rows, open_rework)


RESULT = {"pass": "合格", "fail": "不合格", None: "—"}


def report_xlsx(rep: Report, tz: dt.tzinfo) -> bytes:
    """The batch acceptance report: a summary sheet and the sampled records (times in the
    hospital's ``tz``)."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                   "strings_to_urls": False})
    bold = wb.add_format({"bold": True, "bg_color": "#E8EEF7", "border": 1})
    title = wb.add_format({"bold": True, "font_size": 14})
    s = rep.sample
    ws = wb.add_worksheet("验收汇总")
    ws.write(0, 0, f"抽检验收报告：{s.batch_name}", title)
    summary = [
        ("批次", s.batch_name), ("抽样时间", s.drawn_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")),
        ("抽样人", s.drawn_by or ""), ("已完成数字化病案数", s.population),
        ("抽样比例", f"{s.rate * 100:g}%"), ("样本量", s.size), ("随机种子", s.seed),
        ("已检病案", rep.inspected), ("首检不合格病案", rep.first_failed),
        ("首检不合格页数", rep.failed_pages), ("返工病案", rep.reworked),
        ("最终合格病案", rep.passed), ("返工未完成病案", len(rep.open_rework)),
        ("验收结论", rep.acceptance),
    ]
    for i, (k, v) in enumerate(summary, start=2):
        ws.write(i, 0, k, bold)
        ws.write(i, 1, v)
    ws.set_column(0, 0, 20)
    ws.set_column(1, 1, 28)
    ws2 = wb.add_worksheet("样本明细")
    heads = ["住院号", "病案号", "姓名", "页数", "首检结果", "首检不合格页数", "不合格原因",
             "返工单数", "检查次数", "末次检查结果", "末次检查人", "当前状态"]
    for c, h in enumerate(heads):
        ws2.write(0, c, h, bold)
    for r, row in enumerate(rep.rows, start=1):
        ws2.write_row(r, 0, [
            row.admission_no, row.mrn, row.name, row.pages,
            RESULT[row.first.result if row.first else None],
            row.first.failed_pages if row.first else "", "；".join(row.first_reasons),
            row.rework_items, len(row.inspections),
            RESULT[row.last.result if row.last else None],
            row.last.inspector if row.last else "", STATUS_LABELS[row.item.status]])
    ws2.set_column(0, 2, 14)
    ws2.set_column(3, 5, 10)
    ws2.set_column(6, 6, 40)
    ws2.set_column(7, 11, 12)
    ws2.freeze_panes(1, 0)
    wb.close()
    return buf.getvalue()


def record_work(session: Session, admission_id: int) -> list[str]:
    """``record_work`` hook: ``qc_sample`` while the record is an item of a sample that is not
    accepted yet (some item of it has not passed)."""
    from sqlalchemy.orm import aliased

    other = aliased(QcSampleItem)
    open_sample = select(other.id).where(other.sample_id == QcSampleItem.sample_id,
                                         other.status != "passed").exists()
    hit = session.scalar(select(QcSampleItem.id).where(
        QcSampleItem.admission_id == admission_id, open_sample).limit(1))
    return ["qc_sample"] if hit is not None else []
