"""Grants: time-limited rights on one admission or on all of a patient's admissions (M7)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core import audit, notify
from bingan.core.models import Grant, Staff, utcnow
from bingan.core.permissions import registered_actions
from bingan.core.records import get_admission, get_patient
from bingan.core.staff import DUTY_ROLES, get_staff


class GrantError(ValueError):
    """A grant that cannot be made (unknown action, deadline in the past, no target)."""


def create_grant(
    session: Session, rt, *, staff_no: str, actions: list[str], deadline: dt.datetime,
    admission_no: str | None = None, mrn: str | None = None, reason: str = "",
    granted_by: audit.Actor | None = None, source: str = "admin", now: dt.datetime | None = None,
) -> Grant:
    """Give ``staff_no`` the ``actions`` on one admission (or all of MRN's) until ``deadline``."""
    now = now or utcnow()
    if deadline.tzinfo is None:
        raise GrantError("deadline must carry a time zone")
    if deadline <= now:
        raise GrantError("期限必须晚于当前时间")
    known = registered_actions(rt)
    bad = [a for a in actions if a not in known]
    if bad or not actions:
        raise GrantError(f"未注册的操作 {bad[0] if bad else '(空)'}")
    if (admission_no is None) == (mrn is None):
        raise GrantError("授权须指定一份病案或一位患者")
    staff = get_staff(session, staff_no)
    roles = {r.name for r in staff.roles}
    if roles and roles <= DUTY_ROLES.keys():
        # 三员分立: the administrators and the auditor keep the system, they do not read records
        # (reading refuses their applications; this closes the other ways to a grant)
        raise GrantError("三员分立：" + "、".join(DUTY_ROLES[r] for r in sorted(roles))
                         + "不查阅病案，不能获得病案授权")
    grant = Grant(staff_id=staff.id, actions=list(actions), deadline=deadline, reason=reason,
                  granted_by=granted_by.staff_no if granted_by else None, source=source,
                  starts_at=now)
    target_mrn = mrn
    if admission_no:
        adm = get_admission(session, admission_no)
        grant.admission_id, target_mrn = adm.id, adm.patient.mrn
    else:
        grant.patient_id = get_patient(session, mrn).id
    session.add(grant)
    session.flush()
    audit.record(session, rt, "grant.create", actor=granted_by, mrn=target_mrn,
                 admission_no=admission_no,
                 detail={"grant": grant.id, "staff_no": staff_no, "actions": actions,
                         "deadline": deadline.isoformat()})
    return grant


def revoke_grant(session: Session, rt, grant_id: int, actor: audit.Actor | None = None,
                 reason: str | None = None) -> Grant:
    """End a grant now; ``reason`` (told to its holder by the caller) goes into the audit."""
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise GrantError(f"授权 {grant_id} 不存在")
    grant.revoked_at = utcnow()
    detail: dict = {"grant": grant_id}
    if reason:
        detail["reason"] = reason
    audit.record(session, rt, "grant.revoke", actor=actor, detail=detail)
    return grant


def close_expired(session: Session, rt, now: dt.datetime | None = None) -> int:
    """Mark grants past their deadline as closed and tell their holders (the check at use
    does not depend on this job)."""
    now = now or utcnow()
    rows = session.scalars(
        select(Grant).where(Grant.deadline <= now, Grant.closed_at.is_(None),
                            Grant.revoked_at.is_(None))
    ).all()
    for g in rows:
        g.closed_at = now
        staff = session.get(Staff, g.staff_id)
        notify.send(session, rt, staff.staff_no, "查阅授权已到期",
                    f"授权 #{g.id} 已于 {g.deadline:%Y-%m-%d %H:%M} 到期，访问已关闭。")
        audit.record(session, rt, "grant.expire", detail={"grant": g.id},
                     actor=audit.Actor(staff_no="system"))
    return len(rows)
