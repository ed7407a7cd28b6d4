"""Pages of the copying plugin.

  GET  /copying                                   复印申请 (recent requests)
  GET  /copying/new?q=&adm=                       复印登记: find the record, then the counter form
  GET  /copying/remote/new?q=&adm=                异地复印申请: the same for a ward or branch
  POST /copying/requests                          register (multipart: fields + document images)
  GET  /copying/requests/{no}                     a request: pages, documents, prints, approval
  GET  /copying/requests/{no}/documents/{id}      an identity image (copying.identity only)
  POST /copying/requests/{no}/print               send the stamped copy to a CUPS queue
  GET  /copying/requests/{no}/copy.pdf            download the stamped copy (registered)
  POST /copying/requests/{no}/decide              approve / reject a remote request
  GET  /copying/queue                             remote requests and their status
  GET  /copying/stats, /copying/stats.xlsx, /api/copying/stats
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote

import anyio
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from bingan.core import audit
from bingan.core.models import Admission, utcnow
from bingan.core.staff import department_names
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor

from bingan_copying import identity, printing, service, stats
from bingan_copying.models import SOURCE_LABELS, STATUS_LABELS, CopyRequest, IdentityDocument
from bingan_copying.settings import DOCUMENT_KINDS
from bingan_copying.service import DocumentIn, RequestIn, RequestRefused, yuan
from bingan.core.config import CoreSettings
from bingan_copying.settings import CopyingSettings

NO_STORE = {"Cache-Control": "no-store, private, max-age=0", "Pragma": "no-cache"}
MAX_FIELD = 2000


def _staff(request: Request):
    return request.state.staff


def _may_register(staff) -> bool:
    return bool({"copying.counter", "copying.remote"} & staff.permissions)


def _must(staff, *perms: str) -> None:
    if not set(perms) & staff.permissions:
        raise PermissionDeniedException("无权使用此功能")


def _local(t: dt.datetime | None, tz: dt.tzinfo) -> str:
    """A stored time as the hospital's clock (``tz``) shows it."""
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M") if t else ""


def _common(rt) -> dict[str, Any]:
    st = rt.settings(CopyingSettings)
    tz = rt.tz
    return {"settings": st, "kinds": DOCUMENT_KINDS, "sources": SOURCE_LABELS,
            "status_labels": STATUS_LABELS, "cn": lambda t: _local(t, tz), "yuan": yuan,
            "applicant_label": lambda c: (st.applicant(c).label if st.applicant(c) else c),
            "purpose_label": lambda c: st.purposes.get(c, c)}


# ============================================================================================
# The counter: find, choose, register
# ============================================================================================


COUNTER_PAGE, REMOTE_PAGE = "/copying/new", "/copying/remote/new"


def _form_context(s, rt, request: Request, q: str, adm_nos: list[str], *,
                  remote: bool) -> dict[str, Any]:
    """The registration page in one of its two modes: the central room's counter
    (``/copying/new``) or a remote request from a ward or branch (``/copying/remote/new``,
    always for a site, approved by the record room)."""
    st = rt.settings(CopyingSettings)
    ctx: dict[str, Any] = {**_common(rt), "q": q, "patients": [], "admissions": [],
                           "groups": [], "earlier": [], "chosen": adm_nos,
                           "remote_only": remote, "base": REMOTE_PAGE if remote else COUNTER_PAGE,
                           "heading": "异地复印申请" if remote else "复印登记",
                           "depts": department_names(s)}
    if q:
        ctx["patients"] = service.find_patients(s, rt, q)
        audit.record(s, rt, "copying.lookup", actor=actor(request),
                     detail={"query": q[:64], "found": len(ctx["patients"])})
    if adm_nos:
        adms = list(s.scalars(select(Admission).where(Admission.admission_no.in_(adm_nos))
                              .options(joinedload(Admission.patient))))
        adms.sort(key=lambda a: adm_nos.index(a.admission_no))
        ctx["admissions"] = adms
        ctx["groups"] = service.page_groups(s, st, adms)
        ctx["earlier"] = service.earlier_copies(s, st, [a.id for a in adms])
        types = {g["type"]: st.prices.by_page_type.get(g["type"], st.prices.per_page)
                 for a in ctx["groups"] for g in a["groups"]}
        ctx["prices_json"] = json.dumps({"request": st.prices.request, "types": types},
                                        ensure_ascii=False)
    ctx["applicants_json"] = json.dumps(
        {a.code: a.documents for a in st.applicant_types}, ensure_ascii=False)
    return ctx


