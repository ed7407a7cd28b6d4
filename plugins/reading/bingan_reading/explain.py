"""``bingan access explain``: the decision on one (staff member, record, action) and every vote
behind it, with the grants and applications that bear on it: the answer to "why can't
Dr. X open this record?"."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bingan.hooks.types import AccessContext, AdmissionRef, StaffRef, Vote
from bingan.core.models import Grant, utcnow
from bingan.core.permissions import Decision, decide, registered_actions
from bingan.core.records import get_admission, to_ref
from bingan.core.staff import get_staff, staff_ref

from bingan_reading.applications import local
from bingan_reading.models import (
    STATUS_LABELS, ReadingApplication, ReadingApplicationItem, ReadingRule,
)
from bingan_reading.policy import ACTION_WORDS, RULE_PREFIX, Note, opinions


@dataclass
class GrantLine:
    id: int
    scope: str
    actions: list[str]
    deadline: dt.datetime
    status: str
    source: str
    reason: str


@dataclass
class Explanation:
    staff: StaffRef
    admission: AdmissionRef
    action: str
    now: dt.datetime
    decision: Decision
    reading: list[Vote] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    grants: list[GrantLine] = field(default_factory=list)
    applications: list[tuple[int, str, dt.datetime, str]] = field(default_factory=list)
    rule_notes: dict[str, str] = field(default_factory=dict)  # administrators' notes, by rule


def _grant_status(g: Grant, now: dt.datetime, tz: dt.tzinfo) -> str:
    if g.revoked_at is not None:
        return f"已撤销（{local(g.revoked_at, tz)}）"
    if g.starts_at and g.starts_at > now:
        return "尚未生效"
    if g.deadline <= now:
        return "已到期"
    return "有效"


def explain(session: Session, rt, staff_no: str, admission_no: str, action: str = "view",
            now: dt.datetime | None = None) -> Explanation:
    """Raises StaffError / RecordError / UnknownAction for unknown input."""
    now = now or utcnow()
    staff_row = get_staff(session, staff_no)
    user = staff_ref(staff_row)
    adm = get_admission(session, admission_no)
    decision = decide(session, rt, user, adm, action, now=now, record=False)
    ref = to_ref(adm)
    ctx = AccessContext(user=user, admission=ref, action=action, now=now, session=session)
    reading, notes = opinions(ctx, rt)
    out = Explanation(user, ref, action, now, decision, reading, notes)
    # the explanation is for administrators: it shows the rules' private notes, which the
    # votes (what the staff member meets) never carry
    for v in reading:
        if v.rule.startswith(RULE_PREFIX):
            rule = session.get(ReadingRule, int(v.rule[len(RULE_PREFIX):]))
            if rule is not None and rule.note:
                out.rule_notes[v.rule] = rule.note
    grants = session.scalars(select(Grant).where(
        Grant.staff_id == staff_row.id,
        or_(Grant.admission_id == adm.id, Grant.patient_id == adm.patient_id))
        .order_by(Grant.id)).all()
    for g in grants:
        scope = f"住院号 {admission_no}" if g.admission_id else f"病案号 {ref.mrn} 全部病案"
        out.grants.append(GrantLine(g.id, scope, list(g.actions or []), g.deadline,
                                    _grant_status(g, now, rt.tz), g.source, g.reason or ""))
    apps = session.scalars(
        select(ReadingApplication).join(ReadingApplicationItem)
        .where(ReadingApplication.applicant_id == staff_row.id,
               or_(ReadingApplicationItem.admission_id == adm.id,
                   ReadingApplicationItem.patient_id == adm.patient_id))
        .order_by(ReadingApplication.id)).unique().all()
    for a in apps:
        out.applications.append((a.id, STATUS_LABELS.get(a.status, a.status), a.created_at,
                                 a.decision_note or ""))
    return out


RULE_WORDS = {"reading:signer": "首页签名", "reading:current_stay": "在院经治",
              "reading:share": "科室共享", "role": "角色权限", "grant": "查阅授权",
              "reading:rule": "管理员规则", "api-client": "接口客户端"}


def rule_words(rule: str) -> str:
    """A vote's rule code in words (reading:rule:2 -> 管理员规则 #2)."""
    base, _, rest = rule.rpartition(":") if rule.count(":") >= 1 else (rule, "", "")
    if rule in RULE_WORDS:
        return RULE_WORDS[rule]
    if base in RULE_WORDS:
        return f"{RULE_WORDS[base]} #{rest}" if rest.isdigit() else RULE_WORDS[base]
    head = rule.split(":", 1)[0]
    return RULE_WORDS.get(head, rule)


