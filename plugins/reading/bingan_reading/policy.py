"""The reading plugin's access policy (M6, M10 and administrators' rules), as ``access_vote``.

Opinions, each a ``hooks.types.Vote`` with a rule name:

- ``reading:signer``        the reader signed the record's front page in one of ``signer_roles``
- ``reading:current_stay``  the patient is in hospital (an admission without discharge) and the
                            reader is an admitting/treating physician of that stay: every earlier
                            record of the patient (and the current one) may be read
- ``reading:share``         a department sharing rule of the settings (M10)
- ``reading:rule:<id>``     an administrator's reading rule (allow, or deny which beats any allow)

``access_vote`` answers with one vote per plugin (core's contract), so ``combine`` picks the one
that decides: any live deny, else the longest-lived allow. ``opinions`` keeps them all for
``bingan access explain``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, or_, select

from bingan.hooks.types import AccessContext, AccessScope, Runtime, ScopeContext, Vote
from bingan.core.models import Admission, Signer
from bingan.core.records import SIGNER_ROLES

from bingan_reading.models import EFFECTS, OWN_DEPARTMENT, SUBJECT_TYPES, ReadingRule
from bingan_reading.settings import ReadingSettings

RULE_PREFIX = "reading:rule:"

# Built once: every page view asks, and building SQLAlchemy expressions per call costs more
# than running them.
_SIGNER_ROLES_Q = select(Signer.role).where(Signer.admission_id == bindparam("adm"),
                                            Signer.staff_no == bindparam("no"))
_OPEN_STAYS_Q = (select(Admission.id, Admission.admission_no, Admission.admitted_at,
                        Admission.front_page)
                 .where(Admission.patient_id == bindparam("pid"),
                        Admission.discharged_at.is_(None),
                        Admission.cancelled_at.is_(None))
                 .order_by(Admission.admitted_at.desc()))
_RULES_Q = (select(ReadingRule)
            .where(ReadingRule.revoked_at.is_(None),
                   or_(and_(ReadingRule.subject_type == "user",
                            ReadingRule.subject == bindparam("no")),
                       and_(ReadingRule.subject_type == "role",
                            ReadingRule.subject.in_(bindparam("roles", expanding=True))),
                       and_(ReadingRule.subject_type == "department",
                            ReadingRule.subject == bindparam("dept"))))
            .order_by(ReadingRule.id))


@dataclass(frozen=True)
class Note:
    """Something ``explain`` should show that is not a vote (why a rule did not apply)."""

    rule: str
    text: str


def _signer_vote(ctx: AccessContext, cfg) -> Vote | None:
    user, adm = ctx.user, ctx.admission
    if ctx.action not in cfg.signer_actions or user.staff_no not in adm.signer_staff_nos:
        return None
    if ctx.session is None:
        # without a session the roles are unknown: only an unrestricted role list may answer
        if set(cfg.signer_roles) >= set(SIGNER_ROLES):
            return Vote(True, "reading:signer", "病案首页签名人")
        return None
    roles = ctx.session.scalars(_SIGNER_ROLES_Q, {"adm": adm.id, "no": user.staff_no}).all()
    roles = [r for r in roles if r in cfg.signer_roles]
    if not roles:
        return None
    labels = "、".join(SIGNER_ROLES[r] for r in sorted(roles))
    return Vote(True, "reading:signer", f"病案首页签名人（{labels}）")


def _front_page_staff(front_page: dict, keys: list[str]) -> dict[str, str]:
    """staff_no -> front-page key, for the configured keys (strings or lists of strings)."""
    out: dict[str, str] = {}
    for key in keys:
        value = (front_page or {}).get(key)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and v.strip():
                out.setdefault(v.strip(), key)
    return out


def _current_stay_vote(ctx: AccessContext, cfg, notes: list[Note]) -> Vote | None:
    if not cfg.current_stay or ctx.action not in cfg.current_stay_actions or ctx.session is None:
        return None
    target = ctx.admission
    open_stays = ctx.session.execute(_OPEN_STAYS_Q, {"pid": target.patient_id}).all()
    for stay_id, stay_no, admitted_at, front_page in open_stays:
        if admitted_at > ctx.now:
            continue
        if stay_id != target.id and target.admitted_at >= admitted_at:
            continue  # only records from before the current stay
        how = None
        roles = ctx.session.scalars(_SIGNER_ROLES_Q, {"adm": stay_id,
                                                      "no": ctx.user.staff_no}).all()
        for role in sorted(roles):
            if role in cfg.current_stay_signer_roles:
                how = SIGNER_ROLES[role]
                break
        if how is None:
            key = _front_page_staff(front_page, cfg.current_stay_front_page_keys).get(
                ctx.user.staff_no)
            how = f"首页字段 {key}" if key else None
        if how is None:
            continue
        if cfg.current_stay_max_days and ctx.now - admitted_at > dt.timedelta(
                days=cfg.current_stay_max_days):
            notes.append(Note("reading:current_stay",
                              f"住院号 {stay_no} 入院已超过 {cfg.current_stay_max_days} 天"
                              "仍无出院记录，视为漏报出院，不按在院处理"))
            continue
        return Vote(True, "reading:current_stay",
                    f"患者在院（住院号 {stay_no}），本人为本次住院经治医师（{how}）")
    return None


def _share_votes(ctx: AccessContext, cfg) -> list[Vote]:
    out = []
    dept = ctx.admission.discharge_department
    mine = ctx.user.department_code
    for i, rule in enumerate(cfg.share):
        if ctx.action not in rule.actions:
            continue
        if rule.from_department != "*" and rule.from_department != dept:
            continue
        if rule.to_department == "same":
            if not mine or mine != dept:
                continue
        elif rule.to_department != "*" and rule.to_department != mine:
            continue
        if rule.roles and not set(rule.roles) & set(ctx.user.roles):
            continue
        words = _share_words(ctx, rule.from_department, rule.to_department)
        out.append(Vote(True, "reading:share", f"科室共享规则 {i + 1}（{words}）"))
    return out


def _share_words(ctx: AccessContext, frm: str, to: str) -> str:
    """ "心血管内科的病案 → 本科室人员" instead of the rule's codes."""
    names: dict[str, str] = {}
    if ctx.session is not None:
        from bingan.core.staff import department_names

        names = department_names(ctx.session)
    src = "所有科室的病案" if frm == "*" else f"{names.get(frm, frm)}的病案"
    dst = {"*": "所有科室人员", "same": "同一科室人员"}.get(to) or f"{names.get(to, to)}人员"
    return f"{src}共享给{dst}"


