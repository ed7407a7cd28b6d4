"""Capture pages (Chinese UI) and JSON APIs.

Pages: home (today's counts, sources, queues), upload (drag-and-drop, several files, progress),
phone (camera input), unidentified queue (assign to a record), rework queue (re-capture
replaces the page, history kept), batches (create from a list, count check, plan, progress
chart, weekly Excel report), printable cover sheets. Every page image served is audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy import select

from bingan.core import audit
from bingan.core.exporting import content_disposition
from bingan.core.models import Admission, Page
from bingan.core.pages import current_pages, page_history
from bingan.core.web.images import PREVIEW_SIZES, outside_work, preview_response
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor
from bingan_capture import batches as bt
from bingan_capture import conditions as cond
from bingan_capture.codes import cover_info, cover_sheets_pdf
from bingan_capture.ingest import CaptureError, receive, resolve_admission, sources
from bingan_capture.models import (
    BatchCondition, CaptureBatch, CaptureBatchItem, CaptureFile, CaptureFrame, CapturePlan,
    CaptureRework,
)
from bingan_capture import process as proc
from bingan_capture.settings import CaptureSettings
from bingan.core.config import CoreSettings

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
Multipart = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]

OP = {"permission": "capture.operate"}
PLAN = {"permission": "capture.plan"}
#: the record work in which capture staff see pages as stored (issue 9, M7)
WORK = ("capture", "rework")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATUS_LABELS = {"queued": "处理中", "done": "完成", "unidentified": "待识别", "failed": "失败",
                 "pending": "待处理", "stored": "已入库", "cover": "封面", "blank": "空白页",
                 "discarded": "已舍弃", "open": "待返工"}
SOURCE_LABELS = {"hot_folder": "热文件夹", "upload": "网页上传", "phone": "手机拍摄",
                 "sane": "SANE 扫描仪", "import": "命令行导入", "demo": "演示数据"}


def _rt(request: Request):
    return request.app.state.rt


def _by(request: Request) -> str:
    return request.state.staff.staff_no


def _redirect(path: str, msg: str | None = None, error: bool = False) -> Redirect:
    if msg:
        path += ("&" if "?" in path else "?") + ("err=" if error else "msg=") + quote(msg)
    return Redirect(path)


def _file_bytes(value) -> tuple[str, bytes]:
    """(name, bytes) of an uploaded file field."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or not hasattr(value, "file"):
        raise CaptureError("没有收到文件")
    value.file.seek(0)
    return value.filename or "unnamed", value.file.read()


def _int(v, what: str) -> int | None:
    if v in (None, ""):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        raise ValidationException(f"{what}无效") from None


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


@get("/capture/pages/{page_id:int}/image", opt=OP)
@in_thread
def page_image(request: Request, page_id: FromPath[int], size: FromQuery[str] = "thumb",
               which: FromQuery[str] = "image") -> Response:
    """A page image for capture staff (thumb, medium or full; processed or original)."""
    rt = _rt(request)
    if size not in PREVIEW_SIZES or which not in ("image", "original"):
        raise ValidationException("size 或 which 无效")
    with rt.sessions() as s, s.begin():
        p = s.get(Page, page_id)
        if p is None:
            raise NotFoundException("页面不存在")
        adm = s.get(Admission, p.admission_id)
        away = outside_work(s, rt, request, adm, page_id, WORK, audit_action="capture.page.view",
                            size=size, detail={"which": which})
        if away is not None:
            return away
        sha = p.image_sha256 if which == "image" else p.original_sha256
        audit.record(s, rt, "capture.page.view", actor=actor(request), mrn=adm.patient.mrn,
                     admission_no=adm.admission_no,
                     detail={"page_id": page_id, "size": size, "which": which})
    if not sha:
        raise NotFoundException("该页没有此图像")
    return preview_response(rt.store.get(sha), size)


