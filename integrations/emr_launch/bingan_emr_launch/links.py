"""Signing and checking EMR launch links.

A link names the EMR system, its signed-in user, one admission (住院号), the time it was made
(Unix seconds) and a random nonce, and carries ``sig`` = hex HMAC-SHA256 with the system's key
over those five values joined by line feeds::

    system \\n user \\n admission \\n ts \\n nonce

It is refused, and the refusal audited, when the system is unknown, the signature does not
match, the time is outside ``[ts - clock_skew, ts + max_age]``, the nonce was used before
(replay), the user maps to no active staff member, or the admission does not exist. A staff
member whose role needs a second factor at sign-in (``[core] totp_required_roles``) is never
signed in by a link. Nothing here decides what the person may read: the viewer asks
``core.permissions.decide`` for that staff member as for any sign-in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bingan.core.models import Admission, Staff, utcnow
from bingan.core.staff import needs_totp

from bingan_emr_launch.models import EmrLaunchNonce
from bingan_emr_launch.settings import EmrLaunchSettings

PARAMS = ("system", "user", "admission", "ts", "nonce", "sig")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
REASONS = {
    "malformed": "链接不完整或格式不正确",
    "unknown_system": "未登记的调用系统",
    "bad_signature": "链接签名无效",
    "expired": "链接已过期，请从电子病历系统重新打开",
    "replay": "链接已使用过，请从电子病历系统重新打开",
    "unknown_user": "电子病历用户未对应到本系统的在职职工",
    "second_factor": "该职工须以二次验证登录，不能经链接进入",
    "unknown_admission": "住院号不存在",
}


class LaunchRefused(Exception):
    def __init__(self, why: str, detail: dict | None = None) -> None:
        super().__init__(REASONS[why])
        self.why = why
        self.detail = detail or {}


@dataclass(frozen=True)
class Launch:
    system: str
    user: str
    staff: Staff
    admission: Admission


def canonical(system: str, user: str, admission: str, ts: str, nonce: str) -> bytes:
    return "\n".join((system, user, admission, ts, nonce)).encode()


def signature(key: str, system: str, user: str, admission: str, ts: str, nonce: str) -> str:
    return hmac.new(key.encode(), canonical(system, user, admission, ts, nonce),
                    hashlib.sha256).hexdigest()


def make_link(st: EmrLaunchSettings, base: str, system: str, user: str, admission: str, *,
              ts: int | None = None, nonce: str | None = None, path: str = "/emr/launch") -> str:
    """A signed link, as the EMR builds it (the CLI and the tests use this)."""
    if system not in st.systems:
        raise KeyError(f"unknown system {system!r}")
    ts_s = str(int(time.time()) if ts is None else ts)
    nonce = nonce or secrets.token_urlsafe(18)
    sig = signature(st.systems[system].key, system, user, admission, ts_s, nonce)
    q = urlencode({"system": system, "user": user, "admission": admission, "ts": ts_s,
                   "nonce": nonce, "sig": sig})
    return f"{base.rstrip('/')}{path}?{q}"


def staff_no_for(st: EmrLaunchSettings, system: str, user: str) -> str | None:
    sysconf = st.systems[system]
    if user in sysconf.users:
        return sysconf.users[user]
    return user if sysconf.user_is_staff_no else None


def verify(session: Session, st: EmrLaunchSettings, params: dict[str, str], *, totp_roles: list[str],
           now: float | None = None) -> Launch:
    """Check a link and use up its nonce (in the caller's transaction); LaunchRefused if not."""
    values = {k: str(params.get(k) or "") for k in PARAMS}
    if not all(values.values()) or any(len(v) > 128 for v in values.values()) \
            or not values["ts"].isdigit() or not _NONCE.match(values["nonce"]):
        raise LaunchRefused("malformed")
    system = values["system"]
    sysconf = st.systems.get(system)
    if sysconf is None:
        raise LaunchRefused("unknown_system", {"system": system[:32]})
    want = signature(sysconf.key, system, values["user"], values["admission"], values["ts"],
                     values["nonce"])
    if not hmac.compare_digest(want, values["sig"].lower()):
        raise LaunchRefused("bad_signature")
    now = time.time() if now is None else now
    ts = int(values["ts"])
    if not ts - st.clock_skew_seconds <= now <= ts + st.max_age_seconds:
        raise LaunchRefused("expired", {"age_seconds": int(now - ts)})
    expires = dt.datetime.fromtimestamp(ts + st.max_age_seconds + st.clock_skew_seconds,
                                        dt.timezone.utc)
    try:
        with session.begin_nested():
            session.add(EmrLaunchNonce(system=system, nonce=values["nonce"],
                                       expires_at=expires))
            session.flush()
    except IntegrityError:
        raise LaunchRefused("replay") from None
    staff_no = staff_no_for(st, system, values["user"])
    staff = session.scalar(select(Staff).where(Staff.staff_no == staff_no)) if staff_no else None
    if staff is None or not staff.active:
        raise LaunchRefused("unknown_user", {"emr_user": values["user"][:64]})
    if needs_totp(staff, totp_roles):
        raise LaunchRefused("second_factor", {"staff_no": staff.staff_no})
    adm = session.scalar(select(Admission).where(Admission.admission_no == values["admission"]))
    if adm is None:
        raise LaunchRefused("unknown_admission", {"staff_no": staff.staff_no})
    return Launch(system, values["user"], staff, adm)


def purge(session: Session, now: dt.datetime | None = None) -> int:
    """Forget nonces of links that have expired anyway."""
    res = session.execute(delete(EmrLaunchNonce).where(
        EmrLaunchNonce.expires_at < (now or utcnow())))
    return getattr(res, "rowcount", 0) or 0
