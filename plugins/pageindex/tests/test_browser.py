"""The correction page in a real browser (Debian's headless Chromium through Playwright):
keyboard only — move between pages, set a type with number keys, move a page with Alt+↑,
save with Enter — then the Page rows in the database. No OCR needed: the page types are set
as an earlier pass would have."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests"))
import browserutil  # noqa: E402  (tests/ is not a package)
from bingan_pageindex.settings import PageindexSettings

pytestmark = pytest.mark.browser
PASSWORD = "Index@2026x"


@pytest.fixture(scope="module")
def browser():
    if not browserutil.chromium_available():
        if os.environ.get("CI"):
            pytest.fail(f"{browserutil.CHROMIUM} not found (required under CI)")
        pytest.skip(f"{browserutil.CHROMIUM} not found")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, browserutil.launch_chromium(pw) as b:
        yield b


def test_keyboard_correction(pirt, make_record, browser):
    from bingan.core.models import Page, Role
    from bingan.core.staff import add_staff, ensure_builtin_roles
    from bingan.core.web.app import create_app

    from bingan_pageindex.models import RecordState

    rec = make_record("ZY2026060020", [(81, "出院记录"), (82, "入院记录"), (83, "病程记录")],
                      lines=1)
    a, b, c = rec.page_ids
    with pirt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        s.add(Role(name="indexer", label="索引员", permissions=["pageindex.correct"]))
        s.flush()
        add_staff(s, "C002", "校正员", PASSWORD, None, ["indexer"])
        for pid, typ, conf in ((a, "出院记录", 0.95), (b, "入院记录", 0.9), (c, "其他", 0.3)):
            p = s.get(Page, pid)
            p.page_type, p.page_type_confidence = typ, conf
        s.add(RecordState(admission_id=rec.id, status="needs_correction", pages=3, low_pages=1))
    types = pirt.settings(PageindexSettings).type_names
    progress = types.index("病程记录") + 1  # its number key(s)

    with browserutil.serve_in_thread(create_app(pirt)) as base:
        ctx = browser.new_context(viewport=browserutil.VIEWPORT, locale="zh-CN")
        page = ctx.new_page()
        page.goto(base + f"/pageindex/records/{rec.admission_no}")
        browserutil.login(page, "C002", PASSWORD)
        page.wait_for_selector("#pi-grid .pi-card")
        # the low-confidence page has the focus first
        assert page.eval_on_selector(".pi-card.focus", "e => e.dataset.id") == str(c)
        page.keyboard.press("ArrowLeft")
        assert page.eval_on_selector(".pi-card.focus", "e => e.dataset.id") == str(b)
        page.keyboard.press("ArrowRight")
        for ch in str(progress):
            page.keyboard.press(ch)
        page.wait_for_function(
            f"document.querySelector('select[name=type_{c}]').value === '病程记录'")
        page.keyboard.press("Alt+ArrowUp")  # the third page becomes the second
        assert page.eval_on_selector("#pi-order", "e => e.value") == f"{a},{c},{b}"
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "/pageindex" in page.url and "已保存" in page.content()
        ctx.close()

    with pirt.sessions() as s:
        rows = s.scalars(select(Page).where(Page.admission_id == rec.id).order_by(Page.seq)).all()
        assert [(p.id, p.page_type, p.page_type_confidence) for p in rows] == [
            (a, "出院记录", 1.0), (c, "病程记录", 1.0), (b, "入院记录", 1.0)]
        assert s.get(RecordState, rec.id).status == "indexed"
