"""WeChat Pay (API v3, JSAPI) for bookings, with wechatpayv3.

The library checks a callback's signature and decrypts it, but accepts a day-old or replayed
notification (DESIGN.md, lessons): ``take_notification`` adds what is ours —

1. the ``Wechatpay-Timestamp`` must be within ``callback_window_seconds`` (300) of our clock;
2. the signature (wechatpayv3, platform public key) and the resource decrypt;
3. the notification id is recorded once (unique row): a replay is answered, not applied;
4. the order is locked and moves to paid once (out_trade_no): a second notification of the
   same order, or the query fallback racing the callback, changes nothing;
5. merchant, app and amount must be the order's; anything else is refused and audited.

``sync`` asks the platform (order query) when no notification came; ``request_refund`` gives
the money back when a booking is rejected. A refund the platform answers PROCESSING ends by
its result notification (REFUND.SUCCESS / ABNORMAL / CLOSED: the same window, signature and
de-duplication as a payment's) or, when that is lost, by the refund query of the job
``booking.refund_query`` (``sync_refunds``); either applies the result once (``_apply_refund``
on the locked row).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bingan.core import audit
from bingan.core.models import utcnow

from bingan_booking.models import REFUND_LABELS, Booking, BookingPayNotice
from bingan_booking.settings import BookingSettings, WeChat

SYSTEM = audit.Actor(staff_no="system")


class PayError(RuntimeError):
    """The payment platform refused or could not be reached; the message says what."""


class WeChatPayGateway:
    """The real client (wechatpayv3, public-key mode) against ``base_url``: WeChat Pay's own
    address for the real provider, the sandbox platform's for the sandbox."""

    def __init__(self, name: str, conf: WeChat, private_key: str, serial_no: str,
                 apiv3_key: str, public_key: str, public_key_id: str,
                 base_url: str | None = None) -> None:
        from wechatpayv3 import WeChatPay, WeChatPayType

        self.name = name
        self.appid = conf.appid
        self.mchid = conf.mchid
        self.client = WeChatPay(
            wechatpay_type=WeChatPayType.JSAPI, mchid=conf.mchid, private_key=private_key,
            cert_serial_no=serial_no, appid=conf.appid, apiv3_key=apiv3_key,
            public_key=public_key, public_key_id=public_key_id, timeout=(5, 15))
        if base_url:
            # wechatpayv3 has no gateway option; the sandbox platform answers at its own address
            self.client._core._gate_way = base_url

    def _ok(self, code: int, message: Any) -> dict[str, Any]:
        if not 200 <= code < 300:
            try:
                detail = json.loads(message).get("message", "")
            except (TypeError, ValueError):
                detail = ""
            raise PayError(f"微信支付返回 {code}{('：' + detail) if detail else ''}")
        return json.loads(message) if message else {}

    def jsapi_order(self, out_trade_no: str, total_fen: int, openid: str, description: str,
                    notify_url: str) -> str:
        from wechatpayv3 import WeChatPayType

        code, msg = self.client.pay(description=description[:127], out_trade_no=out_trade_no,
                                    amount={"total": total_fen, "currency": "CNY"},
                                    payer={"openid": openid}, notify_url=notify_url,
                                    pay_type=WeChatPayType.JSAPI)
        return str(self._ok(code, msg)["prepay_id"])

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        return {"appId": self.appid, "timeStamp": ts, "nonceStr": nonce, "package": package,
                "signType": "RSA",
                "paySign": self.client.sign([self.appid, ts, nonce, package])}

    def query(self, out_trade_no: str) -> dict[str, Any]:
        code, msg = self.client.query(out_trade_no=out_trade_no)
        return self._ok(code, msg)

    def refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int,
               reason: str, notify_url: str | None = None) -> dict[str, Any]:
        code, msg = self.client.refund(out_refund_no=out_refund_no, out_trade_no=out_trade_no,
                                       amount={"refund": refund_fen, "total": total_fen,
                                               "currency": "CNY"}, reason=reason[:80],
                                       notify_url=notify_url)
        return self._ok(code, msg)

    def query_refund(self, out_refund_no: str) -> dict[str, Any]:
        code, msg = self.client.query_refund(out_refund_no=out_refund_no)
        return self._ok(code, msg)

    def verify_callback(self, headers: dict[str, str], body: str) -> dict[str, Any] | None:
        try:
            return self.client.callback(headers, body)
        except Exception:  # noqa: BLE001 - an unknown algorithm or malformed body: not ours
            return None


