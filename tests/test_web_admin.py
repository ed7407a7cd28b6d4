"""Administration pages over HTTP: departments, users, roles and role permissions.

Every change must be audited and must change what the affected staff member can reach on
their very next request. Every test runs on SQLite and PostgreSQL (fixture ``rt``).
"""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from bingan.core.models import Department, Role
from webutil import (
    events, login, login_admin, make_admin, make_staff, nav_labels, post_form, staff_row,
    web_client,
)


def _redirects_to(r, target: str) -> bool:
    """A redirect to ``target`` (a success message may ride along as ``?msg=``)."""
    return r.status_code in (302, 303) and r.headers["location"].split("?msg=")[0] == target


def test_departments_and_users_are_added_edited_and_audited(rt):
    make_admin(rt)
    make_staff(rt, "S900", ["auditor"])  # N300 is not the last auditor when it loses the role
    with web_client(rt) as admin, web_client(rt) as user:
        login_admin(admin)

        # departments
        r = post_form(admin, "/admin/departments", {"code": "NK", "name": "内科"})
        assert _redirects_to(r, "/admin/departments")
        r = post_form(admin, "/admin/departments", {"code": "NK", "name": "又一个内科"})
        assert r.status_code == 400
        assert "科室代码 NK 已存在" in r.text
        with rt.sessions() as s:
            assert [(d.code, d.name, d.kind) for d in s.scalars(select(Department))] == [
                ("NK", "内科", "clinical")]

        # a new user
        r = post_form(admin, "/admin/users", {"staff_no": "N300", "name": "张三", "title": "主治医师",
                                              "password": "Initial-pass-1", "department": "NK",
                                              "roles": ["physician"]})
        assert _redirects_to(r, "/admin/users")
        st = staff_row(rt, "N300")
        assert (st.name, st.title, st.active) == ("张三", "主治医师", True)
        assert [x.name for x in st.roles] == ["physician"]
        # refused input: nothing is created, the list page says why (and lists the users)
        r = post_form(admin, "/admin/users", {"staff_no": "N301", "name": "李四",
                                              "password": "short", "roles": ["physician"]})
        assert r.status_code == 400 and "密码至少 8 位" in r.text
        r = post_form(admin, "/admin/users", {"staff_no": "N302", "name": "王五",
                                              "password": "Initial-pass-1", "roles": ["nosuch"]})
        assert r.status_code == 400 and "角色 nosuch 不存在" in r.text
        r = post_form(admin, "/admin/users", {"staff_no": "N300", "name": "重复",
                                              "password": "Initial-pass-1"})
        assert r.status_code == 400 and "工号 N300 已存在" in r.text
        assert 'href="/admin/users/N300"' in r.text and "张三" in r.text
        assert staff_row(rt, "N301") is None and staff_row(rt, "N302") is None
        assert staff_row(rt, "N300").name == "张三"

        # the new user signs in with the initial password
        r = login(user, "N300", "Initial-pass-1")
        assert r.status_code in (302, 303), r.text
        assert user.get("/api/me").status_code == 403  # the initial password is changed first
        r = post_form(user, "/account/password", {"current": "Initial-pass-1",
                                                  "password": "Own-pass-2026",
                                                  "confirm": "Own-pass-2026"})
        assert r.status_code in (302, 303), r.text
        me = user.get("/api/me").json()
        assert (me["department"], me["roles"], me["permissions"]) == ("NK", ["physician"], [])
        denied = user.get("/audit")
        assert denied.status_code == 403
        assert "查看审计日志" in denied.text  # the capability's label, not only its code

        # edit: roles take effect on the user's next request, no new sign-in needed
        r = post_form(admin, "/admin/users/N300", {"op": "save", "name": "张三丰",
                                                   "department": "NK",
                                                   "roles": ["physician", "auditor"]})
        assert _redirects_to(r, "/admin/users/N300")
        assert user.get("/audit").status_code == 200
        assert "审计日志" in nav_labels(user.get("/").text)
        r = post_form(admin, "/admin/users/N300", {"op": "save", "roles": ["physician"]})
        assert _redirects_to(r, "/admin/users/N300")
        assert user.get("/audit").status_code == 403
        st = staff_row(rt, "N300")
        assert st.name == "张三丰" and st.department is None  # department cleared by the form

        # reset the password
        r = post_form(admin, "/admin/users/N300", {"op": "password", "password": "Second-pass-2"})
        assert _redirects_to(r, "/admin/users/N300")
        assert login(user, "N300", "Initial-pass-1").status_code == 401
        assert login(user, "N300", "Second-pass-2").status_code in (302, 303)

        # unlock a locked account
        for i in range(rt.config.core.lockout_failures):
            login(user, "N300", f"wrong-{i}-password")
        assert "次数过多" in login(user, "N300", "Second-pass-2").text
        r = post_form(admin, "/admin/users/N300", {"op": "unlock"})
        assert _redirects_to(r, "/admin/users/N300")
        assert login(user, "N300", "Second-pass-2").status_code in (302, 303)

        r = post_form(admin, "/admin/users/NOSUCH", {"op": "disable"})
        assert r.status_code == 404

    [dep] = events(rt, "admin.department.add")
    assert (dep.staff_no, json.loads(dep.detail)) == ("A001", {"code": "NK", "name": "内科"})
    [add] = events(rt, "admin.user.add")
    assert (add.staff_no, json.loads(add.detail)) == (
        "A001", {"staff_no": "N300", "roles": ["physician"]})
    saves = [json.loads(e.detail) for e in events(rt, "admin.user.save")]
    assert saves == [
        {"staff_no": "N300", "op": "save", "roles": ["auditor", "physician"], "department": "NK"},
        {"staff_no": "N300", "op": "save", "roles": ["physician"], "department": None}]
    assert [json.loads(e.detail)["op"] for e in events(rt, "admin.user.password")] == ["password"]
    assert len(events(rt, "admin.user.unlock")) == 1
    assert all(e.staff_no == "A001" and e.client_ip == "127.0.0.1"
               for e in events(rt) if e.action.startswith("admin."))