@get("/capture/frames/{frame_id:int}/image", opt=OP)
@in_thread
def frame_image(request: Request, frame_id: FromPath[int],
                size: FromQuery[str] = "thumb") -> Response:
    """A received page that is not (yet) in a record, e.g. waiting for identification."""
    rt = _rt(request)
    if size not in PREVIEW_SIZES:
        raise ValidationException("size 无效")
    with rt.sessions() as s, s.begin():
        f = s.get(CaptureFrame, frame_id)
        if f is None:
            raise NotFoundException("页面不存在")
        if f.status == "stored" and f.admission_id is not None and f.page_id is not None:
            # in a record now: shown as stored only while the record is in capture work
            away = outside_work(s, rt, request, s.get(Admission, f.admission_id), f.page_id,
                                WORK, audit_action="capture.frame.view", size=size,
                                detail={"frame_id": frame_id})
            if away is not None:
                return away
        audit.record(s, rt, "capture.frame.view", actor=actor(request),
                     detail={"frame_id": frame_id, "capture_id": f.capture_id, "size": size})
        sha = f.blob_sha256
    return preview_response(rt.store.get(sha), size)


# --------------------------------------------------------------------------------------------
# Home, upload, phone
# --------------------------------------------------------------------------------------------


@get("/capture", opt=OP)
@in_thread
def home(request: Request) -> Any:
    rt = _rt(request)
    with rt.sessions() as s:
        counts = bt.today_counts(s, request.app.state.rt.tz)
        recent = s.execute(
            select(CaptureFile, Admission).outerjoin(Admission, Admission.id ==
                                                     CaptureFile.admission_id)
            .order_by(CaptureFile.id.desc()).limit(30)).all()
        batch_list = bt.batch_infos(s)[:5]
    srcs = []
    for src in sources(rt).values():
        ok = src.available() if src.available else True
        srcs.append((src, ok))
    return page(request, "capture/home.html", counts=counts, recent=recent, sources=srcs,
                batches=batch_list, labels=STATUS_LABELS, source_labels=SOURCE_LABELS)


def _open_batches(rt):
    with rt.sessions() as s:
        return list(s.scalars(select(CaptureBatch).where(CaptureBatch.status == "open")
                              .order_by(CaptureBatch.id.desc())))


@get("/capture/upload", opt=OP)
@in_thread
def upload_page(request: Request, admission: FromQuery[str | None] = None) -> Any:
    rt = _rt(request)
    return page(request, "capture/upload.html", batches=_open_batches(rt),
                admission=admission or "", max_mb=rt.settings(CaptureSettings).max_file_mb)


class UploadOut(msgspec.Struct):
    capture_id: int
    pages: int
    duplicate: bool
    message: str


def _paper(data: Multipart) -> str | None:
    """The paper the photographer chose (form field ``paper``); "" or "auto": not said.
    receive() refuses a name it does not know."""
    paper = str(data.get("paper") or "").strip()
    return None if paper in ("", "auto") else paper


@post("/api/capture/upload", opt=OP)
@in_thread
def api_upload(request: Request, data: Multipart) -> UploadOut:
    """Receive one file (multipart field ``file``); stored and queued before this answers."""
    rt = _rt(request)
    source = str(data.get("source") or "upload")
    web = [name for name, src in sources(rt).items() if src.href]
    if source not in web:  # a page of capture's or of a scanning adapter (scan-phone ...)
        raise ValidationException(f"来源只能是 {'、'.join(sorted(web))}")
    try:
        name, body = _file_bytes(data.get("file"))
        with rt.sessions() as s, s.begin():
            got = receive(s, rt, body, name, source,
                          admission_no=str(data.get("admission") or "").strip() or None,
                          batch_id=_int(data.get("batch_id"), "批次"), by=_by(request),
                          actor=actor(request), paper=_paper(data))
    except CaptureError as exc:
        raise ValidationException(str(exc)) from exc
    msg = (f"此文件已接收过（采集 #{got.capture_id}），未重复保存" if got.duplicate
           else f"已接收：采集 #{got.capture_id}，{got.frames} 页，正在处理")
    return UploadOut(got.capture_id, got.frames, got.duplicate, msg)


