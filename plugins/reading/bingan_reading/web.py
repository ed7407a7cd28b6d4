"""Pages and APIs of the reading plugin.

Record viewer (core owns the record page ``/records/{admission_no}``; this plugin adds the page
viewer to it through ``record_panels`` and the way to apply to its 403 through ``record_denied``):
  GET /records/{admission_no}/pages/{page_id}.jpg    watermarked page image (?w= width)
  GET /api/reading/records/{admission_no}/pages      the record's pages (JSON)
Every one asks ``core.permissions.decide(..., "view")`` and writes one audit event with the
decision (``record.view`` / ``record.page_view``), allowed or not, with IP and computer name.

Applications and rights:
  /reading/applications, /reading/apply, /reading/approvals, /reading/grants (one's own),
  /reading/grants/manage, /reading/rules, /reading/explain
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import time
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException, ValidationException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect
from PIL import Image
from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import joinedload, selectinload

from bingan.core import audit, permissions
from bingan.core.grants import GrantError, revoke_grant
from bingan.core.models import (
    Admission, Department, Grant, Page, Patient, Role, Signer, Staff, utcnow,
)
from bingan.core.pages import current_pages
from bingan.core.permissions import UnknownAction, registered_actions
from bingan.core.records import RecordError
from bingan.core.staff import StaffError, department_names
from bingan.core.storage import BlobMissing
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor
from bingan.hooks.types import AdmissionRef, RecordPanel

from bingan_reading import applications as apps
from bingan_reading.explain import explain, render_text
from bingan_reading.models import (
    EFFECTS, OWN_DEPARTMENT, STATUS_LABELS, SUBJECT_TYPES, ReadingApplication,
)
from bingan_reading.policy import RULE_PREFIX, describe_rule
from bingan_reading.settings import ReadingSettings
from bingan_reading.rules import RuleError, active_rules, add_rule, revoke_rule
from bingan_reading.watermark import PageImageError, renderer, watermark_text

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
PAGE_FILE = re.compile(r"^(\d{1,12})\.jpg$")
NO_STORE = {"Cache-Control": "no-store, private, max-age=0", "Pragma": "no-cache",
            "X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN"}
UNTYPED = "未分类"


def _first(v) -> str:
    if isinstance(v, list):
        v = v[0] if v else ""
    return str(v or "").strip()


def _list(v) -> list[str]:
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def _load_admission(s, admission_no: str) -> Admission | None:
    return s.scalar(select(Admission).where(Admission.admission_no == admission_no)
                    .options(joinedload(Admission.patient), selectinload(Admission.signers)))


def _decide_view(s, rt, request: Request, adm: Admission, event: str,
                 detail: dict[str, Any]) -> permissions.Decision:
    """Decide ``view`` and write one audit event ``event`` carrying the decision."""
    act = actor(request)
    d = permissions.decide(s, rt, request.state.staff, adm, "view", actor=act, record=False)
    _audit_view(s, rt, act, adm, d, event, detail)
    return d


def _audit_view(s, rt, act, adm: Admission | AdmissionRef, d: permissions.Decision, event: str,
                detail: dict[str, Any]) -> None:
    """The audit event ``event`` carrying the view decision ``d`` on ``adm``."""
    mrn = adm.mrn if isinstance(adm, AdmissionRef) else adm.patient.mrn
    audit.record(s, rt, event, actor=act, outcome="ok" if d.allowed else "denied",
                 mrn=mrn, admission_no=adm.admission_no,
                 detail={**detail, "reason": d.reason,
                         "votes": [f"{p}:{v.rule}:{'allow' if v.allow else 'deny'}"
                                   for p, v in d.votes]})


def _unknown(s, rt, request: Request, event: str, admission_no: str, why: str) -> None:
    audit.record(s, rt, event, actor=actor(request), outcome="failed",
                 admission_no=admission_no[:32], detail={"why": why})


# ============================================================================================
# The record and its viewer
# ============================================================================================


def _paper_link(request: Request, adm: Admission) -> Any:
    """Where this reader asks for the record's paper (``paper_record_request``), or None."""
    from bingan.core.records import to_ref

    rt = request.app.state.rt
    return rt.pm.hook.paper_record_request(admission=to_ref(adm), user=request.state.staff,
                                           rt=rt)


