"""The reading policy through core.permissions.decide: the full matrix of roles x relations x
records x actions, deadlines to the second with a frozen clock, current stays, department
sharing and administrators' rules (allow, deny, scopes, expiry)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from reading_world import C, E1, E2, E3, RELATIONS, ROLES, build_world, expected_view, staff_no
from bingan.core import records
from bingan.core.models import AuditEvent, Grant, utcnow
from bingan.core.permissions import decide

from bingan_reading.models import ReadingRule
from bingan_reading.rules import RuleError, add_rule, revoke_rule
from bingan_reading.settings import ShareRule
from bingan_reading.settings import ReadingSettings


def _decide(rt, no, adm_no, action="view", now=None):
    with rt.sessions() as s, s.begin():
        from bingan.core.staff import get_staff, staff_ref

        user = staff_ref(get_staff(s, no))
        return decide(s, rt, user, records.get_admission(s, adm_no), action, now=now,
                      record=False)


def test_matrix_roles_relations_records_actions(world):
    """Every role x relation x record x action: exactly the expected allows, nothing more."""
    rt = world.rt
    got, want = {}, {}
    for role in ROLES:
        for rel in RELATIONS:
            no = staff_no(role, rel)
            for adm in (E1, E2):
                got[(role, rel, adm, "view")] = _decide(rt, no, adm).allowed
                want[(role, rel, adm, "view")] = expected_view(role, rel, adm)
                for action in ("print", "export"):
                    got[(role, rel, adm, action)] = _decide(rt, no, adm, action).allowed
                    want[(role, rel, adm, action)] = role == "records"  # [core.role_actions]
    unexpected = sorted(k for k in got if got[k] and not want[k])
    missing = sorted(k for k in got if want[k] and not got[k])
    assert not unexpected, f"unexpected allows: {unexpected}"
    assert not missing, f"missing allows: {missing}"
    assert len(got) == len(ROLES) * len(RELATIONS) * 2 * 3
    # each allow and deny names its rule
    d = _decide(rt, staff_no("physician", "signer"), E1)
    assert d.allowed and "reading:signer" in d.reason
    assert any(p == "reading" and "主治医师" in v.reason for p, v in d.votes)
    d = _decide(rt, staff_no("nurse", "stay"), E1)
    assert d.allowed and "reading:current_stay" in d.reason
    assert any(C in v.reason and "treating_physicians" in v.reason for _, v in d.votes)
    d = _decide(rt, staff_no("physician", "grant_live"), E1)
    assert d.allowed and d.until is not None and d.reason.startswith("允许（grant:")
    d = _decide(rt, staff_no("physician", "grant_expired"), E1)
    assert not d.allowed and "到期" in d.reason
    d = _decide(rt, staff_no("physician", "rejected"), E1)
    assert not d.allowed and d.reason == "无授权"


def test_signer_and_current_stay_rules(world, monkeypatch):
    rt = world.rt
    cfg = rt.settings(ReadingSettings)
    # signer roles are configurable; by default the physician signer fields only (issue 9)
    nurse_signer = staff_no("nurse", "signer")  # signed E1 as 责任护士
    assert not _decide(rt, nurse_signer, E1).allowed
    monkeypatch.setattr(cfg, "signer_roles", cfg.signer_roles + ["nurse"])
    assert _decide(rt, nurse_signer, E1).allowed
    monkeypatch.setattr(cfg, "signer_roles", ["dept_head", "chief", "attending", "resident"])
    assert not _decide(rt, nurse_signer, E1).allowed
    assert _decide(rt, staff_no("physician", "signer"), E1).allowed
    # an admission open for longer than current_stay_max_days is a missed discharge
    doc = staff_no("physician", "stay")
    later = world.now + dt.timedelta(days=cfg.current_stay_max_days + 5)
    assert not _decide(rt, doc, E1, now=later).allowed
    from bingan_reading.explain import explain

    with rt.sessions() as s:
        assert any("漏报出院" in n.text for n in explain(s, rt, doc, E1, now=later).notes)
    # the current stay reaches every earlier record of the patient, while in hospital
    assert _decide(rt, doc, E3).allowed   # another earlier record of the patient (surgery)
    assert _decide(rt, doc, C).allowed    # the stay itself
    assert not _decide(rt, doc, E2).allowed  # another patient
    assert not _decide(rt, doc, E1, "print").allowed  # only the configured actions
    # the discharge arrives (as a connector would send it): the right ends
    with rt.sessions() as s, s.begin():
        adm = records.get_admission(s, C)
        adm.discharged_at = utcnow()
    assert not _decide(rt, doc, E1).allowed
    assert _decide(rt, doc, C).allowed  # still the attending signer of C (signer rule)


def test_grant_ends_at_the_deadline_to_the_second(world):
    rt = world.rt
    doc = staff_no("physician", "grant_live")
    with rt.sessions() as s:
        from bingan.core.staff import get_staff

        g = s.scalar(select(Grant).where(Grant.staff_id == get_staff(s, doc).id))
        deadline = g.deadline
    second = dt.timedelta(seconds=1)
    assert _decide(rt, doc, E1, now=deadline - second).allowed
    at = _decide(rt, doc, E1, now=deadline)
    assert not at.allowed and "到期" in at.reason
    assert not _decide(rt, doc, E1, now=deadline + second).allowed
    assert not _decide(rt, doc, E3, now=deadline - second).allowed  # only the record applied for


def test_share_rules(world, monkeypatch):
    rt = world.rt
    cfg = rt.settings(ReadingSettings)
    doc, surgeon, nurse = staff_no("physician", "none"), "SURG", staff_no("nurse", "none")
    assert not _decide(rt, doc, E1).allowed
    monkeypatch.setattr(cfg, "share", [ShareRule(from_department="*", to_department="same",
                                                 roles=["physician"])])
    assert _decide(rt, doc, E1).allowed          # 1001 reader, 1001 record
    # the reason a reader sees (查阅依据) is in words, not the rule's codes
    why = [v.reason for _, v in _decide(rt, doc, E1).votes if v.rule == "reading:share"]
    assert why == ["科室共享规则 1（所有科室的病案共享给同一科室人员）"]
    assert not _decide(rt, doc, E2).allowed      # 1005 record
    assert _decide(rt, surgeon, E2).allowed      # 1005 reader, 1005 record
    assert not _decide(rt, nurse, E1).allowed    # role not listed
    assert not _decide(rt, doc, E1, "print").allowed
    # M10: reading shared across all departments of the hospital
    monkeypatch.setattr(cfg, "share", [ShareRule(roles=["physician"])])
    assert _decide(rt, doc, E2).allowed and _decide(rt, surgeon, E1).allowed
    d = _decide(rt, doc, E2)
    assert "reading:share" in d.reason
    monkeypatch.setattr(cfg, "share", [ShareRule(from_department="1005", to_department="1001")])
    why = [v.reason for _, v in _decide(rt, doc, E2).votes if v.rule == "reading:share"]
    assert why == ["科室共享规则 1（普通外科的病案共享给心血管内科人员）"]


def _rule(rt, **kw):
    with rt.sessions() as s, s.begin():
        return add_rule(s, rt, **kw).id


def test_admin_rules_allow_scopes_and_deadline(world):
    rt = world.rt
    doc, surgeon = staff_no("physician", "none"), "SURG"
    until = world.now + dt.timedelta(days=2)
    _rule(rt, subject_type="user", subject=doc, actions=["view"], until=until, note="质控检查")
    assert _decide(rt, doc, E2).allowed
    assert not _decide(rt, doc, E2, now=until).allowed          # ends at the second
    assert _decide(rt, doc, E2, now=until - dt.timedelta(seconds=1)).allowed
    # role rule limited to the reader's own department
    _rule(rt, subject_type="role", subject="physician", actions=["view"], record_scope="$own")
    assert _decide(rt, surgeon, E2).allowed and _decide(rt, surgeon, E3).allowed  # 1005 records
    assert not _decide(rt, surgeon, E1).allowed                                    # a 1001 record
    # department rule for records of one department
    nurse = staff_no("nurse", "none")
    _rule(rt, subject_type="department", subject="1001", actions=["print"], record_scope="1005")
    assert _decide(rt, nurse, E2, "print").allowed and not _decide(rt, nurse, E1, "print").allowed
    assert not _decide(rt, nurse, E2).allowed  # print only

    # a deny beats every allow, can run out, and can be revoked
    signer, rec = staff_no("physician", "signer"), staff_no("records", "none")
    until = world.now + dt.timedelta(hours=1)
    deny1 = _rule(rt, subject_type="user", subject=signer, effect="deny", actions=["view"])
    deny2 = _rule(rt, subject_type="user", subject=rec, effect="deny", actions=["view"],
                  until=until)
    d = _decide(rt, signer, E1)
    assert not d.allowed and f"reading:rule:{deny1}" in d.reason   # beats the signer rule
    assert not _decide(rt, rec, E1).allowed                           # beats [core.role_actions]
    assert _decide(rt, rec, E1, now=until).allowed                    # the ban ran out
    assert _decide(rt, rec, E1, "print").allowed                      # the ban names view only
    with rt.sessions() as s, s.begin():
        revoke_rule(s, rt, deny1)
    assert _decide(rt, signer, E1).allowed
    with rt.sessions() as s:
        assert [e.action for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action.like("reading.rule.%")).order_by(AuditEvent.seq))] == [
            "reading.rule.add"] * 5 + ["reading.rule.revoke"]
    assert deny2


BAD_RULES = [
    ({"subject": "NOBODY"}, "不存在"),
    ({"subject_type": "role", "subject": "pilot"}, "不存在"),
    ({"subject_type": "team"}, "未知的对象类型"),
    ({"actions": ["fly"]}, "未注册"),
    ({"actions": []}, "至少"),
    ({"record_scope": "7777"}, "科室 7777"),
    ({"until": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)}, "晚于"),
    ({"until": dt.datetime(2099, 1, 1)}, "时区"),
    ({"effect": "maybe"}, "未知的规则效果"),
]


def test_bad_rules_store_nothing(world):
    rt = world.rt
    for kw, msg in BAD_RULES:
        args = dict(subject_type="user", subject=staff_no("physician", "none"), actions=["view"])
        args.update(kw)
        with pytest.raises(RuleError, match=msg):
            with rt.sessions() as s, s.begin():
                add_rule(s, rt, **args)
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ReadingRule)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent)
                        .where(AuditEvent.action == "reading.rule.add")) == 0


def test_no_session_no_database_rules(tmp_path):
    """A vote without a session (a caller outside a transaction) only trusts what the
    admission reference carries."""
    from bingan.hooks.types import AccessContext, AdmissionRef, StaffRef

    from bingan_reading.policy import vote
    from reading_world import make_runtime

    rt = make_runtime(tmp_path / "h", f"sqlite:///{tmp_path / 'unused.sqlite3'}")  # current()

    adm = AdmissionRef(1, "00700001", E1, 1, 1, "张三", utcnow(), utcnow(), "1001", "1",
                       frozenset({"D1"}))
    ctx = AccessContext(StaffRef(1, "D1", "甲", "1001", frozenset({"physician"})), adm, "view",
                        utcnow())
    # the default signer roles are the physicians': without a session the role a person
    # signed in is unknown, so no vote; with every front-page role allowed, the name suffices
    assert vote(ctx, rt) is None
    from bingan.core.records import SIGNER_ROLES

    rt.settings(ReadingSettings).signer_roles = list(SIGNER_ROLES)
    assert vote(ctx, rt).rule == "reading:signer"
    other = AccessContext(StaffRef(2, "D2", "乙", "1001", frozenset({"physician"})), adm, "view",
                          utcnow())
    assert vote(other, rt) is None


def test_world_without_relations_denies_everyone_but_roles(rt):
    w = build_world(rt, relations=False)
    for role in ROLES:
        for rel in RELATIONS:
            assert _decide(w.rt, staff_no(role, rel), E1).allowed == (role == "records")