def _list(v) -> list[str]:
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def _registration_page(request: Request, q: str | None, *, remote: bool) -> Any:
    """Find a patient (MRN, admission no. or name), tick admissions, then fill the form."""
    rt = request.app.state.rt
    adm_nos = [a.strip()[:32] for a in request.query_params.getall("adm", []) if a.strip()][:20]
    with rt.sessions() as s, s.begin():
        ctx = _form_context(s, rt, request, (q or "").strip()[:64], adm_nos, remote=remote)
    return page(request, "copying/new.html", title=ctx["heading"], error=None, form={}, **ctx)


@get(COUNTER_PAGE)
@in_thread
def counter_page(request: Request, q: FromQuery[str | None] = None) -> Any:
    """复印登记 at the central room's counter; a ward or branch (``copying.remote`` only) is
    sent to its own page with the same query."""
    staff = _staff(request)
    _must(staff, "copying.counter", "copying.remote")
    if "copying.counter" not in staff.permissions:
        query = request.url.query
        return Redirect(REMOTE_PAGE + (f"?{query}" if query else ""), status_code=303)
    return _registration_page(request, q, remote=False)


@get(REMOTE_PAGE)
@in_thread
def remote_page(request: Request, q: FromQuery[str | None] = None) -> Any:
    """异地复印申请: registered for a site, printed there after the record room approves."""
    _must(_staff(request), "copying.remote")
    return _registration_page(request, q, remote=True)


async def _read_form(request: Request) -> tuple[dict[str, list[str]], dict[str, bytes]]:
    form = await request.form()
    fields: dict[str, list[str]] = {}
    files: dict[str, bytes] = {}
    limit = request.app.state.rt.settings(CopyingSettings).identity_max_bytes
    for k in form.keys():
        for v in form.getall(k):
            if isinstance(v, UploadFile):
                if v.filename:
                    data = await v.read(limit + 1)
                    if data:
                        files[k] = data
            else:
                fields.setdefault(k, []).append(str(v)[:MAX_FIELD])
    return fields, files


def _one(fields: dict[str, list[str]], k: str) -> str:
    v = fields.get(k) or [""]
    return v[0].strip()


def _request_in(fields: dict[str, list[str]], files: dict[str, bytes]) -> RequestIn:
    def integer(v: str, default: int) -> int:
        try:
            return int(v)
        except ValueError:
            return default

    docs = [DocumentIn(kind=k[4:], source=_one(fields, f"src_{k[4:]}") or "upload", data=d)
            for k, d in files.items() if k.startswith("doc_")]
    site = _one(fields, "site")
    return RequestIn(
        applicant_type=_one(fields, "applicant_type"),
        applicant_name=_one(fields, "applicant_name"),
        applicant_phone=_one(fields, "applicant_phone"),
        organization=_one(fields, "organization"),
        purpose=_one(fields, "purpose"), purpose_note=_one(fields, "purpose_note"),
        admission_nos=[a.strip()[:32] for a in fields.get("adm", []) if a.strip()][:20],
        page_ids=[integer(p, -1) for p in fields.get("page", [])],
        copies=integer(_one(fields, "copies") or "1", 0),
        consent=_one(fields, "consent") in ("1", "on", "yes"),
        documents=docs, site=site or None)


@post("/copying/requests", status_code=200)
async def register_request(request: Request) -> Any:
    staff = _staff(request)
    _must(staff, "copying.counter", "copying.remote")
    fields, files = await _read_form(request)
    return await anyio.to_thread.run_sync(lambda: _register(request, fields, files))


def _register(request: Request, fields, files) -> Any:
    rt = request.app.state.rt
    staff = _staff(request)
    req_in = _request_in(fields, files)
    remote = "copying.counter" not in staff.permissions or _one(fields, "mode") == "remote"
    if remote and req_in.site is None:
        req_in.site = ""  # a remote request must say where it is: refused below as unknown site
    act = actor(request)
    try:
        with rt.sessions() as s, s.begin():
            req = service.register(s, rt, staff, act, req_in)
            no = req.request_no
    except (RequestRefused, identity.IdentityError) as exc:
        err = exc if isinstance(exc, RequestRefused) else RequestRefused(str(exc))
        with rt.sessions() as s, s.begin():
            service.refuse_audit(s, rt, act, req_in, err)
            ctx = _form_context(s, rt, request, "", req_in.admission_nos, remote=remote)
        # the menu marks the form's own page, not the list under /copying
        return page(request, "copying/new.html", status_code=400, title=ctx["heading"],
                    path=ctx["base"],
                    error=str(err), form={k: v for k, v in fields.items()}, **ctx)
    return Redirect(f"/copying/requests/{no}", status_code=303)


