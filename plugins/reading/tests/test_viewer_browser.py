"""The viewer in headless Chromium (Playwright, Debian's chromium): the page image loads with
its watermark, the reader's staff number is on screen, right-click, copy/save/print keys,
selection and drag are blocked, the content blurs when the window loses focus and is hidden
in print; thumbnails grouped by page type, keyboard navigation, jump, zoom and rotate work."""

from __future__ import annotations

import os

import pytest

import browserutil
from reading_world import E1, PAGE_TYPES, PASSWORD, ink_cells, rgb, staff_no, watermark_ink

pytestmark = pytest.mark.browser
SIGNER = staff_no("physician", "signer")


@pytest.fixture(scope="module")
def browser():
    if not browserutil.chromium_available():
        if os.environ.get("CI"):
            pytest.fail(f"{browserutil.CHROMIUM} not found")
        pytest.skip(f"{browserutil.CHROMIUM} not found")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, browserutil.launch_chromium(pw) as b:
        yield b


def _prevented(pg, js_event: str, target: str = "document.getElementById('rd-page')") -> bool:
    return pg.evaluate(f"() => {{ const e = {js_event}; {target}.dispatchEvent(e); "
                       "return e.defaultPrevented; }")


def test_viewer_in_chromium(world, browser):
    from bingan.core.web.app import create_app

    rt = world.rt
    ids = world.page_ids[E1]
    with browserutil.serve_in_thread(create_app(rt)) as base:
        ctx = browser.new_context(viewport=browserutil.VIEWPORT, locale="zh-CN", base_url=base)
        ctx.set_default_timeout(15_000)
        pg = ctx.new_page()
        problems: list[str] = []
        pg.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        pg.on("console", lambda m: m.type == "error" and problems.append(m.text))
        requested: list[str] = []
        pg.on("request", lambda r: requested.append(r.url))
        pg.goto(f"/login?next=/records/{E1}")
        browserutil.login(pg, SIGNER, PASSWORD)
        pg.wait_for_url(f"**/records/{E1}")
        loaded = ("() => { const i = document.getElementById('rd-page'); "
                  "return i && i.complete && i.naturalWidth > 0 && i.dataset.pageId; }")
        assert pg.wait_for_function(loaded).json_value() == str(ids[0])

        # the reader's staff number is always on screen
        reader = pg.locator("#rd-reader")
        assert reader.is_visible() and SIGNER in reader.inner_text()
        box = reader.bounding_box()
        assert box and box["y"] + box["height"] <= browserutil.VIEWPORT["height"]

        # right-click, copy/save/print/select-all keys, PrintScreen, selection and drag
        assert _prevented(pg, "new MouseEvent('contextmenu', "
                          "{bubbles: true, cancelable: true, button: 2})")
        assert _prevented(pg, "new MouseEvent('contextmenu', {bubbles: true, cancelable: true})",
                          "document.querySelector('.rec-front')")
        for key in ("c", "s", "p", "a"):
            assert _prevented(pg, f"new KeyboardEvent('keydown', {{key: '{key}', ctrlKey: true, "
                              "bubbles: true, cancelable: true})", "document.body"), key
        assert _prevented(pg, "new KeyboardEvent('keydown', {key: 'PrintScreen', bubbles: true, "
                          "cancelable: true})", "document.body")
        assert pg.evaluate("() => document.body.classList.contains('rd-obscured')")
        pg.evaluate("() => window.dispatchEvent(new Event('focus'))")
        assert _prevented(pg, "new Event('selectstart', {bubbles: true, cancelable: true})")
        assert _prevented(pg, "new DragEvent('dragstart', {bubbles: true, cancelable: true})")
        assert _prevented(pg, "new Event('copy', {bubbles: true, cancelable: true})",
                          "document.body")
        assert pg.evaluate("() => getComputedStyle(document.body).userSelect") == "none"
        # a real right click and Ctrl+A select nothing
        pg.click("#rd-page", button="right")
        pg.keyboard.press("Control+a")
        assert pg.evaluate("() => String(window.getSelection())") == ""

        # losing focus blurs the content, coming back shows it
        pg.evaluate("() => window.dispatchEvent(new Event('blur'))")
        assert pg.locator("#rd-shield").is_visible()
        assert "blur" in pg.evaluate(
            "() => getComputedStyle(document.getElementById('rd-viewer')).filter")
        pg.evaluate("() => window.dispatchEvent(new Event('focus'))")
        assert not pg.locator("#rd-shield").is_visible()

        # thumbnails grouped by page type, in record order
        groups = pg.eval_on_selector_all(
            ".rd-group",
            "gs => gs.map(g => [g.dataset.type, g.querySelectorAll('.rd-thumb').length])")
        assert groups == [["病案首页", 1], ["入院记录", 1], ["病程记录", 2], ["检验报告", 1]]
        assert pg.wait_for_function(
            "() => [...document.querySelectorAll('.rd-thumb img')].every(i => i.naturalWidth > 0)")

        # keyboard: next page, zoom, rotate; jump to a page type
        pg.locator("#rd-viewer").focus()
        pg.keyboard.press("ArrowRight")
        assert pg.locator("#rd-pos").inner_text() == f"第 2 / {len(PAGE_TYPES)} 页"
        assert pg.wait_for_function(loaded).json_value() == str(ids[1])
        pg.keyboard.press("PageDown")
        assert pg.locator("#rd-type").inner_text() == "病程记录"
        pg.keyboard.press("+")
        assert pg.locator("#rd-zoom").inner_text() == "125%"
        pg.keyboard.press("r")
        assert "rotate(90deg)" in pg.locator("#rd-sheet").get_attribute("style")
        pg.keyboard.press("0")
        assert pg.locator("#rd-zoom").inner_text() == "100%"
        pg.select_option("#rd-jump", label="检验报告（1 页）")
        assert pg.locator("#rd-pos").inner_text() == f"第 5 / {len(PAGE_TYPES)} 页"
        pg.keyboard.press("Home")
        assert pg.locator("#rd-pos").inner_text() == f"第 1 / {len(PAGE_TYPES)} 页"

        # a full-text hit of the search plugin opens the viewer at its page, the phrase marked
        # where OCR read it (one line of the 620 x 877 page: 胸闷 is its 3rd and 4th characters)
        from bingan_pageindex.models import PageText

        from bingan.core.models import Page

        with rt.sessions() as s, s.begin():
            p4 = s.get(Page, ids[3])
            s.add(PageText(page_id=p4.id, admission_id=p4.admission_id,
                           image_sha256=p4.image_sha256, text="主诉胸闷三天", engine="test",
                           blocks=[["主诉胸闷三天", 124, 200, 496, 240, 0.9]]))
        pg.goto(f"/records/{E1}?page={ids[3]}&hl=胸闷")
        assert pg.wait_for_function(loaded).json_value() == str(ids[3])
        assert pg.locator("#rd-pos").inner_text() == f"第 4 / {len(PAGE_TYPES)} 页"
        assert "胸闷" in pg.locator(".content").inner_text()
        pg.wait_for_selector(".rd-mark")
        assert pg.locator("#rd-hits").inner_text() == "本页命中 1 处"
        im, mark = pg.locator("#rd-page").bounding_box(), pg.locator(".rd-mark").bounding_box()
        for got, want in ((mark["x"] - im["x"], 248 / 620 * im["width"]),
                          (mark["width"], 124 / 620 * im["width"]),
                          (mark["y"] - im["y"], 200 / 877 * im["height"])):
            assert abs(got - want) < 2, (got, want)
        pg.keyboard.press("m")
        assert not pg.locator(".rd-mark").is_visible()
        pg.keyboard.press("m")
        assert pg.locator(".rd-mark").is_visible()
        pg.keyboard.press("ArrowLeft")  # a page OCR has not read: says so, no marks
        pg.wait_for_function("() => document.getElementById('rd-hits').textContent"
                             ".includes('尚未完成文字识别')")
        assert pg.locator(".rd-mark").count() == 0

        # printing shows nothing of the record
        pg.emulate_media(media="print")
        assert not pg.locator("#rd-viewer").is_visible()
        pg.emulate_media(media="screen")

        # what the browser got is the watermarked image, never the stored one
        src = pg.locator("#rd-page").get_attribute("src")
        body = ctx.request.get(src).body()
        assert body.startswith(b"\xff\xd8") and body != world.stored[ids[0]]
        ink = watermark_ink(rgb(body), rgb(world.stored[ids[0]]))  # same size: 620 px level
        assert sum(c > 30 for c in ink_cells(ink)) >= 14
        assert not any(u.endswith(".pdf") for u in requested)
        assert all("/pages/" not in u or "?w=" in u or "/marks?" in u for u in requested)
        assert not problems, problems

        # access is checked at every image: a ban takes effect on the next page turn
        from bingan_reading.rules import add_rule

        with rt.sessions() as s, s.begin():
            add_rule(s, rt, subject_type="user", subject=SIGNER, effect="deny", actions=["view"])
        assert not pg.locator("#rd-error").is_visible()
        pg.keyboard.press("ArrowRight")
        pg.wait_for_selector("#rd-error", state="visible")
        ctx.close()
