"""Applications to read records (M6-M8): apply, approve with a deadline, reject, cancel.

An application names records (admission numbers) and/or patients (MRN: all of that patient's
records), a reason and the days wanted. Its approvers are resolved from the ``approvers``
setting when it is made and notified in the app (and through the ``notify`` hook). Approval
creates one core grant per item (``core.grants.create_grant``) ending at the deadline; the grant
is what the access check uses, to the second. The applicant is told the outcome.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core import audit, notify
from bingan.core.grants import create_grant
from bingan.core.models import Admission, Patient, Role, Staff, staff_role, utcnow
from bingan.core.records import get_admission

from bingan_reading.models import ReadingApplication, ReadingApplicationItem
from bingan_reading.policy import blocking_rules, describe_rule
from bingan_reading.settings import ReadingSettings



class ApplicationError(ValueError):
    """An application (or a decision on one) that cannot be accepted; nothing was stored."""


class NotAllowed(ApplicationError):
    """The acting staff member may not do this to this application."""


APPLY_PERMISSION = "reading.apply"


def duty_only(roles) -> str | None:
    """The duty a staff member holds when their roles are only system administrator,
    security administrator or auditor (三员分立: they read no records), as its Chinese name;
    None for anyone who also holds a role that works with records (a physician who is also
    the system administrator), and for a person without any role."""
    from bingan.core.staff import DUTY_ROLES

    roles = set(roles)
    if not roles or not roles <= DUTY_ROLES.keys():
        return None
    return "、".join(DUTY_ROLES[r] for r in sorted(roles))


def duty_refusal(roles) -> str | None:
    """Why this staff member may not apply to read records, or None."""
    duty = duty_only(roles)
    return None if duty is None else f"三员分立：{duty}不查阅病案，不能提交查阅申请"


def split_numbers(text: str | list[str] | None) -> list[str]:
    """Admission numbers or MRNs typed or pasted: separated by spaces, commas or new lines."""
    if text is None:
        return []
    if isinstance(text, list):
        text = "\n".join(text)
    out: list[str] = []
    for tok in re.split(r"[\s,，;；、]+", text):
        tok = tok.strip()
        if tok and tok not in out:
            out.append(tok)
    return out


def local(t: dt.datetime | None, tz: dt.tzinfo) -> str:
    """A stored time as the hospital's clock (``tz``) shows it."""
    return "" if t is None else t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def resolve_approvers(session: Session, rt, applicant: Staff) -> list[str]:
    """Staff numbers who may decide an application of ``applicant`` (never the applicant)."""
    cfg = rt.settings(ReadingSettings).approvers
    dept = applicant.department.code if applicant.department else None
    entries = cfg.get(dept) if dept and dept in cfg else cfg["*"]
    found: set[str] = set()
    for entry in entries:
        kind, _, rest = entry.partition(":")
        if kind == "staff":
            st = session.scalar(select(Staff).where(Staff.staff_no == rest, Staff.active))
            if st is not None:
                found.add(st.staff_no)
            continue
        role, _, scope = rest.partition("@")
        q = (select(Staff.staff_no).join(staff_role, staff_role.c.staff_id == Staff.id)
             .join(Role, Role.id == staff_role.c.role_id)
             .where(Role.name == role, Staff.active))
        if scope == "department":
            if applicant.department_id is None:
                continue
            q = q.where(Staff.department_id == applicant.department_id)
        found.update(session.scalars(q))
    found.discard(applicant.staff_no)
    return sorted(found)


@dataclass(frozen=True)
class ItemView:
    """An application item as pages show it."""

    kind: str  # admission / patient
    admission_no: str | None
    mrn: str
    patient_name: str
    label: str
    grant_id: int | None


def page_counts(session: Session, admission_ids: list[int]) -> dict[int, int]:
    """Current page images per admission: 0 means the record is on paper only (未数字化)."""
    from sqlalchemy import func

    from bingan.core.models import Page

    if not admission_ids:
        return {}
    return dict(session.execute(
        select(Page.admission_id, func.count()).where(Page.admission_id.in_(admission_ids),
                                                       Page.replaced_by_id.is_(None))
        .group_by(Page.admission_id)).all())


