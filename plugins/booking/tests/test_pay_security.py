"""Payment callbacks: what wechatpayv3 lets through and we must not (DESIGN.md, lessons).

Every notification here is made by the sandbox platform with its real key (or a forger's),
encrypted with the APIv3 key, and posted to the real callback route: old and future
timestamps, a forged signature, a tampered body, a replay, a second notification of the same
order, a duplicate storm from threads, a wrong amount; the order query as the fallback."""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import json
import time

from sqlalchemy import func, select

from bingan.core.models import AuditEvent

from bingan_booking import pay, sandbox_pay
from bingan_booking.models import Booking, BookingPayNotice, SandboxOrder
from booking_world import book, csrf, sign_in, verify_phone
from test_flow import _booking
from webutil import web_client


def _ordered(rt):
    """A booking with its JSAPI order at the sandbox platform; (client, public id, order)."""
    c_cm = web_client(rt)
    c = c_cm.__enter__()
    sign_in(c)
    verify_phone(c, rt)
    pid = book(c).headers["location"].split("/")[3]
    assert c.get(f"/h5/b/{pid}/pay").status_code == 200
    bk = _booking(rt, pid)
    with rt.sessions() as s:
        order = s.scalar(select(SandboxOrder).where(SandboxOrder.out_trade_no == bk.out_trade_no))
        s.expunge(order)
    return c_cm, c, pid, order


def _success(rt, order, **over):
    """The resource of a paid order, as the platform describes it."""
    with rt.sessions() as s, s.begin():
        o = s.scalar(select(SandboxOrder).where(SandboxOrder.id == order.id))
        o.trade_state, o.transaction_id = "SUCCESS", o.transaction_id or "4200000000001"
        o.paid_at = o.paid_at or dt.datetime.now(dt.timezone.utc)
        res = sandbox_pay.transaction(o)
    res.update(over)
    return res


def _post(c, headers, body):
    return c.post("/h5/pay/notify", content=body.encode() if isinstance(body, str) else body,
                  headers={**headers, "Content-Type": "application/json"})


def _refused(rt) -> list[str]:
    with rt.sessions() as s:
        return [json.loads(e.detail).get("why") for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action == "booking.pay_refused")
            .order_by(AuditEvent.seq))]


def test_window_signature_and_tampering(rt, world):
    cm, c, pid, order = _ordered(rt)
    try:
        k = sandbox_pay.keys(rt.home)
        res = _success(rt, order)
        now = int(time.time())
        # signed by the platform, but a day old / five minutes and a bit in the future
        for ts in (now - 24 * 3600, now - 320, now + 320):
            h, b = sandbox_pay.notification(k, res, timestamp=ts)
            assert _post(c, h, b).status_code == 401
        # signed by someone else's key
        forger = sandbox_pay.Keys(**{**k.__dict__, "platform_private": sandbox_pay._pem_pair()[0]})
        h, b = sandbox_pay.notification(forger, res)
        assert _post(c, h, b).status_code == 401
        # the platform's signature over another body
        h, b = sandbox_pay.notification(k, res)
        assert _post(c, h, b.replace('"summary": "支付成功"', '"summary": "x"')).status_code == 401
        # encrypted with another APIv3 key (signature right, resource unreadable)
        other = sandbox_pay.Keys(**{**k.__dict__, "apiv3_key": "0" * 32})
        h, b = sandbox_pay.notification(other, res)
        assert _post(c, h, b).status_code == 401
        # no headers at all
        assert _post(c, {}, b).status_code == 401
        assert _booking(rt, pid).pay_status == "unpaid"
        assert _refused(rt) == ["stale"] * 3 + ["signature"] * 3 + ["stale"]  # no timestamp
        # within the window and signed: applied
        h, b = sandbox_pay.notification(k, res, timestamp=int(time.time()) - 290)
        assert _post(c, h, b).status_code == 204
        assert _booking(rt, pid).pay_status == "paid"
    finally:
        cm.__exit__(None, None, None)


def test_replay_and_second_notification_of_one_order_apply_once(rt, world):
    cm, c, pid, order = _ordered(rt)
    try:
        k = sandbox_pay.keys(rt.home)
        res = _success(rt, order)
        h, b = sandbox_pay.notification(k, res, notice_id="notice-1")
        assert _post(c, h, b).status_code == 204
        paid_at = _booking(rt, pid).paid_at
        # the same notification again (a replay within the window)
        assert _post(c, h, b).status_code == 204
        # the platform's retry: a new notification id for the same order
        h2, b2 = sandbox_pay.notification(k, res, notice_id="notice-2")
        assert _post(c, h2, b2).status_code == 204
        with rt.sessions() as s:
            assert s.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "booking.paid")) == 1
            notes = dict(s.execute(select(BookingPayNotice.notice_id, BookingPayNotice.result)).all())
        assert notes == {"notice-1": "paid", "notice-2": "already"}
        assert _booking(rt, pid).paid_at == paid_at
    finally:
        cm.__exit__(None, None, None)


