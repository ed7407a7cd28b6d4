"""QC pages (Chinese UI): batches and their samples, the inspector page (a record page by
page, pass/fail with a reason), spot checks, the batch acceptance report with Excel export,
and page images for inspectors (each view audited)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy import select

from bingan.core import audit
from bingan.core.exporting import content_disposition
from bingan.core.models import Admission, Page
from bingan.core.pages import current_pages
from bingan.core.web.images import PREVIEW_SIZES, outside_work, preview_response
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor
from bingan.core.work import in_work, not_in_work_message
from bingan_qc import sampling as sp
from bingan_qc.models import QcInspection, QcPageCheck, QcSample, QcSampleItem
from bingan_qc.settings import QcSettings

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
QC = {"permission": "qc.inspect"}
#: the record work in which inspectors see pages as stored (issue 9, M7): an open sample, and a
#: spot check right after capture or of a re-captured record
WORK = ("qc_sample", "capture", "rework")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _rt(request: Request):
    return request.app.state.rt


def _by(request: Request) -> str:
    return request.state.staff.staff_no


def _redirect(path: str, msg: str) -> Redirect:
    return Redirect(path + ("&" if "?" in path else "?") + "msg=" + quote(msg))


@get("/qc/pages/{page_id:int}/image", opt=QC)
@in_thread
def page_image(request: Request, page_id: FromPath[int],
               size: FromQuery[str] = "medium") -> Response:
    """A page's processed image for an inspector (audited)."""
    rt = _rt(request)
    if size not in PREVIEW_SIZES:
        raise ValidationException("size 无效")
    with rt.sessions() as s, s.begin():
        p = s.get(Page, page_id)
        if p is None or not p.image_sha256:
            raise NotFoundException("页面不存在")
        adm = s.get(Admission, p.admission_id)
        away = outside_work(s, rt, request, adm, page_id, WORK, audit_action="qc.page.view",
                            size=size)
        if away is not None:
            return away
        audit.record(s, rt, "qc.page.view", actor=actor(request), mrn=adm.patient.mrn,
                     admission_no=adm.admission_no, detail={"page_id": page_id, "size": size})
        sha = p.image_sha256
    return preview_response(rt.store.get(sha), size)


# --------------------------------------------------------------------------------------------
# Batches and samples
# --------------------------------------------------------------------------------------------


def _home(request: Request, status_code: int = 200, error: str | None = None,
          confirm: dict | None = None) -> Any:
    rt = _rt(request)
    with rt.sessions() as s:
        batches = [b for group in rt.pm.hook.capture_batches(rt=rt, session=s) for b in group or []]
        samples = {x.batch_id: x for x in s.scalars(select(QcSample))}
        rows = []
        for b in batches:
            smp = samples.get(b.id)
            rep = sp.report(s, smp, rt) if smp else None
            rows.append({"b": b, "sample": smp, "acceptance": rep.acceptance if rep else None,
                         "accepted": rep.accepted if rep else False,
                         "passed": rep.passed if rep else 0})
        spots = s.execute(select(QcInspection, Admission.admission_no).join(
            Admission, Admission.id == QcInspection.admission_id).where(
            QcInspection.kind == "spot").order_by(QcInspection.id.desc()).limit(30)).all()
    return page(request, "qc/home.html", status_code=status_code, rows=rows, spots=spots,
                error=error, msg=request.query_params.get("msg"), confirm=confirm,
                rate=rt.settings(QcSettings).sample_rate)


@get("/qc", opt=QC)
@in_thread
def home(request: Request) -> Any:
    return _home(request)


@post("/qc/batches/{batch_id:int}/sample", opt=QC)
@in_thread
def draw(request: Request, batch_id: FromPath[int], data: Form) -> Any:
    rt = _rt(request)
    confirmed = str(data.get("confirm_unfinished") or "") == "1"
    try:
        with rt.sessions() as s, s.begin():
            smp = sp.draw_sample(s, rt, batch_id, by=_by(request), actor=actor(request),
                                 confirm_unfinished=confirmed)
            msg = f"已从 {smp.population} 份已完成病案中随机抽取 {smp.size} 份（随机种子 {smp.seed}）"
    except sp.NeedsConfirmation as exc:
        # an unfinished batch: say what the sample leaves out and ask before drawing
        return _home(request, 409, None, confirm={"batch_id": batch_id, "message": str(exc),
                                                  "excluded": exc.excluded})
    except sp.QcError as exc:
        return _home(request, 400, str(exc))
    return _redirect(f"/qc/batches/{batch_id}", msg)


