"""The sandbox WeChat Pay platform: the demo's and the tests' "api.mch.weixin.qq.com".

It speaks API v3 as the real platform does, so the real client (wechatpayv3) and the real
callback path run against it: requests must carry the merchant's RSA signature
(``Authorization: WECHATPAY2-SHA256-RSA2048 ...``), answers and payment notifications are
signed with the platform's key (public-key mode, ``Wechatpay-Serial`` = the key id), and
notification resources are AES-256-GCM encrypted with the APIv3 key. The test key pair (the
merchant's and the platform's) and the APIv3 key are made on first use in
BINGAN_HOME/keys/booking-sandbox.json (mode 0600).

The platform listens on a loopback port of its own (one per process); its orders live in
table booking_sandbox_order, so the cashier page (web_h5) can pay them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from bingan.core.models import utcnow

from bingan_booking.models import SandboxOrder

PUBLIC_KEY_ID = "PUB_KEY_ID_SANDBOX0001"


@dataclass(frozen=True)
class Keys:
    merchant_private: str   # PEM
    merchant_public: str
    merchant_serial: str
    platform_private: str
    platform_public: str
    apiv3_key: str          # 32 ASCII characters


def _pem_pair() -> tuple[str, str]:
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption()).decode()
    pub = k.public_key().public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return priv, pub


_keys_lock = threading.Lock()


def keys(home: str | Path) -> Keys:
    """The sandbox's test keys, made once per BINGAN_HOME."""
    path = Path(home) / "keys" / "booking-sandbox.json"
    with _keys_lock:
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            mp, mpub = _pem_pair()
            pp, ppub = _pem_pair()
            data = {"merchant_private": mp, "merchant_public": mpub,
                    "merchant_serial": secrets.token_hex(20).upper(),
                    "platform_private": pp, "platform_public": ppub,
                    "apiv3_key": secrets.token_hex(16)}
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # never replace keys another process made meanwhile
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return Keys(**json.loads(path.read_text()))


def _sign(private_pem: str, message: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    sig = key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(sig).decode()


def _verify(public_pem: str, message: str, signature: str) -> bool:
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(),
                   hashes.SHA256())
        return True
    except (InvalidSignature, ValueError):
        return False