def _page_groups(pages: list[Page]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Pages grouped by page type, groups in the order their first page appears."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for i, p in enumerate(pages):
        groups.setdefault(p.page_type or UNTYPED, []).append(
            {"index": i, "id": p.id, "seq": p.seq, "type": p.page_type or UNTYPED})
    return list(groups.items())


def record_panels(record, session, rt) -> list[RecordPanel]:
    """The page viewer on core's record page (``record_panels`` hook): thumbnails grouped by
    page type, the watermarked page, keyboard paging; copy protection on the whole page.
    ``?page=<page id>`` opens it at that page, ``?hl=`` names the search term that led here
    (links from the search plugin's full-text hits)."""
    pages = current_pages(session, record.admission.id)
    page_list = [{"id": p.id, "seq": p.seq, "type": p.page_type or UNTYPED} for p in pages]
    want = record.query.get("page", "")
    start = next((i for i, p in enumerate(page_list) if str(p["id"]) == want), 0)
    return [RecordPanel(
        key="reading-viewer", title="病案页面阅览", template="reading/_viewer.html", order=10,
        data={"groups": _page_groups(pages), "page_count": len(page_list), "start": start,
              "pages_json": json.dumps(page_list, ensure_ascii=False),
              "hl": record.query.get("hl", "").strip()[:100],
              # not digitized: where the reader asks for the paper record instead
              "paper": None if pages else rt.pm.hook.paper_record_request(
                  admission=record.admission, user=record.staff, rt=rt)},
        styles=("/static/reading/viewer.css",), scripts=("/static/reading/viewer.js",),
        body_class="reading-protected")]


def record_denied(record, session, rt) -> list[RecordPanel]:
    """What a refused reader can do (``record_denied`` hook): apply, or see that an
    application is pending, or learn that an administrator's restriction blocks it (a deny
    rule is said in words, never its private note, and no application can lift it)."""
    adm = session.get(Admission, record.admission.id)
    pending = apps.pending_for_record(session, record.staff.id, adm)
    blocked = any(not v.allow and v.rule.startswith(RULE_PREFIX) for _, v in record.votes)
    return [RecordPanel(key="reading-apply", title="申请查阅", template="reading/_denied.html",
                        data={"blocked": blocked, "pending": pending.id if pending else None,
                              "admission_no": record.admission.admission_no,
                              "refusal": _apply_refusal(record.staff)})]


# The page and its record for an image request, in one statement built once (as policy.py's
# queries: building SQLAlchemy expressions per call costs more than running them).
_PAGE_Q = (select(Admission.id, Admission.admission_no, Admission.visit_no, Admission.patient_id,
                  Admission.admitted_at, Admission.discharged_at,
                  Admission.discharge_department, Admission.discharge_way, Admission.barcode,
                  Patient.mrn, Patient.name, Page.id, Page.seq, Page.image_sha256,
                  Page.replaced_by_id)
           .join(Patient, Patient.id == Admission.patient_id)
           .outerjoin(Page, and_(Page.admission_id == Admission.id,
                                 Page.id == bindparam("page")))
           .where(Admission.admission_no == bindparam("no")))
_SIGNERS_Q = select(Signer.staff_no).where(Signer.admission_id == bindparam("adm"))


def _page_lookup(s, admission_no: str, page_id: int) -> tuple[AdmissionRef, int, str] | None:
    """(the record, the page's seq, its image hash) for a current page of that record with an
    image; None for anything else (unknown record or page, another record's page, a replaced
    page, a page without an image)."""
    conn = s.connection()  # Core rows, without the ORM's per-statement work
    row = conn.execute(_PAGE_Q, {"no": admission_no, "page": page_id}).first()
    if row is None or row[11] is None or row[14] is not None or not row[13]:
        return None
    signers = frozenset(conn.scalars(_SIGNERS_Q, {"adm": row[0]}))
    ref = AdmissionRef(id=row[0], admission_no=row[1], visit_no=row[2], patient_id=row[3],
                       admitted_at=row[4], discharged_at=row[5], discharge_department=row[6],
                       discharge_way=row[7], barcode=row[8] or "", mrn=row[9],
                       patient_name=row[10], signer_staff_nos=signers)
    return ref, row[12], row[13]


@get("/records/{admission_no:str}/pages/{page_file:str}")
@in_thread
def page_image(request: Request, admission_no: FromPath[str], page_file: FromPath[str],
               w: FromQuery[int | None] = None) -> Response:
    """One page image with the reader's watermark burned in (never the stored bytes).

    The lookups and core's ``view`` decision run in a read-only session (on SQLite it takes no
    write lock, so page requests of all processes read at once); the decision's audit event is
    then written in its own short transaction, before any image byte is made. Nothing is
    cached across requests: a revoked grant or a new deny rule counts at the next page."""
    rt = request.app.state.rt
    m = PAGE_FILE.match(page_file)
    if not m:
        raise NotFoundException("页面不存在")
    if w is not None and not 16 <= w <= 20000:
        return Response("宽度参数无效", status_code=400, media_type="text/plain; charset=utf-8")
    page_id = int(m.group(1))
    r = renderer(request.app.state.rt.settings(ReadingSettings))
    staff = request.state.staff
    act = actor(request)
    tq = time.perf_counter()
    # At most ``page_workers`` requests of this process work at once (access check, decode,
    # watermark); the others wait in line. CPU-bound threads beyond the cores only take turns
    # on the GIL and stretch every request (bench/serving.py measured it).
    with r.slots:
        t0 = time.perf_counter()
        with rt.read_sessions() as s, s.begin():
            found = _page_lookup(s, admission_no, page_id)
            d = None if found is None else permissions.decide(
                s, rt, staff, found[0], "view", actor=act, record=False)
        with rt.sessions() as s, s.begin():
            if found is None or d is None:
                _unknown(s, rt, request, "record.page_view", admission_no,
                         f"unknown page {page_id}")
                return Response("页面不存在", status_code=404,
                                media_type="text/plain; charset=utf-8", headers=NO_STORE)
            ref, seq, sha = found
            _audit_view(s, rt, act, ref, d, "record.page_view",
                        {"page": page_id, "seq": seq, "w": w})
        if not d.allowed:
            return Response(f"无权查阅：{d.reason}", status_code=403,
                            media_type="text/plain; charset=utf-8", headers=NO_STORE)
        t1 = time.perf_counter()
        try:
            base = r.level(sha, w, lambda: rt.store.get(sha))
        except (BlobMissing, PageImageError) as exc:
            return Response(f"页面图像不可用：{exc}", status_code=502,
                            media_type="text/plain; charset=utf-8", headers=NO_STORE)
        t2 = time.perf_counter()
        text = watermark_text(staff.staff_no, staff.name, request.state.client_ip, utcnow(),
                              r.font.cjk, tz=rt.tz)
        body = r.render(base, text)
        t3 = time.perf_counter()
    # where the time went (browser dev tools and bench/serving.py read it)
    timing = (f"queue;dur={(t0 - tq) * 1000:.1f}, access;dur={(t1 - t0) * 1000:.1f}, "
              f"decode;dur={(t2 - t1) * 1000:.1f}, watermark;dur={(t3 - t2) * 1000:.1f}")
    return Response(body, media_type="image/jpeg", headers={**NO_STORE, "Server-Timing": timing})


class MarksOut(msgspec.Struct):
    page_id: int
    query: str
    boxes: list[list[float]]  # [left, top, right, bottom] as fractions of the page image
    indexed: bool  # False: the page has no positioned text (not yet OCR'd): nothing to mark


@get("/api/reading/records/{admission_no:str}/pages/{page_id:int}/marks")
@in_thread
def page_marks(request: Request, admission_no: FromPath[str], page_id: FromPath[int],
               q: FromQuery[str] = "") -> Any:
    """Where the full-text query ``q`` is on one page (the viewer draws a box over each
    piece): the same access decision as the image (audited as ``record.page_view``)."""
    from bingan.core.cjk_text import QueryError, parse_query
    from bingan.core.pages import page_ref

    rt = request.app.state.rt
    q = q.strip()
    try:
        if not parse_query(q):
            return Response({"detail": "请给出要标出的检索词"}, status_code=400)
    except QueryError as exc:
        return Response({"detail": str(exc)}, status_code=400)
    with rt.sessions() as s, s.begin():
        adm = _load_admission(s, admission_no)
        pg = s.get(Page, page_id) if adm is not None else None
        if adm is None or pg is None or pg.admission_id != adm.id or pg.replaced_by_id \
                or not pg.image_sha256:
            _unknown(s, rt, request, "record.page_view", admission_no, f"unknown page {page_id}")
            return Response({"detail": "页面不存在"}, status_code=404, headers=NO_STORE)
        d = _decide_view(s, rt, request, adm, "record.page_view",
                         {"page": pg.id, "seq": pg.seq, "marks": q[:100]})
        if not d.allowed:
            return Response({"detail": f"无权查阅：{d.reason}"}, status_code=403,
                            headers=NO_STORE)
        ref, size = page_ref(pg), (pg.width, pg.height)
    boxes = rt.pm.hook.find_text(page=ref, query=q, rt=rt)
    if boxes and not (size[0] and size[1]):
        try:
            with Image.open(io.BytesIO(rt.store.get(ref.image_sha256))) as im:
                size = im.size
        except (BlobMissing, OSError, SyntaxError, ValueError):
            boxes = []
    w, h = size
    out = [[round(x1 / w, 5), round(y1 / h, 5), round(x2 / w, 5), round(y2 / h, 5)]
           for x1, y1, x2, y2 in boxes or []] if w and h else []
    return Response(MarksOut(page_id, q, out, boxes is not None), headers=NO_STORE)


class PageOut(msgspec.Struct):
    id: int
    seq: int
    page_type: str | None
    url: str


class RecordPagesOut(msgspec.Struct):
    admission_no: str
    mrn: str
    pages: list[PageOut]


@get("/api/reading/records/{admission_no:str}/pages")
@in_thread
def api_pages(request: Request, admission_no: FromPath[str]) -> RecordPagesOut:
    """The record's current pages in order, with the URL of each watermarked image; needs the
    ``view`` right (audited as ``record.view``)."""
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        adm = _load_admission(s, admission_no)
        if adm is None:
            _unknown(s, rt, request, "record.view", admission_no, "unknown admission")
            return Response({"detail": f"住院号 {admission_no} 不存在"}, status_code=404)
        d = _decide_view(s, rt, request, adm, "record.view", {"via": "api"})
        if not d.allowed:
            return Response({"detail": d.reason}, status_code=403)
        pages = current_pages(s, adm.id)
        return RecordPagesOut(adm.admission_no, adm.patient.mrn, [
            PageOut(p.id, p.seq, p.page_type,
                    f"/records/{adm.admission_no}/pages/{p.id}.jpg") for p in pages])


# ============================================================================================
# Applications
# ============================================================================================


def _apply_refusal(staff) -> str | None:
    """Why this signed-in person may not apply to read records (三员分立, or a role without
    ``reading.apply``), or None."""
    duty = apps.duty_refusal(staff.roles)
    if duty:
        return duty
    if apps.APPLY_PERMISSION not in staff.permissions:
        return "您的角色没有提交查阅申请的权限，请联系信息科为您的角色开通"
    return None


def _may_apply(request: Request) -> None:
    refusal = _apply_refusal(request.state.staff)
    if refusal:
        raise PermissionDeniedException(refusal)


def _app_context(s, app: ReadingApplication, tz: dt.tzinfo) -> dict[str, Any]:
    applicant = s.get(Staff, app.applicant_id)
    names = {st.staff_no: st.name for st in s.scalars(
        select(Staff).where(Staff.staff_no.in_(list(app.approvers or []))))}
    return {
        "id": app.id, "status": app.status, "status_label": STATUS_LABELS.get(app.status),
        "applicant_no": applicant.staff_no, "applicant_name": applicant.name,
        "department": department_names(s).get(app.applicant_department or "",
                                              app.applicant_department),
        "reason": app.reason, "days": app.days,
        "created_at": app.created_at, "decided_by": app.decided_by,
        "decided_at": app.decided_at, "note": app.decision_note, "deadline": app.deadline,
        "approvers": [(n, names.get(n, "")) for n in app.approvers or []],
        "entries": apps.item_views(s, app, tz),
        # an application from before duty roles were refused: it cannot be approved
        "duty": apps.duty_applicant(app) if app.status == "pending" else None,
    }


@get("/reading/applications")
@in_thread
def my_applications(request: Request) -> Any:
    _may_apply(request)
    rt = request.app.state.rt
    with rt.sessions() as s:
        rows = s.scalars(select(ReadingApplication)
                         .where(ReadingApplication.applicant_id == request.state.staff.id)
                         .order_by(ReadingApplication.id.desc()).limit(200)).all()
        items = [_app_context(s, a, request.app.state.rt.tz) for a in rows]
    return page(request, "reading/applications.html", title="我的查阅申请", rows=items,
                now=utcnow())


def _apply_form(request: Request, *, error: str | None = None, status: int = 200,
                values: dict[str, Any] | None = None) -> Any:
    cfg = request.app.state.rt.settings(ReadingSettings)
    values = values or {}
    values.setdefault("days", cfg.default_days)
    return page(request, "reading/apply.html", status_code=status, title="新的查阅申请",
                error=error, v=values, max_days=cfg.max_days)


@get("/reading/apply")
@in_thread
def apply_form(request: Request, admission_no: FromQuery[str | None] = None,
               mrn: FromQuery[str | None] = None, patient_of: FromQuery[str | None] = None) -> Any:
    """The form; ``patient_of`` (from the 403 page): apply for every stay of that admission's
    patient the reader may not view, named by that admission number only (the reader may
    not see the patient)."""
    _may_apply(request)
    if patient_of:
        return _apply_form(request, values={"patient_of": patient_of.strip()[:64]})
    return _apply_form(request, values={"admission_nos": admission_no or "", "mrns": mrn or "",
                                        "lookup": mrn or ""})


def _mask(name: str) -> str:
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""


@get("/reading/apply/lookup", opt={"permission": "search.use"})
@in_thread
def apply_lookup(request: Request, lookup: FromQuery[str | None] = None) -> Any:
    """htmx: a patient's records to pick from by MRN (name masked; audited as a search).
    It lists a patient's stays, i.e. front-page index data: only for staff who may search
    the index (``search.use``); anyone else applies by admission number or MRN without a
    list."""
    rt = request.app.state.rt
    mrn = (lookup or "").strip()
    if not mrn:
        return page(request, "reading/_lookup.html", mrn="", found=False, name="", rows=[])
    with rt.sessions() as s, s.begin():
        p = s.scalar(select(Patient).where(Patient.mrn == mrn)) if mrn else None
        audit.record(s, rt, "reading.lookup", actor=actor(request),
                     outcome="ok" if p else "failed", mrn=mrn[:32] or None,
                     detail={"found": bool(p)})
        rows = []
        if p is not None:
            adms = list(s.scalars(select(Admission).where(Admission.patient_id == p.id)
                                  .order_by(Admission.visit_no)))
            pages = apps.page_counts(s, [a.id for a in adms])
            depts = department_names(s)
            for a in adms:
                code = a.discharge_department or a.admit_department
                n = pages.get(a.id, 0)
                rows.append({"admission_no": a.admission_no, "visit_no": a.visit_no,
                             "admitted_at": a.admitted_at, "discharged_at": a.discharged_at,
                             "department": depts.get(code or "", code), "pages": n,
                             "paper": None if n else _paper_link(request, a)})
        return page(request, "reading/_lookup.html", mrn=mrn, found=p is not None,
                    name=_mask(p.name) if p else "", rows=rows)


@post("/reading/apply")
@in_thread
def apply_submit(request: Request, data: Form) -> Any:
    _may_apply(request)
    rt = request.app.state.rt
    staff = request.state.staff
    adm_nos = apps.split_numbers(_list(data.get("admission_nos")) + _list(data.get("pick")))
    mrns = apps.split_numbers(_list(data.get("mrns")))
    patient_of = _first(data.get("patient_of")).strip()[:64]
    values = {"admission_nos": "\n".join(adm_nos), "mrns": "\n".join(mrns),
              "reason": _first(data.get("reason")), "days": _first(data.get("days")),
              "patient_of": patient_of}
    try:
        with rt.sessions() as s, s.begin():
            if patient_of:
                # the stays are chosen here, by the access decision, never shown on the form
                adm_nos, mrns = apps.unreadable_stays(s, rt, staff, patient_of), []
                if not adm_nos:
                    raise apps.ApplicationError("该患者的病案您都已可以查阅，或受管理员设置的查阅限制，"
                                                "无需（也无法）再申请")
            app = apps.apply(s, rt, staff.staff_no, admission_nos=adm_nos, mrns=mrns,
                             reason=values["reason"], days=values["days"] or 0,
                             actor=actor(request))
            app_id = app.id
    except apps.ApplicationError as exc:
        return _apply_form(request, error=str(exc), status=400, values=values)
    return Redirect(f"/reading/applications/{app_id}")


def _may_see(s, app: ReadingApplication, staff) -> bool:
    return (app.applicant_id == staff.id or staff.staff_no in (app.approvers or [])
            or "reading.rules" in staff.permissions)


def _detail(request: Request, s, app: ReadingApplication, *, error: str | None = None,
            status: int = 200) -> Any:
    staff = request.state.staff
    ctx = _app_context(s, app, request.app.state.rt.tz)
    can_decide = app.status == "pending" and apps.may_decide(app, staff.staff_no)
    # the approver is warned when an approval could not take effect (a deny rule in force)
    blocked = apps.blocked_application(s, app) if can_decide else []
    return page(request, "reading/application.html", status_code=status,
                title=f"查阅申请 #{app.id}", a=ctx, error=error, now=utcnow(),
                blocked=blocked, can_decide=can_decide,
                can_cancel=app.status == "pending" and app.applicant_id == staff.id)


@get("/reading/applications/{app_id:int}")
@in_thread
def application_detail(request: Request, app_id: FromPath[int]) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        app = s.get(ReadingApplication, app_id)
        if app is None:
            raise NotFoundException(f"申请 {app_id} 不存在")
        if not _may_see(s, app, request.state.staff):
            raise PermissionDeniedException("只有申请人、审批人和管理员可以查看该申请")
        return _detail(request, s, app)


def _decision(request: Request, app_id: int, fn, **kw) -> Any:
    """Run approve/reject/cancel; answer the htmx row, or the detail page."""
    rt = request.app.state.rt
    staff = request.state.staff
    htmx = bool(request.headers.get("hx-request"))
    error = None
    try:
        with rt.sessions() as s, s.begin():
            fn(s, rt, app_id, staff.staff_no, actor=actor(request), **kw)
    except apps.NotAllowed as exc:
        raise PermissionDeniedException(str(exc)) from exc
    except (apps.ApplicationError, GrantError) as exc:
        error = str(exc)
    with rt.sessions() as s:
        app = s.get(ReadingApplication, app_id)
        if app is None:
            raise NotFoundException(f"申请 {app_id} 不存在")
        if htmx:
            return page(request, "reading/_approval_row.html", a=_app_context(s, app, request.app.state.rt.tz),
                        error=error, now=utcnow())
        if error:
            return _detail(request, s, app, error=error, status=400)
    return Redirect(f"/reading/applications/{app_id}")


@post("/reading/applications/{app_id:int}/approve")
@in_thread
def application_approve(request: Request, app_id: FromPath[int], data: Form) -> Any:
    return _decision(request, app_id, apps.approve, days=_first(data.get("days")) or None)


@post("/reading/applications/{app_id:int}/reject")
@in_thread
def application_reject(request: Request, app_id: FromPath[int], data: Form) -> Any:
    return _decision(request, app_id, apps.reject, note=_first(data.get("note")))


@post("/reading/applications/{app_id:int}/cancel")
@in_thread
def application_cancel(request: Request, app_id: FromPath[int]) -> Any:
    return _decision(request, app_id, apps.cancel)


@get("/reading/approvals")
@in_thread
def approvals(request: Request) -> Any:
    """Applications waiting for this staff member's decision, and the ones they decided."""
    rt = request.app.state.rt
    staff = request.state.staff
    with rt.sessions() as s:
        pending = [a for a in s.scalars(select(ReadingApplication)
                                        .where(ReadingApplication.status == "pending")
                                        .order_by(ReadingApplication.id))
                   if apps.may_decide(a, staff.staff_no)]
        decided = s.scalars(select(ReadingApplication)
                            .where(ReadingApplication.decided_by == staff.staff_no)
                            .order_by(ReadingApplication.decided_at.desc()).limit(50)).all()
        return page(request, "reading/approvals.html", title="待审批的查阅申请",
                    pending=[_app_context(s, a, request.app.state.rt.tz) for a in pending],
                    decided=[_app_context(s, a, request.app.state.rt.tz) for a in decided], now=utcnow())


# ============================================================================================
# Grants, rules, explain (administrators)
# ============================================================================================


def _grant_rows(s, where) -> list[dict[str, Any]]:
    now = utcnow()
    out = []
    for g in s.scalars(select(Grant).where(*where).order_by(Grant.deadline.desc()).limit(500)):
        st = s.get(Staff, g.staff_id)
        if g.admission_id:
            adm = s.get(Admission, g.admission_id)
            target, href = f"住院号 {adm.admission_no}", f"/records/{adm.admission_no}"
        else:
            p = s.get(Patient, g.patient_id)
            target, href = f"病案号 {p.mrn} 全部病案", None
        status = ("已撤销" if g.revoked_at else "已到期" if g.deadline <= now
                  else "未生效" if g.starts_at and g.starts_at > now else "有效")
        out.append({"id": g.id, "staff_no": st.staff_no, "staff_name": st.name,
                    "target": target, "href": href, "actions": g.actions, "deadline": g.deadline,
                    "status": status, "reason": g.reason or "", "source": g.source,
                    "granted_by": g.granted_by})
    return out


@get("/reading/grants")
@in_thread
def grants_page(request: Request) -> Any:
    """The signed-in person's own grants (from approved applications or given by hand)."""
    _may_apply(request)
    rt = request.app.state.rt
    staff = request.state.staff
    with rt.sessions() as s:
        mine = _grant_rows(s, [Grant.staff_id == staff.id])
    return page(request, "reading/grants.html", title="我的查阅授权", mine=mine,
                manage="reading.rules" in staff.permissions)


@get("/reading/grants/manage", opt={"permission": "reading.rules"})
@in_thread
def grants_manage(request: Request, show: FromQuery[str | None] = None) -> Any:
    """Everyone's grants, live ones first; revoke with a reason (administrators)."""
    rt = request.app.state.rt
    with rt.sessions() as s:
        where = [] if show == "all" else [Grant.revoked_at.is_(None), Grant.deadline > utcnow()]
        everyone = _grant_rows(s, where)
    return page(request, "reading/grants_manage.html", title="查阅授权管理",
                msg=request.query_params.get("msg"), everyone=everyone, show_all=show == "all")


@post("/reading/grants/{grant_id:int}/revoke", opt={"permission": "reading.rules"})
@in_thread
def grant_revoke(request: Request, grant_id: FromPath[int], data: Form) -> Any:
    """Revoke a grant with a reason, which its holder is told."""
    rt = request.app.state.rt
    reason = _first(data.get("reason")).strip()[:500]
    if len(reason) < 2:
        raise ValidationException("请填写撤销理由（会告知授权持有人）")
    try:
        with rt.sessions() as s, s.begin():
            g = s.get(Grant, grant_id)
            if g is None or g.revoked_at is not None:
                raise GrantError(f"授权 {grant_id} 不存在或已撤销")
            revoke_grant(s, rt, grant_id, actor=actor(request), reason=reason)
            st = s.get(Staff, g.staff_id)
            from bingan.core import notify

            notify.send(s, rt, st.staff_no, "查阅授权已被撤销",
                        f"授权 #{grant_id} 已被撤销。理由：{reason}", "/reading/grants")
            msg = f"已撤销 {st.name}（{st.staff_no}）的授权 #{grant_id}，并已通知本人"
    except GrantError as exc:
        raise NotFoundException(str(exc)) from exc
    return Redirect("/reading/grants/manage?msg=" + quote(msg))


def _rules_page(request: Request, s, *, error: str | None = None, status: int = 200,
                values: dict[str, Any] | None = None) -> Any:
    rt = request.app.state.rt
    rules = [{"r": r, "text": describe_rule(r)} for r in active_rules(s)]
    return page(request, "reading/rules.html", status_code=status, title="阅读权限管理",
                msg=request.query_params.get("msg"),
                rules=rules, error=error, v=values or {}, subject_types=SUBJECT_TYPES,
                effects=EFFECTS, actions=list(registered_actions(rt).values()),
                departments=s.scalars(select(Department).order_by(Department.code)).all(),
                roles=s.scalars(select(Role).order_by(Role.name)).all(), own=OWN_DEPARTMENT,
                cfg=request.app.state.rt.settings(ReadingSettings))


@get("/reading/rules", opt={"permission": "reading.rules"})
@in_thread
def rules_page(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        return _rules_page(request, s)


def _parse_until(text: str, tz: dt.tzinfo) -> dt.datetime | None:
    """A datetime-local value (hospital time, ``tz``) or a date (end of that day)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            d = dt.date.fromisoformat(text)
            return dt.datetime(d.year, d.month, d.day, 23, 59, 59, tzinfo=tz)
        return dt.datetime.fromisoformat(text).replace(tzinfo=tz)
    except ValueError:
        raise RuleError(f"无法识别的截止时间 {text!r}") from None


@post("/reading/rules", opt={"permission": "reading.rules"})
@in_thread
def rule_add(request: Request, data: Form) -> Any:
    rt = request.app.state.rt
    values = {k: _first(data.get(k)) for k in ("subject_type", "subject", "effect",
                                                 "record_scope", "until", "note")}
    values["actions"] = _list(data.get("actions"))
    try:
        with rt.sessions() as s, s.begin():
            add_rule(s, rt, subject_type=values["subject_type"], subject=values["subject"],
                     effect=values["effect"] or "allow", actions=values["actions"],
                     record_scope=values["record_scope"] or None,
                     until=_parse_until(values["until"], rt.tz), note=values["note"],
                     actor=actor(request))
    except RuleError as exc:
        with rt.sessions() as s:
            return _rules_page(request, s, error=str(exc), status=400, values=values)
    return Redirect("/reading/rules?msg=" + quote("规则已保存，立即生效"))


@post("/reading/rules/{rule_id:int}/revoke", opt={"permission": "reading.rules"})
@in_thread
def rule_revoke(request: Request, rule_id: FromPath[int]) -> Any:
    rt = request.app.state.rt
    try:
        with rt.sessions() as s, s.begin():
            rule = revoke_rule(s, rt, rule_id, actor=actor(request))
            msg = f"已撤销规则：{describe_rule(rule, s)}"
    except RuleError as exc:
        raise NotFoundException(str(exc)) from exc
    return Redirect("/reading/rules?msg=" + quote(msg))


@get("/reading/explain", opt={"permission": "reading.rules"})
@in_thread
def explain_page(request: Request, staff_no: FromQuery[str | None] = None,
                 admission_no: FromQuery[str | None] = None,
                 action: FromQuery[str] = "view") -> Any:
    """The web form of ``bingan access explain``."""
    rt = request.app.state.rt
    text = error = None
    if staff_no and admission_no:
        try:
            with rt.sessions() as s, s.begin():
                text = render_text(explain(s, rt, staff_no.strip(), admission_no.strip(),
                                           action), rt, words=True, session=s)
                audit.record(s, rt, "reading.explain", actor=actor(request),
                             admission_no=admission_no.strip()[:32],
                             detail={"staff_no": staff_no, "action": action})
        except (StaffError, RecordError, UnknownAction) as exc:
            error = str(exc)
    return page(request, "reading/explain.html", title="查阅权限判定说明", text=text,
                error=error, staff_no=staff_no or "", admission_no=admission_no or "",
                action=action, actions=list(registered_actions(rt).values()),
                status_code=400 if error else 200)


# ============================================================================================
# The paper record (when no warehouse plugin takes borrowing requests)
# ============================================================================================


def _paper_rows(s, where, limit: int = 200) -> list[dict[str, Any]]:
    from bingan_reading.models import PAPER_STATUS, PaperRequest

    depts = department_names(s)
    out = []
    for req, adm, pat, st in s.execute(
            select(PaperRequest, Admission, Patient, Staff)
            .join(Admission, Admission.id == PaperRequest.admission_id)
            .join(Patient, Patient.id == Admission.patient_id)
            .join(Staff, Staff.id == PaperRequest.applicant_id)
            .where(*where).order_by(PaperRequest.id.desc()).limit(limit)):
        code = adm.discharge_department or adm.admit_department
        out.append({"id": req.id, "status": req.status, "label": PAPER_STATUS[req.status],
                    "admission_no": adm.admission_no, "mrn": pat.mrn, "name": pat.name,
                    "department": depts.get(code or "", code or ""),
                    "discharged_at": adm.discharged_at, "reason": req.reason,
                    "created_at": req.created_at, "note": req.note,
                    "handled_by": req.handled_by, "handled_at": req.handled_at,
                    "applicant": f"{st.name}（{st.staff_no}）", "mine": st.id})
    return out


def _paper_page(request: Request, admission_no: str | None, *, error: str | None = None,
                status: int = 200, reason: str = "", done: str | None = None,
                elsewhere: bool = False) -> Any:
    from bingan_reading.models import PaperRequest

    rt = request.app.state.rt
    me = request.state.staff
    record = None
    with rt.sessions() as s:
        if admission_no:
            adm = _load_admission(s, admission_no)
            if adm is None:
                error, status = f"住院号 {admission_no} 不存在", 404
            else:
                code = adm.discharge_department or adm.admit_department
                record = {"admission_no": adm.admission_no, "mrn": adm.patient.mrn,
                          "name": _mask(adm.patient.name), "visit_no": adm.visit_no,
                          "discharged_at": adm.discharged_at,
                          "department": department_names(s).get(code or "", code or ""),
                          "pages": len(current_pages(s, adm.id))}
        mine = _paper_rows(s, [PaperRequest.applicant_id == me.id])
    return page(request, "reading/paper.html", status_code=status, title="调阅纸质病案",
                record=record, rows=mine, error=error, reason=reason, done=done,
                elsewhere=elsewhere)


def _may_ask(request: Request) -> None:
    from bingan_reading.paper import may_request

    if not may_request(request.state.staff):
        raise PermissionDeniedException("系统管理员、安全管理员和审计员不调阅病案（三员分立）")


@get("/reading/paper")
@in_thread
def paper_form(request: Request, admission_no: FromQuery[str | None] = None,
               done: FromQuery[str | None] = None) -> Any:
    """Ask the record room for a record's paper (the link beside records not digitized).
    When another plugin takes paper requests (the warehouse), a link here leads to its
    form: the record room has one queue."""
    _may_ask(request)
    admission_no = (admission_no or "").strip() or None
    elsewhere = _paper_elsewhere(request, admission_no)
    if elsewhere is not None:
        return elsewhere
    return _paper_page(request, admission_no, done=done)


ELSEWHERE = "调阅纸质病案由病案库房统一办理：请在病案页面或检索结果中点“申请调阅纸质病案”。"


def _paper_elsewhere(request: Request, admission_no: str | None) -> Any:
    """The other plugin's request form for this record (a redirect), a page saying where to
    ask, or None when this plugin takes paper requests itself."""
    from bingan.core.records import to_ref
    from bingan_reading.paper import handled_elsewhere

    rt = request.app.state.rt
    if not handled_elsewhere(rt):
        return None
    if admission_no:
        with rt.sessions() as s:
            adm = _load_admission(s, admission_no)
            ref = to_ref(adm) if adm is not None else None
        link = (rt.pm.hook.paper_record_request(admission=ref, user=request.state.staff, rt=rt)
                if ref is not None else None)
        if link is not None:
            return Redirect(link.href, status_code=303)
    return _paper_page(request, None, error=ELSEWHERE, status=409, elsewhere=True)


@post("/reading/paper")
@in_thread
def paper_submit(request: Request, data: Form) -> Any:
    from bingan_reading import paper

    _may_ask(request)
    rt = request.app.state.rt
    admission_no, reason = _first(data.get("admission_no")), _first(data.get("reason"))
    if paper.handled_elsewhere(rt):  # nothing goes into a second queue
        return _paper_page(request, None, error=ELSEWHERE, status=409, elsewhere=True)
    try:
        with rt.sessions() as s, s.begin():
            adm = _load_admission(s, admission_no)
            if adm is None:
                raise paper.PaperError(f"住院号 {admission_no} 不存在")
            me = s.get(Staff, request.state.staff.id)
            paper.request_paper(s, rt, me, adm, reason, actor=actor(request))
    except paper.PaperError as exc:
        return _paper_page(request, admission_no or None, error=str(exc), status=400,
                           reason=reason)
    return Redirect(f"/reading/paper?done={quote(admission_no)}")


@post("/reading/paper/{request_id:int}/cancel")
@in_thread
def paper_cancel(request: Request, request_id: FromPath[int]) -> Any:
    from bingan_reading import paper
    from bingan_reading.models import PaperRequest

    rt = request.app.state.rt
    try:
        with rt.sessions() as s, s.begin():
            req = s.get(PaperRequest, request_id)
            if req is None:
                raise NotFoundException("申请不存在")
            paper.cancel(s, rt, req, s.get(Staff, request.state.staff.id), actor=actor(request))
    except paper.PaperError as exc:
        return _paper_page(request, None, error=str(exc), status=400)
    return Redirect("/reading/paper?done=cancelled")


def _paper_queue(request: Request, *, error: str | None = None, status: int = 200,
                 msg: str | None = None) -> Any:
    from bingan_reading.models import PaperRequest

    rt = request.app.state.rt
    with rt.sessions() as s:
        waiting = _paper_rows(s, [PaperRequest.status == "open"], 500)
        handled = _paper_rows(s, [PaperRequest.status.in_(("sent", "refused"))], 50)
    from bingan_reading.paper import handled_elsewhere

    return page(request, "reading/paper_queue.html", status_code=status, title="纸质病案调阅",
                waiting=list(reversed(waiting)), handled=handled, error=error, msg=msg,
                elsewhere=handled_elsewhere(rt))


@get("/reading/paper/queue", opt={"permission": "reading.paper"})
@in_thread
def paper_queue(request: Request, msg: FromQuery[str | None] = None) -> Any:
    """The record room's list of paper requests, oldest first."""
    return _paper_queue(request, msg=msg)


@post("/reading/paper/{request_id:int}/decide", opt={"permission": "reading.paper"})
@in_thread
def paper_decide(request: Request, request_id: FromPath[int], data: Form) -> Any:
    from bingan_reading import paper
    from bingan_reading.models import PaperRequest

    rt = request.app.state.rt
    outcome, note = _first(data.get("outcome")), _first(data.get("note"))
    try:
        with rt.sessions() as s, s.begin():
            req = s.get(PaperRequest, request_id)
            if req is None:
                raise NotFoundException("申请不存在")
            paper.decide(s, rt, req, outcome, note, by=s.get(Staff, request.state.staff.id),
                         actor=actor(request))
    except paper.PaperError as exc:
        return _paper_queue(request, error=f"申请 #{request_id}：{exc}", status=400)
    said = "已送出" if outcome == "sent" else "已答复不能提供"
    return Redirect(f"/reading/paper/queue?msg={quote(f'申请 #{request_id} {said}，已通知申请人')}")


ROUTES = [page_image, page_marks, api_pages, my_applications, apply_form, apply_lookup,
          apply_submit, application_detail, application_approve, application_reject,
          application_cancel, approvals, grants_page, grants_manage, grant_revoke, rules_page, rule_add,
          rule_revoke, explain_page, paper_form, paper_submit, paper_cancel, paper_queue,
          paper_decide]

__all__ = ["ROUTES"]