class LookupOut(msgspec.Struct):
    admission_no: str
    mrn: str
    patient_name: str
    visit_no: int
    barcode: str
    discharged: str
    department: str
    pages: int
    # the paper's condition (record and batch notes) and, for paper a feeder would damage,
    # which source to use instead
    condition: list[str] = msgspec.field(default_factory=list)
    condition_notes: list[str] = msgspec.field(default_factory=list)
    feeder_advice: str | None = None


@get("/api/capture/lookup", opt=OP)
@in_thread
def api_lookup(request: Request, q: FromQuery[str] = "") -> LookupOut:
    """Which record an admission number or scanned record barcode names (audited search)."""
    rt = _rt(request)
    with rt.sessions() as s, s.begin():
        try:
            adm = resolve_admission(s, q)
        except CaptureError as exc:
            audit.record(s, rt, "capture.lookup", actor=actor(request), outcome="failed",
                         detail={"q": q[:64]})
            s.commit()
            raise NotFoundException(str(exc)) from exc
        audit.record(s, rt, "capture.lookup", actor=actor(request), mrn=adm.patient.mrn,
                     admission_no=adm.admission_no, detail={"q": q[:64]})
        info = cover_info(adm, tz=request.app.state.rt.tz)
        c = cond.record_condition(s, adm.id)
        return LookupOut(adm.admission_no, adm.patient.mrn, adm.patient.name, adm.visit_no,
                         adm.barcode, info.discharged, info.department,
                         len(current_pages(s, adm.id)), c.labels, c.notes, c.advice)


class FrameOut(msgspec.Struct):
    idx: int
    status: str
    page_id: int | None
    admission_no: str | None
    qc_status: str | None
    note: str | None
    # the image QC's reasons in plain Chinese (what the phone page shows the photographer)
    reasons: list[str] = msgspec.field(default_factory=list)
    rework_id: int | None = None  # the open rework item of this page (a retake replaces it)


class CaptureOut(msgspec.Struct):
    id: int
    filename: str
    status: str
    frames: list[FrameOut]
    error: str | None


@get("/api/capture/captures/{capture_id:int}", opt=OP)
@in_thread
def api_capture(request: Request, capture_id: FromPath[int]) -> CaptureOut:
    rt = _rt(request)
    with rt.sessions() as s:
        cap = s.get(CaptureFile, capture_id)
        if cap is None:
            raise NotFoundException("采集不存在")
        rows = s.execute(select(CaptureFrame, Admission.admission_no).outerjoin(
            Admission, Admission.id == CaptureFrame.admission_id).where(
            CaptureFrame.capture_id == capture_id).order_by(CaptureFrame.idx)).all()
        ids = [f.page_id for f, _ in rows if f.page_id]
        steps = dict(s.execute(select(Page.id, Page.steps).where(Page.id.in_(ids))).all()) \
            if ids else {}
        open_items = dict(s.execute(select(CaptureRework.page_id, CaptureRework.id).where(
            CaptureRework.page_id.in_(ids), CaptureRework.status == "open")).all()) \
            if ids else {}
        return CaptureOut(cap.id, cap.filename, cap.status,
                          [FrameOut(f.idx + 1, f.status, f.page_id, no, f.qc_status, f.note,
                                    list((steps.get(f.page_id) or {}).get("qc_reasons") or []),
                                    open_items.get(f.page_id))
                           for f, no in rows], cap.error)


