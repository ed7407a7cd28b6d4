"""Asking the record room for the paper record (issue 12: a record not digitized yet).

When the warehouse plugin is enabled it answers ``paper_record_request`` with its borrowing
form and its queue is the record room's only one (``handled_elsewhere``: this plugin's link,
menu entry and form give way); otherwise this plugin's own answer leads here: the request is
recorded,
the record room (permission ``reading.paper``) is notified, sends the paper or says why it
cannot, and the requester is notified of either.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core import audit, notify
from bingan.core.models import Admission, Staff, utcnow
from bingan_reading.models import PaperRequest

PERMISSION = "reading.paper"
MAX_TEXT = 500


class PaperError(ValueError):
    """A paper request that cannot be made or decided (with the reason in Chinese)."""


def _text(v: str | None, what: str, *, required: bool) -> str | None:
    v = (v or "").strip()
    if required and not v:
        raise PaperError(f"请填写{what}")
    if len(v) > MAX_TEXT:
        raise PaperError(f"{what}过长（{len(v)} 字，最多 {MAX_TEXT} 字）")
    return v or None


def handled_elsewhere(rt) -> bool:
    """Whether another enabled plugin (the warehouse's borrowing) takes paper requests.
    Then the record room works from that one queue: this plugin's form and queue give way
    (a request still open here from before can be finished on its queue page)."""
    return any(impl.plugin_name != "reading"
               for impl in rt.pm.hook.paper_record_request.get_hookimpls())


def may_request(user) -> bool:
    """Anyone with a role that works with records; not the system administrator, security
    administrator or auditor (三员分立: they read no records)."""
    from bingan.core.staff import DUTY_ROLES

    return bool(set(user.roles) - set(DUTY_ROLES))


def room_staff(session: Session) -> list[Staff]:
    """Active staff who handle paper requests (a role with ``reading.paper``)."""
    return [st for st in session.scalars(select(Staff).where(Staff.active.is_(True))
                                         .order_by(Staff.staff_no))
            if any(PERMISSION in (r.permissions or []) for r in st.roles)]


def open_request(session: Session, applicant: Staff, admission: Admission) -> PaperRequest | None:
    return session.scalar(select(PaperRequest).where(
        PaperRequest.applicant_id == applicant.id, PaperRequest.admission_id == admission.id,
        PaperRequest.status == "open"))


def request_paper(session: Session, rt, applicant: Staff, admission: Admission,
                  reason: str | None, *, actor: audit.Actor | None = None) -> PaperRequest:
    reason = _text(reason, "用途", required=True)
    if open_request(session, applicant, admission) is not None:
        raise PaperError(f"您已申请调阅住院号 {admission.admission_no} 的纸质病案，病案室正在处理")
    req = PaperRequest(admission_id=admission.id, applicant_id=applicant.id, reason=reason)
    session.add(req)
    session.flush()
    audit.record(session, rt, "reading.paper.request", actor=actor, mrn=admission.patient.mrn,
                 admission_no=admission.admission_no, detail={"id": req.id, "reason": reason})
    for st in room_staff(session):
        notify.send(session, rt, st.staff_no, "新的纸质病案调阅申请",
                    f"{applicant.name}（{applicant.staff_no}）申请调阅住院号 "
                    f"{admission.admission_no} 的纸质病案：{reason}", href="/reading/paper/queue")
    return req


def decide(session: Session, rt, req: PaperRequest, outcome: str, note: str | None, *,
           by: Staff, actor: audit.Actor | None = None) -> PaperRequest:
    if req.status != "open":
        raise PaperError("该申请已处理，不能再次处理")
    if outcome not in ("sent", "refused"):
        raise PaperError("处理结果只能是已送出或不能提供")
    note = _text(note, "不能提供的原因" if outcome == "refused" else "说明",
                 required=outcome == "refused")
    req.status, req.note, req.handled_by, req.handled_at = outcome, note, by.staff_no, utcnow()
    adm = session.get(Admission, req.admission_id)
    applicant = session.get(Staff, req.applicant_id)
    audit.record(session, rt, "reading.paper.decide", actor=actor, mrn=adm.patient.mrn,
                 admission_no=adm.admission_no,
                 detail={"id": req.id, "outcome": outcome, "note": note})
    if outcome == "sent":
        notify.send(session, rt, applicant.staff_no, "纸质病案已送出",
                    f"住院号 {adm.admission_no} 的纸质病案已由病案室送出"
                    + (f"：{note}" if note else ""), href="/reading/paper")
    else:
        notify.send(session, rt, applicant.staff_no, "纸质病案调阅申请未能满足",
                    f"住院号 {adm.admission_no}：{note}", href="/reading/paper")
    return req


def cancel(session: Session, rt, req: PaperRequest, by: Staff,
           actor: audit.Actor | None = None) -> None:
    if req.applicant_id != by.id:
        raise PaperError("只能撤回本人的申请")
    if req.status != "open":
        raise PaperError("该申请已处理，不能撤回")
    req.status, req.handled_by, req.handled_at = "cancelled", by.staff_no, utcnow()
    adm = session.get(Admission, req.admission_id)
    audit.record(session, rt, "reading.paper.cancel", actor=actor, mrn=adm.patient.mrn,
                 admission_no=adm.admission_no, detail={"id": req.id})
