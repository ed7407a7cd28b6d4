"""decide(): role policy, grants with deadlines checked at use (to the second), revocation,
patient-wide grants, the expiry job, and an audit event per decision."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bingan.hooks.types import AdmissionIn, PatientIn
from bingan.core import grants, records
from bingan.core.models import AuditEvent, Grant, Notification
from bingan.core.permissions import decide
from bingan.core.staff import add_staff, ensure_builtin_roles, staff_ref

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def world(rt):
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        add_staff(s, "R0001", "病案员", "records@2026", None, ["records"])
        add_staff(s, "D0001", "医生甲", "doctor@2026", None, ["physician"])
        add_staff(s, "A0009", "管理员", "Adm-2026-lane7", None, ["admin"])
        add_staff(s, "S0009", "审计员", "Aud-2026-lane7", None, ["auditor"])
        for i, (mrn, adm) in enumerate([("00300001", "ZY202601000011"),
                                        ("00300001", "ZY202602000012"),
                                        ("00300002", "ZY202602000013")]):
            records.upsert_admission(s, rt, AdmissionIn(
                patient=PatientIn(mrn=mrn, name="患者" + mrn[-1]), admission_no=adm,
                visit_no=i + 1, admitted_at=T0 - dt.timedelta(days=30 - i),
                discharged_at=T0 - dt.timedelta(days=20 - i)))
    return rt


def _user(s, no):
    from bingan.core.staff import get_staff

    return staff_ref(get_staff(s, no))


def test_role_policy(world):
    rt = world
    with rt.sessions() as s, s.begin():
        adm = records.get_admission(s, "ZY202601000011")
        assert decide(s, rt, _user(s, "R0001"), adm, "view").allowed
        assert decide(s, rt, _user(s, "R0001"), adm, "export").allowed
        d = decide(s, rt, _user(s, "D0001"), adm, "view")
        assert not d.allowed and d.reason == "无授权"


def test_grant_deadline_checked_at_use_to_the_second(world):
    rt = world
    deadline = T0 + dt.timedelta(days=3)
    with rt.sessions() as s, s.begin():
        grants.create_grant(s, rt, staff_no="D0001", actions=["view"], deadline=deadline,
                            admission_no="ZY202601000011", reason="科研", now=T0)
    with rt.sessions() as s, s.begin():
        doc = _user(s, "D0001")
        adm = records.get_admission(s, "ZY202601000011")
        other = records.get_admission(s, "ZY202602000012")
        one_sec_before = deadline - dt.timedelta(seconds=1)
        d = decide(s, rt, doc, adm, "view", now=one_sec_before)
        assert d.allowed and d.until == deadline
        assert not decide(s, rt, doc, adm, "view", now=deadline).allowed
        late = decide(s, rt, doc, adm, "view", now=deadline + dt.timedelta(seconds=1))
        assert not late.allowed and "到期" in late.reason
        assert not decide(s, rt, doc, adm, "print", now=one_sec_before).allowed  # other action
        assert not decide(s, rt, doc, other, "view", now=one_sec_before).allowed  # other record
        # not yet started
        assert not decide(s, rt, doc, adm, "view", now=T0 - dt.timedelta(seconds=1)).allowed


def test_patient_wide_grant_and_revocation(world):
    rt = world
    with rt.sessions() as s, s.begin():
        g = grants.create_grant(s, rt, staff_no="D0001", actions=["view"], mrn="00300001",
                                deadline=T0 + dt.timedelta(days=1), now=T0)
    now = T0 + dt.timedelta(hours=1)
    with rt.sessions() as s, s.begin():
        doc = _user(s, "D0001")
        assert decide(s, rt, doc, records.get_admission(s, "ZY202601000011"), "view", now=now).allowed
        assert decide(s, rt, doc, records.get_admission(s, "ZY202602000012"), "view", now=now).allowed
        assert not decide(s, rt, doc, records.get_admission(s, "ZY202602000013"), "view",
                          now=now).allowed
        grants.revoke_grant(s, rt, g.id)
    with rt.sessions() as s, s.begin():
        assert not decide(s, rt, _user(s, "D0001"), records.get_admission(s, "ZY202601000011"),
                          "view", now=now).allowed


@pytest.mark.parametrize("kw, msg", [
    ({"deadline": T0 - dt.timedelta(seconds=1)}, "期限"),
    ({"actions": ["fly"]}, "未注册"),
    ({"admission_no": None}, "须指定"),
    ({"staff_no": "A0009"}, "三员分立：系统管理员不查阅病案"),
    ({"staff_no": "S0009"}, "三员分立：审计员不查阅病案"),
])
def test_bad_grants_refused(world, kw, msg):
    rt = world
    args = dict(staff_no="D0001", actions=["view"], deadline=T0 + dt.timedelta(days=1),
                admission_no="ZY202601000011", now=T0)
    args.update(kw)
    with pytest.raises(grants.GrantError, match=msg):
        with rt.sessions() as s, s.begin():
            grants.create_grant(s, rt, **args)
    with rt.sessions() as s:
        assert s.scalar(select(Grant)) is None


def test_every_decision_is_audited(world):
    rt = world
    with rt.sessions() as s, s.begin():
        adm = records.get_admission(s, "ZY202601000011")
        decide(s, rt, _user(s, "D0001"), adm, "view")
        decide(s, rt, _user(s, "R0001"), adm, "print")
        decide(s, rt, _user(s, "R0001"), adm, "view", record=False)
    with rt.sessions() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action.like("access.%"))
                         .order_by(AuditEvent.seq)).all()
        assert [(r.staff_no, r.action, r.outcome, r.mrn, r.admission_no) for r in rows] == [
            ("D0001", "access.view", "deny", "00300001", "ZY202601000011"),
            ("R0001", "access.print", "allow", "00300001", "ZY202601000011"),
        ]


def test_expiry_job_closes_and_notifies(world):
    rt = world
    with rt.sessions() as s, s.begin():
        grants.create_grant(s, rt, staff_no="D0001", actions=["view"],
                            deadline=T0 + dt.timedelta(minutes=5),
                            admission_no="ZY202601000011", now=T0)
    with rt.sessions() as s, s.begin():
        assert grants.close_expired(s, rt, now=T0 + dt.timedelta(minutes=4)) == 0
        assert grants.close_expired(s, rt, now=T0 + dt.timedelta(minutes=5)) == 1
        assert grants.close_expired(s, rt, now=T0 + dt.timedelta(minutes=6)) == 0
    with rt.sessions() as s:
        note = s.scalar(select(Notification))
        assert note.title == "查阅授权已到期"
        assert s.scalar(select(Grant)).closed_at is not None
