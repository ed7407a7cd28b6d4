"""The counter's work: find the record, check the applicant's documents against the rules,
choose pages, price the copy, warn about earlier copies, register; approve remote requests.

Nothing is written when any check fails: every input is checked (documents decoded and
bounded, pages resolved, access decided) before the first row is added.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from bingan.core import audit, identifiers, notify, permissions
from bingan.core.grants import create_grant
from bingan.core.models import Admission, Page, Patient, utcnow
from bingan.core.pages import current_pages
from bingan.hooks.types import StaffRef

from bingan_copying import identity
from bingan_copying.models import CopyItem, CopyRequest, IdentityDocument
from bingan_copying.settings import DOCUMENT_KINDS, CopyingSettings

UNTYPED = "未分类"
SOURCES = ("webcam", "scanner", "upload")


class RequestRefused(ValueError):
    """The request cannot be registered; ``rule`` names the rule that refuses it."""

    def __init__(self, message: str, rule: str = "", missing: list[str] | None = None):
        super().__init__(message)
        self.rule = rule
        self.missing = missing or []


@dataclass(frozen=True)
class DocumentIn:
    kind: str
    source: str
    data: bytes


@dataclass
class RequestIn:
    """What the counter form delivers."""

    applicant_type: str
    applicant_name: str
    purpose: str
    admission_nos: list[str]
    page_ids: list[int]
    copies: int = 1
    consent: bool = False
    documents: list[DocumentIn] = field(default_factory=list)
    applicant_phone: str = ""
    organization: str = ""
    purpose_note: str = ""
    site: str | None = None  # a branch or ward: the request waits for the record room


# --------------------------------------------------------------------------------------------
# Finding the record and its pages
# --------------------------------------------------------------------------------------------


def find_patients(session: Session, rt, query: str, limit: int = 20) -> list[Patient]:
    """Patients by MRN, admission number or exact name (the counter's search box), the
    numbers as clerks type them (``zy…``, MRNs without leading zeros: core.identifiers)."""
    q = query.strip()
    if not q:
        return []
    mrns = identifiers.mrn_candidates_rt(rt, q)
    by_adm = select(Admission.patient_id).where(
        Admission.admission_no == identifiers.admission_no(q))
    return list(session.scalars(
        select(Patient).where(or_(Patient.mrn.in_(mrns), Patient.name == q,
                                  Patient.id.in_(by_adm)),
                              Patient.merged_into_id.is_(None))
        .options(joinedload(Patient.admissions)).order_by(Patient.mrn).limit(limit)).unique())


def copyable(settings: CopyingSettings, page_type: str | None) -> bool:
    return "*" in settings.copyable_types or (page_type or UNTYPED) in settings.copyable_types


def page_groups(session: Session, settings: CopyingSettings,
                admissions: list[Admission]) -> list[dict[str, Any]]:
    """Per admission, its copyable pages grouped by page type (record order), each group
    marked ``objective`` (preselected at the counter) or not."""
    out = []
    for adm in admissions:
        groups: dict[str, dict[str, Any]] = {}
        for p in current_pages(session, adm.id):
            if not p.image_sha256 or not copyable(settings, p.page_type):
                continue
            t = p.page_type or UNTYPED
            g = groups.setdefault(t, {"type": t, "objective": t in settings.objective_types,
                                      "pages": []})
            g["pages"].append({"id": p.id, "seq": p.seq})
        out.append({"admission": adm, "groups": list(groups.values())})
    return out


def fee_fen(settings: CopyingSettings, page_types: list[str | None], copies: int) -> int:
    """The fee in fen (分) from the price table: request fee + page prices x copies."""
    prices = settings.prices
    per_copy = sum(prices.by_page_type.get(t or UNTYPED, prices.per_page) for t in page_types)
    return round((prices.request + per_copy * copies) * 100)


def yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


# --------------------------------------------------------------------------------------------
# Earlier copies (the repeat warning)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EarlierCopy:
    request_no: str
    at: dt.datetime
    applicant: str
    applicant_type: str
    operator: str
    purpose: str
    status: str
    admissions: list[str]
    page_types: list[tuple[str, int]]  # (type, pages) in record order
    pages: int


def earlier_copies(session: Session, settings: CopyingSettings, admission_ids: list[int],
                   now: dt.datetime | None = None) -> list[EarlierCopy]:
    """Requests that copied any of these admissions before (not rejected or cancelled),
    newest first: who asked, who registered it, when, for what, which pages."""
    if not admission_ids:
        return []
    copied = select(CopyItem.request_id).where(CopyItem.admission_id.in_(admission_ids))
    q = (select(CopyRequest).where(CopyRequest.id.in_(copied),
                                   CopyRequest.status.notin_(("rejected", "cancelled")))
         .order_by(CopyRequest.created_at.desc(), CopyRequest.id.desc()))
    if settings.repeat_window_days:
        since = (now or utcnow()) - dt.timedelta(days=settings.repeat_window_days)
        q = q.where(CopyRequest.created_at >= since)
    out = []
    adm_nos: dict[int, str] = dict(session.execute(select(Admission.id, Admission.admission_no).where(
        Admission.id.in_(admission_ids))).all())
    for req in session.scalars(q):
        types: dict[str, int] = {}
        adms: list[str] = []
        for it in req.items:
            if it.admission_id in adm_nos:
                types[it.page_type or UNTYPED] = types.get(it.page_type or UNTYPED, 0) + 1
                no = adm_nos[it.admission_id]
                if no not in adms:
                    adms.append(no)
        applicant = settings.applicant(req.applicant_type)
        out.append(EarlierCopy(
            request_no=req.request_no, at=req.created_at,
            applicant=req.applicant_name,
            applicant_type=applicant.label if applicant else req.applicant_type,
            operator=f"{req.operator_name}（{req.operator_no}）",
            purpose=settings.purposes.get(req.purpose, req.purpose), status=req.status,
            admissions=adms, page_types=list(types.items()), pages=sum(types.values())))
    return out


# --------------------------------------------------------------------------------------------
# Registering
# --------------------------------------------------------------------------------------------


def check_documents(settings: CopyingSettings, applicant_type: str,
                    documents: list[DocumentIn]) -> None:
    """Every document the applicant type must show is there, else refuse naming the rule."""
    at = settings.applicant(applicant_type)
    if at is None:
        raise RequestRefused(f"未知的申请人类型 {applicant_type!r}")
    have = {d.kind for d in documents if d.data}
    missing = [k for k in at.documents if k not in have]
    if missing:
        names = "、".join(DOCUMENT_KINDS[k] for k in missing)
        raise RequestRefused(f"{at.label}申请复印，缺少：{names}。依据 {at.rule}。",
                             rule=at.rule, missing=missing)
    extra = [d.kind for d in documents if d.kind not in DOCUMENT_KINDS]
    if extra:
        raise RequestRefused(f"未知的证件类型 {extra[0]!r}")
    bad = [d.source for d in documents if d.source not in SOURCES]
    if bad:
        raise RequestRefused(f"未知的证件来源 {bad[0]!r}（摄像头、扫描仪或上传）")


def _request_no(settings: CopyingSettings, now: dt.datetime, row_id: int,
                tz: dt.tzinfo) -> str:
    """FY + the hospital's day (``tz``) + the row id: unique without a counter two registering
    counters could race for (FY20261208000123)."""
    return f"{settings.request_prefix}{now.astimezone(tz):%Y%m%d}{row_id:06d}"


def register(session: Session, rt, staff: StaffRef, act: audit.Actor,
             req_in: RequestIn, now: dt.datetime | None = None) -> CopyRequest:
    """Check everything, then write the request, its pages and its encrypted documents in
    the caller's transaction. Raises RequestRefused (nothing written) on any failure."""
    settings = rt.settings(CopyingSettings)
    now = now or utcnow()
    at = settings.applicant(req_in.applicant_type)
    if at is None:
        raise RequestRefused(f"未知的申请人类型 {req_in.applicant_type!r}")
    check_documents(settings, req_in.applicant_type, req_in.documents)
    name = req_in.applicant_name.strip()
    if not name or len(name) > 64:
        raise RequestRefused("请填写申请人姓名（不超过 64 字）")
    if at.organization and not req_in.organization.strip():
        raise RequestRefused(f"{at.label}须填写单位名称。依据 {at.rule}。", rule=at.rule)
    if req_in.purpose not in settings.purposes:
        raise RequestRefused(f"未知的复印用途 {req_in.purpose!r}")
    if not req_in.consent:
        raise RequestRefused("申请人未同意采集和保存证件影像（个人信息保护法第二十九条：处理敏感个人信息"
                             "应当取得个人的单独同意），不能登记")
    if not 1 <= req_in.copies <= settings.max_copies:
        raise RequestRefused(f"份数须在 1 到 {settings.max_copies} 之间")
    if req_in.site is not None and req_in.site not in settings.sites:
        raise RequestRefused(f"未知的院区/病区 {req_in.site!r}")
    if not req_in.admission_nos:
        raise RequestRefused("请选择至少一次住院")
    adms = list(session.scalars(select(Admission).where(
        Admission.admission_no.in_(req_in.admission_nos)).options(
        joinedload(Admission.patient))))
    found = {a.admission_no for a in adms}
    unknown = [n for n in req_in.admission_nos if n not in found]
    if unknown:
        raise RequestRefused(f"住院号 {unknown[0]} 不存在")
    if len({a.patient_id for a in adms}) != 1:
        raise RequestRefused("一次申请只能复印同一位患者的病案")
    adms.sort(key=lambda a: req_in.admission_nos.index(a.admission_no))
    if not req_in.page_ids:
        raise RequestRefused("请选择要复印的页面")
    if len(req_in.page_ids) > settings.max_pages or len(set(req_in.page_ids)) != len(
            req_in.page_ids):
        raise RequestRefused(f"页面选择无效（重复或超过 {settings.max_pages} 页）")
    by_id = {p.id: p for p in session.scalars(select(Page).where(
        Page.id.in_(req_in.page_ids)))}
    adm_ids = {a.id for a in adms}
    for pid in req_in.page_ids:
        p = by_id.get(pid)
        if p is None or p.admission_id not in adm_ids or p.replaced_by_id or not p.image_sha256:
            raise RequestRefused(f"页面 {pid} 不属于所选住院或已被替换")
        if not copyable(settings, p.page_type):
            raise RequestRefused(f"页面类型 {p.page_type or UNTYPED} 不在可复印范围内（copyable_types）")
    checked = [(d, identity.check_image(d.data, settings, DOCUMENT_KINDS[d.kind]))
               for d in req_in.documents if d.data]
    if req_in.site is None:
        # the counter prints itself: it must hold ``print`` on every record now
        for adm in adms:
            d = permissions.decide(session, rt, staff, adm, "print", actor=act, now=now)
            if not d.allowed:
                raise RequestRefused(f"无权复印住院号 {adm.admission_no}：{d.reason}")
    # write
    ordered = sorted((by_id[pid] for pid in req_in.page_ids),
                     key=lambda p: ([a.id for a in adms].index(p.admission_id), p.seq))
    patient = adms[0].patient
    repeats = earlier_copies(session, settings, [a.id for a in adms], now)
    repeat_ids = list(session.scalars(select(CopyRequest.id).where(
        CopyRequest.request_no.in_([r.request_no for r in repeats]))))
    req = CopyRequest(
        request_no=f"new-{secrets.token_hex(8)}",
        status="registered" if req_in.site is None else "pending",
        patient_id=patient.id, mrn=patient.mrn, applicant_type=at.code, applicant_name=name,
        applicant_phone=req_in.applicant_phone.strip()[:32] or None,
        organization=req_in.organization.strip()[:128] or None,
        purpose=req_in.purpose, purpose_note=req_in.purpose_note.strip()[:500],
        copies=req_in.copies, pages=len(ordered),
        fee_fen=fee_fen(settings, [p.page_type for p in ordered], req_in.copies),
        department=adms[0].discharge_department, consent_at=now,
        consent_text=settings.consent_text, operator_no=staff.staff_no,
        operator_name=staff.name, site=req_in.site, repeat_of=repeat_ids,
        identity_until=now + dt.timedelta(days=settings.identity_retention_days),
        created_at=now)
    for i, p in enumerate(ordered):
        req.items.append(CopyItem(admission_id=p.admission_id, page_id=p.id,
                                  page_type=p.page_type, position=i + 1))
    for d, img in checked:
        sha, kid = identity.store_encrypted(session, rt, settings, img)
        req.documents.append(IdentityDocument(
            kind=d.kind, source=d.source, media_type=img.media_type, size=len(img.data),
            width=img.width, height=img.height, key_id=kid, blob_sha256=sha, created_at=now))
    session.add(req)
    session.flush()
    req.request_no = _request_no(settings, now, req.id, rt.tz)
    session.flush()
    audit.record(session, rt, "copying.register", actor=act, mrn=patient.mrn,
                 admission_no=adms[0].admission_no, ts=now,
                 detail={"request": req.request_no, "admissions": [a.admission_no for a in adms],
                         "applicant_type": at.code, "purpose": req.purpose,
                         "pages": req.pages, "copies": req.copies, "fee": yuan(req.fee_fen),
                         "documents": [d.kind for d, _ in checked], "site": req.site,
                         "repeat_of": [r.request_no for r in repeats]})
    if req.site is not None:
        for approver in approvers(session):
            notify.send(session, rt, approver, "异地复印申请待审批",
                        f"{req.site} 登记的复印申请 {req.request_no}（病案号 {req.mrn}，"
                        f"{req.pages} 页 × {req.copies} 份）等待审批。",
                        href=f"/copying/requests/{req.request_no}")
    return req


def approvers(session: Session) -> list[str]:
    """Staff numbers of active staff holding ``copying.approve`` (the central record room)."""
    from bingan.core.models import Staff

    return [st.staff_no for st in session.scalars(
        select(Staff).where(Staff.active.is_(True)).order_by(Staff.staff_no))
        if any("copying.approve" in (r.permissions or []) for r in st.roles)]


def refuse_audit(session: Session, rt, act: audit.Actor, req_in: RequestIn,
                 err: RequestRefused) -> None:
    """The refusal in the audit log (its own transaction: nothing else was written)."""
    audit.record(session, rt, "copying.refused", actor=act, outcome="denied",
                 admission_no=(req_in.admission_nos[0][:32] if req_in.admission_nos else None),
                 detail={"applicant_type": req_in.applicant_type, "why": str(err),
                         "missing": err.missing, "site": req_in.site})


def get_request(session: Session, request_no: str) -> CopyRequest | None:
    return session.scalar(select(CopyRequest).where(CopyRequest.request_no == request_no))


class DecisionError(ValueError):
    """An approval that cannot be made (not pending, not an approver ...)."""


def decide_remote(session: Session, rt, req: CopyRequest, staff: StaffRef, act: audit.Actor,
                  approve: bool, note: str = "", now: dt.datetime | None = None) -> None:
    """The central record room approves or rejects a branch's request. Approval gives the
    registrant ``print`` on each admission until ``remote_grant_hours`` from now (a core
    grant: the print path asks ``decide`` like every other path)."""
    settings = rt.settings(CopyingSettings)
    now = now or utcnow()
    if req.status != "pending":
        raise DecisionError(f"申请 {req.request_no} 不是待审批状态（{req.status}）")
    if "copying.approve" not in staff.permissions:
        raise DecisionError("无审批权限（copying.approve）")
    if not approve and len(note.strip()) < 2:
        raise DecisionError("驳回须说明理由")
    req.status = "approved" if approve else "rejected"
    req.decided_by, req.decided_at, req.decision_note = staff.staff_no, now, note.strip()[:500]
    if approve:
        deadline = now + dt.timedelta(hours=settings.remote_grant_hours)
        adm_nos: dict[int, str] = dict(session.execute(select(Admission.id, Admission.admission_no).where(
            Admission.id.in_({it.admission_id for it in req.items}))).all())
        for no in sorted(adm_nos.values()):
            create_grant(session, rt, staff_no=req.operator_no, actions=["print"],
                         deadline=deadline, admission_no=no,
                         reason=f"异地复印申请 {req.request_no} 已批准", granted_by=act,
                         source="copying", now=now)
    audit.record(session, rt, "copying.approve" if approve else "copying.reject", actor=act,
                 mrn=req.mrn, ts=now, detail={"request": req.request_no, "site": req.site,
                                              "note": req.decision_note})
    notify.send(session, rt, req.operator_no,
                f"复印申请 {req.request_no} {'已批准' if approve else '已驳回'}",
                req.decision_note or "", href=f"/copying/requests/{req.request_no}")


# --------------------------------------------------------------------------------------------
# Online bookings (the booking plugin's ``booking_approved`` hook)
# --------------------------------------------------------------------------------------------

# the booking's photos as the counter's document kinds, per applicant
BOOKING_DOCUMENTS = {
    "self": {"holding_id": "patient_id"},
    "agent": {"holding_id": "agent_id", "patient_id": "patient_id",
              "relation": "agent_relation", "power_of_attorney": "power_of_attorney"},
}


def from_booking(session: Session, rt, booking: Any) -> str:
    """A copy request for a booking the record room approved online (paid, reviewed): the
    whole copyable record of the chosen stays, the booking's photos as the applicant's
    documents (encrypted like the counter's), registered under the approver. Returns the
    request number. Raises RequestRefused (nothing written) when a stay is unknown."""
    settings = rt.settings(CopyingSettings)
    adms = list(session.scalars(select(Admission).where(
        Admission.admission_no.in_(booking.admission_nos)).options(joinedload(Admission.patient))))
    if len(adms) != len(set(booking.admission_nos)) or len({a.patient_id for a in adms}) != 1:
        raise RequestRefused(f"网上预约 {booking.booking_no} 的住院记录不存在或不属于同一患者")
    adms.sort(key=lambda a: booking.admission_nos.index(a.admission_no))
    kinds = BOOKING_DOCUMENTS.get(booking.applicant_kind, {})
    checked = [(kinds[d.kind], identity.check_image(d.data, settings, d.label))
               for d in booking.documents if d.kind in kinds]
    pages = [p for a in adms for p in current_pages(session, a.id)
             if p.image_sha256 and copyable(settings, p.page_type)]
    now = booking.approved_at
    patient = adms[0].patient
    req = CopyRequest(
        request_no=f"new-{secrets.token_hex(8)}", status="registered", patient_id=patient.id,
        mrn=patient.mrn, applicant_type="patient" if booking.applicant_kind == "self" else "agent",
        applicant_name=booking.applicant_name[:64], applicant_phone=booking.phone[:32],
        purpose=booking.purpose if booking.purpose in settings.purposes else "other",
        purpose_note=f"网上预约 {booking.booking_no}（{booking.purpose_label}，"
                     f"{'快递' if booking.delivery == 'courier' else '自取'}）",
        copies=booking.copies, pages=len(pages), fee_fen=booking.fee_fen,
        department=adms[0].discharge_department, consent_at=now,
        consent_text=settings.consent_text, operator_no=booking.reviewed_by,
        operator_name=booking.reviewed_by_name,
        repeat_of=[], identity_until=now + dt.timedelta(days=settings.identity_retention_days),
        created_at=now)
    for i, p in enumerate(pages):
        req.items.append(CopyItem(admission_id=p.admission_id, page_id=p.id,
                                  page_type=p.page_type, position=i + 1))
    for kind, img in checked:
        sha, kid = identity.store_encrypted(session, rt, settings, img)
        req.documents.append(IdentityDocument(
            kind=kind, source="upload", media_type=img.media_type, size=len(img.data),
            width=img.width, height=img.height, key_id=kid, blob_sha256=sha, created_at=now))
    session.add(req)
    session.flush()
    req.request_no = _request_no(settings, now, req.id, rt.tz)
    session.flush()
    audit.record(session, rt, "copying.register", actor=audit.Actor(staff_no=booking.reviewed_by),
                 mrn=patient.mrn, admission_no=adms[0].admission_no, ts=now,
                 detail={"request": req.request_no, "booking": booking.booking_no,
                         "admissions": [a.admission_no for a in adms], "pages": req.pages,
                         "copies": req.copies, "fee": yuan(req.fee_fen),
                         "documents": [k for k, _ in checked], "source": "booking"})
    return req.request_no