def signed_headers(k: Keys, body: str, timestamp: int | None = None,
                   nonce: str | None = None) -> dict[str, str]:
    """Headers the platform puts on an answer or a notification (public-key mode)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": _sign(k.platform_private, f"{ts}\n{nonce}\n{body}\n"),
            "Wechatpay-Serial": PUBLIC_KEY_ID,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}


SUMMARIES = {"TRANSACTION.SUCCESS": "支付成功", "REFUND.SUCCESS": "退款成功",
             "REFUND.ABNORMAL": "退款异常", "REFUND.CLOSED": "退款关闭"}


def notification(k: Keys, resource: dict[str, Any], event_type: str = "TRANSACTION.SUCCESS",
                 notice_id: str | None = None, timestamp: int | None = None
                 ) -> tuple[dict[str, str], str]:
    """A payment or refund notification as the platform sends it: (headers, body)."""
    nonce = secrets.token_hex(6)  # 12 bytes, as the platform's
    aad = "refund" if event_type.startswith("REFUND.") else "transaction"
    ct = AESGCM(k.apiv3_key.encode()).encrypt(nonce.encode(), json.dumps(
        resource, ensure_ascii=False).encode(), aad.encode())
    body = json.dumps({
        "id": notice_id or str(uuid.uuid4()),
        "create_time": dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).isoformat(
            timespec="seconds"),
        "resource_type": "encrypt-resource", "event_type": event_type,
        "summary": SUMMARIES.get(event_type, event_type),
        "resource": {"original_type": aad, "algorithm": "AEAD_AES_256_GCM",
                     "ciphertext": base64.b64encode(ct).decode(), "associated_data": aad,
                     "nonce": nonce}}, ensure_ascii=False)
    return signed_headers(k, body, timestamp), body


def transaction(order: SandboxOrder) -> dict[str, Any]:
    """An order as the platform describes it (query answers, notification resources)."""
    out: dict[str, Any] = {
        "appid": order.appid, "mchid": order.mchid, "out_trade_no": order.out_trade_no,
        "trade_state": order.trade_state, "trade_type": "JSAPI",
        "trade_state_desc": {"SUCCESS": "支付成功", "NOTPAY": "未支付", "CLOSED": "已关闭",
                             "REFUND": "转入退款"}.get(order.trade_state, order.trade_state),
        "payer": {"openid": order.openid},
        "amount": {"total": order.total, "payer_total": order.total, "currency": "CNY",
                   "payer_currency": "CNY"},
    }
    if order.transaction_id:
        out["transaction_id"] = order.transaction_id
        out["bank_type"] = "OTHERS"
        out["success_time"] = (order.paid_at or utcnow()).astimezone(
            dt.timezone(dt.timedelta(hours=8))).isoformat(timespec="seconds")
    return out


def refund_view(order: SandboxOrder, r: dict[str, Any], notification: bool = False
                ) -> dict[str, Any]:
    """A refund as the platform describes it: the refund query's answer, or (``notification``)
    the resource of its result notification (``refund_status``, the merchant's id)."""
    out: dict[str, Any] = {
        "refund_id": r["refund_id"], "out_refund_no": r["out_refund_no"],
        "transaction_id": order.transaction_id or "", "out_trade_no": order.out_trade_no,
        "user_received_account": "支付用户零钱",
        "amount": {"total": order.total, "refund": r["refund"], "payer_total": order.total,
                   "payer_refund": r["refund"]},
    }
    if r.get("success_time"):
        out["success_time"] = r["success_time"]
    if notification:
        out["mchid"], out["refund_status"] = order.mchid, r["status"]
    else:
        out.update({"status": r["status"], "channel": "ORIGINAL", "funds_account": "AVAILABLE",
                    "create_time": r["create_time"]})
    return out


AUTH = re.compile(r'WECHATPAY2-SHA256-RSA2048 mchid="([^"]*)",nonce_str="([^"]*)",'
                  r'signature="([^"]*)",timestamp="([^"]*)",serial_no="([^"]*)"')


class Platform:
    """The sandbox platform of one runtime: an HTTP server on 127.0.0.1 and the cashier's
    actions (pay an order and notify)."""

    def __init__(self, rt) -> None:
        self.rt = rt
        self.k = keys(rt.home)
        self.server: ThreadingHTTPServer | None = None
        self.deliveries: list[tuple[str, int]] = []  # (notify_url, status) for the demo page
        # the bank's side of a refund: a refund still PROCESSING when queried this long after
        # it was asked for has gone through (SUCCESS); tests hold it with a large value
        self.refund_settle_seconds = 5.0

    # -- the HTTP side -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self.server is None:
            self._start()
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _start(self) -> None:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _answer(self, status: int, data: dict[str, Any] | None) -> None:
                body = json.dumps(data, ensure_ascii=False) if data is not None else ""
                raw = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                if status < 300:
                    for k_, v in signed_headers(platform.k, body).items():
                        self.send_header(k_, v)
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                if n > 65536:
                    self._answer(413, {"code": "PARAM_ERROR", "message": "body too large"})
                    return
                body = self.rfile.read(n).decode() if n else ""
                status, data = platform.api(method, self.path, body,
                                            self.headers.get("Authorization", ""))
                self._answer(status, data)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, name="booking-sandbox-pay",
                         daemon=True).start()

    def api(self, method: str, path: str, body: str, authorization: str
            ) -> tuple[int, dict[str, Any] | None]:
        """API v3 of the platform, for the paths the booking plugin calls."""
        m = AUTH.fullmatch(authorization.strip())
        if not m or m[5] != self.k.merchant_serial or abs(time.time() - int(m[4] or 0)) > 300:
            return 401, {"code": "SIGN_ERROR", "message": "签名错误"}
        if not _verify(self.k.merchant_public, f"{method}\n{path}\n{m[4]}\n{m[2]}\n{body}\n", m[3]):
            return 401, {"code": "SIGN_ERROR", "message": "签名错误"}
        mchid = m[1]
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return 400, {"code": "PARAM_ERROR", "message": "JSON"}
        with self.rt.sessions() as s, s.begin():
            if method == "POST" and path == "/v3/pay/transactions/jsapi":
                no = str(data.get("out_trade_no", ""))
                total = int(data.get("amount", {}).get("total", 0))
                if not re.fullmatch(r"[A-Za-z0-9_\-|*]{6,32}", no) or total <= 0:
                    return 400, {"code": "PARAM_ERROR", "message": "参数错误"}
                o = s.scalar(select(SandboxOrder).where(SandboxOrder.out_trade_no == no))
                if o is None:
                    o = SandboxOrder(out_trade_no=no, prepay_id="wx" + secrets.token_hex(14),
                                     appid=str(data.get("appid", "")), mchid=mchid,
                                     openid=str(data.get("payer", {}).get("openid", "")),
                                     description=str(data.get("description", ""))[:128],
                                     total=total, notify_url=str(data.get("notify_url", "")))
                    s.add(o)
                elif o.total != total:
                    return 400, {"code": "INVALID_REQUEST", "message": "订单金额与原订单不一致"}
                return 200, {"prepay_id": o.prepay_id}
            m2 = re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/?]+)\?mchid=(\w+)", path)
            if method == "GET" and m2:
                o = s.scalar(select(SandboxOrder).where(SandboxOrder.out_trade_no == m2[1]))
                if o is None:
                    return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
                return 200, transaction(o)
            m3 = re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/?]+)/close", path)
            if method == "POST" and m3:
                o = s.scalar(select(SandboxOrder).where(SandboxOrder.out_trade_no == m3[1]))
                if o is not None and o.trade_state == "NOTPAY":
                    o.trade_state = "CLOSED"
                return 204, None
            if method == "POST" and path == "/v3/refund/domestic/refunds":
                o = s.scalar(select(SandboxOrder).where(
                    SandboxOrder.out_trade_no == str(data.get("out_trade_no", ""))))
                amount = data.get("amount", {})
                if o is None or o.trade_state not in ("SUCCESS", "REFUND"):
                    return 400, {"code": "INVALID_REQUEST", "message": "订单未支付"}
                done = sum(r["refund"] for r in o.refunds)
                refund = int(amount.get("refund", 0))
                if int(amount.get("total", 0)) != o.total or refund <= 0:
                    return 400, {"code": "INVALID_REQUEST", "message": "退款金额错误"}
                rno = str(data.get("out_refund_no", ""))
                same = [r for r in o.refunds if r["out_refund_no"] == rno]
                if same:  # the same refund number again: the same refund, not a second one
                    return 200, refund_view(o, same[0])
                if not re.fullmatch(r"[A-Za-z0-9_\-|*@]{1,64}", rno):
                    return 400, {"code": "PARAM_ERROR", "message": "out_refund_no"}
                if done + refund > o.total:
                    return 400, {"code": "NOT_ENOUGH", "message": "退款金额超过可退金额"}
                r = {"out_refund_no": rno, "refund_id": "50" + secrets.token_hex(14),
                     "refund": refund, "status": "PROCESSING", "created": time.time(),
                     "create_time": _cn_time(utcnow()),
                     "notify_url": str(data.get("notify_url") or o.notify_url)}
                o.refunds = [*o.refunds, r]
                o.trade_state = "REFUND"
                return 200, refund_view(o, r)
            m4 = re.fullmatch(r"/v3/refund/domestic/refunds/([^/?]+)", path)
            if method == "GET" and m4:
                for o in s.scalars(select(SandboxOrder).where(
                        SandboxOrder.trade_state == "REFUND")):
                    for r in o.refunds:
                        if r["out_refund_no"] == m4[1]:
                            if r["status"] == "PROCESSING" and \
                                    time.time() - r["created"] >= self.refund_settle_seconds:
                                r = self._settle(o, r["out_refund_no"], "SUCCESS")
                            return 200, refund_view(o, r)
                return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}
        return 404, {"code": "NOT_FOUND", "message": "接口不存在"}

    # -- the cashier -------------------------------------------------------------------------
    def order(self, prepay_id: str) -> SandboxOrder | None:
        with self.rt.sessions() as s:
            o = s.scalar(select(SandboxOrder).where(SandboxOrder.prepay_id == prepay_id))
            if o is not None:
                s.expunge(o)
            return o

    def pay(self, prepay_id: str, deliver: bool = True) -> tuple[dict[str, str], str] | None:
        """The payer confirms: the order is paid and the notification built (and sent to its
        notify_url when ``deliver``); returns (headers, body) of the notification."""
        with self.rt.sessions() as s, s.begin():
            o = s.scalar(select(SandboxOrder).where(SandboxOrder.prepay_id == prepay_id))
            if o is None or o.trade_state not in ("NOTPAY", "SUCCESS"):
                return None
            if o.trade_state == "NOTPAY":
                o.trade_state, o.paid_at = "SUCCESS", utcnow()
                o.transaction_id = "42" + secrets.token_hex(14)
            headers, body = notification(self.k, transaction(o))
            url = o.notify_url
        if deliver:
            self.deliver(url, headers, body)
        return headers, body

    def _settle(self, o: SandboxOrder, out_refund_no: str, status: str) -> dict[str, Any]:
        """Finish a PROCESSING refund of ``o`` (in the caller's transaction)."""
        refunds = [dict(r) for r in o.refunds]
        for r in refunds:
            if r["out_refund_no"] == out_refund_no and r["status"] == "PROCESSING":
                r["status"] = status
                if status == "SUCCESS":
                    r["success_time"] = _cn_time(utcnow())
        o.refunds = refunds
        return next(r for r in refunds if r["out_refund_no"] == out_refund_no)

    def settle_refund(self, out_refund_no: str, status: str = "SUCCESS", deliver: bool = True
                      ) -> tuple[dict[str, str], str] | None:
        """The refund's result at the bank (SUCCESS, ABNORMAL or CLOSED): recorded, and its
        signed result notification built (and posted to the refund's notify_url when
        ``deliver``); (headers, body), or None for an unknown refund."""
        assert status in ("SUCCESS", "ABNORMAL", "CLOSED")
        with self.rt.sessions() as s, s.begin():
            for o in s.scalars(select(SandboxOrder).where(SandboxOrder.trade_state == "REFUND")):
                if any(r["out_refund_no"] == out_refund_no for r in o.refunds):
                    r = self._settle(o, out_refund_no, status)
                    headers, body = notification(self.k, refund_view(o, r, notification=True),
                                                 event_type=f"REFUND.{r['status']}")
                    url = r.get("notify_url") or o.notify_url
                    break
            else:
                return None
        if deliver:
            self.deliver(url, headers, body)
        return headers, body

    def deliver(self, url: str, headers: dict[str, str], body: str) -> int:
        try:
            r = requests.post(url, data=body.encode(), timeout=10,
                              headers={**headers, "Content-Type": "application/json"})
            status = r.status_code
        except requests.RequestException:
            status = 0
        self.deliveries.append((url, status))
        return status


def _cn_time(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat(timespec="seconds")


_platforms: dict[int, Platform] = {}
_plock = threading.Lock()


def platform(rt) -> Platform:
    with _plock:
        p = _platforms.get(id(rt))
        if p is None or p.rt is not rt:
            p = _platforms[id(rt)] = Platform(rt)
        return p
