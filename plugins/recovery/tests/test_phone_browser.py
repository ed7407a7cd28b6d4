"""The ward phone page in headless Chromium with the network switched off: the page is
installed (service worker), the due list downloaded, the network cut, three records typed
as a scanner gun types them (one not in the system), the page reloaded offline (from the
worker, scans from IndexedDB), the network back, upload, per-item answers, a replay of the
same upload that adds nothing, the receipt page. Screenshots go to BINGAN_SCREENSHOTS (or tmp)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

import browserutil
from bingan.core import records
from bingan.core.models import AuditEvent

from bingan_recovery.models import Recovery, Scan
from ward_world import PASSWORD, RECORDS

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser():
    if not browserutil.chromium_available():
        if os.environ.get("CI"):
            pytest.fail(f"{browserutil.CHROMIUM} not found")
        pytest.skip(f"{browserutil.CHROMIUM} not found")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=browserutil.CHROMIUM, headless=True,
                               args=browserutil.CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _counts(rt):
    with rt.sessions() as s:
        return (s.scalar(select(func.count()).select_from(Recovery)),
                s.scalar(select(func.count()).select_from(Scan)),
                s.scalar(select(func.count()).select_from(AuditEvent)
                         .where(AuditEvent.action == "recovery.recover")))


def _scan(pg, code: str) -> None:
    pg.fill("#rc-code", code)
    pg.press("#rc-code", "Enter")


def test_offline_scan_reload_upload_replay(world, browser, tmp_path):
    from bingan.core.web.app import create_app

    rt = world.rt
    if rt.engine.dialect.name != "sqlite":
        pytest.skip("the browser flow runs once, on SQLite")
    shots = Path(os.environ.get("BINGAN_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    r0, r1 = world.rec(RECORDS[0].admission_no), world.rec(RECORDS[1].admission_no)
    unknown = records.record_barcode("00799999", 1)
    with browserutil.serve_in_thread(create_app(rt)) as base:
        ctx = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=base,
                                  is_mobile=True, has_touch=True, service_workers="allow")
        ctx.set_default_timeout(20_000)
        pg = ctx.new_page()
        problems: list[str] = []
        pg.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        pg.goto("/login?next=/recovery/phone/app")
        browserutil.login(pg, "CLK1", PASSWORD)
        pg.wait_for_url("**/recovery/phone/app")
        # installed: the worker controls the page and has kept what it needs
        pg.evaluate("navigator.serviceWorker.ready.then(() => true)")
        pg.wait_for_function("navigator.serviceWorker.controller !== null")
        pg.wait_for_function("caches.open('bingan-recovery-v1').then(c => c.keys())"
                             ".then(k => k.length >= 10)")
        assert pg.evaluate("document.querySelector('link[rel=manifest]').href").endswith(
            "/recovery/phone/manifest.webmanifest")
        pg.click("#rc-download")
        pg.wait_for_function("document.getElementById('rc-list-info').textContent"
                             ".includes('4 份')")
        pg.select_option("#rc-ward", "心内一病区")

        ctx.set_offline(True)
        pg.wait_for_function("document.getElementById('rc-net').dataset.online === '0'")
        _scan(pg, r0.barcode)
        _scan(pg, r1.barcode.lower())   # a scanner gun may send lower case
        _scan(pg, unknown)
        _scan(pg, r0.barcode)           # scanned twice: kept once
        pg.wait_for_function("document.getElementById('rc-msg').textContent.includes('已登记过')")
        assert pg.eval_on_selector_all("#rc-scans tbody tr", "rows => rows.length") == 3
        # reload with no network: the worker serves the page, IndexedDB the scans
        pg.reload()
        pg.wait_for_function("document.querySelectorAll('#rc-scans tbody tr').length === 3")
        assert pg.inner_text("#rc-pending") == "3"
        assert "离线" in pg.inner_text("#rc-net")
        assert "李春华" in pg.inner_text("#rc-scans") and "不在清单中" in pg.inner_text("#rc-scans")
        pg.screenshot(path=str(shots / "recovery_phone_offline.png"), full_page=True)
        # upload while still offline: nothing lost, nothing sent
        pg.click("#rc-upload")
        pg.wait_for_function("document.getElementById('rc-msg').textContent.includes('没有网络')")
        assert _counts(rt) == (0, 0, 0)

        ctx.set_offline(False)
        pg.wait_for_function("document.getElementById('rc-net').dataset.online === '1'")
        pg.click("#rc-upload")
        pg.wait_for_function("document.getElementById('rc-msg').textContent.includes('上传完成')")
        assert _counts(rt) == (2, 3, 2)
        statuses = pg.eval_on_selector_all(
            "#rc-scans tbody tr",
            "rows => rows.map(r => [r.dataset.barcode, r.cells[3].className])")
        assert sorted(statuses) == sorted([[r0.barcode, "st-recovered"],
                                           [r1.barcode, "st-recovered"],
                                           [unknown, "st-unknown"]])
        assert pg.inner_text("#rc-pending") == "0"
        pg.screenshot(path=str(shots / "recovery_phone_online.png"), full_page=True)
        # replay the very upload the page sent (its scans from IndexedDB): nothing changes
        replay = pg.evaluate("""async () => {
            const db = await new Promise((ok) => { const r = indexedDB.open('bingan-recovery-CLK1');
                                                   r.onsuccess = () => ok(r.result); });
            const scans = await new Promise((ok) => { const q = db.transaction('scans')
                .objectStore('scans').getAll(); q.onsuccess = () => ok(q.result); });
            const body = { handover_id: scans[0].handover_id, ward: scans[0].ward,
                           started_at: scans[0].handover_started,
                           items: scans.map(s => ({ client_id: s.client_id, barcode: s.barcode,
                                                    scanned_at: s.scanned_at })) };
            const csrf = document.getElementById('rc-phone').dataset.csrf;
            const r = await fetch('/api/recovery/upload', { method: 'POST',
                headers: { 'content-type': 'application/json', 'x-csrftoken': csrf },
                body: JSON.stringify(body) });
            return [r.status, await r.json()];
        }""")
        assert replay[0] == 200
        assert all(x["replayed"] for x in replay[1]["results"]) and len(replay[1]["results"]) == 3
        assert _counts(rt) == (2, 3, 2)
        pg.click("#rc-upload")
        pg.wait_for_function("document.getElementById('rc-msg').textContent.includes('没有待上传')")
        # the receipt for the ward (Web Bluetooth is not in headless Chromium: the page prints)
        with ctx.expect_page() as popup:
            pg.click("#rc-receipts a")
        rp = popup.value
        rp.wait_for_selector("#rc-receipt")
        assert "份数：2" in rp.inner_text("#rc-receipt")
        assert "李春华" in rp.inner_text("#rc-receipt") and "赵国庆" in rp.inner_text("#rc-receipt")
        rp.set_viewport_size({"width": 420, "height": 700})
        rp.locator("#rc-receipt").screenshot(path=str(shots / "recovery_receipt.png"))
        ctx.close()
    assert not problems, problems
