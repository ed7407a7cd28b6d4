"""Helpers for web tests: a test client on the app, sign-in (with CSRF and TOTP), audit events.

``web_client`` builds the Litestar app for a runtime and wraps it so each test can choose the
TCP peer address the app sees (TestClient's own peer is the host name ``"testclient"``, which is
no IP address and so never a trusted proxy).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from typing import Any, Iterator

import pyotp
from litestar.testing import TestClient
from sqlalchemy import select

from bingan.core import audit
from bingan.core.models import AuditEvent, Staff, WebSession
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles

PASSWORD = "Correct-horse-9"
CSRF_COOKIE = "bingan_csrf"
SESSION_COOKIE = "bingan_session"


class PeerApp:
    """ASGI wrapper that sets ``scope["client"]`` to ``(peer, 50000)`` when ``peer`` is set."""

    def __init__(self, app, peer: str | None = None) -> None:
        self.app = app
        self.peer = peer

    async def __call__(self, scope, receive, send) -> None:
        if self.peer is not None and scope["type"] in ("http", "websocket"):
            scope = dict(scope, client=(self.peer, 50000))
        await self.app(scope, receive, send)


@contextlib.contextmanager
def web_client(rt, *, peer: str | None = "127.0.0.1", https: bool = False,
               app=None) -> Iterator[TestClient]:
    """A TestClient on ``create_app(rt)``; ``client.peer_app.peer`` can be changed later."""
    from bingan.core.web.app import create_app

    wrapped = PeerApp(app or create_app(rt), peer)
    base = "https://testserver.local" if https else "http://testserver.local"
    with TestClient(wrapped, base_url=base) as c:
        c.peer_app = wrapped  # type: ignore[attr-defined]
        yield c


def make_staff(rt, staff_no: str, roles: list[str] | tuple[str, ...] = (), *,
               name: str | None = None, password: str | None = PASSWORD,
               department: str | None = None, totp_secret: str | None = None) -> None:
    """A staff member with ``PASSWORD``; ``totp_secret`` pre-binds an authenticator."""
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        if department:
            from bingan.core.models import Department

            if s.scalar(select(Department).where(Department.code == department)) is None:
                add_department(s, department, department)
        st = add_staff(s, staff_no, name or f"职工{staff_no}", password,
                       department_code=department, roles=list(roles))
        st.totp_secret = totp_secret


def csrf_token(c: TestClient) -> str:
    """The CSRF cookie value (GET /login first if the client has none yet)."""
    tok = c.cookies.get(CSRF_COOKIE)
    if not tok:
        r = c.get("/login")
        assert r.status_code == 200, r.text
        tok = c.cookies.get(CSRF_COOKIE)
    assert tok, "GET /login did not set the CSRF cookie"
    return tok


def post_form(c: TestClient, url: str, data: dict[str, Any] | None = None,
              **kw: Any):
    """POST a url-encoded form with the CSRF token; redirects are not followed."""
    body = dict(data or {})
    body["_csrf_token"] = csrf_token(c)
    return c.post(url, data=body, follow_redirects=False, **kw)


def login(c: TestClient, staff_no: str, password: str = PASSWORD, next: str | None = None,
          **kw: Any):
    data = {"staff_no": staff_no, "password": password}
    if next:
        data["next"] = next
    return post_form(c, "/login", data, **kw)


def hidden_inputs(html: str) -> dict[str, str]:
    out = {}
    for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html):
        out[m.group(1)] = m.group(2)
    return out


def enroll_secret(html: str) -> str:
    """The authenticator secret an enrolment page shows."""
    m = re.search(r'id="totp-secret">([A-Z2-7]+)<', html)
    assert m, "no secret on the enrolment page"
    return m.group(1)


def enroll_totp(c: TestClient, next: str = "/") -> str:
    """Finish a pending admin login by enrolling an authenticator; returns the secret."""
    r = c.get("/login/totp/enroll", params={"next": next})
    assert r.status_code == 200, r.text
    secret = enroll_secret(r.text)
    r = post_form(c, "/login/totp/enroll", {"next": next, "code": pyotp.TOTP(secret).now()})
    assert r.status_code in (302, 303), r.text
    assert r.headers["location"] == next
    return secret


ADMIN_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def make_admin(rt, staff_no: str = "A001", roles=("admin",), **kw: Any) -> str:
    """An administrator whose authenticator is already bound (secret ``ADMIN_SECRET``)."""
    make_staff(rt, staff_no, list(roles), totp_secret=ADMIN_SECRET, **kw)
    return ADMIN_SECRET


def login_admin(c: TestClient, staff_no: str = "A001", secret: str = ADMIN_SECRET) -> None:
    """Full sign-in of an administrator with a bound authenticator: password, then the code."""
    r = login(c, staff_no)
    assert r.status_code in (302, 303), r.text
    assert r.headers["location"].startswith("/login/totp?"), r.headers["location"]
    r = post_form(c, "/login/totp", {"code": pyotp.TOTP(secret).now(), "next": "/"})
    assert r.status_code in (302, 303), r.text
    assert r.headers["location"] == "/"


def events(rt, action: str | None = None, **where: Any) -> list[AuditEvent]:
    """Audit events (oldest first), optionally filtered by action and column equality."""
    with rt.sessions() as s:
        q = select(AuditEvent).order_by(AuditEvent.seq)
        if action is not None:
            q = q.where(AuditEvent.action == action)
        for k, v in where.items():
            q = q.where(getattr(AuditEvent, k) == v)
        rows = list(s.scalars(q))
        s.expunge_all()
    return rows


def staff_row(rt, staff_no: str) -> Staff | None:
    with rt.sessions() as s:
        st = s.scalar(select(Staff).where(Staff.staff_no == staff_no))
        if st is not None:
            _ = st.roles
            s.expunge_all()
        return st


def live_sessions(rt, staff_no: str) -> list[WebSession]:
    with rt.sessions() as s:
        rows = list(s.scalars(select(WebSession).join(Staff, WebSession.staff_id == Staff.id)
                              .where(Staff.staff_no == staff_no,
                                     WebSession.revoked_at.is_(None))
                              .order_by(WebSession.id)))
        s.expunge_all()
    return rows


def shift_sessions(rt, staff_no: str, **deltas: dt.timedelta) -> None:
    """Move the given timestamp columns of a staff member's sessions into the past."""
    with rt.sessions() as s, s.begin():
        for ws in s.scalars(select(WebSession).join(Staff, WebSession.staff_id == Staff.id)
                            .where(Staff.staff_no == staff_no)):
            for col, delta in deltas.items():
                setattr(ws, col, getattr(ws, col) - delta)


def record_event(rt, action: str, staff_no: str | None, *, mrn: str | None = None,
                 ts: dt.datetime | None = None, outcome: str = "ok",
                 client_ip: str | None = "10.0.0.8") -> int:
    with rt.sessions() as s, s.begin():
        ref = audit.record(s, rt, action, actor=audit.Actor(staff_no=staff_no,
                                                             client_ip=client_ip),
                           mrn=mrn, outcome=outcome, ts=ts)
    return ref.seq


def nav_labels(html: str) -> list[str]:
    """The labels of the links in the sidebar menu."""
    m = re.search(r'<nav class="sidebar"[^>]*>(.*?)</nav>', html, re.S)
    if not m:
        return []
    return [x.strip() for x in re.findall(r"<a [^>]*>([^<]*)</a>", m.group(1))]
