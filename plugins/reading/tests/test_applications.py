"""Applications to read (M6-M8): approvers resolved from settings and notified in the app and
through the ``notify`` hook; approve with a deadline (never longer than applied for) or reject
with a reason; the applicant is told; bad input stores nothing."""

from __future__ import annotations

import datetime as dt
import types
import uuid

import pytest
from sqlalchemy import func, select

from bingan.hooks import hookimpl
from reading_world import E1, E2, E3, MRN1, staff_no
from bingan.core import grants, records
from bingan.core.models import AuditEvent, Grant, Notification, Staff, utcnow
from bingan.core.permissions import decide

from bingan_reading import applications as apps
from bingan_reading.models import ReadingApplication, ReadingApplicationItem
from bingan_reading.settings import ReadingSettings

APPLICANT = staff_no("physician", "none")  # PHY5, department 1001


def _capture_notify(rt) -> list:
    got: list = []
    mod = types.ModuleType(f"capture_{uuid.uuid4().hex[:8]}")
    mod.notify = hookimpl(lambda notification: got.append(notification))
    rt.pm.register(mod)
    return got


def _notes(rt, no: str) -> list[Notification]:
    with rt.sessions() as s:
        sid = s.scalar(select(Staff.id).where(Staff.staff_no == no))
        rows = list(s.scalars(select(Notification).where(Notification.staff_id == sid)
                              .order_by(Notification.id)))
        s.expunge_all()
        return rows


def _allowed(rt, no, adm_no, now=None) -> bool:
    from bingan.core.staff import get_staff, staff_ref

    with rt.sessions() as s, s.begin():
        return decide(s, rt, staff_ref(get_staff(s, no)), records.get_admission(s, adm_no),
                      "view", now=now, record=False).allowed


def test_approvers_from_settings(world):
    rt = world.rt
    cfg = rt.settings(ReadingSettings)
    with rt.sessions() as s:
        applicant = s.scalar(select(Staff).where(Staff.staff_no == APPLICANT))
        cfg.approvers = {"*": ["role:records"]}
        everyone = apps.resolve_approvers(s, rt, applicant)
        assert "APPR" in everyone and staff_no("records", "none") in everyone
        assert all(n.startswith(("REC", "APPR")) for n in everyone)
        cfg.approvers = {"1001": ["role:physician@department", "staff:SURG"], "*": ["staff:APPR"]}
        dept = apps.resolve_approvers(s, rt, applicant)
        assert "SURG" in dept and APPLICANT not in dept  # never the applicant
        assert all(n.startswith("PHY") or n == "SURG" for n in dept)
        surgeon = s.scalar(select(Staff).where(Staff.staff_no == "SURG"))
        assert apps.resolve_approvers(s, rt, surgeon) == ["APPR"]  # 1005 falls back to "*"


def test_apply_approve_notify_and_deadline(world):
    rt = world.rt
    got = _capture_notify(rt)
    t0 = utcnow()
    with rt.sessions() as s, s.begin():
        app = apps.apply(s, rt, APPLICANT, admission_nos=[E2], reason="会诊需要查阅既往病史",
                         days="7", now=t0)
        app_id = app.id
    approver_note = _notes(rt, "APPR")[-1]
    assert approver_note.title == "新的病案查阅申请待审批"
    assert approver_note.href == f"/reading/applications/{app_id}"
    assert "会诊需要查阅既往病史" in approver_note.body and "7 天" in approver_note.body
    assert [(n.staff_no, n.title) for n in got] == [("APPR", "新的病案查阅申请待审批")]
    assert not _allowed(rt, APPLICANT, E2)
    # the approver may shorten, never lengthen
    with pytest.raises(apps.ApplicationError, match="不超过申请的天数"):
        with rt.sessions() as s, s.begin():
            apps.approve(s, rt, app_id, "APPR", days=8, now=t0)
    with rt.sessions() as s, s.begin():
        apps.approve(s, rt, app_id, "APPR", days=3, now=t0)
    deadline = t0 + dt.timedelta(days=3)
    with rt.sessions() as s:
        app = s.get(ReadingApplication, app_id)
        assert (app.status, app.decided_by, app.deadline) == ("approved", "APPR", deadline)
        g = s.get(Grant, app.items[0].grant_id)
        assert (g.deadline, g.actions, g.source) == (deadline, ["view"], "reading")
    note = _notes(rt, APPLICANT)[-1]
    assert note.title == "病案查阅申请已批准" and note.href == f"/reading/applications/{app_id}"
    assert got[-1].staff_no == APPLICANT
    second = dt.timedelta(seconds=1)
    assert _allowed(rt, APPLICANT, E2, now=deadline - second)
    assert not _allowed(rt, APPLICANT, E2, now=deadline)
    assert not _allowed(rt, APPLICANT, E1, now=deadline - second)  # only what was applied for
    # the expiry job closes the grant and tells the applicant
    with rt.sessions() as s, s.begin():
        assert grants.close_expired(s, rt, now=deadline) >= 1
    assert _notes(rt, APPLICANT)[-1].title == "查阅授权已到期"
    with rt.sessions() as s:
        acts = [e.action for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action.in_(["reading.apply", "reading.approve", "grant.create"]))
            .order_by(AuditEvent.seq))][-3:]
    assert acts == ["reading.apply", "grant.create", "reading.approve"]


