"""The patient's side of identity: WeChat web authorization gives the openid, a random cookie
keeps the session (only its SHA-256 in the database), an SMS code verifies the phone.

The site never trusts anything but the session: every booking read is scoped to the
session's account (``account_id``), and the ids a browser sees are random.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core.models import utcnow

from bingan_booking import sms
from bingan_booking.models import BookingAccount, BookingSession, BookingSmsCode
from bingan_booking.settings import BookingSettings, WeChat

COOKIE = "bingan_booking"
STATE_COOKIE = "bingan_booking_oauth"
CODE_MINUTES = 5
CODE_ATTEMPTS = 5


class SignInError(ValueError):
    """Sign-in or phone verification refused; the message is for the patient."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------


def open_session(session: Session, openid: str, now: dt.datetime | None = None) -> str:
    """Find or create the account of ``openid`` and open a session; returns the cookie."""
    now = now or utcnow()
    acc = session.scalar(select(BookingAccount).where(BookingAccount.openid == openid))
    if acc is None:
        acc = BookingAccount(openid=openid, created_at=now)
        session.add(acc)
        session.flush()
    token = secrets.token_urlsafe(32)
    session.add(BookingSession(token_hash=_hash(token), account_id=acc.id, created_at=now,
                               last_seen_at=now))
    return token


@dataclass(frozen=True)
class Patient:
    """The signed-in WeChat user as the pages see it."""

    account_id: int
    openid: str
    phone: str | None


def load(session: Session, rt, token: str | None,
         now: dt.datetime | None = None) -> Patient | None:
    if not token or len(token) > 100:
        return None
    now = now or utcnow()
    conf = rt.settings(BookingSettings)
    ws = session.scalar(select(BookingSession).where(BookingSession.token_hash == _hash(token)))
    if ws is None or ws.revoked_at is not None:
        return None
    if ws.last_seen_at + dt.timedelta(minutes=conf.session_idle_minutes) < now or \
            ws.created_at + dt.timedelta(hours=conf.session_max_hours) < now:
        ws.revoked_at = now
        return None
    if (now - ws.last_seen_at).total_seconds() > 30:
        ws.last_seen_at = now
    acc = session.get(BookingAccount, ws.account_id)
    assert acc is not None
    return Patient(acc.id, acc.openid, acc.phone if acc.phone_verified_at else None)


def close_session(session: Session, token: str | None) -> None:
    if token:
        ws = session.scalar(select(BookingSession).where(BookingSession.token_hash == _hash(token)))
        if ws is not None and ws.revoked_at is None:
            ws.revoked_at = utcnow()


# --------------------------------------------------------------------------------------------
# OAuth state (bound to a cookie of the browser that started the sign-in)
# --------------------------------------------------------------------------------------------


def new_state(rt, next_path: str) -> tuple[str, str]:
    """(state for the authorize URL, cookie value): the state is an HMAC of the cookie, so a
    code delivered to another browser (login CSRF) is refused."""
    nonce = secrets.token_urlsafe(16)
    if not next_path.startswith("/h5") or "//" in next_path:
        next_path = "/h5"
    cookie = nonce + "." + base64.urlsafe_b64encode(next_path.encode()).decode().rstrip("=")
    state = hmac.new(rt.secret_key, b"booking-oauth:" + cookie.encode(),
                     hashlib.sha256).hexdigest()[:32]
    return state, cookie


def check_state(rt, state: str, cookie: str | None) -> str:
    """The path to return to, if ``state`` belongs to this browser's cookie."""
    if not cookie or not state:
        raise SignInError("授权已过期，请重新打开页面")
    want = hmac.new(rt.secret_key, b"booking-oauth:" + cookie.encode(),
                    hashlib.sha256).hexdigest()[:32]
    if not hmac.compare_digest(want, state):
        raise SignInError("授权校验失败，请重新打开页面")
    part = cookie.partition(".")[2]
    try:
        path = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()
    except ValueError:
        path = "/h5"
    return path if path.startswith("/h5") and "//" not in path else "/h5"


class WeChatOAuth:
    """The official account's web authorization (snsapi_base: the openid, no user prompt)."""

    name = "wechat"
    AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"
    TOKEN = "https://api.weixin.qq.com/sns/oauth2/access_token"

    def __init__(self, conf: WeChat) -> None:
        self.conf = conf

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        q = urlencode({"appid": self.conf.appid, "redirect_uri": redirect_uri,
                       "response_type": "code", "scope": "snsapi_base", "state": state})
        return f"{self.AUTHORIZE}?{q}#wechat_redirect"

    def openid(self, code: str) -> str:
        r = requests.get(self.TOKEN, params={
            "appid": self.conf.appid, "secret": self.conf.app_secret, "code": code,
            "grant_type": "authorization_code"}, timeout=10)
        data = r.json()
        if "openid" not in data:
            raise SignInError(f"微信授权失败（{data.get('errcode', r.status_code)}）")
        return str(data["openid"])


