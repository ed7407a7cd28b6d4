"""The theme's one handler for htmx error answers (issue 12), in Chromium: a 4xx answer to an
htmx form is shown in place with the server's own message (an export with an inverted date
range: the button used to do nothing), and cleared by the next request from the same form;
a server that cannot be reached is said too."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import browserutil  # noqa: E402
from webutil import PASSWORD, make_staff  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not browserutil.chromium_available():
        if os.environ.get("CI"):
            pytest.fail(f"{browserutil.CHROMIUM} not found")
        pytest.skip(f"{browserutil.CHROMIUM} not found")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, browserutil.launch_chromium(pw) as b:
        yield b


def test_htmx_error_answers_are_shown_in_place(rt, browser):
    from bingan.core.models import Role
    from bingan.core.web.app import create_app

    make_staff(rt, "R0101", ["records"], name="归档员")
    with rt.sessions() as s, s.begin():
        s.add(Role(name="archivist", label="归档员",
                   permissions=["records.manage", "archive.download", "archive.export"]))
    from sqlalchemy import select

    from bingan.core.models import Staff

    with rt.sessions() as s, s.begin():
        st = s.scalar(select(Staff).where(Staff.staff_no == "R0101"))
        st.roles.append(s.scalar(select(Role).where(Role.name == "archivist")))
    with browserutil.serve_in_thread(create_app(rt)) as base:
        ctx = browser.new_context(viewport=browserutil.VIEWPORT, locale="zh-CN", base_url=base)
        ctx.set_default_timeout(15_000)
        pg = ctx.new_page()
        problems: list[str] = []
        pg.on("pageerror", lambda e: problems.append(str(e)))
        pg.goto("/login?next=/archive")
        browserutil.login(pg, "R0101", PASSWORD)
        pg.wait_for_url("**/archive")
        form = "form[hx-post='/archive/exports']"
        pg.fill(f"{form} input[name=from]", "2026-05-10")
        pg.fill(f"{form} input[name=to]", "2026-05-01")
        pg.click(f"{form} button[type=submit]")
        box = pg.locator(".htmx-error")
        box.wait_for()
        assert box.inner_text() == "开始日期晚于结束日期"
        assert box.get_attribute("role") == "alert"
        # shown just above the form that sent it, and nothing was queued
        assert pg.evaluate("(sel) => document.querySelector(sel).previousElementSibling"
                           ".classList.contains('htmx-error')", form)
        assert "暂无导出任务" in pg.locator("#archive-jobs").inner_text()
        # the next request from the same form clears it; this one succeeds
        pg.fill(f"{form} input[name=to]", "2026-05-31")
        pg.click(f"{form} button[type=submit]")
        pg.locator("#archive-jobs .job").first.wait_for()
        assert pg.locator(".htmx-error").count() == 0
        # a server that does not answer at all is said too
        ctx.set_offline(True)
        pg.click(f"{form} button[type=submit]")
        pg.locator(".htmx-error").wait_for()
        assert "无法连接服务器" in pg.locator(".htmx-error").inner_text()
        ctx.set_offline(False)
        assert not problems, problems
        ctx.close()
