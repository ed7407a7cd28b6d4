"""Refunds after a rejection: the platform answers PROCESSING; the refund ends by its signed
result notification (REFUND.SUCCESS / ABNORMAL / CLOSED, with the payment's timestamp window,
signature check and de-duplication) or, when that is lost, by the refund query of the job
``booking.refund_query``; either way the result is applied exactly once."""

from __future__ import annotations

import concurrent.futures as cf
import json
import time
import types

from sqlalchemy import func, select

from bingan.core import audit
from bingan.core.models import AuditEvent

from bingan_booking import pay, sandbox_pay, service
from bingan_booking.models import BookingPayNotice
from booking_world import book, sign_in, verify_phone
from test_flow import _booking, _pay
from webutil import login, web_client

REVIEWER = types.SimpleNamespace(staff_no="REC1", name="周病案")


def _rejected(rt, n: int = 1) -> list[str]:
    """``n`` paid bookings rejected in the back office (the refund asked for, PROCESSING at
    the platform); their public ids."""
    sandbox_pay.platform(rt).refund_settle_seconds = 3600  # the bank has not answered yet
    with web_client(rt) as c:
        sign_in(c)
        verify_phone(c, rt)
        pids = [book(c).headers["location"].split("/")[3] for _ in range(n)]
        for pid in pids:
            _pay(c, rt, pid)
    for pid in pids:
        service.reject_and_refund(rt, _booking(rt, pid).booking_no, REVIEWER,
                                  audit.Actor(staff_no="REC1"), "手持身份证照片不清晰")
    return pids


def _results(rt) -> list[tuple[str, str]]:
    with rt.sessions() as s:
        return [(json.loads(e.detail)["booking"], json.loads(e.detail)["status"])
                for e in s.scalars(select(AuditEvent).where(
                    AuditEvent.action == "booking.refund_result").order_by(AuditEvent.seq))]


def test_processing_refund_is_queried_until_final(rt, world):
    (pid,) = _rejected(rt)
    bk = _booking(rt, pid)
    assert (bk.status, bk.pay_status, bk.refund_status) == ("rejected", "refunding",
                                                            "PROCESSING")
    assert bk.refund_no == f"R{bk.out_trade_no}" and bk.refunded_at is None
    # the job asks; the platform still says PROCESSING: nothing changes, asked again later
    assert pay.sync_refunds(rt) == {"processing": 1}
    assert _booking(rt, pid).pay_status == "refunding" and _results(rt) == []
    # the back office shows it and offers the query by hand
    with web_client(rt) as staff:
        login(staff, "REC1")
        page = staff.get(f"/booking/b/{bk.booking_no}").text
        assert "退款处理中" in page and "查询退款结果" in page
        # the money arrives: the next query (here the back office's) applies it
        sandbox_pay.platform(rt).refund_settle_seconds = 0
        r = staff.post(f"/booking/b/{bk.booking_no}/refund-sync",
                       data={"_csrf_token": staff.cookies.get("bingan_csrf")},
                       follow_redirects=False)
        assert "err=" not in r.headers["location"], r.headers["location"]
        page = staff.get(f"/booking/b/{bk.booking_no}").text
        assert "退款成功" in page and "查询退款结果" not in page
    bk = _booking(rt, pid)
    assert (bk.pay_status, bk.refund_status) == ("refunded", "SUCCESS") and bk.refunded_at
    assert bk.refund_id and bk.refund_id.startswith("50")
    assert _results(rt) == [(bk.booking_no, "SUCCESS")]
    # nothing left to ask about; asking again changes nothing
    assert pay.sync_refunds(rt) == {}
    assert _results(rt) == [(bk.booking_no, "SUCCESS")]