def builtin_gateway(name: str, rt) -> WeChatPayGateway | None:
    conf = rt.settings(BookingSettings).wechat
    if name == "sandbox":
        from bingan_booking import sandbox_pay

        p = sandbox_pay.platform(rt)
        k = p.k
        return WeChatPayGateway("sandbox", conf, k.merchant_private, k.merchant_serial,
                                k.apiv3_key, k.platform_public, sandbox_pay.PUBLIC_KEY_ID,
                                base_url=p.url)
    if name == "wechat":
        missing = [f for f in ("merchant_private_key", "merchant_serial_no", "apiv3_key",
                               "platform_public_key", "platform_public_key_id")
                   if not getattr(conf, f)]
        if missing:
            raise PayError(f"微信支付未配置：{', '.join(missing)}")
        return WeChatPayGateway("wechat", conf, conf.merchant_private_key,
                                conf.merchant_serial_no, conf.apiv3_key,
                                conf.platform_public_key, conf.platform_public_key_id)
    return None


def gateway(rt):
    name = rt.settings(BookingSettings).wechat.provider
    gw = rt.pm.hook.booking_pay_gateway(name=name, rt=rt)
    if gw is None:
        raise PayError(f"未找到支付方式 {name}")
    return gw


# --------------------------------------------------------------------------------------------
# Ordering
# --------------------------------------------------------------------------------------------


def order(rt, account_id: int, public_id: str, openid: str, notify_url: str
          ) -> dict[str, str] | None:
    """The JSAPI parameters for the patient's browser, or None when the booking needs no
    payment. One prepay order per booking (the platform answers the same one for the same
    out_trade_no); no transaction is held while the platform is asked."""
    with rt.sessions() as s:
        bk = s.scalar(select(Booking).where(Booking.public_id == public_id,
                                            Booking.account_id == account_id))
        if bk is None:
            raise PayError("预约不存在")
        if bk.pay_status != "unpaid" or bk.status != "unpaid":
            return None
        no, fee, booking_no, prepay = bk.out_trade_no, bk.fee_fen, bk.booking_no, bk.prepay_id
    gw = gateway(rt)
    if not prepay:
        prepay = gw.jsapi_order(no, fee, openid, f"病历复印预约 {booking_no}", notify_url)
        with rt.sessions() as s, s.begin():
            bk = _locked(s, no)
            if bk is not None and not bk.prepay_id:
                bk.prepay_id = prepay
    return gw.jsapi_params(prepay)


def _mark_paid(session: Session, rt, bk: Booking, tx: dict[str, Any], source: str,
               now: dt.datetime) -> str:
    """Apply a SUCCESS transaction to the (locked) booking once. Returns the outcome."""
    conf = rt.settings(BookingSettings).wechat
    total = int((tx.get("amount") or {}).get("total", -1))
    if tx.get("mchid") != conf.mchid or tx.get("appid") != conf.appid or total != bk.fee_fen:
        audit.record(session, rt, "booking.pay_refused", actor=SYSTEM, mrn=bk.mrn, ts=now,
                     outcome="denied",
                     detail={"booking": bk.booking_no, "source": source, "why": "mismatch",
                             "amount": total, "expected": bk.fee_fen})
        return "mismatch"
    if bk.pay_status != "unpaid":
        return "already"
    bk.pay_status, bk.paid_fen, bk.paid_at = "paid", total, now
    bk.transaction_id = str(tx.get("transaction_id", ""))[:64] or None
    if bk.status in ("unpaid", "closed"):
        bk.status = "pending"
    audit.record(session, rt, "booking.paid", actor=SYSTEM, mrn=bk.mrn, ts=now,
                 detail={"booking": bk.booking_no, "source": source,
                         "amount": total, "transaction": bk.transaction_id})
    return "paid"


def _locked(session: Session, out_trade_no: str) -> Booking | None:
    return session.scalar(select(Booking).where(Booking.out_trade_no == out_trade_no)
                          .with_for_update())