@get("/qc/batches/{batch_id:int}", opt=QC)
@in_thread
def batch_report(request: Request, batch_id: FromPath[int]) -> Any:
    rt = _rt(request)
    with rt.sessions() as s:
        smp = s.scalar(select(QcSample).where(QcSample.batch_id == batch_id))
        if smp is None:
            raise NotFoundException("该批次尚未抽样")
        rep = sp.report(s, smp, rt)
        return page(request, "qc/batch.html", rep=rep, labels=sp.STATUS_LABELS,
                    result=sp.RESULT, msg=request.query_params.get("msg"))


@get("/qc/batches/{batch_id:int}/report.xlsx", opt=QC)
@in_thread
def batch_report_xlsx(request: Request, batch_id: FromPath[int]) -> Response:
    rt = _rt(request)
    with rt.sessions() as s, s.begin():
        smp = s.scalar(select(QcSample).where(QcSample.batch_id == batch_id))
        if smp is None:
            raise NotFoundException("该批次尚未抽样")
        body = sp.report_xlsx(sp.report(s, smp, rt), rt.tz)
        audit.record(s, rt, "qc.report.export", actor=actor(request),
                     detail={"batch_id": batch_id, "sample_id": smp.id})
        name = f"抽检验收报告_{smp.batch_name}_{dt.datetime.now(rt.tz):%Y%m%d}.xlsx"
    return Response(body, media_type=XLSX,
                    headers={"Content-Disposition": content_disposition(name)})


# --------------------------------------------------------------------------------------------
# Inspection
# --------------------------------------------------------------------------------------------


def _refused(request: Request, adm: Admission) -> Any | None:
    """A 403 page (audited) when ``adm`` is not in QC work now; None when it is."""
    rt = _rt(request)
    with rt.sessions() as s, s.begin():
        if in_work(s, rt, adm, WORK):
            return None
        audit.record(s, rt, "qc.inspect.denied", actor=actor(request), outcome="denied",
                     mrn=adm.patient.mrn, admission_no=adm.admission_no,
                     detail={"why": "not in work"})
    return page(request, "error.html", status_code=403, title="不在质检工作中",
                message=not_in_work_message(adm.admission_no, WORK))


def _inspect_page(request: Request, adm: Admission, *, kind: str, item=None,
                  status_code: int = 200, error: str | None = None, form: dict | None = None):
    rt = _rt(request)
    if (refused := _refused(request, adm)) is not None:
        return refused
    with rt.sessions() as s:
        pages = current_pages(s, adm.id)
        history = list(s.scalars(select(QcInspection).where(
            QcInspection.admission_id == adm.id).order_by(QcInspection.id)))
        patient, mrn = adm.patient.name, adm.patient.mrn  # loaded by the caller
        sample = s.get(QcSample, item.sample_id) if item is not None else None
    return page(request, "qc/inspect.html", status_code=status_code, adm=adm, patient=patient,
                mrn=mrn,
                pages=pages, kind=kind, item=item, sample=sample, history=history,
                reasons=rt.settings(QcSettings).reasons, error=error, form=form or {},
                labels=sp.STATUS_LABELS, result=sp.RESULT)


def _verdicts(data: dict) -> list[sp.Verdict]:
    out = []
    for key, value in data.items():
        if not key.startswith("v_") or not key[2:].isdigit():
            continue
        pid = int(key[2:])
        if value not in ("pass", "fail"):
            raise ValidationException(f"页面 {pid} 的结论无效")
        reason = str(data.get(f"t_{pid}") or "").strip() or str(data.get(f"r_{pid}") or "")
        out.append(sp.Verdict(pid, value == "pass", reason.strip() if value == "fail" else ""))
    return out


@get("/qc/items/{item_id:int}", opt=QC)
@in_thread
def item_form(request: Request, item_id: FromPath[int]) -> Any:
    rt = _rt(request)
    with rt.sessions() as s:
        item = s.get(QcSampleItem, item_id)
        if item is None:
            raise NotFoundException("样本不存在")
        adm = s.get(Admission, item.admission_id)
        _ = adm.patient
    return _inspect_page(request, adm, kind="sample", item=item)