def test_patient_wide_application(world):
    rt = world.rt
    with rt.sessions() as s, s.begin():
        app = apps.apply(s, rt, APPLICANT, mrns=[MRN1], admission_nos=[E1],  # E1 is covered
                         reason="随访研究需要", days=2)
        assert len(app.items) == 1 and app.items[0].patient_id is not None
        apps.approve(s, rt, app.id, "APPR")
    assert _allowed(rt, APPLICANT, E1) and _allowed(rt, APPLICANT, E3)
    assert not _allowed(rt, APPLICANT, E2)


def test_reject_cancel_and_who_may_decide(world):
    rt = world.rt
    with rt.sessions() as s, s.begin():
        a1 = apps.apply(s, rt, APPLICANT, admission_nos=[E2], reason="教学病例讨论", days=3).id
        a2 = apps.apply(s, rt, APPLICANT, admission_nos=[E2], reason="教学病例讨论", days=3).id
    with pytest.raises(apps.NotAllowed):
        with rt.sessions() as s, s.begin():
            apps.approve(s, rt, a1, staff_no("physician", "signer"))
    with pytest.raises(apps.ApplicationError, match="驳回理由"):
        with rt.sessions() as s, s.begin():
            apps.reject(s, rt, a1, "APPR", note=" ")
    with rt.sessions() as s, s.begin():
        apps.reject(s, rt, a1, "APPR", note="请通过科室主任申请")
    note = _notes(rt, APPLICANT)[-1]
    assert note.title == "病案查阅申请被驳回" and "请通过科室主任申请" in note.body
    with pytest.raises(apps.ApplicationError, match="已处理"):
        with rt.sessions() as s, s.begin():
            apps.approve(s, rt, a1, "APPR")
    with pytest.raises(apps.NotAllowed):
        with rt.sessions() as s, s.begin():
            apps.cancel(s, rt, a2, "APPR")
    with rt.sessions() as s, s.begin():
        apps.cancel(s, rt, a2, APPLICANT)
    with rt.sessions() as s:
        assert [s.get(ReadingApplication, a).status for a in (a1, a2)] == ["rejected", "cancelled"]
        assert s.scalar(select(func.count()).select_from(Grant).join(
            Staff, Grant.staff_id == Staff.id).where(Staff.staff_no == APPLICANT)) == 0
    assert not _allowed(rt, APPLICANT, E2)


BAD = [
    ({"admission_nos": ["ZY209901999999"]}, "住院号 ZY209901999999 不存在"),
    ({"admission_nos": [], "mrns": ["99999999"]}, "病案号 99999999 不存在"),
    ({"admission_nos": [E2, "ZY209901999999"]}, "不存在"),  # one bad item: nothing stored
    ({"admission_nos": []}, "至少选择"),
    ({"days": 0}, "1 到 30"),
    ({"days": 31}, "1 到 30"),
    ({"days": "三天"}, "整数"),
    ({"reason": "看看"}, "理由"),
    ({"reason": "x" * 1001}, "过长"),
]


