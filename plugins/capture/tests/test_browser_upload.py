"""The upload page in a real browser (Debian Chromium via Playwright): a clerk scans a record
barcode into the record field, picks several files (one of them bad), sees each upload's
result, and the good pages end up in the record."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select

import browserutil
from bingan.core import tasks
from bingan.core.models import Role
from bingan.core.pages import current_pages
from bingan_capture.ingest import TASK_KIND

pytestmark = pytest.mark.browser
PASSWORD = "Clerk-pass-2026"


@pytest.fixture(scope="module")
def browser():
    if not browserutil.chromium_available():
        if os.environ.get("CI"):
            pytest.fail("chromium missing (required under CI)")
        pytest.skip("chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, browserutil.launch_chromium(pw) as b:
        yield b


def test_upload_page_sends_files_with_progress(rt, cap, two_records, browser, tmp_path):
    from bingan.core.staff import add_staff, ensure_builtin_roles
    from bingan.core.web.app import create_app

    a, _ = two_records
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        add_staff(s, "R0001", "方晓琳", PASSWORD, None, ["clerk"])
        role = s.scalar(select(Role).where(Role.name == "clerk"))
        role.permissions = sorted(set(role.permissions) | {"capture.operate"})
    good1 = tmp_path / "第1页.jpg"
    good1.write_bytes(cap.encode(cap.page_image("1", seed=1), "JPEG"))
    good2 = tmp_path / "第2页.png"
    good2.write_bytes(cap.encode(cap.page_image("2", seed=2), "PNG"))
    from bingan.core.models import Admission
    from bingan_capture.conditions import set_record_condition

    with rt.sessions() as s, s.begin():  # assessed on site: torn sheets
        set_record_condition(s, rt, s.get(Admission, a.id), ["torn"], "第 2 页缺角",
                             batch_id=None, by="R0001")
    bad = tmp_path / "说明.jpg"
    bad.write_text("不是图像", encoding="utf-8")
    with browserutil.serve_in_thread(create_app(rt)) as base:
        ctx = browser.new_context(viewport=browserutil.VIEWPORT, locale="zh-CN")
        page = ctx.new_page()
        page.goto(base + "/capture/upload")
        browserutil.login(page, "R0001", PASSWORD)
        page.goto(base + "/capture/upload")
        page.fill("#admission", a.barcode)  # what a USB barcode scanner types
        page.press("#admission", "Enter")
        page.wait_for_function("document.getElementById('admission-info').textContent"
                               ".includes('张三')")
        assert page.input_value("#admission") == a.admission_no
        info = page.locator("#admission-info").inner_text()
        assert "纸张状况：有破损、撕裂或缺角；第 2 页缺角" in info
        assert page.locator("#admission-info .advice").inner_text().endswith(
            "请用手机拍摄或平板扫描逐页采集，不要用自动进纸器")
        page.set_input_files("#files", [str(good1), str(good2), str(bad)])
        page.wait_for_function("document.querySelectorAll('#upload-list li.pending, "
                               "#upload-list li.error').length === 3")
        texts = page.locator("#upload-list li").all_inner_texts()
        assert sum("已接收" in t for t in texts) == 2
        assert any("说明.jpg" in t and "不支持的文件类型" in t for t in texts)
        # received is not the end: each line follows its file until the outcome is there
        page.wait_for_function("[...document.querySelectorAll('#upload-list li.pending')]"
                               ".every(li => li.textContent.includes('处理中：已完成 0 / 1 页'))")
        tasks.run_until_idle(rt, kinds=[TASK_KIND])
        page.wait_for_function("[...document.querySelectorAll('#upload-list li')]"
                               ".filter(li => li.textContent.includes('处理完成')).length === 2",
                               timeout=20_000)
        for t in page.locator("#upload-list li").all_inner_texts():
            if "说明.jpg" not in t:
                assert "1 页入库（图像质检合格" in t, t
        assert page.locator("#upload-list li.pending").count() == 0
        ctx.close()
    with rt.sessions() as s:
        assert len(current_pages(s, a.id)) == 2
