"""Administrators' reading rules: reading rights (or bans) per user, role and department."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core import audit
from bingan.core.models import Department, Role, Staff, utcnow
from bingan.core.permissions import registered_actions

from bingan_reading.models import EFFECTS, OWN_DEPARTMENT, SUBJECT_TYPES, ReadingRule


class RuleError(ValueError):
    """A rule that cannot be stored (unknown subject, action, department; past end)."""


def add_rule(session: Session, rt, *, subject_type: str, subject: str, effect: str = "allow",
             actions: list[str], record_scope: str | None = None,
             until: dt.datetime | None = None, note: str = "",
             actor: audit.Actor | None = None, now: dt.datetime | None = None) -> ReadingRule:
    now = now or utcnow()
    subject = (subject or "").strip()
    if subject_type not in SUBJECT_TYPES:
        raise RuleError(f"未知的对象类型 {subject_type!r}")
    if effect not in EFFECTS:
        raise RuleError(f"未知的规则效果 {effect!r}")
    if not subject:
        raise RuleError("请填写规则对象（工号、角色或科室代码）")
    model, column, label = {"user": (Staff, Staff.staff_no, "工号"),
                            "role": (Role, Role.name, "角色"),
                            "department": (Department, Department.code, "科室")}[subject_type]
    target = session.scalar(select(model).where(column == subject))
    if target is None:
        raise RuleError(f"{label} {subject} 不存在")
    if effect == "allow":  # 三员分立: the three duties read no records through a rule
        from bingan.core.staff import DUTY_ROLES

        duty = (subject if subject_type == "role" and subject in DUTY_ROLES else
                next((r.name for r in target.roles if r.name in DUTY_ROLES), None)
                if subject_type == "user" else None)
        if duty is not None:
            raise RuleError(f"三员分立：{DUTY_ROLES[duty]}不查阅病案，不能为其设查阅规则"
                            "（需要时按查阅申请审批）")
    known = registered_actions(rt)
    actions = [a for a in dict.fromkeys(actions or [])]
    if not actions:
        raise RuleError("请至少选择一项操作")
    bad = [a for a in actions if a not in known]
    if bad:
        raise RuleError(f"未注册的操作 {bad[0]}")
    record_scope = (record_scope or "").strip() or None
    if record_scope not in (None, OWN_DEPARTMENT) and session.scalar(
            select(Department).where(Department.code == record_scope)) is None:
        raise RuleError(f"科室 {record_scope} 不存在")
    if until is not None:
        if until.tzinfo is None:
            raise RuleError("截止时间须带时区")
        if until <= now:
            raise RuleError("截止时间必须晚于当前时间")
    rule = ReadingRule(subject_type=subject_type, subject=subject, effect=effect,
                       actions=actions, record_scope=record_scope, until=until,
                       note=(note or "").strip()[:500],
                       created_by=actor.staff_no if actor else None, created_at=now)
    session.add(rule)
    session.flush()
    audit.record(session, rt, "reading.rule.add", actor=actor,
                 detail={"rule": rule.id, "subject_type": subject_type, "subject": subject,
                         "effect": effect, "actions": actions, "record_scope": record_scope,
                         "until": until.isoformat() if until else None})
    return rule


def revoke_rule(session: Session, rt, rule_id: int, actor: audit.Actor | None = None,
                now: dt.datetime | None = None) -> ReadingRule:
    rule = session.get(ReadingRule, rule_id)
    if rule is None or rule.revoked_at is not None:
        raise RuleError(f"规则 {rule_id} 不存在或已撤销")
    rule.revoked_at = now or utcnow()
    rule.revoked_by = actor.staff_no if actor else None
    audit.record(session, rt, "reading.rule.revoke", actor=actor, detail={"rule": rule_id})
    return rule


def active_rules(session: Session) -> list[ReadingRule]:
    return list(session.scalars(select(ReadingRule).where(ReadingRule.revoked_at.is_(None))
                                .order_by(ReadingRule.id)))