@get("/capture/captures/{capture_id:int}", opt=OP)
@in_thread
def capture_detail(request: Request, capture_id: FromPath[int]) -> Any:
    rt = _rt(request)
    with rt.sessions() as s:
        cap = s.get(CaptureFile, capture_id)
        if cap is None:
            raise NotFoundException("采集不存在")
        rows = s.execute(select(CaptureFrame, Admission).outerjoin(
            Admission, Admission.id == CaptureFrame.admission_id).where(
            CaptureFrame.capture_id == capture_id).order_by(CaptureFrame.idx)).all()
        adm = s.get(Admission, cap.admission_id) if cap.admission_id else None
        batch = s.get(CaptureBatch, cap.batch_id) if cap.batch_id else None
        # templates render after the session closed: hand them plain values
        names = {a.id: a.patient.name for _, a in rows if a is not None}
        if adm is not None:
            names[adm.id] = adm.patient.name
        return page(request, "capture/capture.html", cap=cap, rows=rows, adm=adm, batch=batch,
                    names=names, labels=STATUS_LABELS, source_labels=SOURCE_LABELS)


# --------------------------------------------------------------------------------------------
# Unidentified queue
# --------------------------------------------------------------------------------------------


def _unidentified(request: Request, status_code: int = 200, error: str | None = None) -> Any:
    rt = _rt(request)
    with rt.sessions() as s:
        frames = proc.unidentified_frames(s)
        caps = {c.id: c for c in s.scalars(select(CaptureFile).where(
            CaptureFile.id.in_({f.capture_id for f in frames})))} if frames else {}
    groups: dict[int, list] = {}
    for f in frames:
        groups.setdefault(f.capture_id, []).append(f)
    return page(request, "capture/unidentified.html", status_code=status_code,
                groups=[(caps[cid], fs) for cid, fs in groups.items()], error=error,
                msg=request.query_params.get("msg"), source_labels=SOURCE_LABELS)


@get("/capture/unidentified", opt=OP)
@in_thread
def unidentified(request: Request) -> Any:
    return _unidentified(request)


@post("/capture/unidentified/{capture_id:int}/assign", opt=OP)
@in_thread
def unidentified_assign(request: Request, capture_id: FromPath[int], data: Form) -> Any:
    rt = _rt(request)
    ids = data.get("frame_ids") or []
    ids = [int(x) for x in (ids if isinstance(ids, list) else [ids]) if str(x).isdigit()]
    try:
        with rt.sessions() as s, s.begin():
            n = proc.assign(s, rt, capture_id, str(data.get("admission", "")), frame_ids=ids,
                            by=_by(request), actor=actor(request))
            adm = resolve_admission(s, str(data.get("admission", "")))
            msg = f"已将 {n} 页归入 {adm.admission_no}（{adm.patient.name}），正在入库"
    except CaptureError as exc:
        return _unidentified(request, 400, str(exc))
    return _redirect("/capture/unidentified", msg)


@post("/capture/unidentified/{capture_id:int}/discard", opt=OP)
@in_thread
def unidentified_discard(request: Request, capture_id: FromPath[int], data: Form) -> Any:
    rt = _rt(request)
    try:
        with rt.sessions() as s, s.begin():
            n = proc.discard(s, rt, capture_id, str(data.get("reason", "")), by=_by(request),
                             actor=actor(request))
    except CaptureError as exc:
        return _unidentified(request, 400, str(exc))
    return _redirect("/capture/unidentified", f"已舍弃 {n} 页")


# --------------------------------------------------------------------------------------------
# Rework queue
# --------------------------------------------------------------------------------------------


