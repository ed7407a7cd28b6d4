"""三员分立 (issue 9, M8): the system administrator, security administrator and auditor are
three people; each of those roles is granted by one of the other two; nobody changes their own
roles; the last auditor stays; and no administrator reads records by default."""

from __future__ import annotations

from bingan.core import records
from bingan.core.permissions import decide
from bingan.core.staff import get_staff, staff_ref
from bingan.hooks.types import AdmissionIn, PatientIn
from webutil import (
    ADMIN_SECRET,
    login_admin,
    make_admin,
    make_staff,
    post_form,
    staff_row,
    web_client,
)


def _roles(rt, no: str) -> set[str]:
    return {r.name for r in staff_row(rt, no).roles}


def _save(c, no: str, roles: list[str]):
    return post_form(c, f"/admin/users/{no}", {"op": "save", "roles": roles})


def test_three_duties_three_people(rt):
    make_admin(rt)                                    # A001, system administrator
    make_staff(rt, "S001", ["auditor"])
    make_staff(rt, "X001", ["secadmin"], totp_secret=ADMIN_SECRET)
    make_staff(rt, "N001", ["physician"])
    with web_client(rt) as admin, web_client(rt) as sec:
        login_admin(admin)
        # nobody changes their own roles (the finding: the administrator made itself auditor
        # and record-room staff)
        for roles in (["admin", "auditor"], ["admin", "records"], ["auditor"]):
            r = _save(admin, "A001", roles)
            assert r.status_code == 400 and "自己的角色" in r.text, roles
        assert _roles(rt, "A001") == {"admin"}
        # two duties for one person: refused, whoever asks
        r = _save(admin, "N001", ["auditor", "secadmin"])
        assert r.status_code == 400 and "兼任" in r.text
        # a duty with a role that reads every record: refused
        r = _save(admin, "N001", ["auditor", "records"])
        assert r.status_code == 400 and "可查阅全部病案" in r.text
        # the system administrator may make an auditor, but not another administrator
        assert _save(admin, "N001", ["auditor"]).status_code in (302, 303)
        r = post_form(admin, "/admin/users", {"staff_no": "N002", "name": "新管理员",
                                              "password": "Fresh-pass-2027", "roles": "admin"})
        assert r.status_code == 400 and "系统管理员角色只能由" in r.text
        assert staff_row(rt, "N002") is None
        # the security administrator may
        login_admin(sec, "X001")
        r = post_form(sec, "/admin/users", {"staff_no": "N002", "name": "新管理员",
                                            "password": "Fresh-pass-2027", "roles": "admin"})
        assert r.status_code in (302, 303), r.text
        assert _roles(rt, "N002") == {"admin"}
        # the last auditor can be neither disabled nor stripped
        assert _save(admin, "S001", ["physician"]).status_code in (302, 303)  # N001 remains
        r = post_form(admin, "/admin/users/N001", {"op": "disable"})
        assert r.status_code == 400 and "最后一名审计员" in r.text
        r = _save(admin, "N001", ["physician"])
        assert r.status_code == 400 and "最后一名审计员" in r.text
        assert staff_row(rt, "N001").active and _roles(rt, "N001") == {"auditor"}


def test_no_administrator_reads_records_by_default(rt):
    make_admin(rt)
    make_staff(rt, "X002", ["secadmin"])
    make_staff(rt, "S002", ["auditor"])
    make_staff(rt, "R002", ["records"])
    with rt.sessions() as s, s.begin():
        import datetime as dt

        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn="00900001", name="王五", sex="M"),
            admission_no="ZY202401009001", visit_no=1,
            admitted_at=dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
            discharged_at=dt.datetime(2024, 1, 9, tzinfo=dt.UTC)))
        for no, allowed in (("A001", False), ("X002", False), ("S002", False), ("R002", True)):
            user = staff_ref(get_staff(s, no))
            assert decide(s, rt, user, adm, "view", record=False).allowed is allowed, no


def test_duty_capabilities_stay_with_the_duty_roles(rt):
    """Nobody gets a duty under another role's name: the administrator cannot give its own
    role (or a new one) the audit log, nor take it from the auditor role."""
    from bingan.core.models import Role
    from bingan.core.staff import ensure_builtin_roles

    make_admin(rt)
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
    with web_client(rt) as admin:
        login_admin(admin)
        for role, perms, words in (
            ("admin", ["admin.users", "admin.roles", "audit.read"], "audit.read 只能属于审计员"),
            ("records", ["records.manage", "audit.export"], "audit.export 只能属于审计员"),
            ("auditor", ["audit.read", "audit.export", "admin.users"], "admin.users 只能属于"),
            ("auditor", ["audit.export"], "审计员角色须保留"),
        ):
            r = post_form(admin, f"/admin/roles/{role}", {"permissions": perms})
            assert r.status_code == 400 and words in r.text, (role, perms, r.text[:200])
        assert post_form(admin, "/admin/roles", {"name": "viewer", "label": "查看"}
                         ).status_code in (302, 303)
        r = post_form(admin, "/admin/roles/viewer", {"permissions": ["audit.read"]})
        assert r.status_code == 400
        ok = post_form(admin, "/admin/roles/viewer", {"permissions": ["admin.plugins"]})
        assert ok.status_code in (302, 303)
    with rt.sessions() as s:
        perms = {r.name: set(r.permissions or []) for r in s.query(Role)}
    assert "audit.read" not in perms["admin"] and "audit.export" not in perms["records"]
    assert {"audit.read", "audit.export"} <= perms["auditor"]
    assert perms["viewer"] == {"admin.plugins"}