def test_role_permission_update_changes_what_the_role_reaches(rt):
    make_admin(rt)
    make_staff(rt, "D200", ["physician"])
    with web_client(rt) as admin, web_client(rt) as user:
        login(user, "D200")
        assert user.get("/admin/plugins").status_code == 403
        assert "插件" not in nav_labels(user.get("/").text)

        login_admin(admin)
        page = admin.get("/admin/roles")
        assert page.status_code == 200
        assert 'action="/admin/roles/physician"' in page.text
        r = post_form(admin, "/admin/roles/physician",
                      {"permissions": ["admin.plugins", "no.such.permission"]})
        assert r.status_code in (302, 303) and r.headers["location"] == "/admin/roles"

        assert user.get("/admin/plugins").status_code == 200
        assert "插件" in nav_labels(user.get("/").text)
        assert user.get("/admin/sessions").status_code == 403  # admin.sessions not granted
        roles_page = admin.get("/admin/roles").text
        form = re.search(r'action="/admin/roles/physician".*?</form>', roles_page, re.S).group(0)
        assert re.search(r'value="admin.plugins"\s+checked', form)
        assert not re.search(r'value="admin.sessions"\s+checked', form)
        # a duty's capability (the audit log) stays with the duty's role (三员分立)
        r = post_form(admin, "/admin/roles/physician", {"permissions": ["audit.read"]})
        assert r.status_code == 400 and user.get("/audit").status_code == 403

        # taking the permission away works the same way
        r = post_form(admin, "/admin/roles/physician", {})
        assert r.status_code in (302, 303)
        assert user.get("/admin/plugins").status_code == 403

        assert post_form(admin, "/admin/roles/nosuch", {"permissions": ["audit.read"]}) \
            .status_code == 404
    with rt.sessions() as s:
        assert s.scalar(select(Role.permissions).where(Role.name == "physician")) == []
    updates = [(e.staff_no, json.loads(e.detail)) for e in events(rt, "admin.role.update")]
    assert updates == [
        ("A001", {"role": "physician", "old": [], "new": ["admin.plugins"]}),
        ("A001", {"role": "physician", "old": ["admin.plugins"], "new": []})]


def test_admin_get_pages_render(rt):
    make_admin(rt)
    make_staff(rt, "N400", ["physician"], name="赵六", department="WK")
    with web_client(rt) as admin:
        login_admin(admin)
        r = admin.get("/admin/users")
        assert r.status_code == 200
        assert 'href="/admin/users/N400"' in r.text and "赵六" in r.text
        assert "用户管理" in nav_labels(r.text)
        r = admin.get("/admin/users/N400")
        assert r.status_code == 200 and "工号 N400" in r.text
        r = admin.get("/admin/departments")
        assert r.status_code == 200 and "WK" in r.text
    with web_client(rt) as c:
        login(c, "A001")
        assert c.get("/login/totp").status_code == 200


