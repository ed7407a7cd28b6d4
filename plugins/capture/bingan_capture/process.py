"""Processing received pages (the ``capture.process`` task), the unidentified queue and the
rework queue.

A task handles one received file. Its pages are handled in order: each is identified (the
file's explicit record, the record of a page being re-captured, a clerk's assignment, or the
record barcode found on the page by ``identify_admission``; a page without a barcode belongs
to the record of the page before it in the same file), cleaned by ``process_page`` and stored
with ``core.pages``. A page and its frame's new status are committed together in one
transaction, after re-reading the frame under a row lock, so a task run again after a crash or
by a second worker stores every page exactly once. The slow work (decoding, barcodes, image
processing) happens outside that transaction.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field, replace
from typing import Any

from PIL import Image, ImageOps
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bingan.hooks.types import AdmissionRef, PageImage, PaperRecordEvent, Runtime
from bingan.core import audit, tasks
from bingan.core.models import Admission, Page, utcnow
from bingan.core.pages import NewPage, PageError, add_page, replace_page
from bingan.core.storage import store_blob
from bingan.core.records import to_ref
from bingan_capture.codes import read_codes, to_gray_array
from bingan_capture.ingest import (
    PDF, TASK_KIND, CaptureError, render_pdf_page, resolve_admission,
)
from bingan_capture.models import CaptureFile, CaptureFrame, CaptureRework
from bingan_capture.settings import CaptureSettings
from bingan.core.config import CoreSettings

log = logging.getLogger("bingan.capture")


@dataclass
class _FrameView:
    id: int
    idx: int
    blob: str
    media_type: str
    dpi: float | None
    status: str
    target_admission_id: int | None
    admission_id: int | None
    page_id: int | None


@dataclass
class Outcome:
    """What one run of a capture did (the task's result)."""

    stored: int = 0
    covers: int = 0
    unidentified: int = 0
    blank: int = 0
    failed: int = 0
    qc_failed: int = 0
    pages: dict[int, list[int]] = field(default_factory=dict)


def _decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return ImageOps.exif_transpose(im)


def _eight_bit(im: Image.Image) -> Image.Image:
    """An L or RGB image (16-bit scans scaled, not clipped)."""
    if im.mode in ("L", "RGB"):
        return im
    if im.mode.startswith("I"):
        import numpy as np

        a = np.asarray(im).astype(np.uint32)
        return Image.fromarray((a >> 8 if a.max() > 255 else a).astype(np.uint8), "L")
    return im.convert("L" if im.mode in ("1", "LA", "F") else "RGB")


def _unprocessed(data: bytes, media_type: str, im: Image.Image, dpi: float | None) -> NewPage:
    """No imaging plugin: the page as captured, decoded and validated, as a JPEG."""
    if media_type == "image/jpeg" and not im.getexif().get(0x0112):
        image = data
    else:
        rgb = _eight_bit(im)
        buf = io.BytesIO()
        kw = {"dpi": (dpi, dpi)} if dpi else {}
        rgb.save(buf, "JPEG", quality=92, **kw)
        image = buf.getvalue()
    return NewPage(image=image, original=data, media_type="image/jpeg",
                   original_media_type=media_type, width=im.width, height=im.height, dpi=dpi,
                   qc_status=None, qc_metrics={}, steps={})


def _qc_reason(reasons) -> str:
    return "；".join(reasons) if reasons else "图像质检未通过"


def identify(rt, gray: PageImage, codes, hint: dict[str, Any]) -> str | None:
    """The record barcode of a page through the ``identify_admission`` hook."""
    return rt.pm.hook.identify_admission(rt=rt, image=gray, hint=dict(hint, codes=list(codes.texts)))


def process_capture(rt, capture_id: int) -> dict[str, Any]:
    """Process every pending page of one received file (idempotent; see module docstring)."""
    settings = rt.settings(CaptureSettings)
    with rt.sessions() as s:
        cap = s.get(CaptureFile, capture_id)
        if cap is None:
            raise CaptureError(f"采集 {capture_id} 不存在")
        c = {"id": cap.id, "filename": cap.filename, "source": cap.source,
             "device": cap.device, "admission_id": cap.admission_id,
             "replace_page_id": cap.replace_page_id, "rework_id": cap.rework_id,
             "by": cap.received_by, "paper": cap.paper}
        frames = [_FrameView(f.id, f.idx, f.blob_sha256, f.media_type, f.dpi, f.status,
                             f.target_admission_id, f.admission_id, f.page_id)
                  for f in s.scalars(select(CaptureFrame).where(
                      CaptureFrame.capture_id == capture_id).order_by(CaptureFrame.idx))]
        barcodes = {}

    out = Outcome()
    pdfs: dict[str, bytes] = {}  # the received PDF, read once per run
    context: int | None = None  # record of the page before, for pages without a barcode
    prev_page: dict[int, int] = {}  # frame idx -> page id (for multi-page re-captures)
    for fr in frames:
        if fr.status in ("stored", "cover"):
            context = fr.admission_id
            if fr.page_id:
                prev_page[fr.idx] = fr.page_id
            continue
        if fr.status != "pending":
            if fr.status == "unidentified":
                context = None
            continue
        if fr.media_type == PDF:  # render this page now, store it, go on with it
            try:
                fr = _render_pdf_frame(rt, fr, settings, pdfs)
            except CaptureError as exc:
                _fail_frame(rt, fr.id, str(exc))
                out.failed += 1
                continue
        data = rt.store.get(fr.blob)
        im = _decode(data)
        gray = to_gray_array(im)
        codes = read_codes(gray)
        note = None
        target: int | None = None
        barcode = None
        if fr.target_admission_id is not None:
            target = fr.target_admission_id
        elif c["replace_page_id"] is not None or c["admission_id"] is not None:
            target = c["admission_id"]
            if target is None:
                with rt.sessions() as s:
                    target = s.get(Page, c["replace_page_id"]).admission_id
        else:
            barcode = identify(rt, gray, codes, {"filename": c["filename"],
                                                 "source": c["source"], "frame": fr.idx})
            if barcode:
                if barcode not in barcodes:
                    with rt.sessions() as s:
                        barcodes[barcode] = s.scalar(
                            select(Admission.id).where(Admission.barcode == barcode))
                target = barcodes[barcode]
                if target is None:
                    note = f"条码 {barcode} 没有对应的病案"
            else:
                target = context
                if target is None:
                    note = "未识别到病案条码（本页及之前没有封面或条码标签）"
        if codes.cover and target is not None and codes.record_barcode:
            with rt.sessions() as s:
                want = s.get(Admission, target).barcode
            if want != codes.record_barcode:
                note = f"封面条码 {codes.record_barcode} 与指定病案（{want}）不符"
                target = None

        processed = None
        blank = False
        if target is not None and not codes.cover:
            try:
                processed = rt.pm.hook.process_page(rt=rt, data=data, source=c["device"],
                                                    dpi=fr.dpi, paper=c["paper"])
            except ValueError as exc:  # the page itself is refused: no retry makes it pass
                _fail_frame(rt, fr.id, f"图像处理失败：{exc}")
                out.failed += 1
                continue
            blank = bool(processed is not None and processed.blank and settings.drop_blank_pages)
        if processed is not None:
            q = processed.quality
            new = NewPage(image=processed.image, original=data, media_type=processed.media_type,
                          original_media_type=fr.media_type, width=processed.width,
                          height=processed.height, dpi=processed.dpi or fr.dpi,
                          qc_status=q.status, qc_metrics=dict(q.metrics),
                          steps=dict(processed.steps, qc_reasons=list(q.reasons)))
        else:
            new = _unprocessed(data, fr.media_type, im, fr.dpi)

        with rt.sessions() as s, s.begin():
            f = s.get(CaptureFrame, fr.id, with_for_update=True)
            if f.status != "pending":
                continue  # another worker did it meanwhile
            f.barcode = codes.record_barcode
            if target is None:
                f.status, f.note, f.admission_id = "unidentified", note, None
                out.unidentified += 1
                context = None
                continue
            adm = s.get(Admission, target, with_for_update=True)
            f.admission_id = adm.id
            context = adm.id
            if codes.cover:
                f.status, f.note, f.stored_at = "cover", "封面（分隔页），不计入页数", utcnow()
                out.covers += 1
                continue
            if blank:
                f.status, f.note, f.stored_at = "blank", "空白页，已按设置略去", utcnow()
                out.blank += 1
                continue
            try:
                if c["replace_page_id"] is not None and fr.idx == 0:
                    page = replace_page(s, rt, c["replace_page_id"], new)
                    _close_rework(s, c["replace_page_id"], page.id, c["by"], c["id"])
                elif c["replace_page_id"] is not None:
                    prev_id = prev_page.get(fr.idx - 1)
                    before = s.get(Page, prev_id) if prev_id else None
                    page = add_page(s, rt, adm, new, seq=before.seq + 1 if before else None)
                else:
                    page = add_page(s, rt, adm, new)
            except PageError as exc:
                f.status, f.note = "failed", str(exc)
                out.failed += 1
                continue
            prev_page[fr.idx] = page.id
            f.status, f.page_id, f.stored_at = "stored", page.id, utcnow()
            f.qc_status = new.qc_status
            out.stored += 1
            out.pages.setdefault(adm.id, []).append(page.id)
            if new.qc_status == "fail":
                out.qc_failed += 1
                reasons = processed.quality.reasons if processed is not None else ()
                open_rework(s, adm.id, page.id, _qc_reason(reasons), "qc", None)

    _finish(rt, capture_id)
    notify_pages(rt, capture_id)
    return {"stored": out.stored, "covers": out.covers, "unidentified": out.unidentified,
            "blank": out.blank, "failed": out.failed, "qc_failed": out.qc_failed}


def _render_pdf_frame(rt, fr: _FrameView, settings, pdfs: dict[str, bytes]) -> _FrameView:
    """Render a placeholder page of a received PDF (one page in memory at a time), store it
    and point the frame at it (a retry after a crash renders it again; the blob is the same)."""
    if fr.blob not in pdfs:
        pdfs.clear()
        pdfs[fr.blob] = rt.store.get(fr.blob)
    page = render_pdf_page(pdfs[fr.blob], fr.idx, settings, rt.settings(CoreSettings).max_page_pixels)
    with rt.sessions() as s, s.begin():
        sha = store_blob(s, rt.store, page.data, page.media_type)
        f = s.get(CaptureFrame, fr.id, with_for_update=True)
        f.blob_sha256, f.media_type = sha, page.media_type
        f.width, f.height, f.dpi = page.width, page.height, page.dpi
    return replace(fr, blob=sha, media_type=page.media_type, dpi=page.dpi)


def _fail_frame(rt, frame_id: int, why: str) -> None:
    with rt.sessions() as s, s.begin():
        f = s.get(CaptureFrame, frame_id, with_for_update=True)
        if f.status == "pending":
            f.status, f.note = "failed", why


def _finish(rt, capture_id: int) -> None:
    with rt.sessions() as s, s.begin():
        cap = s.get(CaptureFile, capture_id, with_for_update=True)
        statuses = set(s.scalars(select(CaptureFrame.status).where(
            CaptureFrame.capture_id == capture_id)))
        if "pending" in statuses:
            return
        if "unidentified" in statuses:
            cap.status = "unidentified"
        elif "failed" in statuses:
            cap.status = "failed"
            cap.error = "；".join(s.scalars(select(CaptureFrame.note).where(
                CaptureFrame.capture_id == capture_id, CaptureFrame.status == "failed")))
        else:
            cap.status = "done"
        cap.processed_at = utcnow()


def capture_failed(rt, capture_id: int, error: str, attempts: int) -> None:
    """The processing task of a capture failed for good: the capture is ``failed`` with the
    reason (the capture page and the home page's count show it), not 处理中 for ever."""
    import re

    why = re.sub(r"^[A-Za-z_][\w.]*: ", "", error)  # "pkg.SomeError: message" -> message
    with rt.sessions() as s, s.begin():
        cap = s.get(CaptureFile, capture_id, with_for_update=True)
        if cap is None or cap.status == "done":
            return
        cap.status, cap.processed_at = "failed", utcnow()
        cap.error = f"处理失败（已尝试 {attempts} 次）：{why}"[:2000]


def notify_pages(rt, capture_id: int) -> None:
    """Call ``pages_captured`` for the pages this capture stored that were not announced yet
    (after the pages committed; a crash in between announces them on the retry)."""
    with rt.sessions() as s:
        rows = s.execute(select(CaptureFrame.admission_id, CaptureFrame.page_id).where(
            CaptureFrame.capture_id == capture_id, CaptureFrame.status == "stored",
            CaptureFrame.notified.is_(False)).order_by(CaptureFrame.idx)).all()
    by_adm: dict[int, list[int]] = {}
    for adm_id, page_id in rows:
        by_adm.setdefault(adm_id, []).append(page_id)
    for adm_id, page_ids in by_adm.items():
        with rt.sessions() as s:
            ref: AdmissionRef = to_ref(s.get(Admission, adm_id))
        rt.pm.hook.pages_captured(rt=rt, admission=ref, page_ids=page_ids)
        with rt.sessions() as s, s.begin():
            for f in s.scalars(select(CaptureFrame).where(
                    CaptureFrame.capture_id == capture_id, CaptureFrame.page_id.in_(page_ids))):
                f.notified = True
            # the paper record was captured: tracking moves it (once, with the flag above)
            rt.pm.hook.paper_record_event(
                session=s, admission=ref, rt=rt,
                event=PaperRecordEvent("captured", note=f"{len(page_ids)} 页"))


def handle_task(payload: dict, rt: Runtime) -> dict:
    """``capture.process`` task handler."""
    return process_capture(rt, int(payload["capture_id"]))


# --------------------------------------------------------------------------------------------
# Unidentified queue
# --------------------------------------------------------------------------------------------


def unidentified_frames(session: Session) -> list[CaptureFrame]:
    return list(session.scalars(select(CaptureFrame).where(CaptureFrame.status == "unidentified")
                                .order_by(CaptureFrame.capture_id, CaptureFrame.idx)))


def assign(session: Session, rt, capture_id: int, admission_text: str, *,
           frame_ids: list[int] | None = None, by: str | None = None,
           actor: audit.Actor | None = None) -> int:
    """A clerk names the record of a file's unidentified pages; they are processed again
    (a durable task) into that record. Returns how many pages were assigned."""
    adm = resolve_admission(session, admission_text)
    cap = session.get(CaptureFile, capture_id, with_for_update=True)
    if cap is None:
        raise CaptureError(f"采集 {capture_id} 不存在")
    q = select(CaptureFrame).where(CaptureFrame.capture_id == capture_id,
                                   CaptureFrame.status == "unidentified")
    if frame_ids:
        q = q.where(CaptureFrame.id.in_(frame_ids))
    frames = list(session.scalars(q))
    if not frames:
        raise CaptureError("该文件没有待识别的页面（可能已被他人处理）")
    for f in frames:
        f.status, f.target_admission_id, f.note = "pending", adm.id, None
    cap.round += 1
    cap.status = "queued"
    session.flush()
    tasks.enqueue(session, rt, TASK_KIND, {"capture_id": cap.id},
                  dedupe_key=f"capture:{cap.id}:{cap.round}")
    audit.record(session, rt, "capture.assign", actor=actor or audit.Actor(staff_no=by),
                 mrn=adm.patient.mrn, admission_no=adm.admission_no,
                 detail={"capture_id": cap.id, "frames": [f.idx + 1 for f in frames]})
    return len(frames)


def discard(session: Session, rt, capture_id: int, reason: str, *, by: str | None = None,
            actor: audit.Actor | None = None) -> int:
    """Set aside a file's unidentified pages (e.g. a scan of the wrong sheet), with a reason;
    the file itself stays stored."""
    reason = (reason or "").strip()
    if not reason:
        raise CaptureError("请填写舍弃原因")
    frames = list(session.scalars(select(CaptureFrame).where(
        CaptureFrame.capture_id == capture_id, CaptureFrame.status == "unidentified")))
    if not frames:
        raise CaptureError("该文件没有待识别的页面")
    for f in frames:
        f.status, f.note = "discarded", f"已舍弃：{reason}"
    cap = session.get(CaptureFile, capture_id)
    cap.status = "done"
    audit.record(session, rt, "capture.discard", actor=actor or audit.Actor(staff_no=by),
                 detail={"capture_id": capture_id, "frames": len(frames), "reason": reason})
    return len(frames)


# --------------------------------------------------------------------------------------------
# Rework queue
# --------------------------------------------------------------------------------------------


def open_rework(session: Session, admission_id: int, page_id: int | None, reason: str,
                origin: str, by: str | None) -> CaptureRework:
    """Put a page (or, with no page, the record) in the rework queue; an open item for the
    same page is reused (its reason extended)."""
    q = select(CaptureRework).where(CaptureRework.admission_id == admission_id,
                                    CaptureRework.status == "open")
    q = q.where(CaptureRework.page_id == page_id) if page_id is not None else q.where(
        CaptureRework.page_id.is_(None))
    item = session.scalar(q)
    if item is not None:
        if reason and reason not in item.reason:
            item.reason = f"{item.reason}；{reason}"
        return item
    item = CaptureRework(admission_id=admission_id, page_id=page_id, reason=reason or "需返工",
                         origin=origin, status="open", created_by=by)
    session.add(item)
    session.flush()
    return item


def _close_rework(session: Session, old_page_id: int, new_page_id: int, by: str | None,
                  capture_id: int) -> None:
    for item in session.scalars(select(CaptureRework).where(
            CaptureRework.page_id == old_page_id, CaptureRework.status == "open")):
        item.status, item.new_page_id, item.capture_id = "done", new_page_id, capture_id
        item.resolved_at, item.resolved_by = utcnow(), by


def close_record_rework(session: Session, rt, rework_id: int, *, by: str | None,
                        actor: audit.Actor | None = None) -> CaptureRework:
    """Close a record-level rework item (missing pages were captured)."""
    item = session.get(CaptureRework, rework_id)
    if item is None or item.status != "open":
        raise CaptureError(f"返工单 {rework_id} 不存在或已完成")
    if item.page_id is not None:
        raise CaptureError("页面返工须重新采集该页，采集后自动完成")
    item.status, item.resolved_at, item.resolved_by = "done", utcnow(), by
    adm = session.get(Admission, item.admission_id)
    audit.record(session, rt, "capture.rework.done", actor=actor or audit.Actor(staff_no=by),
                 mrn=adm.patient.mrn, admission_no=adm.admission_no,
                 detail={"rework_id": rework_id})
    session.flush()
    rt.pm.hook.digitization_blockers_changed(rt=rt, session=session, admission=to_ref(adm))
    return item


def open_rework_count(session: Session, admission_ids: list[int] | None = None) -> dict[int, int]:
    q = select(CaptureRework.admission_id, func.count()).where(
        CaptureRework.status == "open").group_by(CaptureRework.admission_id)
    if admission_ids is not None:
        q = q.where(CaptureRework.admission_id.in_(admission_ids))
    return dict(session.execute(q).all())


def request_rework(session: Session, rt, admission: AdmissionRef, page_ids: list[int],
                   reason: str, by: str | None) -> list[int]:
    """``request_rework`` hook: open rework items for pages of a record (or the record), and
    tell ``digitization_blockers_changed`` (the record may no longer count as digitized)."""
    if not page_ids:
        out = [open_rework(session, admission.id, None, reason, "inspection", by).id]
    else:
        out = []
        for pid in page_ids:
            page = session.get(Page, pid)
            if page is None or page.admission_id != admission.id:
                raise CaptureError(f"页面 {pid} 不属于病案 {admission.admission_no}")
            if page.replaced_by_id is not None:
                raise CaptureError(f"页面 {pid} 已被替换，不能再返工")
            out.append(open_rework(session, admission.id, pid, reason, "inspection", by).id)
    rt.pm.hook.digitization_blockers_changed(rt=rt, session=session, admission=admission)
    return out


def digitization_blockers(session: Session, admission_id: int) -> list[str]:
    """``digitization_blockers`` hook: the record's open rework items, page items in page
    order, then items for the record as a whole."""
    rows = session.execute(
        select(CaptureRework.page_id, CaptureRework.reason, Page.seq)
        .outerjoin(Page, Page.id == CaptureRework.page_id)
        .where(CaptureRework.admission_id == admission_id, CaptureRework.status == "open")
        .order_by(CaptureRework.page_id.is_(None), Page.seq, CaptureRework.id)).all()
    out = []
    for page_id, reason, seq in rows:
        reason = reason or "需返工"
        out.append(f"第 {seq} 页待返工：{reason}" if page_id is not None
                   else f"整份病案待返工：{reason}")
    return out


def record_work(session: Session, admission_id: int, work_hours: int = 24) -> list[str]:
    """``record_work`` hook: ``capture`` while the record is being captured (an item of an open
    batch, a received file still queued or failed or received less than ``work_hours`` ago, a
    page waiting to be processed into it), ``rework`` while a rework item of it is open."""
    import datetime as dt

    from bingan_capture.models import CaptureBatch, CaptureBatchItem

    since = utcnow() - dt.timedelta(hours=work_hours)

    out = []
    if session.scalar(select(CaptureRework.id).where(
            CaptureRework.admission_id == admission_id,
            CaptureRework.status == "open").limit(1)) is not None:
        out.append("rework")
    capturing = (
        select(CaptureBatchItem.id).join(CaptureBatch, CaptureBatch.id == CaptureBatchItem.batch_id)
        .where(CaptureBatchItem.admission_id == admission_id, CaptureBatch.status == "open")
        .limit(1),
        select(CaptureFile.id).where(CaptureFile.admission_id == admission_id,
                                     CaptureFile.status.in_(("queued", "failed"))
                                     | (CaptureFile.received_at >= since)).limit(1),
        select(CaptureFrame.id).where(CaptureFrame.target_admission_id == admission_id,
                                      CaptureFrame.status == "pending").limit(1),
    )
    if any(session.scalar(q) is not None for q in capturing):
        out.append("capture")
    return out