def _rework(request: Request, status_code: int = 200, error: str | None = None) -> Any:
    rt = _rt(request)
    show = request.query_params.get("show", "open")
    with rt.sessions() as s:
        q = (select(CaptureRework, Admission).join(Admission, Admission.id ==
                                                   CaptureRework.admission_id))
        if show == "done":
            q = q.where(CaptureRework.status != "open").order_by(CaptureRework.resolved_at.desc())
        else:
            q = q.where(CaptureRework.status == "open").order_by(CaptureRework.id)
        rows = []
        for item, adm in s.execute(q.limit(300)).all():
            last = item.new_page_id or item.page_id
            history = page_history(s, last) if last else []
            page_row = s.get(Page, item.page_id) if item.page_id else None
            rows.append({"item": item, "adm": adm, "page": page_row, "history": history,
                         "patient": adm.patient.name})
    return page(request, "capture/rework.html", status_code=status_code, rows=rows, show=show,
                error=error, msg=request.query_params.get("msg"),
                origins={"qc": "图像质检", "inspection": "抽检", "clerk": "人工"})


@get("/capture/rework", opt=OP)
@in_thread
def rework(request: Request) -> Any:
    return _rework(request)


@post("/capture/rework/{rework_id:int}/upload", opt=OP)
@in_thread
def rework_upload(request: Request, rework_id: FromPath[int], data: Multipart) -> Any:
    """Re-capture for a rework item: the new file replaces the page (history kept)."""
    rt = _rt(request)
    source = str(data.get("source") or "upload")  # "phone": a retake from the phone page
    try:
        web = [n for n, src in sources(rt).items() if src.href]
        if source not in web:  # capture's upload page or an adapter's page (scan-phone ...)
            raise CaptureError(f"来源只能是 {'、'.join(sorted(web))}")
        name, body = _file_bytes(data.get("file"))
        with rt.sessions() as s, s.begin():
            item = s.get(CaptureRework, rework_id)
            if item is None or item.status != "open":
                raise CaptureError(f"返工单 {rework_id} 不存在或已完成")
            adm = s.get(Admission, item.admission_id)
            if item.page_id is not None:
                got = receive(s, rt, body, name, source, replace_page_id=item.page_id,
                              rework_id=item.id, by=_by(request), actor=actor(request),
                              paper=_paper(data))
            else:
                got = receive(s, rt, body, name, source, admission_no=adm.admission_no,
                              rework_id=item.id, by=_by(request), actor=actor(request),
                              paper=_paper(data))
    except CaptureError as exc:
        return _rework(request, 400, str(exc))
    what = "替换该页" if item.page_id is not None else "补入病案"
    return _redirect("/capture/rework",
                     f"已接收重新采集的文件（采集 #{got.capture_id}，{got.frames} 页），处理后将{what}")


@post("/capture/rework/{rework_id:int}/done", opt=OP)
@in_thread
def rework_done(request: Request, rework_id: FromPath[int]) -> Any:
    rt = _rt(request)
    try:
        with rt.sessions() as s, s.begin():
            proc.close_record_rework(s, rt, rework_id, by=_by(request), actor=actor(request))
    except CaptureError as exc:
        return _rework(request, 400, str(exc))
    return _redirect("/capture/rework", f"返工单 {rework_id} 已完成")


# --------------------------------------------------------------------------------------------
# Batches and plans
# --------------------------------------------------------------------------------------------


def _batches(request: Request, status_code: int = 200, error: str | None = None,
             form: dict | None = None) -> Any:
    rt = _rt(request)
    with rt.sessions() as s:
        infos = bt.batch_infos(s)
    return page(request, "capture/batches.html", status_code=status_code, batches=infos,
                error=error, form=form or {}, today=bt.today(request.app.state.rt.tz).isoformat(),
                msg=request.query_params.get("msg"))


@get("/capture/batches", opt=PLAN)
@in_thread
def batches(request: Request) -> Any:
    return _batches(request)