def take_notification(rt, headers: dict[str, str], body: str,
                      now: dt.datetime | None = None) -> tuple[int, str]:
    """Handle one callback; returns (HTTP status, result). 2xx tells the platform to stop
    retrying (applied, or a replay of one applied); 4xx refuses it."""
    now = now or utcnow()
    conf = rt.settings(BookingSettings)
    h = {k.lower(): v for k, v in headers.items()}
    try:
        ts = int(h.get("wechatpay-timestamp", ""))
    except ValueError:
        ts = None
    if ts is None or abs(now.timestamp() - ts) > conf.callback_window_seconds:
        _refused(rt, "stale", now)
        return 401, "stale"
    canon = {"Wechatpay-Signature": h.get("wechatpay-signature", ""),
             "Wechatpay-Timestamp": h.get("wechatpay-timestamp", ""),
             "Wechatpay-Nonce": h.get("wechatpay-nonce", ""),
             "Wechatpay-Serial": h.get("wechatpay-serial", ""),
             "Wechatpay-Signature-Type": h.get("wechatpay-signature-type", "")}
    try:
        data = gateway(rt).verify_callback(canon, body)
    except PayError:
        data = None
    if not data or not isinstance(data.get("resource"), dict) or not data.get("id"):
        _refused(rt, "signature", now)
        return 401, "signature"
    res = data["resource"]
    notice_id = str(data["id"])[:64]
    no = str(res.get("out_trade_no", ""))[:32]
    with rt.sessions() as s:
        try:
            with s.begin():
                s.add(BookingPayNotice(notice_id=notice_id, out_trade_no=no,
                                       event_type=str(data.get("event_type", ""))[:64],
                                       result="taken", received_at=now))
                s.flush()
                bk = _locked(s, no)
                event = str(data.get("event_type", ""))
                if bk is None:
                    outcome = "unknown_order"
                elif event.startswith("REFUND."):
                    outcome = _apply_refund(s, rt, bk, res, "notify", now)
                elif data.get("event_type") != "TRANSACTION.SUCCESS" or \
                        res.get("trade_state") != "SUCCESS":
                    outcome = "not_success"
                else:
                    outcome = _mark_paid(s, rt, bk, res, "notify", now)
                notice = s.scalar(select(BookingPayNotice).where(
                    BookingPayNotice.notice_id == notice_id))
                assert notice is not None
                notice.result = outcome
        except IntegrityError:
            return 200, "duplicate"  # this notification was taken before
    if outcome in ("unknown_order", "mismatch"):
        return 400, outcome
    return 200, outcome


def _refused(rt, why: str, now: dt.datetime) -> None:
    with rt.sessions() as s, s.begin():
        audit.record(s, rt, "booking.pay_refused", actor=SYSTEM, outcome="denied", ts=now,
                     detail={"source": "notify", "why": why})


def sync(rt, out_trade_no: str, now: dt.datetime | None = None) -> str:
    """The query fallback: ask the platform about an unpaid order and apply a success."""
    now = now or utcnow()
    tx = gateway(rt).query(out_trade_no)
    with rt.sessions() as s, s.begin():
        bk = _locked(s, out_trade_no)
        if bk is None:
            return "unknown_order"
        if tx.get("trade_state") != "SUCCESS":
            return str(tx.get("trade_state", "")).lower() or "unknown"
        return _mark_paid(s, rt, bk, tx, "query", now)


def request_refund(rt, bk: Booking, reason: str) -> dict[str, Any]:
    """Ask the platform to refund the whole payment (idempotent: the refund number is derived
    from the order, so asking twice refunds once). Called outside any transaction. The result
    notification goes to the payment callback when ``public_url`` is set (else to the address
    configured at the merchant platform)."""
    if bk.pay_status != "paid" or not bk.paid_fen:
        raise PayError("该预约没有可退的款项")
    base = rt.settings(BookingSettings).public_url.rstrip("/")
    return gateway(rt).refund(bk.out_trade_no, refund_no(bk), bk.paid_fen,
                              bk.fee_fen, f"病历复印预约未通过审核：{reason}"[:80],
                              notify_url=f"{base}/h5/pay/notify" if base else None)


def refund_no(bk: Booking) -> str:
    return bk.refund_no or f"R{bk.out_trade_no}"[:64]


def record_refund(session: Session, rt, bk: Booking, res: dict[str, Any], act: audit.Actor,
                  now: dt.datetime | None = None) -> None:
    """Write what the platform answered to the refund, in the caller's transaction: SUCCESS
    is final; PROCESSING (the usual answer) waits for the result notification or the
    refund query."""
    now = now or utcnow()
    bk.refund_no = str(res.get("out_refund_no") or refund_no(bk))[:64]
    bk.refund_id = str(res.get("refund_id") or "")[:64] or None
    status = str(res.get("status", ""))
    bk.pay_status, bk.refund_status, bk.refund_checked_at = "refunding", "PROCESSING", now
    audit.record(session, rt, "booking.refund", actor=act, mrn=bk.mrn, ts=now,
                 detail={"booking": bk.booking_no, "amount": bk.paid_fen, "status": status})
    if status in ("SUCCESS", "ABNORMAL", "CLOSED"):
        _apply_refund(session, rt, bk, {**res, "refund_status": status}, "refund", now)