def rule_applies(rule: ReadingRule, ctx: AccessContext) -> bool:
    """Does administrator rule ``rule`` speak about this user, record and action?"""
    user, adm = ctx.user, ctx.admission
    if ctx.action not in (rule.actions or []):
        return False
    if rule.subject_type == "user" and rule.subject != user.staff_no:
        return False
    if rule.subject_type == "role" and rule.subject not in user.roles:
        return False
    if rule.subject_type == "department" and rule.subject != user.department_code:
        return False
    if rule.record_scope is None:
        return True
    if rule.record_scope == OWN_DEPARTMENT:
        return bool(user.department_code) and user.department_code == adm.discharge_department
    return rule.record_scope == adm.discharge_department


ACTION_WORDS = {"view": "查阅", "print": "打印", "export": "导出"}


def describe_rule(rule: ReadingRule, session=None) -> str:
    """The rule in words, for the people it concerns: never its private note (an
    administrator's 备注 such as 停职调查 is shown on the rules page only). With a session,
    roles and departments are named, not coded."""
    from bingan.core.models import Role
    from bingan.core.staff import department_names

    depts = department_names(session) if session is not None else {}
    if rule.record_scope is None:
        scope = "全部病案"
    elif rule.record_scope == OWN_DEPARTMENT:
        scope = "本科室出院的病案"
    else:
        scope = f"{depts.get(rule.record_scope, rule.record_scope)}出院的病案"
    subject = rule.subject
    if rule.subject_type == "role" and session is not None:
        subject = session.scalar(select(Role.label).where(Role.name == rule.subject)) or subject
    elif rule.subject_type == "department":
        subject = depts.get(rule.subject, rule.subject)
    acts = "、".join(ACTION_WORDS.get(a, a) for a in rule.actions or [])
    return (f"{SUBJECT_TYPES.get(rule.subject_type, rule.subject_type)} {subject}："
            f"{EFFECTS.get(rule.effect, rule.effect)}{acts}{scope}")


