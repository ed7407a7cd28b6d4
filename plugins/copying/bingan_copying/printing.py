"""Making the copy and sending it out: through CUPS (``lp``) or as a download, each output
registered (the print register) and audited as a print with the client's IP and computer name
(M12). Reading the pages asks ``core.permissions.decide(..., "print")`` for every admission,
the same decision as every other path that shows record content."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core import audit, permissions
from bingan.core.models import Admission, Page, utcnow
from bingan.core.storage import BlobMissing
from bingan.hooks.types import StaffRef

from bingan_copying.models import CopyRequest, PrintJob
from bingan_copying.stamp import CopyPage, CopyPdfError, StampText, build_copy_pdf
from bingan.core.config import CoreSettings
from bingan_copying.settings import CopyingSettings

DOWNLOAD = "download"
JOB_ID = re.compile(r"request id is (\S+)")


class PrintRefused(ValueError):
    """The copy cannot be made now (not approved, no right, pages missing)."""


@dataclass(frozen=True)
class Output:
    pdf: bytes
    pages: int
    admissions: list[str]
    page_types: dict[str, int]


def printable(req: CopyRequest) -> None:
    if req.status in ("rejected", "cancelled"):
        raise PrintRefused(f"申请 {req.request_no} 已{'驳回' if req.status == 'rejected' else '作废'}")
    if req.site is not None and req.status not in ("approved", "printed"):
        raise PrintRefused(f"异地申请 {req.request_no} 尚未经病案室批准，不能打印")


def make_copy(session: Session, rt, req: CopyRequest, staff: StaffRef,
              act: audit.Actor) -> Output:
    """Decide ``print`` on each admission (audited), then build the stamped PDF."""
    printable(req)
    adm_ids = list(dict.fromkeys(it.admission_id for it in req.items))
    adms = {a.id: a for a in session.scalars(select(Admission).where(Admission.id.in_(adm_ids)))}
    for aid in adm_ids:
        d = permissions.decide(session, rt, staff, adms[aid], "print", actor=act)
        if not d.allowed:
            raise PrintRefused(f"无权打印住院号 {adms[aid].admission_no}：{d.reason}")
    pages = {p.id: p for p in session.scalars(select(Page).where(
        Page.id.in_([it.page_id for it in req.items])))}
    out: list[CopyPage] = []
    types: dict[str, int] = {}
    for it in req.items:
        p = pages[it.page_id]
        try:
            data = rt.store.get(p.image_sha256)
        except BlobMissing as exc:
            raise PrintRefused(f"第 {it.position} 页的图像文件缺失") from exc
        out.append(CopyPage(data, p.dpi, f"住院号 {adms[it.admission_id].admission_no} 第 {p.seq} 页"))
        types[it.page_type or "未分类"] = types.get(it.page_type or "未分类", 0) + 1
    applicant = req.applicant_name if not req.organization else f"{req.organization} {req.applicant_name}"
    text = StampText(hospital=rt.settings(CoreSettings).hospital_name, applicant=applicant,
                     request_no=req.request_no, date=utcnow().astimezone(rt.tz).date())
    try:
        pdf = build_copy_pdf(out, text, rt.settings(CopyingSettings).stamp)
    except CopyPdfError as exc:
        raise PrintRefused(str(exc)) from exc
    return Output(pdf, len(out), [adms[a].admission_no for a in adm_ids], types)


def printers(rt, site: str | None = None) -> list[tuple[str, str]]:
    """(queue, label) offered for a request of ``site`` (None: the central record room): the
    settings' printers standing there, else every CUPS destination (``lpstat -e``)."""
    st = rt.settings(CopyingSettings)
    if st.printers:
        return [(p.name, p.label or p.name) for p in st.printers if (p.site or None) == site]
    try:
        res = subprocess.run(["lpstat", "-e"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [(n, n) for n in res.stdout.split() if n]


def send_to_cups(rt, printer: str, pdf: bytes, copies: int, title: str) -> tuple[bool, str, str]:
    """``lp -d printer -n copies -t title -`` with the PDF on stdin: (ok, job id, message)."""
    st = rt.settings(CopyingSettings)
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,127}", printer):
        return False, "", f"打印机名称无效：{printer!r}"
    cmd = [st.lp_command, "-d", printer, "-n", str(copies), "-t", title, "-o", "fit-to-page",
           "--", "-"]
    try:
        res = subprocess.run(cmd, input=pdf, capture_output=True, timeout=st.lp_timeout_seconds,
                             env={**os.environ, "LANG": "C.UTF-8"})
    except FileNotFoundError:
        return False, "", f"找不到打印命令 {st.lp_command}（安装 cups-client）"
    except subprocess.TimeoutExpired:
        return False, "", f"打印命令超过 {st.lp_timeout_seconds} 秒没有响应"
    out = (res.stdout + res.stderr).decode("utf-8", "replace").strip()
    m = JOB_ID.search(out)
    if res.returncode != 0 or not m:
        return False, "", out[:500] or f"lp 退出码 {res.returncode}"
    return True, m.group(1), out[:500]


def _register(session: Session, rt, req: CopyRequest, staff: StaffRef, act: audit.Actor,
              printer: str, out: Output | None, ok: bool, cups_job: str, message: str,
              now: dt.datetime, pages: int) -> PrintJob:
    job = PrintJob(request_id=req.id, at=now, operator_no=staff.staff_no, printer=printer,
                   pages=pages, copies=req.copies, ok=ok, result=message[:2000],
                   cups_job=cups_job or None,
                   pdf_sha256=hashlib.sha256(out.pdf).hexdigest() if out else None,
                   client_ip=act.client_ip, computer_name=act.computer_name,
                   content={"admissions": out.admissions if out else [],
                            "page_types": out.page_types if out else {}})
    session.add(job)
    if ok:
        req.status = "printed"
    session.flush()
    audit.record(session, rt, "copying.download" if printer == DOWNLOAD else "copying.print",
                 actor=act, outcome="ok" if ok else "failed", mrn=req.mrn,
                 admission_no=(out.admissions[0] if out and out.admissions else None), ts=now,
                 detail={"request": req.request_no, "printer": printer, "pages": pages,
                         "copies": req.copies, "purpose": req.purpose,
                         "applicant": req.applicant_name, "cups_job": cups_job,
                         "print_job": job.id, "result": message[:300],
                         "admissions": out.admissions if out else []})
    return job


def print_copy(rt, request_no: str, staff: StaffRef, act: audit.Actor, printer: str) -> PrintJob:
    """Make the copy and send it to ``printer``; the job is registered and audited whether
    CUPS took it or not. Raises PrintRefused (audited) when the copy may not be made."""
    with rt.sessions() as s, s.begin():
        req = s.scalar(select(CopyRequest).where(CopyRequest.request_no == request_no))
        if req is None:
            raise PrintRefused(f"申请 {request_no} 不存在")
        copies = req.copies
        refused: PrintRefused | None
        try:
            out = make_copy(s, rt, req, staff, act)
        except PrintRefused as exc:
            refused = exc
            out = None
        else:
            refused = None
    if refused is not None:
        with rt.sessions() as s, s.begin():
            req = s.scalar(select(CopyRequest).where(CopyRequest.request_no == request_no))
            audit.record(s, rt, "copying.print", actor=act, outcome="denied", mrn=req.mrn,
                         detail={"request": request_no, "printer": printer,
                                 "why": str(refused)})
        raise refused
    assert out is not None
    ok, job_id, message = send_to_cups(rt, printer, out.pdf, copies, f"copy {request_no}")
    with rt.sessions() as s, s.begin():
        req = s.scalar(select(CopyRequest).where(CopyRequest.request_no == request_no))
        return _register(s, rt, req, staff, act, printer, out, ok, job_id, message, utcnow(),
                         out.pages)


def download_copy(rt, request_no: str, staff: StaffRef, act: audit.Actor) -> tuple[bytes, PrintJob]:
    """The copy as a PDF to save or print locally; registered and audited like a print."""
    with rt.sessions() as s, s.begin():
        req = s.scalar(select(CopyRequest).where(CopyRequest.request_no == request_no))
        if req is None:
            raise PrintRefused(f"申请 {request_no} 不存在")
        try:
            out = make_copy(s, rt, req, staff, act)
        except PrintRefused as exc:
            refused = exc
        else:
            job = _register(s, rt, req, staff, act, DOWNLOAD, out, True, "", "已下载",
                            utcnow(), out.pages)
            return out.pdf, job
    with rt.sessions() as s, s.begin():
        audit.record(s, rt, "copying.download", actor=act, outcome="denied", mrn=req.mrn,
                     detail={"request": request_no, "why": str(refused)})
    raise refused