def _vote_line(v: Vote, tz: dt.tzinfo, words: bool = False) -> str:
    mark = "允许" if v.allow else "拒绝"
    tail = f"  有效至 {local(v.until, tz)}" if v.until else ""
    grant = f"（授权 #{v.grant_id}）" if v.grant_id else ""
    return f"[{mark}] {rule_words(v.rule) if words else v.rule}  {v.reason}{tail}{grant}"


def render_text(e: Explanation, rt, *, words: bool = False, session=None) -> str:
    """The explanation as text. ``words`` (the web page): departments, roles, actions and
    rules by name, no internal codes; the CLI keeps the codes an integrator greps for."""
    from bingan.core.models import Role
    from bingan.core.staff import department_names

    label = registered_actions(rt)[e.action].label
    u, a = e.staff, e.admission
    depts = department_names(session) if (words and session is not None) else {}
    roles = sorted(u.roles)
    if words and session is not None:
        names = dict(session.execute(select(Role.name, Role.label)
                                     .where(Role.name.in_(roles))).all())
        roles = [names.get(r, r) for r in roles]

    def dept(code):
        return f"{depts[code]}（{code}）" if code in depts else (code or "")

    lines = [
        f"人员：{u.staff_no} {u.name}（科室 {dept(u.department_code) or '无'}，"
        f"角色 {'、'.join(roles) or '无'}）",
        f"病案：住院号 {a.admission_no}，病案号 {a.mrn} {a.patient_name}，第 {a.visit_no} 次住院，"
        f"出院科室 {dept(a.discharge_department) or '—'}，"
        + (f"出院 {local(a.discharged_at, rt.tz)}" if a.discharged_at else "在院"),
        (f"操作：{label}  判定时间：{local(e.now, rt.tz)}" if words else
         f"操作：{e.action}（{label}）  判定时间：{local(e.now, rt.tz)}"),
        "",
        "各插件的投票（每个插件一票；拒绝优先，没有有效的允许即拒绝）：",
    ]
    if not e.decision.votes:
        lines.append("  （没有任何插件投票）")
    for plugin, v in e.decision.votes:
        expired = v.allow and v.until is not None and v.until <= e.now
        who = "" if words else f"{plugin}: "
        lines.append(f"  {who}{_vote_line(v, rt.tz, words)}" + ("  ← 已过期，不计" if expired else ""))
    lines += ["", "阅读插件的全部规则命中："]
    if not e.reading:
        lines.append("  （无：不是首页签名人，不是在院患者的经治医师，没有共享规则或管理员规则命中）")
    for v in e.reading:
        note = e.rule_notes.get(v.rule)
        lines.append(f"  {_vote_line(v, rt.tz, words)}" + (f"（管理员备注：{note}）" if note else ""))
    for n in e.notes:
        lines.append(f"  说明 {rule_words(n.rule) if words else n.rule}：{n.text}")
    lines += ["", "该人员在此病案（或该患者）上的授权："]
    if not e.grants:
        lines.append("  （无）")
    for g in e.grants:
        acts = "、".join(ACTION_WORDS.get(x, x) for x in g.actions) if words else \
            "、".join(g.actions)
        source = {"reading": "查阅申请", "admin": "管理员", "emr_launch": "电子病历调阅"}.get(
            g.source, g.source) if words else g.source
        lines.append(f"  #{g.id} {g.scope} {acts} 至 {local(g.deadline, rt.tz)} "
                     f"— {g.status}（来源 {source}{'，' + g.reason if g.reason else ''}）")
    lines += ["", "该人员的相关查阅申请："]
    if not e.applications:
        lines.append("  （无）")
    for app_id, status, created, note in e.applications:
        lines.append(f"  #{app_id} {status}，提交于 {local(created, rt.tz)}"
                     + (f"，驳回理由：{note}" if note else ""))
    verdict = "允许" if e.decision.allowed else "拒绝"
    until = (f"，有效至 {local(e.decision.until, rt.tz)}"
             if e.decision.allowed and e.decision.until else "")
    reason = e.decision.reason
    if words:
        now = e.now
        effective = ([v for _, v in e.decision.votes if not v.allow] if not e.decision.allowed
                     else [v for _, v in e.decision.votes
                           if v.allow and (v.until is None or v.until > now)])
        reason = "；".join(f"{rule_words(v.rule)}：{v.reason}" for v in effective) or (
            "没有任何允许（无签名、无授权、无规则）")
    lines += ["", f"结论：{verdict} — {reason}{until}"]
    return "\n".join(lines)