def blocking_rules(session, user, admission, action: str = "view", now=None) -> list[ReadingRule]:
    """The administrator's deny rules in force that bar ``user`` (a StaffRef) from ``action``
    on ``admission`` (an AdmissionRef): no grant or approval lifts them."""
    from bingan.core.models import utcnow

    now = now or utcnow()
    ctx = AccessContext(user=user, admission=admission, action=action, now=now, session=session)
    rows = session.scalars(_RULES_Q, {"no": user.staff_no, "roles": sorted(user.roles),
                                      "dept": user.department_code}).all()
    return [r for r in rows if r.effect == "deny" and rule_applies(r, ctx)
            and (r.until is None or r.until > now)]


def _rule_votes(ctx: AccessContext) -> list[Vote]:
    if ctx.session is None:
        return []
    user = ctx.user
    rows = ctx.session.scalars(_RULES_Q, {"no": user.staff_no, "roles": sorted(user.roles),
                                          "dept": user.department_code}).all()
    out = []
    for r in rows:
        if not rule_applies(r, ctx):
            continue
        if r.effect == "deny":
            if r.until is not None and r.until <= ctx.now:
                continue  # a ban that has run out says nothing
            out.append(Vote(False, f"{RULE_PREFIX}{r.id}", describe_rule(r, ctx.session),
                            until=r.until))
        else:
            out.append(Vote(True, f"{RULE_PREFIX}{r.id}", describe_rule(r, ctx.session),
                            until=r.until))
    return out


def opinions(ctx: AccessContext, rt: Runtime) -> tuple[list[Vote], list[Note]]:
    """Every vote of the reading policy for this question, and notes for ``explain``."""
    cfg = rt.settings(ReadingSettings)
    notes: list[Note] = []
    votes = _rule_votes(ctx)
    for v in (_signer_vote(ctx, cfg), _current_stay_vote(ctx, cfg, notes)):
        if v is not None:
            votes.append(v)
    votes.extend(_share_votes(ctx, cfg))
    return votes, notes


def combine(votes: list[Vote], now: dt.datetime) -> Vote | None:
    """The one vote the plugin casts: a deny if any, else the allow that lasts longest (no
    deadline beats any deadline), else an allow that has expired (so the decision can say
    when it ran out), else no opinion."""
    denies = [v for v in votes if not v.allow]
    if denies:
        return denies[0]
    live = [v for v in votes if v.allow and (v.until is None or v.until > now)]
    if live:
        forever = [v for v in live if v.until is None]
        return forever[0] if forever else max(live, key=lambda v: v.until)
    expired = [v for v in votes if v.allow]
    return max(expired, key=lambda v: v.until) if expired else None


def vote(ctx: AccessContext, rt: Runtime) -> Vote | None:
    votes, _ = opinions(ctx, rt)
    return combine(votes, ctx.now)


# -- the same policy for every admission at once (access_scope) ----------------------------
_SIGNED_Q = (select(Signer.admission_id)
             .where(Signer.staff_no == bindparam("no"),
                    Signer.role.in_(bindparam("roles", expanding=True))))
_OPEN_STAYS_ALL_Q = (select(Admission.id, Admission.patient_id, Admission.admitted_at,
                            Admission.front_page)
                     .where(Admission.discharged_at.is_(None)))