@post("/capture/batches", opt=PLAN)
@in_thread
def batch_create(request: Request, data: Multipart) -> Any:
    rt = _rt(request)
    form = {k: v for k, v in data.items() if isinstance(v, str)}
    try:
        try:
            start = dt.date.fromisoformat(str(data.get("start") or bt.today(request.app.state.rt.tz).isoformat()))
        except ValueError:
            raise CaptureError("开始日期格式应为 YYYY-MM-DD") from None
        try:
            daily = int(str(data.get("daily_pages") or "0"))
        except ValueError:
            raise CaptureError("每日计划页数须为整数") from None
        upload = data.get("list_file")
        rows = []
        if upload is not None and hasattr(upload, "file") and upload.filename:
            name, body = _file_bytes(upload)
            rows = bt.parse_rows(name, body)
        text = str(data.get("list_text") or "").strip()
        if text:
            rows += bt.parse_text(text)
        if not rows:
            raise CaptureError("请导入或粘贴病案清单（住院号, 应有页数）")
        with rt.sessions() as s, s.begin():
            b = bt.create_batch(s, rt, str(data.get("name") or ""), start, daily, rows,
                                note=str(data.get("note") or "") or None, by=_by(request),
                                actor=actor(request))
            bid = b.id
    except CaptureError as exc:
        return _batches(request, 400, str(exc), form)
    return _redirect(f"/capture/batches/{bid}", "批次已创建")


def _batch_page(request: Request, batch_id: int, status_code: int = 200,
                error: str | None = None) -> Any:
    rt = _rt(request)
    with rt.sessions() as s:
        b = s.get(CaptureBatch, batch_id)
        if b is None:
            raise NotFoundException("批次不存在")
        recs = bt.batch_records(s, batch_id) or []
        plan = list(s.scalars(select(CapturePlan).where(CapturePlan.batch_id == batch_id)
                              .order_by(CapturePlan.day)))
        weeks = bt.weekly(s, batch_id, request.app.state.rt.tz)
        ids = [r.admission.id for r in recs]
        conditions = cond.record_conditions(s, ids)
        own = {a: {"flags": list(r.flags or []), "note": r.note or ""}
               for a, r in cond.own_conditions(s, ids).items()}
        bc = s.get(BatchCondition, batch_id)
        batch_cond = {"flags": list(bc.flags or []), "note": bc.note or "",
                      "by": cond.assessor_label(s, bc.assessed_by),
                      "at": bc.assessed_at} if bc else None
    totals = {"expected": sum(r.expected_pages for r in recs),
              "captured": sum(r.captured_pages for r in recs),
              "digitized": sum(r.digitized for r in recs),
              "short": sum(r.captured_pages < r.expected_pages for r in recs)}
    return page(request, "capture/batch.html", status_code=status_code, batch=b, records=recs,
                plan=plan, weeks=weeks, totals=totals, error=error, state=bt.record_state,
                conditions=conditions, own=own, batch_cond=batch_cond,
                kinds=list(cond.CONDITIONS.values()),
                msg=request.query_params.get("msg"), today=bt.today(request.app.state.rt.tz).isoformat())


@get("/capture/batches/{batch_id:int}", opt=PLAN)
@in_thread
def batch_detail(request: Request, batch_id: FromPath[int]) -> Any:
    return _batch_page(request, batch_id)


@post("/capture/batches/{batch_id:int}/plan", opt=PLAN)
@in_thread
def batch_plan(request: Request, batch_id: FromPath[int], data: Form) -> Any:
    rt = _rt(request)
    try:
        try:
            day = dt.date.fromisoformat(str(data.get("day", "")))
            pages = int(str(data.get("pages", "")))
        except ValueError:
            raise CaptureError("请填写日期（YYYY-MM-DD）和计划页数（整数）") from None
        with rt.sessions() as s, s.begin():
            bt.set_plan(s, rt, batch_id, day, pages, by=_by(request), actor=actor(request))
    except CaptureError as exc:
        return _batch_page(request, batch_id, 400, str(exc))
    return _redirect(f"/capture/batches/{batch_id}", f"{day} 计划已设为 {pages} 页")


