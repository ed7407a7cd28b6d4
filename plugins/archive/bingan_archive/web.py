"""Archive pages: overview with counts and exports (jobs), one page per admission with its
PDF versions and downloads.

- ``GET /archive`` (records.manage): digitized / incomplete / failing / not evaluated counts,
  the records that are not done with their reasons, export buttons and the export jobs.
- ``POST /archive/exports`` (archive.export): queue an ``archive.export`` task.
- ``GET /archive/jobs`` (records.manage): the jobs table (htmx polls it while a job runs).
- ``GET /archive/exports/{task_id}/download`` (archive.export): the zip of an offline export.
- ``GET /archive/records/{admission_no}`` (archive.download + the record's ``view`` right):
  status and PDF versions.
- ``POST /archive/records/{admission_no}/build`` (records.manage): queue a rebuild;
  ``GET .../build/{task_id}`` (htmx) is where it stands, polled until it is done.
- ``GET /archive/records/{admission_no}/pdf/{version}`` (archive.download + ``export``
  decided by ``core.permissions.decide``): the PDF, audited.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Annotated, Any

from litestar import MediaType, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException, ValidationException
from litestar.params import Body, FromPath
from litestar.plugins.htmx import HTMXTemplate
from litestar.response import File, Redirect
from sqlalchemy import select

from bingan.core import audit, permissions
from bingan.core import pages as core_pages
from bingan.core import tasks as core_tasks
from bingan.core.exporting import content_disposition
from bingan.core.models import Admission, Document, Task
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor
from bingan_archive import jobs, service
from bingan_archive.models import DIGITIZED, STATUS_LABELS, ArchiveRecord
from bingan_archive.settings import ArchiveSettings

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
LAYOUT_LABELS = {"folders": "文件夹结构", "offline": "离线浏览包", "bag": "BagIt 交换包"}
TASK_LABELS = {"queued": "排队中", "running": "进行中", "done": "已完成", "failed": "失败"}


def _jobs(s) -> list[Task]:
    return list(s.scalars(select(Task).where(Task.kind == jobs.EXPORT)
                          .order_by(Task.id.desc()).limit(20)))


def _jobs_ctx(s) -> dict[str, Any]:
    rows = _jobs(s)
    return {"jobs": rows, "layout_labels": LAYOUT_LABELS, "task_labels": TASK_LABELS,
            "active": any(t.status in ("queued", "running") for t in rows)}


@get("/archive", opt={"permission": "records.manage"})
@in_thread
def overview(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        counts = service.status_counts(s)
        problems = s.execute(
            select(ArchiveRecord, Admission).join(Admission, Admission.id == ArchiveRecord.admission_id)
            .where(ArchiveRecord.status != DIGITIZED)
            .order_by(ArchiveRecord.updated_at.desc()).limit(50)).all()
        problems = [(r, a, a.patient) for r, a in problems]
        ctx = _jobs_ctx(s)
    can_export = "archive.export" in request.state.staff.permissions
    return page(request, "archive/overview.html", counts=counts, problems=problems,
                labels=STATUS_LABELS, can_export=can_export, **ctx)


@get("/archive/jobs", opt={"permission": "records.manage"})
@in_thread
def jobs_table(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        ctx = _jobs_ctx(s)
    return HTMXTemplate(template_name="archive/_jobs.html", context=ctx, media_type=MediaType.HTML)


def _form_date(data: dict, key: str) -> str | None:
    v = str(data.get(key) or "").strip()
    if not v:
        return None
    try:
        return dt.date.fromisoformat(v).isoformat()
    except ValueError as exc:
        raise ValidationException(f"日期格式错误：{v}") from exc


@post("/archive/exports", opt={"permission": "archive.export"})
@in_thread
def start_export(request: Request, data: Form) -> Any:
    rt = request.app.state.rt
    layout = str(data.get("layout", ""))
    if layout not in LAYOUT_LABELS:
        raise ValidationException("导出方式只能是 folders、offline 或 bag")
    start, end = _form_date(data, "from"), _form_date(data, "to")
    if start and end and start > end:
        raise ValidationException("开始日期晚于结束日期")
    who = actor(request)
    payload = {"layout": layout, "from": start, "to": end,
               "zip": True,  # every export is offered as a download (a zip of its folder)
               "all_documents": bool(data.get("all_documents")),
               "staff_no": who.staff_no, "client_ip": who.client_ip,
               "computer_name": who.computer_name, "task_tag": secrets.token_hex(3)}
    with rt.sessions() as s, s.begin():
        core_tasks.enqueue(s, rt, jobs.EXPORT, payload, max_attempts=2)
        audit.record(s, rt, "archive.export.request", actor=who,
                     detail={k: payload[k] for k in ("layout", "from", "to", "zip",
                                                     "all_documents")})
    if request.headers.get("hx-request"):
        with rt.sessions() as s:
            ctx = _jobs_ctx(s)
        return HTMXTemplate(template_name="archive/_jobs.html", context=ctx,
                            media_type=MediaType.HTML)
    return Redirect("/archive")


@get("/archive/exports/{task_id:int}/download", opt={"permission": "archive.export"})
@in_thread
def download_export(request: Request, task_id: FromPath[int]) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        task = s.get(Task, task_id)
        if task is None or task.kind != jobs.EXPORT or task.status != "done" \
                or not (task.result or {}).get("zip_path"):
            raise NotFoundException("没有可下载的导出压缩包")
        path = Path(task.result["zip_path"])
        if not path.is_file():
            raise NotFoundException("导出压缩包已不在服务器上")
        audit.record(s, rt, "archive.export.download", actor=actor(request),
                     detail={"task": task_id, "file": path.name,
                             "records": task.result.get("records")})
    return File(path=path, filename=path.name, media_type="application/zip",
                content_disposition_type="attachment")


@get("/archive/exports/{task_id:int}/catalog.xlsx", opt={"permission": "archive.export"})
@in_thread
def download_catalog(request: Request, task_id: FromPath[int]) -> Any:
    """The catalog (目录清单.xlsx) of a finished export, as a download."""
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        task = s.get(Task, task_id)
        if task is None or task.kind != jobs.EXPORT or task.status != "done" \
                or not (task.result or {}).get("target"):
            raise NotFoundException("没有可下载的目录清单")
        name = f"{rt.settings(ArchiveSettings).catalog_name}.xlsx"
        path = Path(task.result["target"]) / name
        if not path.is_file():
            raise NotFoundException("目录清单已不在服务器上")
        audit.record(s, rt, "archive.export.download", actor=actor(request),
                     detail={"task": task_id, "file": name})
    return File(path=path, filename=name, content_disposition_type="attachment",
                media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _admission(s, admission_no: str) -> Admission:
    adm = s.scalar(select(Admission).where(Admission.admission_no == admission_no))
    if adm is None:
        raise NotFoundException(f"住院号 {admission_no} 不存在")
    return adm


@get("/archive/records/{admission_no:str}", opt={"permission": "archive.download"})
@in_thread
def record_page(request: Request, admission_no: FromPath[str]) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        adm = _admission(s, admission_no)
        d = permissions.decide(s, rt, request.state.staff, adm, "view", actor=actor(request))
        if not d.allowed:
            s.commit()
            raise PermissionDeniedException(d.reason)
        audit.record(s, rt, "archive.record.view", actor=actor(request), mrn=adm.patient.mrn,
                     admission_no=adm.admission_no)
        docs = list(s.scalars(select(Document).where(Document.admission_id == adm.id)
                              .order_by(Document.version.desc())))
        rec = s.get(ArchiveRecord, adm.id)
        n_pages = len(core_pages.current_pages(s, adm.id))
        patient = adm.patient
        can_build = "records.manage" in request.state.staff.permissions
        queued = built = None
        for key in ("queued", "built"):
            raw = request.query_params.get(key) or ""
            if can_build and raw.isdigit():
                try:
                    t = _build_task(s, adm, int(raw))
                except NotFoundException:
                    continue
                info = {"id": t.id, "status": t.status, "error": t.last_error,
                        **(t.result or {})}
                if key == "queued" and t.status != "done":
                    queued = info
                elif t.status == "done":
                    built = info
    return page(request, "archive/record.html", adm=adm, patient=patient, docs=docs, rec=rec,
                n_pages=n_pages, labels=STATUS_LABELS,
                discharge=service.local_date(adm.discharged_at, rt.tz),
                can_build=can_build, queued=queued, built=built, task_labels=TASK_LABELS)


@post("/archive/records/{admission_no:str}/build", opt={"permission": "records.manage"})
@in_thread
def record_build(request: Request, admission_no: FromPath[str]) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        adm = _admission(s, admission_no)
        ids = [p.id for p in core_pages.current_pages(s, adm.id)]
        task = jobs.enqueue_build(s, rt, adm.id,
                                  ["web", ids, dt.datetime.now(rt.tz).isoformat()])
        audit.record(s, rt, "archive.build.request", actor=actor(request),
                     mrn=adm.patient.mrn, admission_no=adm.admission_no)
        task_id = task.id
    return Redirect(f"/archive/records/{admission_no}?queued={task_id}")


def _build_task(s, adm: Admission, task_id: int) -> Task:
    task = s.get(Task, task_id)
    if task is None or task.kind != jobs.BUILD or \
            int((task.payload or {}).get("admission_id", 0)) != adm.id:
        raise NotFoundException(f"住院号 {adm.admission_no} 没有编号为 {task_id} 的生成任务")
    return task


@get("/archive/records/{admission_no:str}/build/{task_id:int}",
     opt={"permission": "records.manage"})
@in_thread
def record_build_status(request: Request, admission_no: FromPath[str],
                        task_id: FromPath[int]) -> Any:
    """htmx: where a rebuild stands (the record page polls it every 2 s while it is queued or
    running); once it is over the page reloads to show the new version and says what came of
    it."""
    rt = request.app.state.rt
    with rt.sessions() as s:
        adm = _admission(s, admission_no)
        task = _build_task(s, adm, task_id)
        status, error = task.status, task.last_error
    if status == "done":
        return Response("", status_code=200, headers={
            "HX-Redirect": f"/archive/records/{admission_no}?built={task_id}"})
    return HTMXTemplate(template_name="archive/_build.html", media_type=MediaType.HTML,
                        context={"adm_no": admission_no, "task_id": task_id, "status": status,
                                 "error": error, "task_labels": TASK_LABELS})


@get("/archive/records/{admission_no:str}/pdf/{version:int}",
     opt={"permission": "archive.download"})
@in_thread
def download_pdf(request: Request, admission_no: FromPath[str], version: FromPath[int]) -> Any:
    rt = request.app.state.rt
    who = actor(request)
    with rt.sessions() as s, s.begin():
        adm = _admission(s, admission_no)
        doc = s.scalar(select(Document).where(Document.admission_id == adm.id,
                                              Document.version == version))
        if doc is None:
            raise NotFoundException(f"住院号 {admission_no} 没有第 {version} 版 PDF")
        d = permissions.decide(s, rt, request.state.staff, adm, "export", actor=who)
        if not d.allowed:
            s.commit()
            raise PermissionDeniedException(d.reason)
        mrn = adm.patient.mrn
        audit.record(s, rt, "archive.download", actor=who, mrn=mrn,
                     admission_no=adm.admission_no,
                     detail={"version": version, "sha256": doc.blob_sha256, "size": doc.size})
        sha = doc.blob_sha256
    data = rt.store.get(sha)
    name = f"{mrn}_{adm.visit_no}_{admission_no}_v{version}.pdf"
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": content_disposition(name),
                             "Cache-Control": "no-store"})


@get("/archive/find", opt={"permission": "records.manage"})
async def find_record(request: Request) -> Redirect:
    from urllib.parse import quote

    no = str(request.query_params.get("admission_no") or "").strip()
    if not no:
        return Redirect("/archive")
    return Redirect("/archive/records/" + quote(no, safe=""))


ROUTES = [overview, find_record, jobs_table, start_export, download_export, download_catalog,
          record_page, record_build, record_build_status,
          download_pdf]