_EARLIER_Q = (select(Admission.id)
              .where(Admission.patient_id == bindparam("pid"),
                     or_(Admission.id == bindparam("stay"),
                         Admission.admitted_at < bindparam("admitted"))))


def _rule_subject_applies(rule: ReadingRule, ctx: ScopeContext) -> bool:
    user = ctx.user
    if ctx.action not in (rule.actions or []):
        return False
    if rule.subject_type == "user":
        return rule.subject == user.staff_no
    if rule.subject_type == "role":
        return rule.subject in user.roles
    if rule.subject_type == "department":
        return rule.subject == user.department_code
    return True


def _stay_admissions(ctx: ScopeContext, cfg) -> set[int]:
    """Admissions a treating physician of an open stay reads through ``reading:current_stay``
    (the stay itself and the patient's earlier ones), as ``_current_stay_vote`` decides."""
    if not cfg.current_stay or ctx.action not in cfg.current_stay_actions:
        return set()
    s, no = ctx.session, ctx.user.staff_no
    signed = set(s.scalars(_SIGNED_Q, {"no": no, "roles": list(cfg.current_stay_signer_roles)}))
    out: set[int] = set()
    for stay_id, pid, admitted_at, front_page in s.execute(_OPEN_STAYS_ALL_Q):
        if admitted_at > ctx.now:
            continue
        if stay_id not in signed and no not in _front_page_staff(
                front_page, cfg.current_stay_front_page_keys):
            continue
        if cfg.current_stay_max_days and ctx.now - admitted_at > dt.timedelta(
                days=cfg.current_stay_max_days):
            continue
        out.update(s.scalars(_EARLIER_Q, {"pid": pid, "stay": stay_id, "admitted": admitted_at}))
    return out


def scope(ctx: ScopeContext, rt: Runtime) -> AccessScope | None:
    """``vote`` for every admission at once (the sets a search filters its query by)."""
    if ctx.session is None:
        return None
    cfg = rt.settings(ReadingSettings)
    user = ctx.user
    allow_all = deny_all = False
    allow_ids: set[int] = set()
    allow_depts: set[str] = set()
    deny_depts: set[str] = set()
    rows = ctx.session.scalars(_RULES_Q, {"no": user.staff_no, "roles": sorted(user.roles),
                                          "dept": user.department_code}).all()
    for r in rows:
        if not _rule_subject_applies(r, ctx):
            continue
        if r.until is not None and r.until <= ctx.now:
            continue  # an expired ban says nothing; an expired allow does not count
        if r.record_scope is None:
            records: set[str] | None = None
        elif r.record_scope == OWN_DEPARTMENT:
            records = {user.department_code} if user.department_code else set()
        else:
            records = {r.record_scope}
        if r.effect == "deny":
            if records is None:
                deny_all = True
            else:
                deny_depts |= records
        elif records is None:
            allow_all = True
        else:
            allow_depts |= records
    if ctx.action in cfg.signer_actions:
        allow_ids.update(ctx.session.scalars(_SIGNED_Q, {"no": user.staff_no,
                                                         "roles": list(cfg.signer_roles)}))
    allow_ids |= _stay_admissions(ctx, cfg)
    mine = user.department_code
    for rule in cfg.share:
        if ctx.action not in rule.actions:
            continue
        if rule.roles and not set(rule.roles) & set(user.roles):
            continue
        if rule.to_department == "same":
            if mine and rule.from_department in ("*", mine):
                allow_depts.add(mine)
        elif rule.to_department in ("*", mine):
            if rule.from_department == "*":
                allow_all = True
            else:
                allow_depts.add(rule.from_department)
    if not (allow_all or deny_all or allow_ids or allow_depts or deny_depts):
        return None
    return AccessScope(allow_all=allow_all, allow_admissions=frozenset(allow_ids),
                       allow_departments=frozenset(allow_depts), deny_all=deny_all,
                       deny_departments=frozenset(deny_depts))