def item_views(session: Session, app: ReadingApplication, tz: dt.tzinfo) -> list[ItemView]:
    out = []
    pages = page_counts(session, [it.admission_id for it in app.items if it.admission_id])
    for it in app.items:
        if it.admission_id is not None:
            adm = session.get(Admission, it.admission_id)
            dis = (adm.discharged_at.astimezone(tz).strftime("%Y-%m-%d")
                   if adm.discharged_at else "在院")
            paper = "" if pages.get(adm.id) else "，尚未数字化：批准后请到病案室借阅纸质病案"
            out.append(ItemView("admission", adm.admission_no, adm.patient.mrn, adm.patient.name,
                                f"住院号 {adm.admission_no}（第 {adm.visit_no} 次住院，出院 {dis}"
                                f"{paper}）", it.grant_id))
        else:
            p = session.get(Patient, it.patient_id)
            out.append(ItemView("patient", None, p.mrn, p.name,
                                f"病案号 {p.mrn} 的全部病案", it.grant_id))
    return out


def blocked_by_rules(session: Session, applicant: Staff, admissions: list[Admission],
                     now: dt.datetime | None = None) -> list[str]:
    """Why ``applicant`` could not read these records even with a grant: the administrator's
    deny rules in force (described without their private note), one line per rule."""
    from bingan.core.records import to_ref
    from bingan.core.staff import staff_ref

    ref = staff_ref(applicant)
    lines: dict[int, str] = {}
    for adm in admissions:
        for rule in blocking_rules(session, ref, to_ref(adm), "view", now):
            lines.setdefault(rule.id, describe_rule(rule, session))
    return list(lines.values())


def application_admissions(session: Session, app: ReadingApplication) -> list[Admission]:
    out: list[Admission] = []
    for it in app.items:
        if it.admission_id is not None:
            out.append(session.get(Admission, it.admission_id))
        else:
            out.extend(session.scalars(select(Admission).where(
                Admission.patient_id == it.patient_id)))
    return out


def blocked_application(session: Session, app: ReadingApplication,
                        now: dt.datetime | None = None) -> list[str]:
    """The deny rules that would keep an approval of ``app`` from taking effect."""
    return blocked_by_rules(session, app_applicant(app), application_admissions(session, app),
                            now)


def unreadable_stays(session: Session, rt, staff, admission_no: str,
                     now: dt.datetime | None = None) -> list[str]:
    """The admission numbers of the patient of ``admission_no`` that ``staff`` (a StaffRef)
    may not view now, by core's access decision (not audited: nothing is shown), oldest
    first, leaving out those an administrator's deny rule keeps closed (no application lifts
    them). For "apply for all of this patient's records" on the 403 page: one application
    covering what the reader lacks, without showing them which stays those are."""
    from bingan.core import permissions
    from bingan.core.records import to_ref

    adm = session.scalar(select(Admission).where(Admission.admission_no == admission_no))
    if adm is None:
        raise ApplicationError(f"住院号 {admission_no} 不存在")
    out = []
    for a in session.scalars(select(Admission).where(Admission.patient_id == adm.patient_id)
                             .order_by(Admission.admitted_at, Admission.id)):
        if permissions.decide(session, rt, staff, a, "view", record=False, now=now).allowed:
            continue
        if blocking_rules(session, staff, to_ref(a), "view", now):
            continue
        out.append(a.admission_no)
    return out


BLOCKED_APPLY = ("管理员已设置查阅限制（{rules}），查阅申请不能解除该限制。"
                 "如确因工作需要，请与病案室或医务处联系。")
BLOCKED_APPROVE = ("申请人受管理员设置的查阅限制（{rules}），即使批准也无法查阅，批准不会生效。"
                   "请先由管理员撤销该限制后再批准，或驳回本申请。")


def _summary(views: list[ItemView]) -> str:
    text = "；".join(f"{v.patient_name} {v.label}" for v in views[:3])
    return text + (f" 等 {len(views)} 项" if len(views) > 3 else "")


