"""The whole patient flow in headless Chromium on a 390-px phone (issue 16, "Done when"):
sandbox WeChat sign-in, the SMS code read from the sandbox's phone, own records found,
booked with the ID-in-hand photo, paid at the sandbox cashier (the platform posts its signed
notification to the running server); then the record room approves at 1366 px, the SMS goes
out and the booking becomes a copy request. Every page is checked as the walk checks them
(no server or console error, no horizontal overflow, no Latin word outside the allow-list).
Screenshots go to BINGAN_BOOKING_SHOTS when that is set."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
import browserutil  # noqa: E402
from test_walk_browser import ALLOWED, LATIN, VISIBLE_TEXT  # noqa: E402

from bingan_booking.models import Booking, BookingSms  # noqa: E402
from booking_world import A1, A2, NAME, IDN, PASSWORD, jpeg, last_code  # noqa: E402

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def browser():
    if not browserutil.chromium_available():
        if os.environ.get("CI"):
            pytest.fail("chromium is required under CI")
        pytest.skip("chromium not found")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, browserutil.launch_chromium(pw) as b:
        yield b


class Checker:
    def __init__(self, page, width: int, shots: Path | None, who: str):
        self.page, self.width, self.shots, self.who = page, width, shots, who
        self.problems: list[str] = []
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def check(self, label: str) -> None:
        pg = self.page
        pg.wait_for_load_state("load")
        wide = pg.evaluate("document.documentElement.scrollWidth")
        if wide > self.width + 1:
            self.problems.append(f"{label}: {wide}px wide at {self.width}px")
        text = pg.evaluate(VISIBLE_TEXT)
        latin = sorted({m for m in LATIN.findall(text) if m not in ALLOWED})
        if latin:
            self.problems.append(f"{label}: Latin words on the page: {latin[:8]}")
        if self.errors:
            self.problems.append(f"{label}: console errors {self.errors[:3]}")
            self.errors.clear()
        if self.shots is not None:
            pg.screenshot(path=str(self.shots / f"{self.who}_{self.width}_{label}.png"),
                          full_page=True)


def test_patient_flow_at_390px_then_back_office(rt, world, browser, tmp_path):
    from bingan.core.web.app import create_app

    shots = Path(os.environ["BINGAN_BOOKING_SHOTS"]) if os.environ.get(
        "BINGAN_BOOKING_SHOTS") else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    with browserutil.serve_in_thread(create_app(rt)) as base:
        ctx = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=base,
                                  is_mobile=True, has_touch=True)
        pg = ctx.new_page()
        ck = Checker(pg, PHONE["width"], shots, "patient")
        pg.goto("/h5")  # the sandbox's WeChat authorization, then home
        assert pg.url.endswith("/h5"), pg.url
        ck.check("01_home")
        pg.click("a.tile >> text=预约")
        assert "/h5/phone" in pg.url
        pg.fill("#ph", "13800138000")
        pg.click("text=获取验证码")
        ck.check("02_phone")
        pg.fill("#code", last_code(rt, "13800138000"))
        pg.click("button:text-is('验证')")
        assert "/h5/book" in pg.url, pg.url
        pg.fill("#name", NAME)
        pg.fill("#idn", IDN)
        pg.click("text=查找住院记录")
        ck.check("03_book")
        # the latest stay is preselected
        assert pg.locator(f"input[name=adm][value={A2}]").is_checked()
        assert not pg.locator(f"input[name=adm][value={A1}]").is_checked()
        pg.fill("#an", NAME)
        photo = tmp_path / "holding.jpg"
        photo.write_bytes(jpeg((800, 600)))
        pg.set_input_files("#p-hold", str(photo))
        pg.fill("#rc", NAME)
        pg.fill("#rp", "13912345678")
        pg.fill("#addr", "浙江省杭州市西湖区文三路 1 号")
        pg.check("input[name=consent]")
        fee = pg.text_content("#bk-fee")
        assert "应付金额：21.00 元" in fee, fee  # 5 + 0.5 x 2 pages + 15 courier
        pg.click("text=提交并支付")
        assert re.search(r"/h5/b/[^/]+/pay$", pg.url), pg.url
        ck.check("04_pay")
        pid = pg.url.split("/")[-2]
        pg.click("#pay-sandbox")
        ck.check("05_cashier")
        pg.click("#pay-confirm")
        assert pg.url.endswith(f"/h5/b/{pid}"), pg.url
        assert "已支付" in pg.text_content("main") and "待审核" in pg.text_content("main")
        ck.check("06_detail")
        for href, label in (("/h5/faq", "07_faq"), ("/h5/help", "08_help"), ("/h5/mine", "09_mine"),
                            ("/h5/sandbox/sms", "10_sms")):
            pg.goto(href)
            ck.check(label)
        with rt.sessions() as s:
            bk = s.scalar(select(Booking).where(Booking.public_id == pid))
            no = bk.booking_no
            assert (bk.pay_status, bk.status) == ("paid", "pending")

        staff = browser.new_context(viewport=DESKTOP, locale="zh-CN", base_url=base)
        sp = staff.new_page()
        sc = Checker(sp, DESKTOP["width"], shots, "REC1")
        sp.goto(f"/booking/b/{no}")
        browserutil.login(sp, "REC1", PASSWORD)
        sp.goto("/booking?phone=13800138000&status=pending")
        assert no in sp.text_content("#bk-list")
        sc.check("11_list")
        sp.goto(f"/booking/b/{no}")
        sp.click("#bk-approve")
        assert "审核通过；短信已发送" in sp.text_content("main"), sp.text_content("main")
        sc.check("12_approved")
        # 重新发送短信 right after the approval's SMS: the 60-second limit says so
        sp.click("#bk-resend")
        assert "未重新发送：发送太频繁" in sp.text_content("main"), sp.text_content("main")
        sc.check("12b_resend_limited")
        sp.goto("/booking/reports")
        sc.check("13_reports")
        staff.close()

        pg.goto(f"/h5/b/{pid}")
        assert "审核通过" in pg.text_content("main")
        ck.check("14_approved")
        ctx.close()
    with rt.sessions() as s:
        bk = s.scalar(select(Booking).where(Booking.public_id == pid))
        assert bk.copy_request_no
        sms = s.scalars(select(BookingSms).where(BookingSms.booking_id == bk.id)).all()
        assert [m.kind for m in sms] == ["approved"] and sms[0].ok
    assert not ck.problems + sc.problems, "\n".join(ck.problems + sc.problems)
