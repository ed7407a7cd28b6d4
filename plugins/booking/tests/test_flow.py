"""The whole booking over HTTP: sandbox WeChat sign-in, phone by SMS code, own records found,
booked with the ID-in-hand photo, paid through the sandbox platform (a signed notification
into the real callback), approved in the back office -> copy request + SMS; a rejection
refunds; nothing goes on before approval."""

from __future__ import annotations

import re

from sqlalchemy import select

from bingan_booking import pay, sandbox_pay
from bingan_booking.models import Booking, BookingSms, SandboxOrder
from booking_world import (
    A1, A2, A3, APPLICANT_PHONE, B1, book, csrf, sign_in, verify_phone,
)
from webutil import login, web_client


def _pay(c, rt, pid: str) -> None:
    """Open the pay page (JSAPI order at the sandbox platform), pay at the sandbox cashier and
    deliver the platform's signed notification to the callback."""
    r = c.get(f"/h5/b/{pid}/pay")
    assert r.status_code == 200, r.text
    m = re.search(r'href="/h5/sandbox/cashier\?prepay_id=([^&"]+)', r.text)
    assert m, r.text
    headers, body = sandbox_pay.platform(rt).pay(m[1], deliver=False)
    r = c.post("/h5/pay/notify", content=body.encode(),
               headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 204, r.text


def _booking(rt, pid: str) -> Booking:
    with rt.sessions() as s:
        bk = s.scalar(select(Booking).where(Booking.public_id == pid))
        s.expunge_all()
        return bk


def test_patient_books_pays_and_the_record_room_approves(rt, world):
    with web_client(rt) as c:
        sign_in(c)
        r = c.get("/h5/book", follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/h5/phone")
        verify_phone(c, rt)
        # own records only: the stays of this patient with pages, never the other patient's
        r = c.post("/h5/book/lookup", data={"_csrf_token": csrf(c), "h": "main",
                                            "name": "李秀英", "id_number": "110101198003070028"})
        assert r.status_code == 200, r.text
        assert A1 in r.text and A2 in r.text
        assert A3 not in r.text  # not digitized yet
        assert B1 not in r.text
        r = book(c, adms=(A1, A2), delivery="courier", recipient="李秀英",
                 recipient_phone="13912345678", address="杭州市西湖区文三路 1 号")
        assert r.status_code in (302, 303), r.text
        pid = r.headers["location"].split("/")[3]
        bk = _booking(rt, pid)
        # fee: base 5 + 0.5 x 5 pages x 1 copy + courier 15
        assert (bk.status, bk.pay_status, bk.fee_fen, bk.pages) == ("unpaid", "unpaid", 2250, 5)
        _pay(c, rt, pid)
        bk = _booking(rt, pid)
        assert (bk.status, bk.pay_status, bk.paid_fen) == ("pending", "paid", 2250)
        r = c.get("/h5/mine")
        assert bk.booking_no in r.text and "待审核" in r.text and "已支付" in r.text
    with web_client(rt) as staff:
        assert login(staff, "REC1").status_code in (302, 303)
        r = staff.get("/booking", params={"phone": APPLICANT_PHONE, "status": "pending"})
        assert bk.booking_no in r.text
        r = staff.post(f"/booking/b/{bk.booking_no}/approve",
                       data={"_csrf_token": staff.cookies.get("bingan_csrf")},
                       follow_redirects=False)
        assert r.status_code in (302, 303), r.text
        assert "err=" not in r.headers["location"], r.headers["location"]
    bk = _booking(rt, pid)
    assert bk.status == "approved" and bk.copy_request_no
    with rt.sessions() as s:
        sms = s.scalars(select(BookingSms).where(BookingSms.booking_id == bk.id)).all()
    assert [m.kind for m in sms] == ["approved"] and sms[0].ok
    assert "22.50" in sms[0].text


def test_rejection_refunds_and_nothing_goes_on_before_payment(rt, world):
    with web_client(rt) as c:
        sign_in(c)
        verify_phone(c, rt)
        r = book(c)
        pid = r.headers["location"].split("/")[3]
        bk = _booking(rt, pid)
        with web_client(rt) as staff:
            login(staff, "REC1")
            tok = staff.cookies.get("bingan_csrf")
            # unpaid: neither approval nor rejection
            for action, data in (("approve", {}), ("reject", {"reason": "材料不全"})):
                r = staff.post(f"/booking/b/{bk.booking_no}/{action}",
                               data={"_csrf_token": tok, **data}, follow_redirects=False)
                assert "err=" in r.headers["location"], (action, r.headers["location"])
            assert _booking(rt, pid).status == "unpaid"
            _pay(c, rt, pid)
            # a rejection needs a reason
            r = staff.post(f"/booking/b/{bk.booking_no}/reject",
                           data={"_csrf_token": tok, "reason": " "}, follow_redirects=False)
            assert "err=" in r.headers["location"]
            assert _booking(rt, pid).status == "pending"
            r = staff.post(f"/booking/b/{bk.booking_no}/reject",
                           data={"_csrf_token": tok, "reason": "手持身份证照片不清晰"},
                           follow_redirects=False)
            assert "err=" not in r.headers["location"], r.headers["location"]
            # a physician has no back office
            with web_client(rt) as phy:
                login(phy, "PHY1")
                assert phy.get("/booking").status_code == 403
        bk = _booking(rt, pid)
        # the platform took the refund (PROCESSING); the refund query finishes it
        assert (bk.status, bk.pay_status, bk.review_note) == ("rejected", "refunding",
                                                              "手持身份证照片不清晰")
        assert "退款中" in c.get(f"/h5/b/{pid}").text
        sandbox_pay.platform(rt).refund_settle_seconds = 0
        assert pay.sync_refunds(rt) == {"refunded": 1}
        bk = _booking(rt, pid)
        assert bk.pay_status == "refunded" and bk.refunded_at
        assert bk.copy_request_no is None
        with rt.sessions() as s:
            order = s.scalar(select(SandboxOrder).where(SandboxOrder.out_trade_no ==
                                                        bk.out_trade_no))
            assert order.trade_state == "REFUND"
            assert [x["refund"] for x in order.refunds] == [bk.paid_fen]
            sms = s.scalars(select(BookingSms).where(BookingSms.booking_id == bk.id)).all()
        assert [m.kind for m in sms] == ["rejected"] and "原路退回" in sms[0].text
        r = c.get(f"/h5/b/{pid}")
        assert "审核未通过" in r.text and "已退款" in r.text and "照片不清晰" in r.text
    with web_client(rt) as other:
        sign_in(other)  # a new sandbox device: another WeChat user ...
        assert other.get(f"/h5/b/{pid}").status_code == 404  # ... sees nothing of it
        assert bk.booking_no not in other.get("/h5/mine").text


def test_dispatch_tracking_and_done(rt, world):
    """A courier booking: approved, dispatched with a number (SMS), the parcel tracked through
    the Kuaidi100 client (sandbox) on both sides, then done; a pick-up cannot be dispatched."""
    with web_client(rt) as c:
        sign_in(c)
        verify_phone(c, rt)
        r = book(c, delivery="courier", recipient="李秀英", recipient_phone="13912345678",
                 address="杭州市西湖区文三路 1 号")
        pid = r.headers["location"].split("/")[3]
        _pay(c, rt, pid)
        no = _booking(rt, pid).booking_no
        with web_client(rt) as staff:
            login(staff, "REC1")
            tok = staff.cookies.get("bingan_csrf")
            r = staff.post(f"/booking/b/{no}/ship", data={"_csrf_token": tok,
                           "company": "shunfeng", "tracking_no": "SF1234567890"},
                           follow_redirects=False)
            assert "err=" in r.headers["location"]  # not approved yet
            staff.post(f"/booking/b/{no}/approve", data={"_csrf_token": tok})
            for bad in ("SF 123", "x" * 40, "<script>"):
                r = staff.post(f"/booking/b/{no}/ship", data={
                    "_csrf_token": tok, "company": "shunfeng", "tracking_no": bad},
                    follow_redirects=False)
                assert "err=" in r.headers["location"], bad
            r = staff.post(f"/booking/b/{no}/ship", data={
                "_csrf_token": tok, "company": "shunfeng", "tracking_no": "SF1234567890"},
                follow_redirects=False)
            assert "err=" not in r.headers["location"], r.headers["location"]
            page = staff.get(f"/booking/b/{no}").text
            assert "SF1234567890" in page and "已被顺丰揽收" in page
            # the patient sees the parcel too
            detail = c.get(f"/h5/b/{pid}").text
            assert "物流信息" in detail and "顺丰速运" in detail and "已揽收" in detail
            r = staff.post(f"/booking/b/{no}/done", data={"_csrf_token": tok},
                           follow_redirects=False)
            assert "err=" not in r.headers["location"]
    bk = _booking(rt, pid)
    assert (bk.status, bk.tracking_no, bk.courier_company) == ("done", "SF1234567890",
                                                               "shunfeng")
    with rt.sessions() as s:
        kinds = [m.kind for m in s.scalars(select(BookingSms).where(
            BookingSms.booking_id == bk.id).order_by(BookingSms.id))]
    assert kinds == ["approved", "shipped"]
