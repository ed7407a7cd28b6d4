"""Correction pages (Chinese UI) and a small JSON API.

Every route needs the staff capability ``pageindex.correct``. The list shows every record's
index state; a record's pages, OCR text and correction form only while its page index awaits
correction (issue 9, M7: otherwise a 403, and page images go to the viewer, which applies the
reading policy and the watermark). Each list, record view, page image and save writes an audit
event with the MRN.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.plugins.htmx import HTMXTemplate
from litestar.response import Redirect
from sqlalchemy import func, select

from bingan.core import audit
from bingan.core.models import Admission, Page, Patient
from bingan.core.pages import current_pages
from bingan.core.staff import department_names
from bingan.core.web.images import jpeg_response, outside_work
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor
from bingan.core.work import in_work, not_in_work_message

from bingan_pageindex.models import PageText, RecordState
from bingan_pageindex.service import (
    STATUS_LABELS, CorrectionError, save_correction,
)
from bingan_pageindex.settings import PageindexSettings

PERM = "pageindex.correct"
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
PAGE_SIZE = 50
#: the record work in which correctors see pages and OCR text (issue 9, M7)
WORK = ("pageindex",)


class NotInWork(Exception):
    def __init__(self, admission_no: str) -> None:
        super().__init__(not_in_work_message(admission_no, WORK))


def _check_work(s, rt, request: Request, adm: Admission) -> None:
    """Raise ``NotInWork`` (after auditing the refusal) unless ``adm`` awaits correction."""
    if not in_work(s, rt, adm, WORK):
        audit.record(s, rt, "pageindex.denied", actor=actor(request), outcome="denied",
                     mrn=adm.patient.mrn, admission_no=adm.admission_no,
                     detail={"why": "not in work", "path": request.url.path})
        raise NotInWork(adm.admission_no)


def _refusal(request: Request, exc: NotInWork, *, json: bool = False) -> Any:
    if json:
        return Response({"detail": str(exc)}, status_code=403)
    return page(request, "error.html", status_code=403, title="不在校正中", message=str(exc))


def _admission(s, admission_no: str) -> Admission:
    adm = s.scalar(select(Admission).where(Admission.admission_no == admission_no))
    if adm is None:
        raise NotFoundException(f"住院号 {admission_no} 不存在")
    return adm


@get("/pageindex", opt={"permission": PERM})
@in_thread
def record_list(request: Request, status: FromQuery[str] = "needs_correction",
                p: FromQuery[int] = 1, saved: FromQuery[str | None] = None) -> Any:
    rt = request.app.state.rt
    if status not in (*STATUS_LABELS, "all"):
        status = "needs_correction"
    p = max(1, p)
    with rt.sessions() as s, s.begin():
        counts = dict(s.execute(select(RecordState.status, func.count())
                                .group_by(RecordState.status)).all())
        q = (select(RecordState, Admission, Patient)
             .join(Admission, Admission.id == RecordState.admission_id)
             .join(Patient, Patient.id == Admission.patient_id))
        if status != "all":
            q = q.where(RecordState.status == status)
        rows = s.execute(q.order_by(RecordState.updated_at.desc(), Admission.id.desc())
                         .limit(PAGE_SIZE + 1).offset((p - 1) * PAGE_SIZE)).all()
        audit.record(s, rt, "pageindex.list", actor=actor(request),
                     detail={"status": status, "page": p, "shown": min(len(rows), PAGE_SIZE)})
        progress = ocr_progress(s, [st.admission_id for st, _, _ in rows[:PAGE_SIZE]
                                    if st.status == "pending"])
        depts = department_names(s)
    return page(request, "pageindex/list.html", title="页面索引校正", rows=rows[:PAGE_SIZE],
                more=len(rows) > PAGE_SIZE, p=p, status=status, counts=counts,
                labels=STATUS_LABELS, saved=saved, progress=progress, depts=depts)


def ocr_progress(s, admission_ids: list[int]) -> dict[int, tuple[int, int]]:
    """admission id -> (pages whose current image OCR has read, current pages)."""
    if not admission_ids:
        return {}
    current = (Page.admission_id.in_(admission_ids), Page.replaced_by_id.is_(None),
               Page.image_sha256.is_not(None))
    total = dict(s.execute(select(Page.admission_id, func.count()).where(*current)
                           .group_by(Page.admission_id)).all())
    read = dict(s.execute(
        select(Page.admission_id, func.count(func.distinct(Page.id)))
        .join(PageText, (PageText.page_id == Page.id)
              & (PageText.image_sha256 == Page.image_sha256))
        .where(*current).group_by(Page.admission_id)).all())
    return {a: (int(read.get(a, 0)), int(total.get(a, 0))) for a in admission_ids}


@get("/pageindex/progress/{admission_id:int}", opt={"permission": PERM})
@in_thread
def record_progress(request: Request, admission_id: FromPath[int]) -> Any:
    """htmx: the status cell of one record in the list; while OCR works on it, how many of its
    pages are read (polled every 2 s until the record is indexed). Counts only, no content."""
    rt = request.app.state.rt
    with rt.sessions() as s:
        st = s.get(RecordState, admission_id)
        if st is None:
            raise NotFoundException("该病案尚未提交文字识别")
        progress = ocr_progress(s, [admission_id])
    return HTMXTemplate(template_name="pageindex/_status.html", media_type=MediaType.HTML,
                        context={"st": st, "progress": progress, "labels": STATUS_LABELS})


def _record_context(s, rt, adm: Admission) -> dict[str, Any]:
    cfg = rt.settings(PageindexSettings)
    pages = current_pages(s, adm.id)
    texts = {(t.page_id, t.image_sha256): t for t in s.scalars(
        select(PageText).where(PageText.admission_id == adm.id))}
    items = []
    for pg in pages:
        t = texts.get((pg.id, pg.image_sha256))
        first = (t.text.splitlines()[:3] if t else [])
        items.append({"id": pg.id, "seq": pg.seq, "type": pg.page_type or cfg.other_type,
                      "conf": pg.page_type_confidence, "ocr": t is not None,
                      "title": " / ".join(first)[:80],
                      "low": (pg.page_type_confidence or 0) < cfg.threshold})
    return {"adm": adm, "patient": adm.patient, "items": items, "types": cfg.type_names,
            "threshold": cfg.threshold, "state": s.get(RecordState, adm.id),
            "labels": STATUS_LABELS, "thumb": cfg.thumb_width}


@get("/pageindex/records/{admission_no:str}", opt={"permission": PERM})
@in_thread
def record_view(request: Request, admission_no: FromPath[str]) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        adm = s.scalar(select(Admission).where(Admission.admission_no == admission_no))
        if adm is None:
            audit.record(s, rt, "pageindex.view", actor=actor(request), outcome="failed",
                         admission_no=admission_no, detail={"why": "unknown admission"})
            s.commit()
            raise NotFoundException(f"住院号 {admission_no} 不存在")
        try:
            _check_work(s, rt, request, adm)
        except NotInWork as exc:
            return _refusal(request, exc)
        ctx = _record_context(s, rt, adm)
        audit.record(s, rt, "pageindex.view", actor=actor(request), mrn=adm.patient.mrn,
                     admission_no=adm.admission_no, detail={"pages": len(ctx["items"])})
    return page(request, "pageindex/record.html", title=f"页面索引校正 {admission_no}",
                error=None, **ctx)


@post("/pageindex/records/{admission_no:str}", opt={"permission": PERM})
@in_thread
def record_save(request: Request, admission_no: FromPath[str], data: Form) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        try:
            _check_work(s, rt, request, _admission(s, admission_no))
        except NotInWork as exc:
            return _refusal(request, exc)
    try:
        order = [int(x) for x in str(data.get("order", "")).split(",") if x.strip()]
        types = {int(k[5:]): str(v) for k, v in data.items() if k.startswith("type_")}
        save_correction(rt, admission_no, order, types, actor=actor(request))
    except (ValueError, CorrectionError) as exc:
        msg = str(exc) if isinstance(exc, CorrectionError) else "提交的页序或页面编号无效"
        with rt.sessions() as s, s.begin():
            adm = _admission(s, admission_no)
            audit.record(s, rt, "pageindex.correct", actor=actor(request), outcome="failed",
                         mrn=adm.patient.mrn, admission_no=adm.admission_no,
                         detail={"error": msg})
            ctx = _record_context(s, rt, adm)
        return page(request, "pageindex/record.html", status_code=400, error=msg,
                    title=f"页面索引校正 {admission_no}", **ctx)
    return Redirect(f"/pageindex?saved={admission_no}")


@get("/pageindex/pages/{page_id:int}/image", opt={"permission": PERM})
@in_thread
def page_image(request: Request, page_id: FromPath[int], w: FromQuery[int | None] = None
               ) -> Response:
    """A reduced JPEG of a page image (thumbnail or preview), audited, never cached."""
    rt = request.app.state.rt
    width = max(80, min(1600, w or rt.settings(PageindexSettings).thumb_width))
    with rt.sessions() as s, s.begin():
        pg = s.get(Page, page_id)
        if pg is None or not pg.image_sha256:
            raise NotFoundException("页面不存在")
        adm = s.get(Admission, pg.admission_id)
        away = outside_work(s, rt, request, adm, page_id, WORK, audit_action="pageindex.image",
                            size=width, detail={"seq": pg.seq})
        if away is not None:
            return away
        data = rt.store.get(pg.image_sha256)
        audit.record(s, rt, "pageindex.image", actor=actor(request), mrn=adm.patient.mrn,
                     admission_no=adm.admission_no,
                     detail={"page_id": page_id, "seq": pg.seq, "width": width})
    # at most `width` wide; a tall strip (e.g. a long ECG trace) may be up to 4 widths high
    return jpeg_response(data, (width, width * 4), quality=75,
                         cache_control="no-store, private")


class PageOut(msgspec.Struct):
    page_id: int
    seq: int
    page_type: str | None
    confidence: float | None
    text: str | None


class RecordOut(msgspec.Struct):
    admission_no: str
    mrn: str
    status: str | None
    pages: list[PageOut]
    indexed_at: dt.datetime | None


@get("/api/pageindex/records/{admission_no:str}", opt={"permission": PERM})
@in_thread
def api_record(request: Request, admission_no: FromPath[str]) -> RecordOut:
    """The page index of one record: pages in order with type, confidence and OCR text."""
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        adm = _admission(s, admission_no)
        try:
            _check_work(s, rt, request, adm)
        except NotInWork as exc:
            return _refusal(request, exc, json=True)
        texts = {(t.page_id, t.image_sha256): t.text for t in s.scalars(
            select(PageText).where(PageText.admission_id == adm.id))}
        state = s.get(RecordState, adm.id)
        out = RecordOut(adm.admission_no, adm.patient.mrn, state.status if state else None, [
            PageOut(p.id, p.seq, p.page_type, p.page_type_confidence,
                    texts.get((p.id, p.image_sha256))) for p in current_pages(s, adm.id)],
            state.indexed_at if state else None)
        audit.record(s, rt, "pageindex.api.view", actor=actor(request), mrn=adm.patient.mrn,
                     admission_no=adm.admission_no, detail={"pages": len(out.pages)})
    return out


ROUTES = [record_list, record_progress, record_view, record_save, page_image, api_record]
