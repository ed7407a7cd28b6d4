"""Pages of the deathcase plugin.

  GET  /deathcase?start=&end=&department=&stage=      worklist (离院方式 4 / 5)
  GET  /deathcase/cases/{no}                          one record: export order, charge list,
                                                      labels, versions
  POST /deathcase/cases/{no}/charges                  upload the charge list (xlsx / csv / PDF)
  POST /deathcase/cases/{no}/charges/his              take it from the HIS (charge_list hook)
  GET  /deathcase/cases/{no}/charges.pdf              the merged charge list (export decision)
  GET  /deathcase/cases/{no}/labels.pdf               record + case labels (marks them made)
  POST /deathcase/export                              export the ticked records as one batch
  GET  /deathcase/batches, /deathcase/batches/{no}    batches; one batch and its manifest
  GET  /deathcase/batches/{no}/zip                    the zip (export decision per record)
  GET  /deathcase/batches/{no}/manifest.xlsx|csv      the manifest alone
  POST /deathcase/batches/{no}/uploaded               register the upload
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

import anyio
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy import select

from bingan.core import audit, permissions
from bingan.core.exporting import content_disposition
from bingan.core.models import Department, Staff
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor

from bingan_deathcase import service
from bingan_deathcase.models import (
    CHARGE_SOURCES, STATES, DeathcaseBatch, DeathcaseCase, DeathcaseExport,
)
from bingan_deathcase.service import DeathcaseError
from bingan_deathcase.settings import DISCHARGE_WAYS, DeathcaseSettings

NO_STORE = {"Cache-Control": "no-store, private, max-age=0"}


def _local(t: dt.datetime | None, tz) -> str:
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M") if t else ""


def _who(s):
    """Staff numbers as people read them: 姓名（工号）, the system's own actors in words."""
    names = dict(s.execute(select(Staff.staff_no, Staff.name)).all())

    def who(no: str | None) -> str:
        return f"{names[no]}（{no}）" if no in names else audit.actor_label(no)

    return who


def _dates(start: str | None, end: str | None, tz) -> tuple[dt.date, dt.date]:
    today = dt.datetime.now(tz).date()
    try:
        e = dt.date.fromisoformat(end) if end else today
        # default: the last year (the work of a quarter or two is usually still open)
        b = dt.date.fromisoformat(start) if start else (e - dt.timedelta(days=365))
    except ValueError:
        raise DeathcaseError("日期格式应为 年-月-日") from None
    return b, e


@get("/deathcase", opt={"permission": "deathcase.manage"})
@in_thread
def worklist_page(request: Request, start: FromQuery[str | None] = None,
                  end: FromQuery[str | None] = None, department: FromQuery[str | None] = None,
                  stage: FromQuery[str | None] = None) -> Any:
    rt = request.app.state.rt
    error = None
    dept = (department or "").strip()[:32] or None
    st = (stage or "").strip() or None
    with rt.sessions() as s:
        depts = list(s.execute(select(Department.code, Department.name)
                               .where(Department.active.is_(True)).order_by(Department.code)))
        try:
            b, e = _dates(start, end, rt.tz)
            rows = service.worklist(s, rt, b, e, dept, st)
        except DeathcaseError as exc:
            b, e = _dates(None, None, rt.tz)
            rows, error = [], str(exc)
    counts = {k: 0 for k in STATES}
    for r in rows:
        counts[r.state] += 1
    return page(request, "deathcase/worklist.html", status_code=400 if error else 200,
                title="死亡/非医嘱离院病历", rows=rows, start=b, end=e, department=dept,
                state=st, states=STATES, depts=depts, error=error, counts=counts,
                cn=lambda t: _local(t, rt.tz), ways=DISCHARGE_WAYS)