@post("/capture/batches/{batch_id:int}/status", opt=PLAN)
@in_thread
def batch_status(request: Request, batch_id: FromPath[int], data: Form) -> Any:
    rt = _rt(request)
    status = str(data.get("status", ""))
    if status not in ("open", "closed"):
        raise ValidationException("状态无效")
    reason = str(data.get("reason") or "").strip()[:500]
    with rt.sessions() as s, s.begin():
        b = s.get(CaptureBatch, batch_id)
        if b is None:
            raise NotFoundException("批次不存在")
        unfinished = [r for r in bt.batch_records(s, batch_id) or [] if not r.digitized]
        if status == "closed" and unfinished and not reason:
            # closing with records unfinished is a decision: it needs a reason
            s.rollback()
            return _batch_page(request, batch_id, 400,
                               f"还有 {len(unfinished)} 份病案未完成数字化，关闭批次须填写理由")
        b.status = status
        audit.record(s, rt, "capture.batch.status", actor=actor(request),
                     detail={"batch_id": batch_id, "status": status, "reason": reason or None,
                             "unfinished": [r.admission.admission_no for r in unfinished]})
    if status == "closed":
        msg = "批次已关闭" + (f"（{len(unfinished)} 份病案未完成，理由：{reason}）"
                          if unfinished else "，全部病案已完成数字化")
    else:
        msg = "批次已重新打开"
    return _redirect(f"/capture/batches/{batch_id}", msg)


def _flags(v: Any) -> list[str]:
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


@post("/capture/batches/{batch_id:int}/condition", opt=PLAN)
@in_thread
def batch_condition(request: Request, batch_id: FromPath[int], data: Form) -> Any:
    """The paper's condition for the whole batch (items from the list plus free text)."""
    rt = _rt(request)
    try:
        with rt.sessions() as s, s.begin():
            cond.set_batch_condition(s, rt, batch_id, _flags(data.get("flags")),
                                     str(data.get("note") or ""), by=_by(request),
                                     actor=actor(request))
    except cond.ConditionError as exc:
        if str(exc) == "批次不存在":
            raise NotFoundException(str(exc)) from exc
        return _batch_page(request, batch_id, 400, str(exc))
    return _redirect(f"/capture/batches/{batch_id}", "已保存本批次的纸张状况")


@post("/capture/batches/{batch_id:int}/records/{admission_no:str}/condition", opt=PLAN)
@in_thread
def record_condition(request: Request, batch_id: FromPath[int], admission_no: FromPath[str],
                     data: Form) -> Any:
    """One record's paper condition, assessed in this batch."""
    rt = _rt(request)
    try:
        with rt.sessions() as s, s.begin():
            adm = s.scalar(select(Admission).join(
                CaptureBatchItem, CaptureBatchItem.admission_id == Admission.id).where(
                CaptureBatchItem.batch_id == batch_id, Admission.admission_no == admission_no))
            if adm is None:
                raise NotFoundException(f"批次中没有住院号 {admission_no}")
            cond.set_record_condition(s, rt, adm, _flags(data.get("flags")),
                                      str(data.get("note") or ""), batch_id=batch_id,
                                      by=_by(request), actor=actor(request))
    except cond.ConditionError as exc:
        return _batch_page(request, batch_id, 400, f"{admission_no}：{exc}")
    return _redirect(f"/capture/batches/{batch_id}", f"已保存 {admission_no} 的纸张状况")


@get("/api/capture/batches/{batch_id:int}/progress", opt=PLAN)
@in_thread
def api_progress(request: Request, batch_id: FromPath[int]) -> dict[str, Any]:
    """Planned and actual pages per day (and cumulated) for the progress chart."""
    rt = _rt(request)
    with rt.sessions() as s:
        if s.get(CaptureBatch, batch_id) is None:
            raise NotFoundException("批次不存在")
        return bt.progress(s, batch_id, request.app.state.rt.tz)


