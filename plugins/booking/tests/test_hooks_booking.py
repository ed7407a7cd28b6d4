"""The booking plugin's own hooks: each provider can come from another plugin (chosen by name
in the settings), and an approved booking is handed to whoever registers copy requests."""

from __future__ import annotations

import types

from sqlalchemy import select

from bingan.hooks import hookimpl

from bingan_booking import courier, pay, service, sms
from bingan_booking.hookspecs import SmsResult, TrackEvent, Tracking
from bingan_booking.models import Booking
from bingan_booking.settings import BookingSettings
from booking_world import book, sign_in, verify_phone
from test_flow import _booking, _pay
from webutil import web_client


def _plugin(**fns):
    mod = types.ModuleType("acme_booking")
    for name, fn in fns.items():
        setattr(mod, name, hookimpl(tryfirst=True)(fn))
    return mod


def _paid_booking(rt) -> str:
    with web_client(rt) as c:
        sign_in(c)
        verify_phone(c, rt)
        pid = book(c).headers["location"].split("/")[3]
        _pay(c, rt, pid)
    return pid


def test_hook_booking_approved(rt, world):
    seen = []

    def booking_approved(session, booking, rt):
        seen.append(booking)
        return "ACME-0001"

    pid = _paid_booking(rt)
    rt.pm.register(_plugin(booking_approved=booking_approved))
    from bingan.core import audit
    from bingan.core.staff import get_staff, staff_ref

    with rt.sessions() as s, s.begin():
        staff = staff_ref(get_staff(s, "REC1"))
        bk = s.scalar(select(Booking).where(Booking.public_id == pid))
        service.approve(s, rt, bk, staff, audit.Actor(staff_no="REC1"))
    assert _booking(rt, pid).copy_request_no == "ACME-0001"
    (b,) = seen
    assert b.booking_no == _booking(rt, pid).booking_no and b.reviewed_by == "REC1"
    # the photo arrives decrypted for the receiving plugin, as a JPEG
    assert [d.kind for d in b.documents] == ["holding_id"]
    assert b.documents[0].data[:3] == b"\xff\xd8\xff"


def test_a_copy_counter_that_refuses_leaves_the_booking_pending(rt, world):
    def booking_approved(session, booking, rt):
        raise ValueError("页面已被替换")

    pid = _paid_booking(rt)
    rt.pm.register(_plugin(booking_approved=booking_approved))
    no = _booking(rt, pid).booking_no
    with web_client(rt) as staff:
        from webutil import login

        login(staff, "REC1")
        r = staff.post(f"/booking/b/{no}/approve",
                       data={"_csrf_token": staff.cookies.get("bingan_csrf")},
                       follow_redirects=False)
        assert r.status_code in (302, 303) and "err=" in r.headers["location"]
        assert "页面已被替换" in staff.get(r.headers["location"]).text
    bk = _booking(rt, pid)
    assert (bk.status, bk.copy_request_no, bk.reviewed_by) == ("pending", None, None)
    from bingan_booking.models import BookingSms

    with rt.sessions() as s:
        assert not s.scalars(select(BookingSms).where(BookingSms.booking_id == bk.id)).all()


def test_hook_booking_sms_gateway(rt, world):
    sent = []

    class Acme:
        name = "acme"

        def send(self, phone, template, params, text):
            sent.append((phone, template, params))
            return SmsResult(ok=True, provider_ref="acme-1")

    rt.pm.register(_plugin(booking_sms_gateway=lambda name, rt: Acme() if name == "acme" else None))
    rt.settings(BookingSettings).sms.provider = "acme"
    with rt.sessions() as s, s.begin():
        row = sms.send(s, rt, "13900000001", "code", {"code": "123456"}, "验证码 123456",
                       log_text="验证码 ******")
    assert sent == [("13900000001", "SMS_CODE", {"code": "123456"})]
    assert (row.provider, row.ok, row.provider_ref, row.text) == ("acme", True, "acme-1",
                                                                 "验证码 ******")