def apply(session: Session, rt, applicant_staff_no: str, *, admission_nos: list[str] = (),
          mrns: list[str] = (), reason: str, days: int | str,
          actor: audit.Actor | None = None, now: dt.datetime | None = None) -> ReadingApplication:
    """Make an application and notify its approvers. ApplicationError leaves nothing behind
    (the caller's transaction rolls back)."""
    cfg = rt.settings(ReadingSettings)
    now = now or utcnow()
    applicant = session.scalar(select(Staff).where(Staff.staff_no == applicant_staff_no))
    if applicant is None or not applicant.active:
        raise ApplicationError(f"工号 {applicant_staff_no} 不存在或已停用")
    refusal = duty_refusal(r.name for r in applicant.roles)
    if refusal:
        raise ApplicationError(refusal)
    reason = (reason or "").strip()
    if len(reason) < cfg.min_reason_chars:
        raise ApplicationError(f"请填写查阅理由（至少 {cfg.min_reason_chars} 个字）")
    if len(reason) > 1000:
        raise ApplicationError("查阅理由过长（最多 1000 字）")
    try:
        days = int(str(days).strip())
    except ValueError:
        raise ApplicationError("查阅天数须为整数") from None
    if not 1 <= days <= cfg.max_days:
        raise ApplicationError(f"查阅天数须在 1 到 {cfg.max_days} 天之间")
    admission_nos, mrns = list(dict.fromkeys(admission_nos)), list(dict.fromkeys(mrns))
    if not admission_nos and not mrns:
        raise ApplicationError("请至少选择一份病案或一位患者")
    if len(admission_nos) + len(mrns) > cfg.max_items:
        raise ApplicationError(f"一次最多申请 {cfg.max_items} 项")
    items: list[ReadingApplicationItem] = []
    patients: dict[str, Patient] = {}
    for mrn in mrns:
        p = session.scalar(select(Patient).where(Patient.mrn == mrn))
        if p is None:
            raise ApplicationError(f"病案号 {mrn} 不存在")
        patients[mrn] = p
        items.append(ReadingApplicationItem(patient_id=p.id))
    for no in admission_nos:
        adm = session.scalar(select(Admission).where(Admission.admission_no == no))
        if adm is None:
            raise ApplicationError(f"住院号 {no} 不存在")
        if adm.patient.mrn in patients:
            continue  # already covered by the patient-wide item
        items.append(ReadingApplicationItem(admission_id=adm.id))
    wanted: list[Admission] = []
    for it in items:
        if it.admission_id is not None:
            wanted.append(session.get(Admission, it.admission_id))
        else:
            wanted.extend(session.scalars(select(Admission).where(
                Admission.patient_id == it.patient_id)))
    blocked = blocked_by_rules(session, applicant, wanted, now)
    if blocked:
        raise ApplicationError(BLOCKED_APPLY.format(rules="；".join(blocked)))
    approvers = resolve_approvers(session, rt, applicant)
    if not approvers:
        raise ApplicationError("没有可审批该申请的人员，请联系管理员配置审批人")
    app = ReadingApplication(applicant_id=applicant.id, reason=reason, days=days,
                             applicant_department=applicant.department.code
                             if applicant.department else None,
                             status="pending", approvers=approvers, created_at=now, items=items)
    session.add(app)
    session.flush()
    views = item_views(session, app, rt.tz)
    single = views[0] if len(views) == 1 else None
    audit.record(session, rt, "reading.apply",
                 actor=actor or audit.Actor(staff_no=applicant.staff_no),
                 mrn=single.mrn if single else None,
                 admission_no=single.admission_no if single else None,
                 detail={"application": app.id, "days": days, "reason": reason,
                         "admissions": [v.admission_no for v in views if v.admission_no],
                         "mrns": [v.mrn for v in views if v.kind == "patient"],
                         "approvers": approvers})
    body = (f"{applicant.name}（工号 {applicant.staff_no}）申请查阅 {_summary(views)}，"
            f"{days} 天。理由：{reason}")
    for no in approvers:
        notify.send(session, rt, no, "新的病案查阅申请待审批", body,
                    f"/reading/applications/{app.id}")
    return app


def get_application(session: Session, app_id: int) -> ReadingApplication:
    app = session.get(ReadingApplication, app_id)
    if app is None:
        raise ApplicationError(f"申请 {app_id} 不存在")
    return app


def may_decide(app: ReadingApplication, staff_no: str) -> bool:
    applicant = app_applicant(app)
    return staff_no in (app.approvers or []) and staff_no != applicant.staff_no


def app_applicant(app: ReadingApplication) -> Staff:
    from sqlalchemy.orm import object_session

    return object_session(app).get(Staff, app.applicant_id)


def _pending_for(session: Session, app_id: int, approver_no: str) -> ReadingApplication:
    app = get_application(session, app_id)
    if not may_decide(app, approver_no):
        raise NotAllowed("您不是该申请的审批人")
    if app.status != "pending":
        raise ApplicationError(f"该申请已处理（{app.status}）")
    return app


def duty_applicant(app: ReadingApplication) -> str | None:
    """Why an approval of ``app`` cannot be given because its applicant now holds only
    duty roles (an application made before such applications were refused, or by someone
    whose roles changed since), or None."""
    duty = duty_only(r.name for r in app_applicant(app).roles)
    return None if duty is None else DUTY_APPROVE.format(duty=duty)


DUTY_APPROVE = "三员分立：申请人是{duty}，不查阅病案，本申请不能批准，请驳回。"


