"""Pages: the record room's front-page import (upload, check with preview, import with
progress, Excel of the rejected rows) and the clerk's form for one admission."""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
from pathlib import Path
from typing import Any

from bingan.core import audit
from bingan.core.models import utcnow
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy import select

from bingan_admission_import.models import STATUS_LABELS, ImportJob
from bingan_admission_import.settings import ImportSettings

OPT = {"permission": "records.manage"}
_running: set[int] = set()
_lock = threading.Lock()


def _folder(rt) -> Path:
    d = rt.home / "imports"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def _safe_name(name: str) -> str:
    base = Path(name or "upload").name
    return re.sub(r"[^\w.\-\u4e00-\u9fff]", "_", base)[:120] or "upload"


@get("/admissions/import", opt=OPT)
@in_thread
def import_page(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        jobs = list(s.scalars(select(ImportJob).order_by(ImportJob.id.desc()).limit(20)))
        s.expunge_all()
    cfg = rt.settings(ImportSettings)
    return page(request, "admission_import/import.html", jobs=jobs, labels=STATUS_LABELS,
                max_mb=cfg.max_file_mb, max_rows=cfg.max_rows, error=None)


@post("/admissions/import", opt=OPT)
async def upload(request: Request) -> Any:
    """Receive the file (bounded while it streams in) and start checking it."""
    rt = request.app.state.rt
    cfg = rt.settings(ImportSettings)
    form = await request.form()
    up = form.get("file")
    if not isinstance(up, UploadFile) or not up.filename:
        raise ValidationException("请选择要导入的病案首页文件（.xlsx 或 .csv）")
    name = _safe_name(up.filename)
    if Path(name).suffix.lower() not in (".xlsx", ".csv"):
        raise ValidationException("只支持 .xlsx 和 .csv 文件")
    limit = cfg.max_file_mb * 1024 * 1024
    chunks, size = [], 0
    while True:
        chunk = await up.read(1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise ValidationException(f"文件超过上限 {cfg.max_file_mb} MB，请拆分后导入")
        chunks.append(chunk)
    body = b"".join(chunks)
    who = actor(request)
    import anyio

    job_id = await anyio.to_thread.run_sync(_create_job, rt, name, body, who.staff_no)
    _start(rt, job_id, "check", who)
    return Redirect(f"/admissions/import/{job_id}")


def _create_job(rt, name: str, body: bytes, by: str | None) -> int:
    with rt.sessions() as s, s.begin():
        job = ImportJob(file_name=name, stored_path="", status="checking", created_by=by)
        s.add(job)
        s.flush()
        folder = _folder(rt) / str(job.id)
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / ("upload" + Path(name).suffix.lower())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        job.stored_path = str(path)
        return job.id


def _start(rt, job_id: int, phase: str, who: audit.Actor) -> None:
    with _lock:
        if job_id in _running:
            return
        _running.add(job_id)
    threading.Thread(target=run_job, args=(rt, job_id, phase, who), daemon=True,
                     name=f"admission-import-{job_id}").start()


def run_job(rt, job_id: int, phase: str, who: audit.Actor) -> None:
    """Check (phase ``check``) or import (``run``) the job's file, keeping its progress."""
    from bingan_admission_import.reader import estimate_rows
    from bingan_admission_import.service import import_file

    try:
        with rt.sessions() as s, s.begin():
            job = s.get(ImportJob, job_id)
            path, name = Path(job.stored_path), job.file_name
            job.status = "checking" if phase == "check" else "running"
            job.total_estimate, job.done_rows = estimate_rows(path), 0

        def progress(done: int) -> None:
            with rt.sessions() as s2, s2.begin():
                s2.get(ImportJob, job_id).done_rows = done

        cfg = rt.settings(ImportSettings)
        report = import_file(rt, path, actor=who, dry_run=phase == "check", progress=progress,
                             file_name=name, preview_rows=cfg.preview_rows)
        rejected = path.with_name("rejected.xlsx")
        if report.rejected:
            rejected.write_bytes(report.rejected_xlsx())
            os.chmod(rejected, 0o600)
        elif rejected.exists():
            rejected.unlink()
        preview = [{"row": p["row"], "problems": [f"{c}：{r}" for c, r, _v in p["problems"]],
                    **(_preview(p["admission"], rt.tz) if p["admission"] else {})}
                   for p in report.preview]
        with rt.sessions() as s, s.begin():
            job = s.get(ImportJob, job_id)
            job.status = ("refused" if report.refused else
                          "checked" if phase == "check" else "done")
            job.summary, job.done_rows = report.summary(), report.total
            job.result = {"phase": phase, "total": report.total, "accepted": report.accepted,
                          "created": report.created, "updated": report.updated,
                          "unchanged": report.unchanged, "rejected": report.rejected_rows,
                          "lines": report.lines(200), "unknown": report.unknown_headers,
                          "preview": preview, "refused": report.refused}
            job.finished_at = utcnow()
    except Exception as exc:  # the page must show that it failed, not spin for ever
        with rt.sessions() as s, s.begin():
            job = s.get(ImportJob, job_id)
            job.status, job.summary = "failed", f"处理失败：{type(exc).__name__}: {exc}"[:500]
        raise
    finally:
        with _lock:
            _running.discard(job_id)


def _preview(a, tz: dt.tzinfo) -> dict[str, Any]:
    main = next((d for d in a.diagnoses if d.kind == "main"), None)
    return {"mrn": a.patient.mrn, "name": a.patient.name, "admission_no": a.admission_no,
            "visit_no": a.visit_no,
            "admitted": a.admitted_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
            if a.admitted_at else "",
            "discharged": a.discharged_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
            if a.discharged_at else "在院",
            "department": a.discharge_department or a.admit_department or "",
            "main_dx": f"{main.code} {main.name}" if main else ""}


def _job(rt, job_id: int) -> ImportJob:
    with rt.sessions() as s:
        job = s.get(ImportJob, job_id)
        if job is None:
            raise NotFoundException("导入任务不存在")
        s.expunge(job)
    if job.status in ("checking", "running"):
        with _lock:
            alive = job_id in _running
        if not alive:  # the server restarted while it ran: say so (re-running is safe)
            job.status, job.summary = "failed", "处理被中断（服务重启），请重新上传或重新导入"
    return job


@get("/admissions/import/{job_id:int}", opt=OPT)
@in_thread
def job_page(request: Request, job_id: FromPath[int]) -> Any:
    rt = request.app.state.rt
    return page(request, "admission_import/job.html", job=_job(rt, job_id),
                labels=STATUS_LABELS)


@get("/admissions/import/{job_id:int}/progress", opt=OPT)
@in_thread
def job_progress(request: Request, job_id: FromPath[int]) -> Any:
    rt = request.app.state.rt
    job = _job(rt, job_id)
    if job.status not in ("checking", "running"):
        # done: htmx replaces the whole page body with the result
        return Response("", status_code=200,
                        headers={"HX-Redirect": f"/admissions/import/{job_id}"})
    return page(request, "admission_import/_progress.html", job=job, labels=STATUS_LABELS)


@post("/admissions/import/{job_id:int}/run", opt=OPT)
@in_thread
def job_run(request: Request, job_id: FromPath[int]) -> Any:
    rt = request.app.state.rt
    job = _job(rt, job_id)
    if job.status != "checked" or not job.result.get("accepted"):
        raise ValidationException("该文件没有可导入的行，或已导入")
    with rt.sessions() as s, s.begin():
        s.get(ImportJob, job_id).status = "running"
    _start(rt, job_id, "run", actor(request))
    return Redirect(f"/admissions/import/{job_id}")


@get("/admissions/import/{job_id:int}/rejected.xlsx", opt=OPT)
@in_thread
def job_rejected(request: Request, job_id: FromPath[int]) -> Response:
    from urllib.parse import quote

    rt = request.app.state.rt
    job = _job(rt, job_id)
    path = Path(job.stored_path).with_name("rejected.xlsx")
    if not path.exists():
        raise NotFoundException("没有问题行")
    name = Path(job.file_name).stem + "_问题行.xlsx"
    return Response(path.read_bytes(), media_type=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store"})


@get("/admissions/import/template.xlsx", opt=OPT)
async def template(request: Request) -> Response:
    from urllib.parse import quote

    from bingan_admission_import.export import write_rows

    return Response(write_rows([]), media_type=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote('病案首页导入模板.xlsx')}"})


from bingan_admission_import.clerk import CLERK_ROUTES

ROUTES = [import_page, upload, job_page, job_progress, job_run, job_rejected, template,
          *CLERK_ROUTES]