def test_console_keeps_the_duties_too(rt):
    """``bingan user``: two duties for one person and disabling the last auditor are refused
    at the server's console as on the web."""
    from click.testing import CliRunner

    from bingan.core.cli import Ctx, build_cli

    make_staff(rt, "S003", ["auditor"])
    obj = Ctx()
    obj._rt = rt
    run = CliRunner().invoke
    r = run(build_cli(rt), ["user", "add", "Z001", "两职", "--role", "admin",
                            "--role", "auditor", "--password", "Fresh-pass-2027"], obj=obj)
    assert r.exit_code != 0 and "兼任" in r.output, r.output
    assert staff_row(rt, "Z001") is None
    r = run(build_cli(rt), ["user", "disable", "S003"], obj=obj)
    assert r.exit_code != 0 and "最后一名审计员" in r.output, r.output
    assert staff_row(rt, "S003").active


def test_no_reading_rule_lets_a_duty_holder_read_records(rt):
    """The administrator (``reading.rules``) cannot give itself, or any of the three duties,
    reading rights through a rule; a deny rule, or a rule for anyone else, still works."""
    import pytest

    from bingan_reading.rules import RuleError, add_rule

    make_admin(rt)
    make_staff(rt, "S004", ["auditor"])
    make_staff(rt, "D004", ["physician"])
    with rt.sessions() as s, s.begin():
        for kw in ({"subject_type": "user", "subject": "A001"},
                   {"subject_type": "user", "subject": "S004"},
                   {"subject_type": "role", "subject": "admin"},
                   {"subject_type": "role", "subject": "secadmin"}):
            with pytest.raises(RuleError, match="三员分立"):
                add_rule(s, rt, actions=["view"], **kw)
        add_rule(s, rt, subject_type="user", subject="A001", effect="deny", actions=["view"])
        add_rule(s, rt, subject_type="user", subject="D004", actions=["view"])
        from bingan.core.models import Role

        role = s.query(Role).filter(Role.name == "admin").one()
        role.permissions = sorted(set(role.permissions or []) | {"reading.rules"})
    with web_client(rt) as admin:
        login_admin(admin)
        r = post_form(admin, "/reading/rules", {"subject_type": "user", "subject": "A001",
                                                "effect": "allow", "actions": "view"})
        assert r.status_code == 400 and "三员分立" in r.text, r.text[:300]


def test_the_administrator_cannot_take_over_the_auditor_by_a_reset(rt):
    make_admin(rt)                                    # A001, system administrator
    make_staff(rt, "S001", ["auditor"], totp_secret=ADMIN_SECRET)
    make_staff(rt, "X001", ["secadmin"], totp_secret=ADMIN_SECRET)
    make_staff(rt, "N001", ["physician"])
    before = staff_row(rt, "S001").password_hash
    with web_client(rt) as admin, web_client(rt) as sec:
        login_admin(admin)
        # the finding: the administrator reset the auditor's password and signed in as them
        for op in ({"op": "password", "password": "Taken-over-2027"}, {"op": "totp_reset"}):
            r = post_form(admin, "/admin/users/S001", op)
            assert r.status_code == 400 and "只能由安全管理员重置" in r.text, op
        assert staff_row(rt, "S001").password_hash == before
        assert staff_row(rt, "S001").totp_secret == ADMIN_SECRET
        # nor another administrator's
        make_admin(rt, "A002")
        r = post_form(admin, "/admin/users/A002", {"op": "totp_reset"})
        assert r.status_code == 400 and "系统管理员的密码和二次验证只能由安全管理员重置" in r.text
        # ordinary staff are still the administrator's to reset
        r = post_form(admin, "/admin/users/N001", {"op": "password", "password": "Fresh-pass-2027"})
        assert r.status_code in (302, 303), r.text
        # the security administrator resets the auditor's, and the administrator the
        # security administrator's
        login_admin(sec, "X001")
        r = post_form(sec, "/admin/users/S001", {"op": "totp_reset"})
        assert r.status_code in (302, 303), r.text
        assert staff_row(rt, "S001").totp_secret is None
        r = post_form(admin, "/admin/users/X001", {"op": "password", "password": "Fresh-pass-2028"})
        assert r.status_code in (302, 303), r.text
