"""Core's default access policy (a built-in plugin, replaceable like any other).

- Roles listed in ``[core.role_actions]`` of plugins.toml may do those actions on every record.
- An API client (core.apiclients) holding the ``documents.read`` scope may view every record.
- A grant (core.models.Grant) allows its actions on its admission, or on every admission of its
  patient, until its deadline; a revoked grant counts for nothing.
Other rules (front-page signers, treating physicians of a current stay, department sharing)
come from the reading plugin.
"""

from __future__ import annotations

from sqlalchemy import bindparam, or_, select

from bingan.hooks import hookimpl
from bingan.core.config import CoreSettings
from bingan.hooks.types import (
    AccessContext, AccessScope, ActionInfo, Runtime, ScopeContext, Vote,
)
from bingan.core.models import Grant


ACTION_WORDS = {"view": "查阅", "print": "打印", "export": "导出"}


def _role_label(session, role: str) -> str:
    """A role by its Chinese name (角色 病案室), the code only when the role is unknown."""
    from bingan.core.models import Role

    label = session.scalar(select(Role.label).where(Role.name == role)) if session else None
    return f"角色 {label or role} "


@hookimpl
def register_actions():
    return [
        ActionInfo("view", "查阅", "打开病案、查看页面"),
        ActionInfo("print", "打印", "打印病案页面"),
        ActionInfo("export", "导出", "导出病案文件"),
    ]


@hookimpl
def access_vote(context: AccessContext, rt: Runtime):
    from bingan.core.apiclients import CLIENT_ROLE

    if CLIENT_ROLE in context.user.roles:
        # a system credential: its scopes decide, never staff roles or grants
        if context.action == "view" and "documents.read" in context.user.permissions:
            return Vote(True, "api-client:documents.read",
                        f"接口客户端 {context.user.staff_no} 持有 documents.read")
        return None

    role_actions = rt.settings(CoreSettings).role_actions
    for role in sorted(context.user.roles):
        if context.action in role_actions.get(role, []):
            what = ACTION_WORDS.get(context.action, context.action)
            return Vote(True, f"role:{role}",
                        f"{_role_label(context.session, role)}可{what}全部病案")
    session = context.session
    if session is None:
        return None
    adm = context.admission
    grants = [g for g in session.execute(_GRANTS_Q, {
        "staff": context.user.id, "now": context.now, "adm": adm.id, "pid": adm.patient_id})
        if context.action in (g.actions or [])]
    if not grants:
        return None
    best = grants[0]
    return Vote(True, f"grant:{best.id}", best.reason or "授权", until=best.deadline,
                grant_id=best.id)


# Built once: every page view asks, and building the expression per call cost more than
# running it (bench/serving.py).
_GRANTS_Q = (select(Grant.id, Grant.reason, Grant.deadline, Grant.actions)
             .where(Grant.staff_id == bindparam("staff"), Grant.revoked_at.is_(None),
                    Grant.starts_at <= bindparam("now"),
                    or_(Grant.admission_id == bindparam("adm"),
                        Grant.patient_id == bindparam("pid")))
             .order_by(Grant.deadline.desc()))


@hookimpl
def access_scope(context: ScopeContext, rt: Runtime):
    """``access_vote`` for every admission at once: a role's actions allow everything, live
    grants their admission or their patient's admissions."""
    role_actions = rt.settings(CoreSettings).role_actions
    if any(context.action in role_actions.get(r, []) for r in context.user.roles):
        return AccessScope(allow_all=True)
    if context.session is None:
        return None
    now = context.now
    rows = context.session.execute(
        select(Grant.admission_id, Grant.patient_id, Grant.actions, Grant.deadline).where(
            Grant.staff_id == context.user.id, Grant.revoked_at.is_(None),
            Grant.starts_at <= now)).all()
    adms, pats = set(), set()
    for adm_id, pat_id, actions, deadline in rows:
        if context.action not in (actions or []) or (deadline is not None and deadline <= now):
            continue
        if adm_id is not None:
            adms.add(adm_id)
        if pat_id is not None:
            pats.add(pat_id)
    if not adms and not pats:
        return None
    return AccessScope(allow_admissions=frozenset(adms), allow_patients=frozenset(pats))