class SandboxOAuth:
    """The sandbox official account: /h5/sandbox/authorize plays WeChat's consent step and
    returns a code signed with the site key; the code exchange checks signature and age, as
    WeChat's code is single-use and lives five minutes."""

    name = "sandbox"

    def __init__(self, rt) -> None:
        self.rt = rt

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        return "/h5/sandbox/authorize?" + urlencode({"redirect_uri": redirect_uri,
                                                      "state": state})

    def issue_code(self, device: str) -> str:
        body = base64.urlsafe_b64encode(json.dumps(
            {"d": device, "t": int(time.time()), "n": secrets.token_hex(4)}).encode()).decode()
        sig = hmac.new(self.rt.secret_key, b"sandbox-oauth:" + body.encode(),
                       hashlib.sha256).hexdigest()[:32]
        return f"{body}.{sig}"

    def openid(self, code: str) -> str:
        body, _, sig = code.partition(".")
        want = hmac.new(self.rt.secret_key, b"sandbox-oauth:" + body.encode(),
                        hashlib.sha256).hexdigest()[:32]
        if not sig or not hmac.compare_digest(want, sig):
            raise SignInError("授权码无效")
        try:
            data = json.loads(base64.urlsafe_b64decode(body))
        except ValueError as exc:
            raise SignInError("授权码无效") from exc
        if abs(time.time() - int(data.get("t", 0))) > 300:
            raise SignInError("授权码已过期")
        device = str(data.get("d", ""))
        return "osbx" + hashlib.sha256(b"openid:" + device.encode()).hexdigest()[:24]


def oauth_gateway(rt):
    name = rt.settings(BookingSettings).wechat.provider
    gw = rt.pm.hook.booking_oauth_gateway(name=name, rt=rt)
    if gw is None:
        raise SignInError(f"未配置微信授权方式 {name}")
    return gw


# --------------------------------------------------------------------------------------------
# Phone verification
# --------------------------------------------------------------------------------------------


def _code_hash(rt, phone: str, code: str) -> str:
    return hmac.new(rt.secret_key, f"booking-sms:{phone}:{code}".encode(),
                    hashlib.sha256).hexdigest()


def send_code(session: Session, rt, patient: Patient, phone: str,
              now: dt.datetime | None = None) -> None:
    """Text a six-digit code to ``phone`` (limits of sms.send apply)."""
    now = now or utcnow()
    phone = sms.check_phone(phone)
    code = f"{secrets.randbelow(10**6):06d}"
    row = sms.send(session, rt, phone, "code", {"code": code},
                   f"您的验证码为 {code}，{CODE_MINUTES} 分钟内有效。如非本人操作请忽略。",
                   log_text=f"验证码 ******，{CODE_MINUTES} 分钟内有效", now=now)
    if not row.ok:
        raise sms.SmsRefused("短信发送失败，请稍后再试")
    session.add(BookingSmsCode(account_id=patient.account_id, phone=phone,
                               code_hash=_code_hash(rt, phone, code), created_at=now,
                               expires_at=now + dt.timedelta(minutes=CODE_MINUTES)))


def verify_code(session: Session, rt, patient: Patient, phone: str, code: str,
                now: dt.datetime | None = None) -> None:
    """Bind ``phone`` to the account when ``code`` is the latest live code sent to it for
    this account; five wrong tries spend the code."""
    now = now or utcnow()
    phone = sms.check_phone(phone)
    row = session.scalar(select(BookingSmsCode).where(
        BookingSmsCode.account_id == patient.account_id, BookingSmsCode.phone == phone,
        BookingSmsCode.used_at.is_(None)).order_by(BookingSmsCode.id.desc()).limit(1))
    if row is None or row.expires_at < now or row.attempts >= CODE_ATTEMPTS:
        raise SignInError("验证码已失效，请重新获取")
    if not hmac.compare_digest(row.code_hash, _code_hash(rt, phone, (code or "").strip())):
        row.attempts += 1
        left = CODE_ATTEMPTS - row.attempts
        raise SignInError(f"验证码不正确，还可尝试 {left} 次" if left else "验证码错误次数过多，请重新获取")
    row.used_at = now
    acc = session.get(BookingAccount, patient.account_id)
    assert acc is not None
    acc.phone, acc.phone_verified_at = phone, now
