"""三员分立 and applications: the system administrator, security administrator and auditor read
no records, so they neither see the application pages in the menu nor reach them, cannot apply
by form or by a direct call, and an application one of them made before this was enforced
cannot be approved (the approver is told why). Everyone else keeps what they had, also in a
database made before the ``reading.apply`` capability existed (migration r003)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from sqlalchemy import func, select

from reading_world import ADMIN_SECRET, E1, staff_no
from webutil import login, login_admin, post_form, web_client
from bingan.core.models import Grant, Role, Staff, utcnow

from bingan_reading import applications as apps
from bingan_reading.models import ReadingApplication, ReadingApplicationItem

ADMIN, AUDITOR = staff_no("admin", "none"), staff_no("auditor", "none")
DOCTOR, NURSE = staff_no("physician", "none"), staff_no("nurse", "none")
OWN_PAGES = ("我的查阅申请", "新的查阅申请", "我的查阅授权")


def _sign_in(c, no: str) -> None:
    if no.startswith("ADM"):
        login_admin(c, no, ADMIN_SECRET)
    else:
        r = login(c, no)
        assert r.status_code in (302, 303), r.text


def _count(rt, model) -> int:
    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_duty_roles_neither_see_nor_reach_the_application_pages(world):
    rt = world.rt
    for no in (ADMIN, AUDITOR):
        with web_client(rt) as c:
            _sign_in(c, no)
            home = c.get("/").text
            assert not [label for label in OWN_PAGES if label in home], no
            for url in ("/reading/apply", f"/reading/apply?admission_no={E1}",
                        "/reading/applications", "/reading/grants"):
                r = c.get(url)
                assert r.status_code == 403 and "三员分立" in r.text, (no, url, r.status_code)
                assert "不能提交查阅申请" in r.text
            before = _count(rt, ReadingApplication)
            r = post_form(c, "/reading/apply", {"admission_nos": E1, "reason": "系统维护需要查看",
                                                "days": "3"})
            assert r.status_code == 403 and "三员分立" in r.text
            assert _count(rt, ReadingApplication) == before
            # the refused record page offers no application either, and says why
            denied = c.get(f"/records/{E1}")
            assert denied.status_code == 403 and "/reading/apply" not in denied.text
            assert "不查阅病案，不能提交查阅申请" in denied.text
    with web_client(rt) as c:  # the administrator still manages everyone's grants
        _sign_in(c, ADMIN)
        home = c.get("/").text
        assert 'href="/reading/grants/manage"' in home and 'href="/reading/grants"' not in home
        assert c.get("/reading/grants/manage").status_code == 200
    for no in (DOCTOR, NURSE):  # clinical staff keep every page they had
        with web_client(rt) as c:
            _sign_in(c, no)
            home = c.get("/").text
            assert all(label in home for label in OWN_PAGES), no
            assert "查阅授权管理" not in home
            for url in ("/reading/apply", "/reading/applications", "/reading/grants"):
                assert c.get(url).status_code == 200, (no, url)
            assert c.get("/reading/grants/manage").status_code == 403


def test_apply_refuses_duty_only_applicants(world):
    rt = world.rt
    before = _count(rt, ReadingApplication)
    for no in (ADMIN, AUDITOR):
        with rt.sessions() as s, s.begin(), pytest.raises(apps.ApplicationError,
                                                          match="三员分立.*不能提交查阅申请"):
            apps.apply(s, rt, no, admission_nos=[E1], reason="系统维护需要查看", days=3)
    assert _count(rt, ReadingApplication) == before
    assert apps.duty_refusal(["admin"]) == "三员分立：系统管理员不查阅病案，不能提交查阅申请"
    assert apps.duty_refusal(["secadmin"]).startswith("三员分立：安全管理员")
    # a physician who also is the system administrator works with records: not refused here
    assert apps.duty_refusal(["admin", "physician"]) is None
    assert apps.duty_refusal([]) is None


def _legacy_application(rt, applicant: str) -> int:
    """An application stored as the form stored it before duty roles were refused."""
    with rt.sessions() as s, s.begin():
        st = s.scalar(select(Staff).where(Staff.staff_no == applicant))
        from bingan.core.records import get_admission

        app = ReadingApplication(applicant_id=st.id, reason="旧版本提交的申请", days=5,
                                 applicant_department=st.department.code, status="pending",
                                 approvers=["APPR"], created_at=utcnow(),
                                 items=[ReadingApplicationItem(
                                     admission_id=get_admission(s, E1).id)])
        s.add(app)
        s.flush()
        return app.id


def test_an_application_from_before_the_fix_cannot_be_approved(world):
    rt = world.rt
    app_id = _legacy_application(rt, AUDITOR)
    grants = _count(rt, Grant)
    with web_client(rt) as c:
        _sign_in(c, "APPR")
        detail = c.get(f"/reading/applications/{app_id}").text
        assert 'id="rd-duty-warning"' in detail and "申请人是审计员" in detail
        assert "本申请不能批准，请驳回" in detail
        listing = c.get("/reading/approvals").text
        assert "申请人是审计员" in listing
        r = post_form(c, f"/reading/applications/{app_id}/approve", {"days": "5"})
        assert r.status_code == 400 and "三员分立：申请人是审计员" in r.text
        assert _count(rt, Grant) == grants
        r = post_form(c, f"/reading/applications/{app_id}/approve", {"days": "5"},
                      headers={"hx-request": "true"})  # the approvals list's button
        assert "三员分立" in r.text and _count(rt, Grant) == grants
        r = post_form(c, f"/reading/applications/{app_id}/reject", {"note": "三员分立，不予查阅"})
        assert r.status_code in (302, 303)
    with rt.sessions() as s:
        assert s.get(ReadingApplication, app_id).status == "rejected"
    with web_client(rt) as c:  # and the auditor still reads nothing
        _sign_in(c, AUDITOR)
        assert c.get(f"/records/{E1}").status_code == 403
    with rt.sessions() as s, s.begin(), pytest.raises(apps.ApplicationError, match="三员分立"):
        apps.approve(s, rt, _legacy_application(rt, ADMIN), "APPR")


def _r003():
    path = (Path(apps.__file__).parent / "migrations" / "versions"
            / "r003_apply_permission.py")
    spec = importlib.util.spec_from_file_location("r003_apply_permission", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_migration_gives_existing_roles_what_they_had(world):
    """A database from before reading.apply: every role but the three duties gets it (a
    role an administrator made too), nothing else changes; downgrade takes it away."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    rt = world.rt
    with rt.sessions() as s, s.begin():
        for r in s.scalars(select(Role)):
            r.permissions = sorted(set(r.permissions or []) - {"reading.apply"})
        s.add(Role(name="intern", label="实习医师", permissions=[]))
        s.add(Role(name="secretary", label="科室秘书", permissions=["reading.approve"]))
    with rt.sessions() as s:
        before = {r.name: list(r.permissions or []) for r in s.scalars(select(Role))}
    mod = _r003()
    for step in ("upgrade", "upgrade", "downgrade"):  # upgrading twice changes nothing more
        with rt.engine.begin() as conn:
            with Operations.context(MigrationContext.configure(conn)):
                getattr(mod, step)()
        with rt.sessions() as s:
            after = {r.name: list(r.permissions or []) for r in s.scalars(select(Role))}
        if step == "downgrade":
            assert after == before
            continue
        for name, perms in after.items():
            if name in ("admin", "secadmin", "auditor"):
                assert perms == before[name], name
            else:
                assert perms == sorted(set(before[name]) | {"reading.apply"}), name


def test_new_installation_roles_get_it_by_default(world):
    with world.rt.sessions() as s:
        perms = {r.name: set(r.permissions or []) for r in s.scalars(select(Role))}
    for name in ("records", "clerk", "qc", "physician", "nurse"):
        assert "reading.apply" in perms[name], name
    for name in ("admin", "secadmin", "auditor"):
        assert "reading.apply" not in perms[name], name