def test_password_reset_too_short_is_a_400_with_the_reason(rt):
    make_admin(rt)
    make_staff(rt, "N500", ["physician"])
    with web_client(rt) as admin:
        login_admin(admin)
        r = post_form(admin, "/admin/users/N500", {"op": "password", "password": "short"})
        assert r.status_code == 400
        assert "密码至少 8 位" in r.text
    assert events(rt, "admin.user.password") == []


def test_unknown_user_operation_is_refused_and_not_audited(rt):
    make_admin(rt)
    make_staff(rt, "N501", ["physician"])
    with web_client(rt) as admin:
        login_admin(admin)
        r = post_form(admin, "/admin/users/N501", {"op": "bogus"})
        assert r.status_code == 400
    assert [e.action for e in events(rt) if e.action.startswith("admin.user.")] == []


def test_new_role_is_added_audited_and_validated(rt):
    make_admin(rt)
    with web_client(rt) as admin:
        login_admin(admin)
        r = post_form(admin, "/admin/roles", {"name": "coder", "label": "编码员"})
        assert r.status_code in (302, 303)
        assert post_form(admin, "/admin/roles", {"name": "coder", "label": "重复"}).status_code == 400
        assert post_form(admin, "/admin/roles", {"name": "Bad Name!", "label": "x"}).status_code == 400
        assert "编码员" in admin.get("/admin/roles").text
    with rt.sessions() as s:
        assert [r.label for r in s.scalars(select(Role).where(Role.name == "coder"))] == ["编码员"]
    assert [e.outcome for e in events(rt, "admin.role.add")] == ["ok"]


def test_department_names_are_cached_and_a_new_department_shows_at_once(rt):
    from bingan.core.staff import add_department, department_names

    with rt.sessions() as s, s.begin():
        add_department(s, "D77", "康复医学科")
        assert department_names(s)["D77"] == "康复医学科"
    with rt.sessions() as s, s.begin():  # cached: a row written around core is not seen yet
        s.add(Department(code="D78", name="旁路科室"))
        s.flush()
        assert "D78" not in department_names(s)
        add_department(s, "D79", "老年医学科")  # adding through core clears the cache
        names = department_names(s)
        assert names["D79"] == "老年医学科" and names["D78"] == "旁路科室"


def test_user_actions_say_what_happened_and_users_can_be_found(rt):
    make_admin(rt)
    make_staff(rt, "D0007", ["physician"])
    with web_client(rt) as admin:
        login_admin(admin)
        r = post_form(admin, "/admin/users", {"staff_no": "D0008", "name": "郑雅琴",
                                              "password": "Zhx-2026-pass", "roles": "physician"})
        assert r.status_code in (302, 303)
        assert "已新增用户 郑雅琴（工号 D0008）" in admin.get(r.headers["location"]).text
        page_html = admin.get("/admin/users/D0007").text
        # the destructive buttons ask first, in words
        assert 'data-confirm="停用' in page_html and 'data-confirm="重置' in page_html
        r = post_form(admin, "/admin/users/D0007", {"op": "disable"})
        assert "账号已停用" in admin.get(r.headers["location"]).text
        r = post_form(admin, "/admin/users/D0007", {"op": "password", "password": "New-pass-2026x"})
        assert "密码已重置" in admin.get(r.headers["location"]).text
        found = admin.get("/admin/users", params={"q": "d0007"}).text
        assert "/admin/users/D0007" in found and "/admin/users/D0008" not in found
        assert "/admin/users/D0008" in admin.get("/admin/users", params={"q": "郑"}).text


def test_departments_are_renamed_and_disabled(rt):
    make_admin(rt)
    with web_client(rt) as admin:
        login_admin(admin)
        post_form(admin, "/admin/departments", {"code": "NK", "name": "内科"})
        r = post_form(admin, "/admin/departments/NK", {"op": "save", "name": "大内科",
                                                       "kind": "clinical"})
        assert r.status_code in (302, 303)
        assert "已保存科室 大内科（NK）" in admin.get(r.headers["location"]).text
        r = post_form(admin, "/admin/departments/NK", {"op": "disable"})
        assert "科室 大内科（NK）已停用" in admin.get(r.headers["location"]).text
        assert 'data-confirm="启用科室 大内科' in admin.get("/admin/departments").text
        assert post_form(admin, "/admin/departments/NK", {"op": "save", "name": " "}
                         ).status_code == 400
        assert post_form(admin, "/admin/departments/XX", {"op": "disable"}).status_code == 400
    with rt.sessions() as s:
        d = s.scalar(select(Department).where(Department.code == "NK"))
        assert (d.name, d.active) == ("大内科", False)
    assert [e.action for e in events(rt, "admin.department.update")] == [
        "admin.department.update"] * 2