@post("/copying/scan", status_code=200)
async def scan_document(request: Request) -> Response:
    """Scan one document on the counter's SANE scanner and hand the image to the browser
    (stored only when the request is registered, encrypted like the others)."""
    _must(_staff(request), "copying.counter", "copying.remote")
    rt = request.app.state.rt
    try:
        img = await anyio.to_thread.run_sync(lambda: identity.scan(rt.settings(CopyingSettings)))
    except identity.IdentityError as exc:
        return Response(str(exc), status_code=502, media_type="text/plain; charset=utf-8",
                        headers=NO_STORE)
    return Response(img.data, media_type=img.media_type, headers=NO_STORE)


# ============================================================================================
# A request
# ============================================================================================


def _load(s, request_no: str) -> CopyRequest:
    req = service.get_request(s, request_no[:32])
    if req is None:
        raise NotFoundException("复印申请不存在")
    return req


def _may_see(staff, req: CopyRequest) -> bool:
    return bool({"copying.counter", "copying.approve"} & staff.permissions) or \
        req.operator_no == staff.staff_no


@get("/copying/requests/{request_no:str}")
@in_thread
def request_page(request: Request, request_no: FromPath[str], msg: FromQuery[str | None] = None,
                 error: FromQuery[str | None] = None) -> Any:
    rt = request.app.state.rt
    staff = _staff(request)
    with rt.sessions() as s, s.begin():
        req = _load(s, request_no)
        if not _may_see(staff, req):
            raise PermissionDeniedException("无权查看该复印申请")
        st = rt.settings(CopyingSettings)
        adms = dict(s.execute(select(Admission.id, Admission.admission_no).where(
            Admission.id.in_({it.admission_id for it in req.items}))).all())
        by_type: list[tuple[str, str, int]] = []
        for it in req.items:
            key = (adms[it.admission_id], it.page_type or "未分类")
            if by_type and by_type[-1][:2] == key:
                by_type[-1] = (key[0], key[1], by_type[-1][2] + 1)
            else:
                by_type.append((key[0], key[1], 1))
        ctx = {
            **_common(rt), "req": req, "by_type": by_type,
            "documents": list(req.documents), "prints": list(req.prints),
            "earlier": [e for e in service.earlier_copies(s, st, list(adms))
                        if e.request_no != req.request_no and e.at <= req.created_at],
            "printers": printing.printers(rt, req.site),
            "may_identity": "copying.identity" in staff.permissions,
            "may_decide": "copying.approve" in staff.permissions and req.status == "pending",
            "may_print": ("copying.counter" in staff.permissions
                          or req.operator_no == staff.staff_no),
            "msg": msg, "error": error,
        }
    return page(request, "copying/request.html", title=f"复印申请 {request_no}", **ctx)


@get("/copying/requests/{request_no:str}/documents/{doc_id:int}")
@in_thread
def document_image(request: Request, request_no: FromPath[str], doc_id: FromPath[int]) -> Response:
    """An applicant's identity image, decrypted for holders of ``copying.identity`` only;
    every request for one, allowed or not, is audited."""
    rt = request.app.state.rt
    staff = _staff(request)
    act = actor(request)
    with rt.sessions() as s, s.begin():
        req = _load(s, request_no)
        doc = s.get(IdentityDocument, doc_id)
        if doc is None or doc.request_id != req.id:
            raise NotFoundException("证件影像不存在")
        allowed = "copying.identity" in staff.permissions
        audit.record(s, rt, "copying.identity_view", actor=act,
                     outcome="ok" if allowed and doc.blob_sha256 else "denied", mrn=req.mrn,
                     detail={"request": req.request_no, "document": doc.id, "kind": doc.kind,
                             **({} if allowed else {"why": "无 copying.identity 权限"})})
        if not allowed:
            return Response("无权查看证件影像", status_code=403,
                            media_type="text/plain; charset=utf-8", headers=NO_STORE)
        if not doc.blob_sha256:
            return Response("证件影像已按保存期限删除", status_code=410,
                            media_type="text/plain; charset=utf-8", headers=NO_STORE)
        sha, kid, media = doc.blob_sha256, doc.key_id, doc.media_type
    try:
        data = identity.read_plain(rt, rt.settings(CopyingSettings), sha, kid)
    except identity.IdentityError as exc:
        return Response(str(exc), status_code=502, media_type="text/plain; charset=utf-8",
                        headers=NO_STORE)
    return Response(data, media_type=media, headers=NO_STORE)


