"""The home page ``/`` by role (core.web.home): the panels plugins contribute through
``home_panels``, filtered by the same permissions as their pages; core's own panels (system
health for the administrator, the day's refusals for the auditor, the archive's size for the
record room)."""

from __future__ import annotations

from homeutil import home_links, home_panels
from webutil import login, login_admin, make_admin, make_staff, web_client
from bingan.core.models import Task
from bingan.hooks import hookimpl
from bingan.hooks.types import HomeItem, HomePanel


class Extra:
    """A plugin of the test's own: one panel for everyone, one for QC inspectors only."""

    @staticmethod
    def home_panels(staff, session, rt):
        assert session is not None and staff.staff_no
        return [HomePanel("x.qc", "质控专用", (HomeItem("待检", 7, "/x/qc", "warn"),),
                          permission="qc.inspect", order=1),
                HomePanel("x.all", "全员", (HomeItem("我的待办", 3, "/x/mine"),
                                            HomeItem("说明"),), order=2, note="说明文字")]


def test_hook_home_panels(rt):
    Extra.home_panels = hookimpl(Extra.home_panels)
    rt.pm.register(Extra, name="extra-home")
    make_staff(rt, "NUR1", ["nurse"])
    make_staff(rt, "QC1", ["qc"])
    with web_client(rt) as c:
        assert login(c, "NUR1").status_code in (302, 303)
        r = c.get("/")
        assert r.status_code == 200
        panels = home_panels(r.text)
        # the nurse lacks qc.inspect: the inspector's panel is not on her page at all
        assert "x-qc" not in panels and "/x/qc" not in r.text and "质控专用" not in r.text
        assert panels["x-all"] == {"我的待办": "3", "说明": ""} and "说明文字" in r.text
        c.cookies.clear()
        assert login(c, "QC1").status_code in (302, 303)
        r = c.get("/")
        panels = home_panels(r.text)
        assert list(panels)[:2] == ["x-qc", "x-all"]  # in order
        assert panels["x-qc"] == {"待检": "7"} and 'class="home-item tone-warn"' in r.text


def test_core_panels_by_role(rt):
    """The administrator sees the system's health (a failed task, pending work), the auditor
    today's refusals and failed sign-ins, the record room the archive's size; each sees no
    other's panel, and nobody sees a record."""
    make_admin(rt, "A001")
    make_staff(rt, "AUD1", ["auditor"])
    make_staff(rt, "REC1", ["records"])
    make_staff(rt, "NUR1", ["nurse"])
    with rt.sessions() as s, s.begin():
        s.add(Task(kind="x.job", payload={}, status="failed", attempts=5, last_error="boom"))
        s.add(Task(kind="x.job", payload={}, status="queued"))
    with web_client(rt) as c:
        assert login(c, "NUR1", password="wrong-password-1").status_code == 401
        assert login(c, "NUR1").status_code in (302, 303)
        assert c.get("/audit").status_code == 403  # a refusal the auditor will count
        nurse = home_panels(c.get("/").text)
        assert not {"core-health", "core-audit", "core-archive"} & set(nurse)
        c.cookies.clear()
        login_admin(c, "A001")
        r = c.get("/")
        health = home_panels(r.text)["core-health"]
        assert health["失败的后台任务"] == "1" and health["排队及运行中的任务"] == "1"
        assert health["待执行的数据库升级"] == "0" and "bingan tasks status" in r.text
        assert "core-audit" not in home_panels(r.text)  # 三员分立: the admin reads no audit
        assert {"/admin/sessions", "/admin/users"} <= home_links(r.text)["core-health"]
        assert "已启用的功能" in r.text
        c.cookies.clear()
        assert login(c, "AUD1").status_code in (302, 303)
        r = c.get("/")
        panels = home_panels(r.text)
        assert "core-health" not in panels and "已启用的功能" not in r.text
        assert panels["core-audit"]["登录失败"] == "1"
        assert int(panels["core-audit"]["拒绝访问"]) >= 1
        for href in home_links(r.text)["core-audit"]:
            assert c.get(href).status_code == 200, href  # each figure opens its audit list
        c.cookies.clear()
        assert login(c, "REC1").status_code in (302, 303)
        panels = home_panels(c.get("/").text)
        assert panels["core-archive"] == {"病案总数": "0", "在院患者": "0"}
        assert "core-health" not in panels and "core-audit" not in panels