def approve(session: Session, rt, app_id: int, approver_no: str, *, days: int | str | None = None,
            actor: audit.Actor | None = None, now: dt.datetime | None = None) -> ReadingApplication:
    """Approve: one grant per item until now + ``days`` (at most the days applied for)."""
    now = now or utcnow()
    app = _pending_for(session, app_id, approver_no)
    duty = duty_applicant(app)
    if duty:
        raise ApplicationError(duty)
    if days is None or str(days).strip() == "":
        days = app.days
    try:
        days = int(str(days).strip())
    except ValueError:
        raise ApplicationError("批准天数须为整数") from None
    if not 1 <= days <= app.days:
        raise ApplicationError(f"批准天数须在 1 到 {app.days} 天之间（不超过申请的天数）")
    blocked = blocked_application(session, app, now)
    if blocked:
        raise ApplicationError(BLOCKED_APPROVE.format(rules="；".join(blocked)))
    deadline = now + dt.timedelta(days=days)
    applicant = app_applicant(app)
    actor = actor or audit.Actor(staff_no=approver_no)
    actions = list(rt.settings(ReadingSettings).grant_actions)
    for it in app.items:
        if it.admission_id is not None:
            adm = session.get(Admission, it.admission_id)
            g = create_grant(session, rt, staff_no=applicant.staff_no, actions=actions,
                             deadline=deadline, admission_no=adm.admission_no,
                             reason=f"查阅申请 #{app.id}：{app.reason}", granted_by=actor,
                             source="reading", now=now)
        else:
            p = session.get(Patient, it.patient_id)
            g = create_grant(session, rt, staff_no=applicant.staff_no, actions=actions,
                             deadline=deadline, mrn=p.mrn,
                             reason=f"查阅申请 #{app.id}：{app.reason}", granted_by=actor,
                             source="reading", now=now)
        it.grant_id = g.id
    app.status, app.decided_by = "approved", approver_no
    app.decided_at, app.deadline = now, deadline
    session.flush()
    audit.record(session, rt, "reading.approve", actor=actor,
                 detail={"application": app.id, "days": days, "deadline": deadline.isoformat(),
                         "grants": [it.grant_id for it in app.items]})
    notify.send(session, rt, applicant.staff_no, "病案查阅申请已批准",
                f"申请 #{app.id} 已批准，可查阅至 {local(deadline, rt.tz)}（{days} 天）。",
                f"/reading/applications/{app.id}")
    return app


def reject(session: Session, rt, app_id: int, approver_no: str, *, note: str,
           actor: audit.Actor | None = None, now: dt.datetime | None = None) -> ReadingApplication:
    """Reject with a reason, which the applicant is told."""
    now = now or utcnow()
    note = (note or "").strip()
    if len(note) < 2:
        raise ApplicationError("请填写驳回理由")
    app = _pending_for(session, app_id, approver_no)
    app.status, app.decided_by, app.decided_at, app.decision_note = (
        "rejected", approver_no, now, note[:1000])
    session.flush()
    audit.record(session, rt, "reading.reject", actor=actor or audit.Actor(staff_no=approver_no),
                 detail={"application": app.id, "note": note})
    notify.send(session, rt, app_applicant(app).staff_no, "病案查阅申请被驳回",
                f"申请 #{app.id} 被驳回。理由：{note}", f"/reading/applications/{app.id}")
    return app


def cancel(session: Session, rt, app_id: int, applicant_no: str, *,
           actor: audit.Actor | None = None, now: dt.datetime | None = None) -> ReadingApplication:
    """The applicant withdraws a pending application."""
    app = get_application(session, app_id)
    if app_applicant(app).staff_no != applicant_no:
        raise NotAllowed("只能撤回本人的申请")
    if app.status != "pending":
        raise ApplicationError("只能撤回待审批的申请")
    app.status, app.decided_at = "cancelled", now or utcnow()
    session.flush()
    audit.record(session, rt, "reading.cancel", actor=actor or audit.Actor(staff_no=applicant_no),
                 detail={"application": app.id})
    return app


def pending_for_record(session: Session, staff_id: int,
                       admission: Admission) -> ReadingApplication | None:
    """The reader's pending application covering this record, if any (for the 403 page)."""
    rows = session.scalars(
        select(ReadingApplication).join(ReadingApplicationItem)
        .where(ReadingApplication.applicant_id == staff_id,
               ReadingApplication.status == "pending",
               (ReadingApplicationItem.admission_id == admission.id)
               | (ReadingApplicationItem.patient_id == admission.patient_id))
        .order_by(ReadingApplication.id.desc()).limit(1)).all()
    return rows[0] if rows else None


__all__ = ["APPLY_PERMISSION", "ApplicationError", "NotAllowed", "apply", "approve", "cancel",
           "duty_only", "duty_refusal", "get_admission",
           "item_views", "may_decide", "reject", "resolve_approvers", "split_numbers",
           "unreadable_stays"]
