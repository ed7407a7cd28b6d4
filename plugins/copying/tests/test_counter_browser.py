"""The counter in headless Chromium with a camera: Chromium's fake capture device stands in for
the counter's webcam (--use-fake-device-for-media-stream, --use-fake-ui-for-media-stream).
Search, tick the stay, an agent's documents captured from the camera and (the signed power of attorney) from
the scanner (SANE's test backend), the objective
record preselected and the fee shown, consent, register, the documents shown back to the
record room, print through the CUPS queue. Screenshots go to BINGAN_SCREENSHOTS (or tmp)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

import browserutil
from bingan_copying import identity, service
from bingan_copying.models import PrintJob
from copy_world import A1, MRN, PASSWORD
from cups_queue import ensure_queue, job_pdf
from bingan_copying.settings import CopyingSettings

pytestmark = pytest.mark.browser
CAMERA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
AGENT_DOCS = ["patient_id", "agent_id", "agent_relation", "power_of_attorney"]


@pytest.fixture(scope="module")
def browser():
    if not browserutil.chromium_available():
        if os.environ.get("CI"):
            pytest.fail(f"{browserutil.CHROMIUM} not found")
        pytest.skip(f"{browserutil.CHROMIUM} not found")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=browserutil.CHROMIUM, headless=True,
                               args=browserutil.CHROMIUM_ARGS + CAMERA_ARGS)
        try:
            yield b
        finally:
            b.close()


def test_counter_flow_with_webcam(world, browser, tmp_path):
    from bingan.core.web.app import create_app

    queue = ensure_queue()
    shots = Path(os.environ.get("BINGAN_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    rt = world.rt
    rt.settings(CopyingSettings).scanner_device = "test"  # SANE's test backend (sane-utils)
    rt.settings(CopyingSettings).scanner_options = ["--test-picture=Color pattern"]
    with browserutil.serve_in_thread(create_app(rt)) as base:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN",
                                  base_url=base, permissions=["camera"])
        ctx.set_default_timeout(20_000)
        pg = ctx.new_page()
        problems: list[str] = []
        pg.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        pg.on("console", lambda m: m.type == "error" and problems.append(m.text))
        pg.goto("/login?next=/copying/new")
        browserutil.login(pg, "REC1", PASSWORD)
        pg.wait_for_url("**/copying/new")
        pg.fill("#cp-q", MRN)
        pg.press("#cp-q", "Enter")
        pg.wait_for_selector(f"#adm-{A1}")
        pg.screenshot(path=str(shots / "copying_1_search.png"), full_page=True)
        pg.check(f"#adm-{A1}")
        pg.click("#cp-choose")
        pg.wait_for_selector("#cp-form")

        pg.select_option("#cp-type", "agent")
        visible = pg.eval_on_selector_all(".cp-doc", "els => els.filter(e => !e.hidden)"
                                          ".map(e => e.dataset.kind)")
        assert visible == AGENT_DOCS
        pg.fill("#cp-name", "王大明")
        for kind in AGENT_DOCS[:3]:
            pg.click(f".cp-shoot[data-kind={kind}]")
            pg.wait_for_function("() => { const v = document.getElementById('cp-video'); "
                                 "return v.readyState >= 2 && v.videoWidth > 0 "
                                 "&& v.currentTime > 0.5; }")
            pg.click("#cp-snap")
            pg.wait_for_selector(f".cp-doc.captured[data-kind={kind}] .cp-thumb:not([hidden])")
        # the signed power of attorney is paper: the scanner
        pg.click(".cp-scan[data-kind=power_of_attorney]")
        pg.wait_for_selector(".cp-doc.captured[data-kind=power_of_attorney] .cp-thumb:not([hidden])")
        assert pg.eval_on_selector_all(".cp-doc.captured select", "els => els.map(e => e.value)") \
            == ["webcam"] * 3 + ["scanner"]
        pg.select_option("select[name=purpose]", "litigation")
        pg.fill("#cp-copies", "2")
        objective = {"出院记录", "入院记录", "医嘱单", "检验报告", "体温单"}
        checked = pg.eval_on_selector_all("input[name=page]:checked", "els => els.map(e => +e.value)")
        assert set(checked) == set(world.page_ids(A1, objective))
        assert pg.inner_text("#cp-fee") == f"{len(checked) * 2 * 0.5:.2f}"
        pg.check("#cp-consent")
        pg.screenshot(path=str(shots / "copying_2_counter.png"), full_page=True)
        pg.click("#cp-submit")
        pg.wait_for_selector("#cp-status")
        assert pg.inner_text("#cp-status") == "已登记"
        pg.wait_for_function("() => [...document.querySelectorAll('.cp-docview img')]"
                             ".every(i => i.complete && i.naturalWidth > 0)")
        assert pg.locator(".cp-docview img").count() == 4
        no = pg.url.rsplit("/", 1)[1]
        pg.screenshot(path=str(shots / "copying_3_request.png"), full_page=True)
        pg.select_option("#cp-printer", queue)
        pg.click("#cp-print")
        pg.wait_for_selector("#cp-msg")
        assert "已发送到打印机" in pg.inner_text("#cp-msg")
        assert pg.inner_text("#cp-status") == "已打印"
        pg.screenshot(path=str(shots / "copying_4_printed.png"), full_page=True)
        # the statistics page draws its ECharts chart from the JSON API
        pg.goto("/copying/stats?group=purpose")
        pg.wait_for_selector("#cp-chart[data-drawn='1'] canvas")
        assert "诉讼/仲裁" in pg.inner_text("#cp-stats")
        pg.screenshot(path=str(shots / "copying_5_stats.png"), full_page=True)
        assert not problems, problems
        ctx.close()
    st = rt.settings(CopyingSettings)
    with rt.sessions() as s:
        req = service.get_request(s, no)
        assert req.applicant_type == "agent" and req.copies == 2
        docs = [(d.kind, d.source, d.blob_sha256, d.key_id) for d in req.documents]
        job = s.scalars(select(PrintJob)).one()
        assert job.ok and job.client_ip == "127.0.0.1"
        cups_job = job.cups_job
    assert [(k, src) for k, src, _, _ in docs] == \
        [(k, "webcam") for k in AGENT_DOCS[:3]] + [("power_of_attorney", "scanner")]
    for kind, _, sha, kid in docs:  # the camera's frames and the scan, encrypted at rest
        assert rt.store.get(sha)[:3] != b"\xff\xd8\xff"
        img = Image.open(io.BytesIO(identity.read_plain(rt, st, sha, kid)))
        if kind == "power_of_attorney":
            assert img.format == "PNG"
        else:
            assert img.format == "JPEG" and img.width >= 320
    assert job_pdf(cups_job).stat().st_size > 0
