"""The search UI in a real browser (Debian's headless Chromium via Playwright): the simple
form through htmx, sorting by a header, and the combined builder (add a row, change its field,
negate it, search, save). Both backends; skipped without Chromium (fails under CI)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests"))
import browserutil  # noqa: E402

pytestmark = pytest.mark.browser
HTMX = REPO / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"
PASSWORD = "search@2026x"


@pytest.fixture(scope="module")
def browser():
    if not browserutil.chromium_available() or not HTMX.exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium or node_modules/htmx.org missing (required under CI)")
        pytest.skip("Chromium or node_modules/htmx.org missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, browserutil.launch_chromium(pw) as b:
        yield b


def test_search_ui_in_a_browser(rt, recs, browser):
    from bingan.core.models import Role
    from bingan.core.staff import add_staff, ensure_builtin_roles
    from bingan.core.web.app import create_app

    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        s.add(Role(name="searcher", label="检索员", permissions=["search.use", "search.export"]))
        s.flush()
        add_staff(s, "S0009", "检索员", PASSWORD, None, ["searcher"])
    problems: list[str] = []
    with browserutil.serve_in_thread(create_app(rt)) as base:
        ctx = browser.new_context(viewport=browserutil.VIEWPORT, locale="zh-CN", base_url=base)
        ctx.set_default_timeout(15_000)
        page = ctx.new_page()
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
        page.goto("/login")
        browserutil.login(page, "S0009", PASSWORD)
        page.click("nav.sidebar >> text=病案检索")
        page.wait_for_url("**/search/simple")

        # simple search through htmx: the result block changes, the URL is pushed
        page.fill("input[name=icd]", "k35")
        page.click("#simple-form button.primary")
        page.wait_for_selector("#results tr.hit")
        want = sum(any(d[1].startswith("K35") for d in r.diagnoses) for r in recs)
        assert f"共 {want} 条" in page.inner_text("#result-summary")
        assert "icd=k35" in page.url
        page.click("#results th >> text=病案号")
        page.wait_for_selector("#results th[aria-sort=ascending]")
        mrns = page.eval_on_selector_all("#results tr.hit td:first-child",
                                         "tds => tds.map(td => td.textContent.trim())")
        assert mrns == sorted(mrns)

        # combined builder: choose a field, the row redraws with that field's operators
        page.click(".search-tabs >> text=组合检索")
        page.wait_for_url("**/search/combined")
        page.wait_for_function(
            "document.querySelector(\"select[name='g0.r0.field']\")['htmx-internal-data']")
        page.select_option("select[name='g0.r0.field']", "discharge_way")
        page.wait_for_selector("select[name='g0.r0.value'] >> option[value='5']",
                               state="attached")
        page.select_option("select[name='g0.r0.value']", "1")
        page.check("input[name='g0.r0.not']")
        page.click("#g0 >> text=＋ 添加条件")
        # the new row is in and htmx has wired its selects (a change before that is lost)
        page.wait_for_function("""() => {
            const rows = document.querySelectorAll('#g0 .cond-row');
            return rows.length === 2 && rows[1].querySelector('select')['htmx-internal-data'];
        }""")
        second = page.locator("#g0 .cond-row").nth(1)
        second.locator("select[name$='.field']").select_option("sex")
        page.wait_for_function("document.querySelectorAll('#g0 .cond-row')[1]"
                               ".querySelector(\"select[name$='.value']\")")
        page.locator("#g0 .cond-row").nth(1).locator("select[name$='.value']").select_option("F")
        page.click("#builder button.primary")
        page.wait_for_selector("#results #result-summary")
        want = sum(r.discharge_way != "1" and r.sex == "F" for r in recs)
        assert f"共 {want} 条" in page.inner_text("#result-summary")
        assert "非（离院方式 等于 1医嘱离院）" in page.inner_text("#result-summary")

        page.fill("input[name=save_name]", "女性非医嘱离院")
        page.click("text=保存查询")
        page.wait_for_selector("#saved-list >> text=已保存“女性非医嘱离院”")
        ctx.close()
    assert not problems, problems
