"""End to end in a real browser: the app under uvicorn, Debian's headless Chromium via Playwright.

Log in (a wrong password first), land on the home page, open 审计日志 from the menu, find our
own login there and filter the table through htmx. Runs on SQLite and PostgreSQL (the ``rt``
fixture). Without /usr/bin/chromium the tests are skipped locally and fail under CI.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import browserutil  # noqa: E402  (tests/ is not a package)

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
HTMX = REPO / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"
STAFF_NO, NAME, PASSWORD = "S0001", "审计员甲", "audit@2026x"


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (required under CI)")
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser():
    if not browserutil.chromium_available():
        _missing(f"{browserutil.CHROMIUM} not found; `make browser` installs Debian's chromium")
    if not HTMX.exists():
        _missing("node_modules/htmx.org is missing; run `npm ci`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, browserutil.launch_chromium(pw) as b:
        yield b


@pytest.fixture
def live_server(rt, browser):
    """The real app on a fresh database with one auditor, served on a free local port."""
    from bingan.core.staff import add_staff, ensure_builtin_roles
    from bingan.core.web.app import create_app

    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        add_staff(s, STAFF_NO, NAME, PASSWORD, None, ["auditor"])
    with browserutil.serve_in_thread(create_app(rt)) as base_url:
        yield base_url


@pytest.fixture
def page(browser, live_server):
    ctx = browser.new_context(viewport=browserutil.VIEWPORT, locale="zh-CN",
                              base_url=live_server)
    ctx.set_default_timeout(10_000)
    pg = ctx.new_page()
    pg.problems = []  # console errors and failed static/page loads, checked at the end
    # failed loads are reported by the response event (the wrong-password 401 is expected and
    # the theme has no favicon); Chromium's matching "Failed to load resource" line is noise
    pg.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load")
          and pg.problems.append(f"console: {m.text}"))
    pg.on("pageerror", lambda e: pg.problems.append(f"pageerror: {e}"))
    pg.on("response", lambda r: r.status >= 400 and not r.url.endswith(("/login", "/favicon.ico"))
          and pg.problems.append(f"{r.status} {r.url}"))
    # every page and every htmx fragment must be HTML (a browser shows anything else as text)
    pg.on("response", lambda r: r.status == 200
          and (r.request.resource_type == "document" or r.request.headers.get("hx-request"))
          and "attachment" not in r.headers.get("content-disposition", "")
          and not r.headers.get("content-type", "").startswith("text/html")
          and pg.problems.append(f"{r.url} served as {r.headers.get('content-type')}"))
    yield pg
    ctx.close()


def _audit_rows(page) -> list[dict[str, str]]:
    """The audit table as dicts keyed by column header."""
    return page.evaluate("""() => {
        const t = document.querySelector('#audit-table table');
        const heads = [...t.querySelectorAll('thead th')].map(th => th.textContent.trim());
        return [...t.querySelectorAll('tbody tr')]
            .filter(tr => tr.cells.length === heads.length)
            .map(tr => Object.fromEntries([...tr.cells].map((td, i) =>
                [heads[i], td.textContent.trim()])));
    }""")


def _wait_rows(page, predicate_js: str) -> None:
    """Wait until every row of the audit table satisfies ``predicate_js`` (a JS expression over
    ``cells``, the row's cell texts) and there is at least one row."""
    page.wait_for_function(f"""() => {{
        const rows = [...document.querySelectorAll('#audit-table tbody tr')]
            .map(tr => [...tr.cells].map(td => td.textContent.trim()))
            .filter(cells => cells.length > 1);
        return rows.length > 0 && rows.every(cells => {predicate_js});
    }}""")


def test_login_home_and_audit_filter(page, live_server):
    # Not signed in: / sends us to the login page (and remembers where we wanted to go).
    resp = page.goto("/")
    assert re.search(r"/login\?next=/$", page.url), page.url
    ctype = resp.headers.get("content-type", "")
    assert ctype.startswith("text/html"), (
        f"the login page is served as {ctype!r}, so the browser shows its HTML source as text")
    assert "登录" in page.title()
    assert page.locator("input[name=staff_no]").is_visible()
    assert page.locator("input[name=password]").get_attribute("type") == "password"

    # A wrong password and an unknown staff number get the same message; the 工号 is kept.
    for staff_no, password in ((STAFF_NO, "not-the-password"), ("S0002", PASSWORD)):
        browserutil.login(page, staff_no, password)
        assert "/login" in page.url
        alert = page.locator(".alert.error[role=alert]")
        assert alert.inner_text().strip() == "工号或密码错误"
        assert page.locator("input[name=staff_no]").input_value() == staff_no
        assert page.locator("input[name=password]").input_value() == ""
        assert page.locator(".topbar").count() == 0  # still signed out

    # The right password: home page with the user's name and 工号 in the top bar.
    browserutil.login(page, STAFF_NO, PASSWORD)
    assert page.url == live_server + "/", page.url
    who = page.locator(".topbar .who")
    assert NAME in who.inner_text()
    assert page.locator(".topbar .staffno").inner_text().strip() == f"工号 {STAFF_NO}"
    assert page.locator("main h1").inner_text().strip() == f"您好，{NAME}"

    # The auditor's menu has 审计日志; clicking it opens the full audit page.
    link = page.locator("nav.sidebar").get_by_role("link", name="审计日志", exact=True)
    link.click()
    page.wait_for_url(re.compile(r"/audit$"))
    assert page.locator("main h1").inner_text().strip() == "审计日志"
    assert "active" in (page.locator("nav.sidebar a[href='/audit']").get_attribute("class") or "")

    rows = _audit_rows(page)
    seen = {(r["工号"], r["操作"], r["结果"]) for r in rows}
    assert (STAFF_NO, "登录", "成功") in seen, rows
    assert (STAFF_NO, "登录", "失败") in seen, rows
    assert ("S0002", "登录", "失败") in seen, rows
    ok_row = next(r for r in rows if (r["工号"], r["操作"], r["结果"]) == (STAFF_NO, "登录", "成功"))
    assert ok_row["客户端IP"] == "127.0.0.1"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?", ok_row["时间"]), ok_row

    # Filter by 工号 through htmx: only #audit-table is swapped, the page itself stays.
    page.evaluate("window.__sameDocument = true")
    form = page.locator("form.filters")
    form.locator("input[name=staff_no]").fill("S0002")
    with page.expect_response(lambda r: "/audit?" in r.url) as resp_info:
        form.get_by_role("button", name="查询").click()
    resp = resp_info.value
    assert resp.request.headers.get("hx-request") == "true"
    assert "staff_no=S0002" in resp.url
    _wait_rows(page, "cells[2] === 'S0002'")
    assert page.evaluate("window.__sameDocument") is True, "the filter reloaded the whole page"
    rows = _audit_rows(page)
    assert [(r["工号"], r["操作"], r["结果"]) for r in rows] == [("S0002", "登录", "失败")]
    assert page.locator("#audit-table p.muted").first.inner_text().startswith("共 1 条")
    # the partial, not a whole page, went into the target
    assert page.locator(".topbar").count() == 1
    assert page.locator("#audit-table h1, #audit-table nav, #audit-table form").count() == 0
    # the address bar follows the filter (reload and back keep it) ...
    assert page.url == live_server + "/audit?staff_no=S0002", page.url
    # ... and so does the export: only the filtered events, not the whole log
    with page.expect_download() as dl_info:
        page.get_by_role("link", name="导出 CSV").click()
    csv_text = Path(dl_info.value.path()).read_text(encoding="utf-8-sig")
    lines = [ln for ln in csv_text.splitlines()[1:] if ln.strip()]
    assert len(lines) == 1 and ",S0002,login,登录,failed,失败," in lines[0], csv_text

    # And back to our own events.
    form.locator("input[name=staff_no]").fill(STAFF_NO)
    with page.expect_response(lambda r: "staff_no=S0001" in r.url):
        form.get_by_role("button", name="查询").click()
    _wait_rows(page, f"cells[2] === '{STAFF_NO}'")
    assert page.evaluate("window.__sameDocument") is True
    seen = {(r["工号"], r["操作"], r["结果"]) for r in _audit_rows(page)}
    assert {(STAFF_NO, "登录", "成功"), (STAFF_NO, "登录", "失败")} <= seen, seen
    assert ("S0002", "登录", "失败") not in seen

    # A staff number with no events: the empty-table message.
    form.locator("input[name=staff_no]").fill("S9999")
    with page.expect_response(lambda r: "staff_no=S9999" in r.url):
        form.get_by_role("button", name="查询").click()
    page.locator("#audit-table td", has_text="没有符合条件的事件").wait_for()
    assert page.evaluate("window.__sameDocument") is True

    assert page.problems == [], page.problems