def _case_context(s, rt, adm) -> dict[str, Any]:
    case = s.scalar(select(DeathcaseCase).where(DeathcaseCase.admission_id == adm.id))
    exports = list(s.scalars(select(DeathcaseExport).where(
        DeathcaseExport.admission_id == adm.id).order_by(DeathcaseExport.version.desc())))
    batches = {b.id: b for b in s.scalars(select(DeathcaseBatch).where(
        DeathcaseBatch.id.in_({x.batch_id for x in exports if x.batch_id})))} if exports else {}
    last = exports[0] if exports else None
    state = service.state_of(case, last, batches.get(last.batch_id) if last and last.batch_id
                             else None)
    order = service.record_order(s, rt, adm)
    info = service.case_info(s, rt, adm)
    return {"adm": adm, "info": info, "case": case, "state": state, "states": STATES,
            "order": order, "exports": [(x, batches.get(x.batch_id)) for x in exports],
            "sources": CHARGE_SOURCES, "his": service.his_available(rt),
            "next_name": service.name_for(rt, adm, (last.version if last else 0) + 1,
                                          {}),
            "max_mb": rt.settings(DeathcaseSettings).charge_max_bytes // 1024 // 1024}


@get("/deathcase/cases/{no:str}", opt={"permission": "deathcase.manage"})
@in_thread
def case_page(request: Request, no: FromPath[str], msg: FromQuery[str | None] = None) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        try:
            adm = service.get_admission(s, no)
        except DeathcaseError as exc:
            raise NotFoundException(str(exc)) from None
        ctx = _case_context(s, rt, adm)
        ctx["who"] = _who(s)
    return page(request, "deathcase/case.html", title=f"{ctx['info'].name} 病历上报",
                error=None, msg=msg, cn=lambda t: _local(t, rt.tz), **ctx)


def _case_error(request: Request, no: str, error: str, status: int = 400) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        adm = service.get_admission(s, no)
        ctx = _case_context(s, rt, adm)
        ctx["who"] = _who(s)
    return page(request, "deathcase/case.html", status_code=status,
                title=f"{ctx['info'].name} 病历上报", error=error, msg=None,
                cn=lambda t: _local(t, rt.tz), **ctx)


@post("/deathcase/cases/{no:str}/charges", opt={"permission": "deathcase.manage"},
      status_code=200)
async def upload_charges(request: Request, no: FromPath[str]) -> Any:
    rt = request.app.state.rt
    limit = rt.settings(DeathcaseSettings).charge_max_bytes
    form = await request.form()
    f = form.get("file")
    data, name = b"", ""
    if isinstance(f, UploadFile) and f.filename:
        data = await f.read(limit + 1)
        name = f.filename[:200]

    def work() -> Any:
        if not data:
            return _case_error(request, no, "请选择收费清单文件（Excel、CSV 或 PDF）")
        try:
            with rt.sessions() as s, s.begin():
                adm = service.get_admission(s, no)
                service.upload_charges(s, rt, adm, data, name,
                                       staff_no=request.state.staff.staff_no,
                                       actor=actor(request))
        except DeathcaseError as exc:
            return _case_error(request, no, f"收费清单未合并：{exc}")
        return Redirect(f"/deathcase/cases/{quote(no)}?msg=charges", status_code=303)

    return await anyio.to_thread.run_sync(work)


@post("/deathcase/cases/{no:str}/charges/his", opt={"permission": "deathcase.manage"},
      status_code=200)
@in_thread
def his_charges(request: Request, no: FromPath[str]) -> Any:
    rt = request.app.state.rt
    try:
        with rt.sessions() as s, s.begin():
            adm = service.get_admission(s, no)
            service.his_charges(s, rt, adm, staff_no=request.state.staff.staff_no,
                                actor=actor(request))
    except DeathcaseError as exc:
        return _case_error(request, no, f"收费清单未合并：{exc}")
    return Redirect(f"/deathcase/cases/{quote(no)}?msg=charges", status_code=303)


def _decide_export(s, rt, request: Request, adm) -> None:
    d = permissions.decide(s, rt, request.state.staff, adm, "export", actor=actor(request))
    if not d.allowed:
        raise PermissionDeniedException(f"无权导出此病案：{d.reason}")


@get("/deathcase/cases/{no:str}/charges.pdf", opt={"permission": "deathcase.manage"})
@in_thread
def charges_pdf(request: Request, no: FromPath[str]) -> Response:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        adm = service.get_admission(s, no)
        case = s.scalar(select(DeathcaseCase).where(DeathcaseCase.admission_id == adm.id))
        if case is None or not case.charge_sha256:
            raise NotFoundException("还没有合并收费清单")
        _decide_export(s, rt, request, adm)
        data = rt.store.get(case.charge_sha256)
    return Response(data, media_type="application/pdf", headers={
        **NO_STORE, "Content-Disposition": content_disposition(f"收费清单_{no}.pdf")})


@get("/deathcase/cases/{no:str}/labels.pdf", opt={"permission": "deathcase.manage"})
@in_thread
def labels_pdf(request: Request, no: FromPath[str]) -> Response:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        adm = service.get_admission(s, no)
        data = service.make_labels(s, rt, adm, staff_no=request.state.staff.staff_no,
                                   actor=actor(request))
    return Response(data, media_type="application/pdf", headers={
        **NO_STORE, "Content-Disposition": f"inline; filename*=UTF-8''{quote('标签_' + no)}.pdf"})


@post("/deathcase/export", opt={"permission": "deathcase.manage"}, status_code=200)
async def export_batch(request: Request) -> Any:
    rt = request.app.state.rt
    form = await request.form()
    nos = [str(v)[:32] for v in form.getall("adm")][:5000] if hasattr(form, "getall") else []
    back = str(form.get("back") or "/deathcase")[:500]
    if not back.startswith("/deathcase"):
        back = "/deathcase"

    def work() -> Any:
        try:
            with rt.sessions() as s, s.begin():
                batch = service.export(s, rt, request.state.staff, nos, actor=actor(request))
                no = batch.batch_no
        except PermissionError as exc:
            with rt.sessions() as s, s.begin():  # the refusals stay in the audit log
                for n in nos:
                    try:
                        adm = service.get_admission(s, n)
                    except DeathcaseError:
                        continue
                    permissions.decide(s, rt, request.state.staff, adm, "export",
                                       actor=actor(request))
            return page(request, "deathcase/refused.html", status_code=403, title="无法导出",
                        error=str(exc), back=back)
        except DeathcaseError as exc:
            return page(request, "deathcase/refused.html", status_code=400, title="无法导出",
                        error=str(exc), back=back)
        return Redirect(f"/deathcase/batches/{no}", status_code=303)

    return await anyio.to_thread.run_sync(work)


@get("/deathcase/batches", opt={"permission": "deathcase.manage"})
@in_thread
def batches_page(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        rows = list(s.scalars(select(DeathcaseBatch).order_by(DeathcaseBatch.id.desc())
                              .limit(200)))
        who = _who(s)
        s.expunge_all()
    return page(request, "deathcase/batches.html", title="导出批次", rows=rows, who=who,
                cn=lambda t: _local(t, rt.tz))


@get("/deathcase/batches/{no:str}", opt={"permission": "deathcase.manage"})
@in_thread
def batch_page(request: Request, no: FromPath[str]) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        try:
            b = service.get_batch(s, no)
        except DeathcaseError as exc:
            raise NotFoundException(str(exc)) from None
        items = [{"file": x.file_name, "version": x.version, "pages": x.pages, "size": x.size,
                  "sha": x.blob_sha256, "mrn": a.patient.mrn, "name": a.patient.name,
                  "no": a.admission_no, "way": DISCHARGE_WAYS.get(a.discharge_way or "", "")}
                 for x, a in service.batch_exports(s, b)]
        who = _who(s)
        s.expunge_all()
    return page(request, "deathcase/batch.html", title=f"导出批次 {no}", batch=b, items=items,
                who=who, cn=lambda t: _local(t, rt.tz))


def _batch_file(request: Request, no: str, which: str) -> Response:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        try:
            b = service.get_batch(s, no)
        except DeathcaseError as exc:
            raise NotFoundException(str(exc)) from None
        refused = service.may_download(s, rt, request.state.staff, b, actor=actor(request))
        if refused:
            audit.record(s, rt, "deathcase.download", actor=actor(request), outcome="denied",
                         detail={"batch": no, "what": which, "refused": refused[:20]})
        else:
            audit.record(s, rt, "deathcase.download", actor=actor(request),
                         detail={"batch": no, "what": which})
        sha = {"zip": b.zip_sha256, "xlsx": b.manifest_xlsx_sha256,
               "csv": b.manifest_csv_sha256}[which]
    if refused:
        raise PermissionDeniedException("无权导出：" + "；".join(refused[:5]))
    media = {"zip": "application/zip", "csv": "text/csv; charset=utf-8",
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}[which]
    name = f"{no}.zip" if which == "zip" else f"{no}_清单.{which}"
    return Response(rt.store.get(sha), media_type=media, headers={
        **NO_STORE, "Content-Disposition": content_disposition(name)})


@get("/deathcase/batches/{no:str}/zip", opt={"permission": "deathcase.manage"})
@in_thread
def batch_zip(request: Request, no: FromPath[str]) -> Response:
    return _batch_file(request, no, "zip")


@get("/deathcase/batches/{no:str}/manifest.xlsx", opt={"permission": "deathcase.manage"})
@in_thread
def batch_xlsx(request: Request, no: FromPath[str]) -> Response:
    return _batch_file(request, no, "xlsx")


@get("/deathcase/batches/{no:str}/manifest.csv", opt={"permission": "deathcase.manage"})
@in_thread
def batch_csv(request: Request, no: FromPath[str]) -> Response:
    return _batch_file(request, no, "csv")


@post("/deathcase/batches/{no:str}/uploaded", opt={"permission": "deathcase.manage"},
      status_code=200)
async def batch_uploaded(request: Request, no: FromPath[str]) -> Any:
    rt = request.app.state.rt
    form = await request.form()
    note = str(form.get("note") or "")[:500]

    def work() -> Any:
        try:
            with rt.sessions() as s, s.begin():
                b = service.get_batch(s, no)
                service.mark_uploaded(s, rt, b, staff_no=request.state.staff.staff_no,
                                      note=note, actor=actor(request))
        except DeathcaseError as exc:
            return page(request, "deathcase/refused.html", status_code=400, title="无法登记",
                        error=str(exc), back=f"/deathcase/batches/{no}")
        return Redirect(f"/deathcase/batches/{no}", status_code=303)

    return await anyio.to_thread.run_sync(work)


ROUTES = [worklist_page, case_page, upload_charges, his_charges, charges_pdf, labels_pdf,
          export_batch, batches_page, batch_page, batch_zip, batch_xlsx, batch_csv,
          batch_uploaded]
