"""The offline viewer (D4) in Debian's headless Chromium, opened from file:// with no server:
search by MRN, name (and pinyin initials), admission number and discharge date; links open
PDFs that exist next to the page. Skipped locally without Chromium, fails under CI."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

import browserutil
from bingan_archive import exporting

pytestmark = pytest.mark.browser
UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def browser():
    if not browserutil.chromium_available():
        if os.environ.get("CI"):
            pytest.fail(f"{browserutil.CHROMIUM} not found (required under CI)")
        pytest.skip(f"{browserutil.CHROMIUM} not found; `make browser` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, browserutil.launch_chromium(pw) as b:
        yield b


def _visible(page) -> list[str]:
    return page.eval_on_selector_all("#rows tr.record", "rs => rs.map(r => r.dataset.mrn)")


def test_offline_viewer_in_chromium(sqlite_world, browser, tmp_path):
    w = sqlite_world
    recs = [("00123456", "ZY202605000001", 1, "张三", dt.datetime(2026, 5, 3, 2, tzinfo=UTC)),
            ("00123456", "ZY202605000002", 2, "张三", dt.datetime(2026, 6, 9, 2, tzinfo=UTC)),
            ("00654321", "ZY202605000003", 1, "李四", dt.datetime(2026, 5, 15, 2, tzinfo=UTC)),
            ("00777777", "ZY202605000004", 1, "王五</script>", dt.datetime(2026, 7, 1, 2, tzinfo=UTC))]
    for mrn, no, visit, name, disc in recs:
        aid = w.admission(mrn=mrn, admission_no=no, visit_no=visit, name=name, discharged=disc)
        w.pages(aid, [{"page_type": "病案首页"}])
        w.build(aid)
    target = tmp_path / "离线包"  # a Chinese folder name, as a hospital would use
    exporting.export(w.rt, "offline", target)

    ctx = browser.new_context(locale="zh-CN")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto((target / "index.html").as_uri())
    assert page.url.startswith("file://")
    page.wait_for_selector("#rows tr.record")
    assert _visible(page) == ["00123456", "00123456", "00654321", "00777777"]
    assert "共 4 份" in page.inner_text("#status")
    assert page.eval_on_selector("#rows", "r => r.textContent").count("王五</script>") == 1

    page.fill("#q", "00654321")
    assert _visible(page) == ["00654321"]
    page.fill("#q", "张三")
    assert _visible(page) == ["00123456", "00123456"]
    page.fill("#q", "zs")  # pinyin initials of 张三
    assert _visible(page) == ["00123456", "00123456"]
    page.fill("#q", "ZY202605000004")
    assert _visible(page) == ["00777777"]
    page.fill("#q", "nobody")
    assert _visible(page) == [] and "符合条件 0 份" in page.inner_text("#status")
    page.fill("#q", "")
    page.fill("#from", "2026-05-10")
    page.fill("#to", "2026-06-30")
    page.dispatch_event("#to", "change")
    assert _visible(page) == ["00123456", "00654321"]
    page.click("#clear")
    assert len(_visible(page)) == 4

    # every link is relative and resolves to the exported PDF with the stated checksum
    links = page.eval_on_selector_all(
        "#rows a.open", "as => as.map(a => [a.getAttribute('href'), a.href, a.title])")
    assert len(links) == 4
    for raw, resolved, title in links:
        assert not raw.startswith(("/", "file:", "http"))
        path = Path(unquote(urlparse(resolved).path))
        assert path.is_file() and path.suffix == ".pdf"
        assert target in path.parents
        assert title == "SHA-256 " + hashlib.sha256(path.read_bytes()).hexdigest()
    # clicking opens the PDF in a new tab from file:// (the browser's own viewer)
    with page.expect_popup() as pop:
        page.click("#rows a.open >> nth=0")
    tab = pop.value
    tab.wait_for_load_state()
    assert tab.url == links[0][1]
    assert tab.evaluate("document.contentType") == "application/pdf"
    assert errors == []
    ctx.close()