@get("/api/capture/progress", opt=PLAN)
@in_thread
def api_progress_all(request: Request) -> dict[str, Any]:
    rt = _rt(request)
    with rt.sessions() as s:
        return bt.progress(s, None, request.app.state.rt.tz)


def _weekly_response(request: Request, batch_id: int | None) -> Response:
    rt = _rt(request)
    with rt.sessions() as s, s.begin():
        if batch_id is not None:
            b = s.get(CaptureBatch, batch_id)
            if b is None:
                raise NotFoundException("批次不存在")
            title = f"采集周进度报告：{b.name}"
        else:
            title = "采集周进度报告：全部批次"
        body = bt.weekly_xlsx(s, batch_id, title, request.app.state.rt.tz)
        audit.record(s, rt, "capture.report.export", actor=actor(request),
                     detail={"batch_id": batch_id, "report": "weekly"})
    name = f"{title.replace('：', '_')}_{bt.today(request.app.state.rt.tz):%Y%m%d}.xlsx"
    return Response(body, media_type=XLSX, headers={"Content-Disposition":
                                                    content_disposition(name)})


@get("/capture/batches/{batch_id:int}/weekly.xlsx", opt=PLAN)
@in_thread
def batch_weekly(request: Request, batch_id: FromPath[int]) -> Response:
    return _weekly_response(request, batch_id)


@get("/capture/weekly.xlsx", opt=PLAN)
@in_thread
def weekly_all(request: Request) -> Response:
    return _weekly_response(request, None)


# --------------------------------------------------------------------------------------------
# Cover sheets
# --------------------------------------------------------------------------------------------


def _pdf(body: bytes, name: str) -> Response:
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": content_disposition(name).replace("attachment", "inline", 1)})


@get("/capture/cover/{admission_no:str}", opt=OP)
@in_thread
def cover(request: Request, admission_no: FromPath[str]) -> Response:
    """The printable cover sheet (分隔页) of one record (PDF)."""
    rt = _rt(request)
    with rt.sessions() as s, s.begin():
        try:
            adm = resolve_admission(s, admission_no)
        except CaptureError as exc:
            raise NotFoundException(str(exc)) from exc
        body = cover_sheets_pdf([cover_info(adm, rt.settings(CoreSettings).hospital_name, tz=rt.tz)])
        audit.record(s, rt, "capture.cover.print", actor=actor(request), mrn=adm.patient.mrn,
                     admission_no=adm.admission_no)
        return _pdf(body, f"封面_{adm.admission_no}.pdf")


@get("/capture/batches/{batch_id:int}/covers", opt=OP)
@in_thread
def batch_covers(request: Request, batch_id: FromPath[int]) -> Response:
    """Cover sheets of every record of a batch, one PDF."""
    rt = _rt(request)
    with rt.sessions() as s, s.begin():
        b = s.get(CaptureBatch, batch_id)
        if b is None:
            raise NotFoundException("批次不存在")
        adms = [a for a, in s.execute(
            select(Admission).join(CaptureBatchItem, CaptureBatchItem.admission_id ==
                                   Admission.id)
            .where(CaptureBatchItem.batch_id == batch_id).order_by(CaptureBatchItem.id)).all()]
        body = cover_sheets_pdf([cover_info(a, rt.settings(CoreSettings).hospital_name, tz=rt.tz) for a in adms])
        for a in adms:
            audit.record(s, rt, "capture.cover.print", actor=actor(request), mrn=a.patient.mrn,
                         admission_no=a.admission_no, detail={"batch_id": batch_id})
        return _pdf(body, f"封面_{b.name}.pdf")


ROUTES = [page_image, frame_image, home, upload_page, api_upload, api_lookup,
          api_capture, capture_detail, unidentified, unidentified_assign, unidentified_discard,
          rework, rework_upload, rework_done, batches, batch_create, batch_detail, batch_plan,
          batch_status, batch_condition, record_condition, api_progress, api_progress_all, batch_weekly, weekly_all, cover,
          batch_covers]