def test_refund_notification_window_forgery_replay_and_storm(rt, world):
    """The result notification goes through the payment's checks; a storm of copies and new
    ids with the refund query racing them applies SUCCESS once."""
    (pid,) = _rejected(rt)
    bk = _booking(rt, pid)
    k = sandbox_pay.keys(rt.home)
    p = sandbox_pay.platform(rt)
    headers, body = p.settle_refund(bk.refund_no, "SUCCESS", deliver=False)
    with rt.sessions() as s:
        o = s.scalar(select(sandbox_pay.SandboxOrder).where(
            sandbox_pay.SandboxOrder.out_trade_no == bk.out_trade_no))
        plain = sandbox_pay.refund_view(o, o.refunds[0], notification=True)
    assert plain["refund_status"] == "SUCCESS" and plain["out_refund_no"] == bk.refund_no
    with web_client(rt) as c:
        def post(h, b):
            return c.post("/h5/pay/notify", content=b.encode(),
                          headers={**h, "Content-Type": "application/json"}).status_code

        now = int(time.time())
        assert post(*sandbox_pay.notification(k, plain, "REFUND.SUCCESS",
                                              timestamp=now - 400)) == 401
        forger = sandbox_pay.Keys(**{**k.__dict__,
                                     "platform_private": sandbox_pay._pem_pair()[0]})
        assert post(*sandbox_pay.notification(forger, plain, "REFUND.SUCCESS")) == 401
        # signed by the platform but not this booking's refund: amount, refund number
        for over in ({"amount": {**plain["amount"], "refund": 1}},
                     {"out_refund_no": "R-someone-else"}, {"mchid": "1999999999"}):
            assert post(*sandbox_pay.notification(k, {**plain, **over},
                                                  "REFUND.SUCCESS")) == 400
        assert _booking(rt, pid).pay_status == "refunding"
        again = sandbox_pay.notification(k, plain, "REFUND.SUCCESS", notice_id="refund-2")

        def deliver(i):
            if i == 5:
                return pay.sync_refunds(rt)  # the job racing the notifications
            return pay.take_notification(rt, *((headers, body) if i % 2 else again))

        with cf.ThreadPoolExecutor(6) as ex:
            out = list(ex.map(deliver, range(16)))
    outcomes = [o[1] for o in out if isinstance(o, tuple)]
    assert outcomes.count("refunded") + out[5].get("refunded", 0) == 1, out
    assert set(outcomes) <= {"refunded", "already", "duplicate"}, outcomes
    assert _results(rt) == [(bk.booking_no, "SUCCESS")]
    with rt.sessions() as s:
        notes = dict(s.execute(select(BookingPayNotice.notice_id, BookingPayNotice.result)
                               .where(BookingPayNotice.event_type == "REFUND.SUCCESS")).all())
        assert len(notes) == 2 + 3  # the two deliveries taken, the three refused mismatches
        refused = [json.loads(e.detail)["why"] for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action == "booking.pay_refused").order_by(AuditEvent.seq))]
    assert refused == ["stale", "signature"] + ["refund_mismatch"] * 3
    bk = _booking(rt, pid)
    assert (bk.pay_status, bk.refund_status) == ("refunded", "SUCCESS")


def test_abnormal_and_closed_refunds_are_final(rt, world):
    """ABNORMAL (a closed bank card) by notification, CLOSED by the query: each final, shown
    to staff and the patient; neither counts as money returned."""
    a, b = _rejected(rt, 2)
    p = sandbox_pay.platform(rt)
    h, body = p.settle_refund(_booking(rt, a).refund_no, "ABNORMAL", deliver=False)
    assert pay.take_notification(rt, h, body) == (200, "refund_abnormal")
    p.settle_refund(_booking(rt, b).refund_no, "CLOSED", deliver=False)  # notification lost
    assert pay.sync_refunds(rt) == {"refund_closed": 1}
    assert pay.sync_refunds(rt) == {}
    ba, bb = _booking(rt, a), _booking(rt, b)
    assert (ba.pay_status, ba.refund_status, ba.refunded_at) == ("refund_abnormal", "ABNORMAL",
                                                                 None)
    assert (bb.pay_status, bb.refund_status, bb.refunded_at) == ("refund_closed", "CLOSED",
                                                                 None)
    assert sorted(_results(rt)) == sorted([(ba.booking_no, "ABNORMAL"),
                                           (bb.booking_no, "CLOSED")])
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "booking.refund_result", AuditEvent.outcome == "failed")) == 2
    with web_client(rt) as staff:
        login(staff, "REC1")
        assert "退款异常" in staff.get(f"/booking/b/{ba.booking_no}").text
        listed = staff.get("/booking", params={"pay": "refund_closed"}).text
        assert bb.booking_no in listed and ba.booking_no not in listed