def test_bad_applications_store_nothing(world, monkeypatch):
    rt = world.rt
    got = _capture_notify(rt)
    before = len(_notes(rt, "APPR"))
    for kw, msg in BAD:
        args = dict(admission_nos=[E2], reason="会诊需要查阅", days=5)
        args.update(kw)
        with pytest.raises(apps.ApplicationError, match=msg):
            with rt.sessions() as s, s.begin():
                apps.apply(s, rt, APPLICANT, **args)
    monkeypatch.setattr(rt.settings(ReadingSettings), "approvers", {"*": ["staff:NOBODY"]})
    with pytest.raises(apps.ApplicationError, match="审批人"):
        with rt.sessions() as s, s.begin():
            apps.apply(s, rt, APPLICANT, admission_nos=[E2], reason="会诊需要查阅", days=5)
    with rt.sessions() as s:
        mine = s.scalar(select(func.count()).select_from(ReadingApplication).join(
            Staff, ReadingApplication.applicant_id == Staff.id).where(Staff.staff_no == APPLICANT))
        assert mine == 0
        # the world's: three per role that may apply (physician, nurse, records)
        assert s.scalar(select(func.count()).select_from(ReadingApplicationItem)) == 9
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "reading.apply", AuditEvent.staff_no == APPLICANT)) == 0
    assert len(_notes(rt, "APPR")) == before and got == []


def test_split_numbers():
    assert apps.split_numbers("ZY1, ZY2，ZY3\nZY1；ZY4 、 ZY5") == ["ZY1", "ZY2", "ZY3", "ZY4", "ZY5"]
    assert apps.split_numbers(["ZY1 ZY2", "ZY2"]) == ["ZY1", "ZY2"]
    assert apps.split_numbers(None) == []


def test_deny_rule_and_application(world):
    """A ban set by an administrator: the banned physician is not invited to apply (and an
    application is refused, saying why), the approver of an earlier application is warned and
    cannot approve something that would not take effect, and the rule's private note never
    reaches the physician."""
    from bingan_reading.rules import add_rule

    rt = world.rt
    with rt.sessions() as s, s.begin():
        app_id = apps.apply(s, rt, APPLICANT, admission_nos=[E2], reason="会诊需要查阅既往病史",
                            days=3).id
    with rt.sessions() as s, s.begin():
        add_rule(s, rt, subject_type="user", subject=APPLICANT, effect="deny",
                 actions=["view"], note="停职调查")
    # the approver is told plainly, and the approval is refused (nothing granted)
    with rt.sessions() as s:
        blocked = apps.blocked_application(s, s.get(ReadingApplication, app_id))
        assert blocked and "禁止查阅全部病案" in blocked[0] and "停职调查" not in blocked[0]
    with pytest.raises(apps.ApplicationError, match="即使批准也无法查阅，批准不会生效"):
        with rt.sessions() as s, s.begin():
            apps.approve(s, rt, app_id, "APPR")
    with rt.sessions() as s:
        assert s.get(ReadingApplication, app_id).status == "pending"
        assert s.get(ReadingApplication, app_id).items[0].grant_id is None
    # a new application by the banned physician is refused, without the note
    with pytest.raises(apps.ApplicationError) as refused:
        with rt.sessions() as s, s.begin():
            apps.apply(s, rt, APPLICANT, admission_nos=[E1], reason="会诊需要查阅既往病史",
                       days=3)
    assert "查阅申请不能解除该限制" in str(refused.value)
    assert "停职调查" not in str(refused.value)
    # the decision the physician meets names the ban in words, not the note nor a code
    from bingan.core.staff import get_staff, staff_ref

    with rt.sessions() as s:
        d = decide(s, rt, staff_ref(get_staff(s, APPLICANT)), records.get_admission(s, E2),
                   "view", record=False)
    deny = [v for _, v in d.votes if not v.allow]
    assert deny and "停职调查" not in deny[0].reason and "禁止查阅" in deny[0].reason


def test_denied_page_for_a_banned_physician(world):
    from bingan_reading.rules import add_rule
    from webutil import login, web_client

    rt = world.rt
    with rt.sessions() as s, s.begin():
        add_rule(s, rt, subject_type="user", subject=APPLICANT, effect="deny",
                 actions=["view"], note="停职调查")
    with web_client(rt) as c:
        login(c, APPLICANT)
        r = c.get(f"/records/{E2}")
        assert r.status_code == 403
        assert "查阅申请不能解除它" in r.text and 'id="rd-apply"' not in r.text
        assert "停职调查" not in r.text and "reading:rule" not in r.text
        assert "禁止查阅全部病案" in r.text