def test_hook_booking_pay_gateway(rt, world):
    with web_client(rt) as c:
        sign_in(c)
        verify_phone(c, rt)
        pid = book(c).headers["location"].split("/")[3]
    orders = []

    class Acme:
        name = "acme"

        def jsapi_order(self, out_trade_no, total_fen, openid, description, notify_url):
            orders.append((out_trade_no, total_fen, notify_url))
            return "wxacmeprepay"

        def jsapi_params(self, prepay_id):
            return {"package": f"prepay_id={prepay_id}", "appId": "wx", "timeStamp": "1",
                    "nonceStr": "n", "signType": "RSA", "paySign": "s"}

    rt.pm.register(_plugin(booking_pay_gateway=lambda name, rt: Acme() if name == "acme" else None))
    rt.settings(BookingSettings).wechat.provider = "acme"
    bk = _booking(rt, pid)
    params = pay.order(rt, bk.account_id, pid, "openid-x", "https://h.example/h5/pay/notify")
    assert params["package"] == "prepay_id=wxacmeprepay"
    assert orders == [(bk.out_trade_no, bk.fee_fen, "https://h.example/h5/pay/notify")]
    assert _booking(rt, pid).prepay_id == "wxacmeprepay"


def test_hook_booking_oauth_gateway(rt, world):
    class Acme:
        name = "acme"

        def authorize_url(self, redirect_uri, state):
            return f"https://sso.example/authorize?state={state}"

        def openid(self, code):
            return "acme-" + code

    rt.pm.register(_plugin(booking_oauth_gateway=lambda name, rt: Acme() if name == "acme" else None))
    rt.settings(BookingSettings).wechat.provider = "acme"
    with web_client(rt) as c:
        r = c.get("/h5/signin", follow_redirects=False)
        assert r.headers["location"].startswith("https://sso.example/authorize?state=")
        state = r.headers["location"].rsplit("=", 1)[1]
        r = c.get("/h5/oauth", params={"code": "abc", "state": state}, follow_redirects=False)
        assert r.status_code in (302, 303) and c.cookies.get("bingan_booking")
        # a state made for another browser is refused
        r = c.get("/h5/oauth", params={"code": "abc", "state": "0" * 32})
        assert r.status_code == 400
    from bingan_booking.models import BookingAccount

    with rt.sessions() as s:
        assert s.scalar(select(BookingAccount.openid)) == "acme-abc"


def test_hook_booking_courier_gateway(rt, world):
    class Acme:
        name = "acme"

        def track(self, company, number, phone=""):
            return Tracking(company="顶峰快递", number=number, state="已签收", delivered=True,
                            events=[TrackEvent("2026-12-01 10:00", "杭州", "已签收")])

    rt.pm.register(_plugin(booking_courier_gateway=lambda name, rt: Acme() if name == "acme" else None))
    rt.settings(BookingSettings).courier.provider = "acme"
    t = courier.gateway(rt).track("x", "AC123456")
    assert t.delivered and t.events[0].where == "杭州"


def test_kuaidi100_signature_and_states(rt):
    """Kuaidi100's rule: sign = MD5(param + key + customer) in capitals; the sandbox refuses a
    request signed with another key and answers from the dispatch time."""
    import hashlib

    want = hashlib.md5(('{"com":"shunfeng","num":"SF1"}' + "KEY" + "CUST").encode()).hexdigest()
    assert courier.sign('{"com":"shunfeng","num":"SF1"}', "KEY", "CUST") == want.upper()
    gw = courier.builtin_gateway("sandbox", rt)
    forged = courier.Kuaidi100(gw.customer, "not-the-key", gw.transport)
    try:
        forged.track("shunfeng", "SF000000000001")
        raise AssertionError("a wrongly signed query was answered")
    except courier.TrackingError as exc:
        assert "签名" in str(exc)
    try:
        gw.track("shunfeng", "SF000000000001")
        raise AssertionError("an unknown number was answered")
    except courier.TrackingError as exc:
        assert "无结果" in str(exc)
