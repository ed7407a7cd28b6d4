"""Access decisions on records: ``decide(user, admission, action)``.

Every vote comes from the ``access_vote`` hook (core's default policy is itself a plugin:
core.defaults.access). A deny beats any allow; no allow is a deny; an allow whose ``until`` has
passed does not count, so a grant stops working at its deadline to the second, whatever the
expiry job has done. Each decision is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.hooks.types import (
    AccessContext, AccessScope, ActionInfo, AdmissionFilter, AdmissionRef, ScopeContext,
    StaffRef, Vote,
)
from bingan.core import audit
from bingan.core.models import Admission, utcnow
from bingan.core.plugins import call_impl
from bingan.core.records import to_ref


class UnknownAction(ValueError):
    """``decide`` was asked about an action no plugin registered."""


@dataclass
class Decision:
    allowed: bool
    action: str
    votes: list[tuple[str, Vote]] = field(default_factory=list)
    reason: str = ""
    until: dt.datetime | None = None


def registered_actions(rt) -> dict[str, ActionInfo]:
    out: dict[str, ActionInfo] = {}
    for group in rt.pm.hook.register_actions():
        for a in group or []:
            out[a.name] = a
    return out


def collect_votes(rt, ctx: AccessContext) -> list[tuple[str, Vote]]:
    """Ask every ``access_vote`` implementation, remembering which plugin said what."""
    votes: list[tuple[str, Vote]] = []
    for impl in reversed(rt.pm.hook.access_vote.get_hookimpls()):
        vote = call_impl(impl, context=ctx, rt=rt)
        if vote is not None:
            votes.append((impl.plugin_name, vote))
    return votes


def evaluate(action: str, votes: list[tuple[str, Vote]], now: dt.datetime,
             tz: dt.tzinfo) -> Decision:
    """Combine votes: deny beats allow, expired allows do not count, no allow is deny."""
    denies = [(p, v) for p, v in votes if not v.allow]
    allows = [(p, v) for p, v in votes if v.allow and (v.until is None or v.until > now)]
    if denies:
        p, v = denies[0]
        return Decision(False, action, votes, f"拒绝（{v.rule}）：{v.reason}")
    if not allows:
        expired = [v for _, v in votes if v.allow and v.until is not None]
        # shown in hospital time (``tz``) like the UI
        why = ("授权已于 {:%Y-%m-%d %H:%M:%S} 到期".format(expired[0].until.astimezone(tz))
               if expired else "无授权")
        return Decision(False, action, votes, why)
    until = None
    if all(v.until for _, v in allows):
        until = max(v.until for _, v in allows)
    return Decision(True, action, votes, "允许（" + "，".join(v.rule for _, v in allows) + "）", until)


def decide(
    session: Session, rt, user: StaffRef, admission: Admission | AdmissionRef, action: str, *,
    now: dt.datetime | None = None, actor: audit.Actor | None = None, record: bool = True,
) -> Decision:
    """May ``user`` do ``action`` on ``admission``? Audited unless ``record`` is False
    (``access explain`` and menus that only preview)."""
    if action not in registered_actions(rt):
        raise UnknownAction(f"未注册的操作 {action!r}")
    now = now or utcnow()
    ref = admission if isinstance(admission, AdmissionRef) else to_ref(admission)
    ctx = AccessContext(user=user, admission=ref, action=action, now=now, session=session)
    decision = evaluate(action, collect_votes(rt, ctx), now, rt.tz)
    if record:
        audit.record(
            session, rt, f"access.{action}",
            actor=actor or audit.Actor(staff_no=user.staff_no),
            outcome="allow" if decision.allowed else "deny",
            mrn=ref.mrn, admission_no=ref.admission_no,
            detail={"reason": decision.reason,
                    "votes": [f"{p}:{v.rule}:{'allow' if v.allow else 'deny'}"
                              for p, v in decision.votes]},
            ts=now,
        )
    return decision


# -- every admission at once: the filter a search puts into its query ----------------------
_CHUNK = 1000  # values per IN list (SQLite's variable limit, PostgreSQL's plan size)


def _admission_ids(session: Session, ids: set[int], patients: set[int],
                   departments: set[str]) -> set[int]:
    """``ids`` plus the admissions of ``patients`` and those discharged from ``departments``."""
    out = set(ids)
    for col, values in ((Admission.patient_id, sorted(patients)),
                        (Admission.discharge_department, sorted(departments))):
        for i in range(0, len(values), _CHUNK):
            out.update(session.scalars(select(Admission.id).where(
                col.in_(values[i:i + _CHUNK]))))
    return out


def combine_scopes(session: Session, scopes: list[AccessScope]) -> AdmissionFilter:
    """The admissions the votes described by ``scopes`` allow: any allow, minus any deny (a
    deny beats an allow, as in ``evaluate``)."""
    if any(sc.deny_all for sc in scopes):
        return AdmissionFilter(frozenset())
    denied = _admission_ids(
        session, {i for sc in scopes for i in sc.deny_admissions},
        {p for sc in scopes for p in sc.deny_patients},
        {d for sc in scopes for d in sc.deny_departments})
    if any(sc.allow_all for sc in scopes):
        return AdmissionFilter(frozenset(denied), exclude=True)
    allowed = _admission_ids(
        session, {i for sc in scopes for i in sc.allow_admissions},
        {p for sc in scopes for p in sc.allow_patients},
        {d for sc in scopes for d in sc.allow_departments})
    return AdmissionFilter(frozenset(allowed - denied))


def readable(session: Session, rt, user: StaffRef, action: str = "view", *,
             now: dt.datetime | None = None) -> AdmissionFilter | None:
    """Every admission on which ``decide(user, admission, action)`` would allow, at once, from
    the ``access_scope`` hook: the filter a search puts into its query. None when a plugin that
    votes has no ``access_scope`` (then only ``decide`` per record can tell). Not audited: the
    search that uses it is."""
    if action not in registered_actions(rt):
        raise UnknownAction(f"未注册的操作 {action!r}")
    voters = {impl.plugin_name for impl in rt.pm.hook.access_vote.get_hookimpls()}
    scopers = rt.pm.hook.access_scope.get_hookimpls()
    if voters - {impl.plugin_name for impl in scopers}:
        return None
    ctx = ScopeContext(user=user, action=action, now=now or utcnow(), session=session)
    scopes = [sc for impl in scopers if (sc := call_impl(impl, context=ctx, rt=rt)) is not None]
    return combine_scopes(session, scopes)