def test_duplicate_storm_is_exactly_once(rt, world):
    """Twenty deliveries at once (ten copies each of two notification ids, and the order
    query racing them): one payment, one audit event, two notices kept."""
    cm, c, pid, order = _ordered(rt)
    try:
        k = sandbox_pay.keys(rt.home)
        res = _success(rt, order)
        a = sandbox_pay.notification(k, res, notice_id="storm-a")
        b = sandbox_pay.notification(k, res, notice_id="storm-b")
        bk = _booking(rt, pid)

        def deliver(i):
            if i == 7:
                return pay.sync(rt, bk.out_trade_no)
            h, body = (a, b)[i % 2]
            return pay.take_notification(rt, h, body)

        with cf.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(deliver, range(21)))
        outcomes = [r[1] if isinstance(r, tuple) else r for r in results]
        assert outcomes.count("paid") == 1, outcomes
        assert all(o in ("paid", "already", "duplicate") for o in outcomes), outcomes
        with rt.sessions() as s:
            assert s.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "booking.paid")) == 1
            assert s.scalar(select(func.count()).select_from(BookingPayNotice)) == 2
        assert _booking(rt, pid).pay_status == "paid"
    finally:
        cm.__exit__(None, None, None)


def test_amount_merchant_and_unknown_order_are_refused(rt, world):
    cm, c, pid, order = _ordered(rt)
    try:
        k = sandbox_pay.keys(rt.home)
        bk = _booking(rt, pid)
        for over in ({"amount": {"total": 1, "payer_total": 1, "currency": "CNY"}},
                     {"mchid": "1999999999"}, {"appid": "wxother"}):
            h, b = sandbox_pay.notification(k, _success(rt, order, **over))
            assert _post(c, h, b).status_code == 400
        h, b = sandbox_pay.notification(k, _success(rt, order, out_trade_no="YY0000NOPE"))
        assert _post(c, h, b).status_code == 400
        assert _booking(rt, pid).pay_status == "unpaid"
        assert _refused(rt) == ["mismatch"] * 3
        # a notification that says "not paid" changes nothing either
        h, b = sandbox_pay.notification(k, {**_success(rt, order), "trade_state": "NOTPAY"},
                                        event_type="TRANSACTION.CLOSED")
        assert _post(c, h, b).status_code == 204
        assert _booking(rt, pid).pay_status == "unpaid"
        del bk
    finally:
        cm.__exit__(None, None, None)


def test_order_query_is_the_fallback_and_stale_orders_close(rt, world):
    cm, c, pid, order = _ordered(rt)
    try:
        # paid at the platform, the notification lost
        sandbox_pay.platform(rt).pay(order.prepay_id, deliver=False)
        r = c.post(f"/h5/b/{pid}/check", data={"_csrf_token": csrf(c)},
                   follow_redirects=False)
        assert r.status_code in (302, 303)
        bk = _booking(rt, pid)
        assert (bk.pay_status, bk.status, bk.paid_fen) == ("paid", "pending", bk.fee_fen)
        # another booking never paid: the job closes it after unpaid_minutes
        pid2 = book(c).headers["location"].split("/")[3]
        c.get(f"/h5/b/{pid2}/pay")
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=31)
        assert pay.close_stale(rt, later) == 1
        assert (_booking(rt, pid2).status, _booking(rt, pid2).pay_status) == ("closed", "closed")
        assert _booking(rt, pid).status == "pending"
    finally:
        cm.__exit__(None, None, None)


def test_sandbox_platform_refuses_unsigned_merchant_requests(rt):
    """The sandbox checks the merchant's signature as the platform does, so a client that
    signed wrongly fails here too (the real client path is exercised, not bypassed)."""
    import requests

    p = sandbox_pay.platform(rt)
    r = requests.post(p.url + "/v3/pay/transactions/jsapi", json={"out_trade_no": "X123456"},
                      headers={"Authorization": 'WECHATPAY2-SHA256-RSA2048 mchid="1",'
                               'nonce_str="n",signature="AAAA",timestamp="1",serial_no="1"'},
                      timeout=5)
    assert r.status_code == 401
    assert Booking  # the model the platform's orders belong to