def _may_print(staff, req_operator: str) -> bool:
    return "copying.counter" in staff.permissions or req_operator == staff.staff_no


@post("/copying/requests/{request_no:str}/print", status_code=200)
async def print_request(request: Request, request_no: FromPath[str]) -> Any:
    form = await request.form()
    printer = str(form.get("printer") or "").strip()
    return await anyio.to_thread.run_sync(lambda: _print(request, request_no, printer))


def _print(request: Request, request_no: str, printer: str) -> Any:
    rt = request.app.state.rt
    staff = _staff(request)
    with rt.sessions() as s:
        req = _load(s, request_no)
        operator, site = req.operator_no, req.site
    if not _may_print(staff, operator):
        raise PermissionDeniedException("无权打印该复印申请")
    offered = {p for p, _ in printing.printers(rt, site)}
    base = f"/copying/requests/{quote(request_no)}"
    if printer not in offered:
        return Redirect(f"{base}?error={quote('请选择打印机')}", status_code=303)
    try:
        job = printing.print_copy(rt, request_no, staff, actor(request), printer)
    except printing.PrintRefused as exc:
        return Redirect(f"{base}?error={quote(str(exc))}", status_code=303)
    if not job.ok:
        return Redirect(f"{base}?error={quote('打印失败：' + job.result)}", status_code=303)
    return Redirect(f"{base}?msg={quote(f'已发送到打印机 {printer}（作业 {job.cups_job}）')}",
                    status_code=303)


@get("/copying/requests/{request_no:str}/copy.pdf")
@in_thread
def download(request: Request, request_no: FromPath[str]) -> Response:
    rt = request.app.state.rt
    staff = _staff(request)
    with rt.sessions() as s:
        operator = _load(s, request_no).operator_no
    if not _may_print(staff, operator):
        raise PermissionDeniedException("无权下载该复印件")
    try:
        pdf, _job = printing.download_copy(rt, request_no, staff, actor(request))
    except printing.PrintRefused as exc:
        return Response(str(exc), status_code=403, media_type="text/plain; charset=utf-8",
                        headers=NO_STORE)
    name = f"病历复印件_{request_no}.pdf"
    return Response(pdf, media_type="application/pdf", headers={
        **NO_STORE,
        "Content-Disposition": f"attachment; filename=\"copy_{request_no}.pdf\"; "
                               f"filename*=UTF-8''{quote(name)}"})


@post("/copying/requests/{request_no:str}/decide", status_code=200)
async def decide_request(request: Request, request_no: FromPath[str]) -> Any:
    form = await request.form()
    verdict = str(form.get("verdict") or "")
    note = str(form.get("note") or "")[:500]
    return await anyio.to_thread.run_sync(lambda: _decide(request, request_no, verdict, note))


def _decide(request: Request, request_no: str, verdict: str, note: str) -> Any:
    rt = request.app.state.rt
    staff = _staff(request)
    _must(staff, "copying.approve")
    base = f"/copying/requests/{quote(request_no)}"
    if verdict not in ("approve", "reject"):
        return Redirect(f"{base}?error={quote('请选择批准或驳回')}", status_code=303)
    try:
        with rt.sessions() as s, s.begin():
            req = _load(s, request_no)
            service.decide_remote(s, rt, req, staff, actor(request), verdict == "approve", note)
    except service.DecisionError as exc:
        return Redirect(f"{base}?error={quote(str(exc))}", status_code=303)
    word = "已批准" if verdict == "approve" else "已驳回"
    return Redirect(f"{base}?msg={quote(word)}", status_code=303)


# ============================================================================================
# Lists: recent requests, the remote queue
# ============================================================================================


def _rows(s, q) -> list[CopyRequest]:
    return list(s.scalars(q.order_by(CopyRequest.created_at.desc()).limit(200)))


@get("/copying", opt={"permission": "copying.counter"})
@in_thread
def list_page(request: Request, status: FromQuery[str | None] = None) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        q = select(CopyRequest)
        if status in STATUS_LABELS:
            q = q.where(CopyRequest.status == status)
        rows = _rows(s, q)
        ctx = {**_common(rt), "rows": rows, "status": status, "queue": False}
        return page(request, "copying/list.html", title="复印申请", **ctx)