@post("/qc/items/{item_id:int}", opt=QC)
@in_thread
def item_submit(request: Request, item_id: FromPath[int], data: Form) -> Any:
    rt = _rt(request)
    with rt.sessions() as s:
        item = s.get(QcSampleItem, item_id)
        if item is None:
            raise NotFoundException("样本不存在")
        adm = s.get(Admission, item.admission_id)
        _ = adm.patient
        smp = s.get(QcSample, item.sample_id)
    if (refused := _refused(request, adm)) is not None:
        return refused
    try:
        with rt.sessions() as s, s.begin():
            insp = sp.inspect(s, rt, adm.id, _verdicts(data), by=_by(request), kind="sample",
                              item_id=item_id, record_reason=str(data.get("record_reason") or ""),
                              note=str(data.get("note") or ""), actor=actor(request))
            msg = (f"{adm.admission_no} 第 {insp.round} 次检查：" +
                   ("合格" if insp.result == "pass" else
                    f"不合格（{insp.failed_pages} 页），已退回返工"))
    except sp.QcError as exc:
        return _inspect_page(request, adm, kind="sample", item=item, status_code=400,
                             error=str(exc), form=dict(data))
    return _redirect(f"/qc/batches/{smp.batch_id}", msg)


@get("/qc/spot", opt=QC)
@in_thread
def spot_form(request: Request, admission: FromQuery[str] = "") -> Any:
    rt = _rt(request)
    admission = admission.strip()
    if not admission:
        return _home(request)
    with rt.sessions() as s, s.begin():
        adm = s.scalar(select(Admission).where(
            (Admission.admission_no == admission) | (Admission.barcode == admission.upper())))
        if adm is None:
            audit.record(s, rt, "qc.lookup", actor=actor(request), outcome="failed",
                         detail={"q": admission[:64]})
            s.commit()
            return _home(request, 404, f"住院号或病案条码 {admission} 不存在")
        audit.record(s, rt, "qc.lookup", actor=actor(request), mrn=adm.patient.mrn,
                     admission_no=adm.admission_no, detail={"q": admission[:64]})
        _ = adm.patient
    return _inspect_page(request, adm, kind="spot")


@post("/qc/spot/{admission_no:str}", opt=QC)
@in_thread
def spot_submit(request: Request, admission_no: FromPath[str], data: Form) -> Any:
    rt = _rt(request)
    with rt.sessions() as s:
        adm = s.scalar(select(Admission).where(Admission.admission_no == admission_no))
        if adm is None:
            raise NotFoundException("病案不存在")
        _ = adm.patient
    if (refused := _refused(request, adm)) is not None:
        return refused
    try:
        with rt.sessions() as s, s.begin():
            insp = sp.inspect(s, rt, adm.id, _verdicts(data), by=_by(request), kind="spot",
                              record_reason=str(data.get("record_reason") or ""),
                              note=str(data.get("note") or ""), actor=actor(request))
            msg = (f"已记录 {adm.admission_no} 的现场抽查：" +
                   ("合格" if insp.result == "pass" else "不合格，已退回返工"))
    except sp.QcError as exc:
        return _inspect_page(request, adm, kind="spot", status_code=400, error=str(exc),
                             form=dict(data))
    return _redirect("/qc", msg)


@get("/qc/inspections/{inspection_id:int}", opt=QC)
@in_thread
def inspection_view(request: Request, inspection_id: FromPath[int]) -> Any:
    rt = _rt(request)
    with rt.sessions() as s:
        insp = s.get(QcInspection, inspection_id)
        if insp is None:
            raise NotFoundException("检查记录不存在")
        adm = s.get(Admission, insp.admission_id)
        checks = list(s.scalars(select(QcPageCheck).where(
            QcPageCheck.inspection_id == inspection_id).order_by(QcPageCheck.seq)))
        replaced = {c.page_id: s.get(Page, c.page_id).replaced_by_id for c in checks}
        return page(request, "qc/inspection.html", insp=insp, adm=adm, patient=adm.patient.name,
                    checks=checks, replaced=replaced, result=sp.RESULT)


ROUTES = [page_image, home, draw, batch_report, batch_report_xlsx, item_form, item_submit,
          spot_form, spot_submit, inspection_view]