FINAL_REFUND = {"SUCCESS": "refunded", "ABNORMAL": "refund_abnormal", "CLOSED": "refund_closed"}


def _apply_refund(session: Session, rt, bk: Booking, res: dict[str, Any], source: str,
                  now: dt.datetime) -> str:
    """Apply a refund's result (a notification's resource or the query's answer) to the
    locked booking once. Returns the outcome: refunded / refund_abnormal / refund_closed,
    processing (nothing final yet), already (applied before), mismatch (not this booking's
    refund: refused and audited)."""
    conf = rt.settings(BookingSettings).wechat
    status = str(res.get("refund_status") or res.get("status") or "")
    amount = res.get("amount") or {}
    refund = int(amount.get("refund", -1)) if isinstance(amount, dict) else -1
    if (str(res.get("out_refund_no", "")) != refund_no(bk) or refund != bk.paid_fen
            or ("mchid" in res and res.get("mchid") != conf.mchid)
            or status not in REFUND_LABELS or bk.paid_fen is None):
        audit.record(session, rt, "booking.pay_refused", actor=SYSTEM, mrn=bk.mrn, ts=now,
                     outcome="denied",
                     detail={"booking": bk.booking_no, "source": source, "why": "refund_mismatch",
                             "amount": refund, "status": status[:16]})
        return "mismatch"
    if bk.pay_status != "refunding":
        return "already"
    bk.refund_checked_at = now
    if status == "PROCESSING":
        return "processing"
    bk.pay_status, bk.refund_status = FINAL_REFUND[status], status
    bk.refund_id = str(res.get("refund_id") or bk.refund_id or "")[:64] or None
    if status == "SUCCESS":
        bk.refunded_at = now
    audit.record(session, rt, "booking.refund_result", actor=SYSTEM, mrn=bk.mrn, ts=now,
                 outcome="ok" if status == "SUCCESS" else "failed",
                 detail={"booking": bk.booking_no, "source": source, "status": status,
                         "amount": refund, "account": str(res.get("user_received_account", ""))[:64]})
    return FINAL_REFUND[status]


def sync_refunds(rt, now: dt.datetime | None = None, only: int | None = None
                 ) -> dict[str, int]:
    """Scheduled (``booking.refund_query``): ask the platform about every refund still
    PROCESSING and apply a final result; counts by outcome. A refund the platform cannot
    answer now stays PROCESSING and is asked again next time."""
    now = now or utcnow()
    with rt.sessions() as s:
        q = select(Booking.out_trade_no, Booking.refund_no, Booking.id).where(
            Booking.pay_status == "refunding")
        if only is not None:
            q = q.where(Booking.id == only)
        waiting = list(s.execute(q.order_by(Booking.id)))
    counts: dict[str, int] = {}
    if not waiting:
        return counts
    gw = gateway(rt)
    for no, rno, _id in waiting:
        try:
            res = gw.query_refund(rno or f"R{no}"[:64])
        except PayError:
            counts["error"] = counts.get("error", 0) + 1
            continue
        with rt.sessions() as s, s.begin():
            bk = _locked(s, no)
            outcome = "gone" if bk is None else _apply_refund(s, rt, bk, res, "query", now)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def close_stale(rt, now: dt.datetime | None = None) -> int:
    """Scheduled: ask about orders unpaid for ``unpaid_minutes`` (a lost notification is
    applied), close the rest."""
    now = now or utcnow()
    conf = rt.settings(BookingSettings)
    with rt.sessions() as s:
        stale = list(s.scalars(select(Booking.out_trade_no).where(
            Booking.status == "unpaid", Booking.pay_status == "unpaid",
            Booking.created_at < now - dt.timedelta(minutes=conf.unpaid_minutes))))
    closed = 0
    for no in stale:
        try:
            if sync(rt, no, now) == "paid":
                continue
        except PayError:
            pass  # not at the platform (never ordered) or unreachable: close ours
        with rt.sessions() as s, s.begin():
            bk = _locked(s, no)
            if bk is not None and bk.pay_status == "unpaid" and bk.status == "unpaid":
                bk.status, bk.pay_status = "closed", "closed"
                closed += 1
    return closed