@get("/copying/queue")
@in_thread
def queue_page(request: Request, status: FromQuery[str | None] = None) -> Any:
    """Remote requests: the record room sees every site's, a branch its own."""
    staff = _staff(request)
    _must(staff, "copying.approve", "copying.remote")
    rt = request.app.state.rt
    with rt.sessions() as s:
        q = select(CopyRequest).where(CopyRequest.site.is_not(None))
        if "copying.approve" not in staff.permissions:
            q = q.where(CopyRequest.operator_no == staff.staff_no)
        if status in STATUS_LABELS:
            q = q.where(CopyRequest.status == status)
        rows = _rows(s, q)
        ctx = {**_common(rt), "rows": rows, "status": status, "queue": True}
        return page(request, "copying/list.html", title="异地复印申请队列", **ctx)


# ============================================================================================
# Statistics
# ============================================================================================


def _range(start: str | None, end: str | None, tz: dt.tzinfo) -> tuple[dt.date, dt.date]:
    today = utcnow().astimezone(tz).date()
    try:
        e = dt.date.fromisoformat(end) if end else today
        b = dt.date.fromisoformat(start) if start else e.replace(day=1)
    except ValueError as exc:
        raise ValueError("日期格式应为 YYYY-MM-DD") from exc
    return b, e


def _stats(request: Request, start, end, group) -> tuple[dt.date, dt.date, str, list]:
    rt = request.app.state.rt
    b, e = _range(start, end, request.app.state.rt.tz)
    group = group if group in stats.GROUPS else "day"
    with rt.sessions() as s:
        rows = stats.compute(s, rt.settings(CopyingSettings), b, e, group, rt.tz)
    return b, e, group, rows


@get("/copying/stats", opt={"permission": "copying.stats"})
@in_thread
def stats_page(request: Request, start: FromQuery[str | None] = None,
               end: FromQuery[str | None] = None, group: FromQuery[str | None] = None) -> Any:
    try:
        b, e, g, rows = _stats(request, start, end, group)
        error = None
    except ValueError as exc:
        b, e, g, rows, error = *_range(None, None, request.app.state.rt.tz), "day", [], str(exc)
    return page(request, "copying/stats.html", status_code=400 if error else 200,
                title="复印统计", rows=rows, total=stats.total(rows), start=b, end=e,
                group=g, groups=stats.GROUPS, yuan=yuan, error=error)


@get("/api/copying/stats", opt={"permission": "copying.stats"})
@in_thread
def stats_api(request: Request, start: FromQuery[str | None] = None,
              end: FromQuery[str | None] = None, group: FromQuery[str | None] = None) -> Any:
    try:
        b, e, g, rows = _stats(request, start, end, group)
    except ValueError as exc:
        return Response({"error": str(exc)}, status_code=400)
    return {"start": b.isoformat(), "end": e.isoformat(), "group": g,
            "labels": [r.label for r in rows], "requests": [r.requests for r in rows],
            "copies": [r.copies for r in rows], "pages": [r.pages for r in rows],
            "fees": [r.fee_fen / 100 for r in rows]}


@get("/copying/stats.xlsx", opt={"permission": "copying.stats"})
@in_thread
def stats_xlsx(request: Request, start: FromQuery[str | None] = None,
               end: FromQuery[str | None] = None, group: FromQuery[str | None] = None) -> Response:
    rt = request.app.state.rt
    try:
        b, e, g, rows = _stats(request, start, end, group)
    except ValueError as exc:
        return Response(str(exc), status_code=400, media_type="text/plain; charset=utf-8")
    data = stats.workbook(rows, g, b, e, rt.settings(CoreSettings).hospital_name)
    with rt.sessions() as s, s.begin():
        audit.record(s, rt, "copying.stats_export", actor=actor(request),
                     detail={"start": b.isoformat(), "end": e.isoformat(), "group": g})
    name = f"复印统计_{b}_{e}.xlsx"
    return Response(data, media_type="application/vnd.openxmlformats-officedocument."
                    "spreadsheetml.sheet", headers={
                        "Content-Disposition": f"attachment; filename=\"copy_stats.xlsx\"; "
                                               f"filename*=UTF-8''{quote(name)}"})


ROUTES = [counter_page, remote_page, register_request, scan_document, request_page, document_image, print_request,
          download, decide_request, list_page, queue_page, stats_page, stats_api, stats_xlsx]
