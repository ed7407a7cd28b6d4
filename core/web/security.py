"""Server-side sessions, the login guard and the per-request actor.

The cookie carries a random token; the database keeps its SHA-256, so a stolen database does not
yield live cookies. Each request checks the session is neither revoked, idle past
``session_idle_minutes`` nor older than ``session_max_hours``, and that the second factor was
passed where it is required.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

import anyio
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from sqlalchemy import bindparam, func, select

from bingan.core import audit
from bingan.core.models import (
    Department, Notification, Role, Staff, WebSession, staff_role, utcnow,
)
from bingan.hooks.types import StaffRef
from bingan.core.web.client import COMPUTER_HEADER, client_ip, computer_name, trusted_peer

COOKIE = "bingan_session"
TOUCH_EVERY = dt.timedelta(seconds=30)
MFA_PENDING_MINUTES = 10  # between the password and the second factor
# Routes a person whose password must be changed may still reach.
PASSWORD_CHANGE_PATHS = ("/account/password", "/logout")


class PasswordChangeRequired(PermissionDeniedException):
    """The signed-in person must change the password an administrator set first."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CSRF_COOKIE = "bingan_csrf"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def session_csrf_token(rt, session_token: str) -> str:
    """The CSRF token bound to one session: its random part is derived from the session's
    own token (so a token from another session, or from before the sign-in, does not pass),
    signed as Litestar's CSRF middleware signs its tokens."""
    from litestar.middleware.csrf import generate_csrf_hash

    part = hmac.new(rt.secret_key, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()
    return part + generate_csrf_hash(token=part, secret=rt.secret_key.decode())


def csrf_bound(rt, session_token: str, csrf_cookies: list[str]) -> bool:
    """Every CSRF cookie the request carries is the session's own (a second cookie of the
    same name, planted from a sibling host, must not be the one Litestar compares)."""
    want = session_csrf_token(rt, session_token).encode()
    return bool(csrf_cookies) and all(hmac.compare_digest(c.encode(), want)
                                      for c in csrf_cookies)


def _cookies(scope, name: str) -> list[str]:
    out = []
    for k, v in scope.get("headers", []):
        if k.decode("latin-1").lower() != "cookie":
            continue
        for part in v.decode("latin-1").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                out.append(value)
    return out


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _header(scope, name: str) -> str | None:
    for k, v in scope.get("headers", []):
        if k.decode("latin-1").lower() == name:
            return v.decode("latin-1")
    return None


def _cookie(scope, name: str) -> str | None:
    raw = _header(scope, "cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def load_session(rt, token: str | None, now: dt.datetime | None = None) -> dict[str, Any]:
    """Resolve a session token into request state (runs in a worker thread).

    Read in a read-only session (on SQLite it takes no write lock, so the requests of every
    process look up their sessions at once); the few requests that change the session (the
    last-seen time every ``TOUCH_EVERY``, an expiry) write that in a short transaction of
    their own."""
    state: dict[str, Any] = {"staff": None, "web_session_id": None, "mfa_staff_id": None,
                             "unread": 0}
    if not token:
        return state
    now = now or utcnow()
    with rt.read_sessions() as s, s.begin():
        conn = s.connection()  # Core rows, without the ORM's per-statement work
        ws = conn.execute(_SESSION_Q, {"h": token_hash(token)}).first()
        if ws is None or ws.revoked_at is not None or not ws.active:
            return state
        change = _session_change(rt, ws, now, state)
        if state["web_session_id"] is not None and state["mfa_staff_id"] is None:
            roles: set[str] = set()
            perms: set[str] = set()
            for name, granted in conn.execute(_ROLES_Q, {"sid": ws.staff_id}):
                roles.add(name)
                perms.update(granted or [])
            state["staff"] = StaffRef(id=ws.staff_id, staff_no=ws.staff_no, name=ws.name,
                                      department_code=ws.department_code,
                                      roles=frozenset(roles), permissions=frozenset(perms))
            state["unread"] = conn.scalar(_UNREAD_Q, {"sid": ws.staff_id}) or 0
    if change is not None:
        with rt.sessions() as s, s.begin():
            row = s.get(WebSession, ws.id)
            if row is None or row.revoked_at is not None:  # signed out meanwhile
                state.update({"staff": None, "web_session_id": None, "mfa_staff_id": None,
                              "unread": 0})
            elif change == "touch":
                row.last_seen_at = now
            else:
                row.revoked_at, row.revoked_by = now, change
    return state


# Built once: every request asks, and building SQLAlchemy expressions per call costs more than
# running them (the same columns staff_ref reads through the ORM).
_SESSION_Q = (select(WebSession.id, WebSession.staff_id, WebSession.created_at,
                     WebSession.last_seen_at, WebSession.mfa_passed, WebSession.revoked_at,
                     Staff.staff_no, Staff.name, Staff.active, Staff.locked_until,
                     Staff.must_change_password, Department.code.label("department_code"))
              .join(Staff, Staff.id == WebSession.staff_id)
              .outerjoin(Department, Department.id == Staff.department_id)
              .where(WebSession.token_hash == bindparam("h")))
_ROLES_Q = (select(Role.name, Role.permissions)
            .join(staff_role, staff_role.c.role_id == Role.id)
            .where(staff_role.c.staff_id == bindparam("sid")))
_UNREAD_Q = (select(func.count()).select_from(Notification)
             .where(Notification.staff_id == bindparam("sid"), Notification.read_at.is_(None)))


def _session_change(rt, ws: Any, now: dt.datetime, state: dict[str, Any]) -> str | None:
    """Fill ``state`` for a live, unrevoked session ``ws``; returns what must be written:
    None, "touch" (the last-seen time) or the reason it is revoked now."""
    core = rt.config.core
    if ws.last_seen_at + dt.timedelta(minutes=core.session_idle_minutes) < now:
        state["expired"] = True
        return "idle"
    if ws.created_at + dt.timedelta(hours=core.session_max_hours) < now:
        state["expired"] = True
        return "max_age"
    state["web_session_id"] = ws.id
    if not ws.mfa_passed:
        # a sign-in waiting for its second factor lives a few minutes, and not past a
        # lock of the account
        locked = ws.locked_until is not None and ws.locked_until > now
        if locked or ws.created_at + dt.timedelta(minutes=MFA_PENDING_MINUTES) < now:
            state["web_session_id"] = None
            return "locked" if locked else "mfa_timeout"
        state["mfa_staff_id"] = ws.staff_id
        return None
    state["must_change_password"] = bool(ws.must_change_password)
    if now - ws.last_seen_at > TOUCH_EVERY:
        return "touch"
    return None


class SessionMiddleware:
    """ASGI middleware: puts the signed-in staff member (or None) and the actor in state."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rt = scope["app"].state.rt
        core = rt.config.core
        path = scope.get("path", "")
        state = scope.setdefault("state", {})
        peer = scope.get("client")[0] if scope.get("client") else None
        ip = client_ip(peer, _header(scope, "x-forwarded-for"), core.trusted_proxies)
        state["client_ip"] = ip
        state["peer"] = peer
        state["computer_header"] = _header(scope, COMPUTER_HEADER)
        state["proxy_computer"] = (_header(scope, core.proxy_computer_header.lower())
                                   if core.proxy_computer_header else None)
        state["api_client"] = None
        bearer = _bearer(scope)
        if path.startswith("/static/") or path == "/healthz":
            state.update({"staff": None, "web_session_id": None, "mfa_staff_id": None})
        elif bearer is not None:
            # a system credential: the cookie session is not looked at (and vice versa)
            state.update({"staff": None, "web_session_id": None, "mfa_staff_id": None,
                          "unread": 0})
            ident = await anyio.to_thread.run_sync(load_api_client, rt, bearer)
            state["api_client"] = ident
            state["api_bearer"] = True
            if ident is not None:
                state["staff"] = ident.staff_ref()
            status: list[int] = []

            async def send_status(message) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            finally:
                await anyio.to_thread.run_sync(
                    audit_api_call, rt, ident, scope, state, status[0] if status else 500)
            return
        else:
            token = _cookie(scope, COOKIE)
            if token and scope.get("method") in UNSAFE_METHODS and \
                    not csrf_bound(rt, token, _cookies(scope, CSRF_COOKIE)):
                # a signed-in request must carry its own session's CSRF token (Litestar then
                # checks the form or header matches the cookie); anything else is refused
                # before the session is even looked at
                await _refuse_csrf(scope, receive, send)
                return
            state.update(await anyio.to_thread.run_sync(load_session, rt, token))
        await self.app(scope, receive, send)


def _bearer(scope) -> str | None:
    raw = _header(scope, "authorization")
    if not raw:
        return None
    kind, _, token = raw.strip().partition(" ")
    if kind.lower() != "bearer":
        return None
    return token.strip()


def load_api_client(rt, token: str):
    """The API client of a bearer token (``core.apiclients.authenticate``), or None."""
    from bingan.core.apiclients import authenticate

    if not token:
        return None
    with rt.sessions() as s, s.begin():
        return authenticate(s, rt, token)


def audit_api_call(rt, ident, scope, state, status: int) -> None:
    """One audit event per call made with a system credential, under the client's identity
    (``api:<client_id>``), or a failed ``api.auth`` when the credential was refused."""
    method = scope.get("method", "")
    path = scope.get("path", "")
    computer = state.get("computer_header")
    with rt.sessions() as s, s.begin():
        if ident is None:
            audit.record(s, rt, "api.auth", outcome="failed",
                         actor=audit.Actor(client_ip=state.get("client_ip"),
                                           computer_name=computer),
                         detail={"method": method, "path": path, "status": status})
            return
        audit.record(s, rt, "api.call", outcome="ok" if status < 400 else "failed",
                     actor=audit.Actor(staff_no=ident.actor_name,
                                       client_ip=state.get("client_ip"), computer_name=computer),
                     detail={"method": method, "path": path, "status": status,
                             "query": scope.get("query_string", b"").decode("latin-1")[:500]})


CSRF_REFUSED = "页面已过期或来自其他会话，请刷新页面后重试"


async def _refuse_csrf(scope, receive, send) -> None:
    import json

    if "text/html" in (_header(scope, "accept") or ""):
        body = (f'<!doctype html><meta charset="utf-8"><title>请求被拒绝</title>'
                f'<p>{CSRF_REFUSED}</p><p><a href="/">返回首页</a></p>').encode()
        ctype = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"detail": CSRF_REFUSED, "status_code": 403},
                          ensure_ascii=False).encode()
        ctype = b"application/json"
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", ctype),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def actor(request) -> audit.Actor:
    """The audit actor of a request: staff number, client IP, computer name."""
    rt = request.app.state.rt
    core = rt.config.core
    st = request.state
    staff = st.get("staff") if hasattr(st, "get") else getattr(st, "staff", None)
    cached = getattr(st, "_computer", "unset")
    if cached == "unset":
        cached = computer_name(st.peer, st.computer_header, st.client_ip, core.trusted_launchers,
                               core.trusted_proxies, core.reverse_dns_timeout_ms,
                               proxy_value=st.get("proxy_computer"))
        st._computer = cached
    return audit.Actor(staff_no=staff.staff_no if staff else None, client_ip=st.client_ip,
                       computer_name=cached)


def staff_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Every route needs a signed-in staff member unless ``opt={"public": True}``; a route
    with ``opt={"permission": p}`` needs that staff capability too."""
    opt = handler.opt or {}
    scope_needed = opt.get("api_scope")
    if scope_needed:
        client = connection.state.get("api_client")
        if client is None:
            raise NotAuthorizedException(
                "需要接口客户端凭据（Authorization: Bearer）" if not connection.state.get(
                    "api_bearer") else "接口凭据无效、已过期或已撤销",
                headers={"WWW-Authenticate": 'Bearer realm="bingan"'})
        if scope_needed not in client.scopes:
            raise PermissionDeniedException(f"接口客户端没有权限范围 {scope_needed}")
        return
    if opt.get("public"):
        return
    if connection.state.get("api_bearer"):
        # system credentials call the APIs that declare a scope, never the browser's routes
        raise NotAuthorizedException("接口凭据不能用于此地址", headers={
            "WWW-Authenticate": 'Bearer realm="bingan", error="insufficient_scope"'})
    staff = connection.state.get("staff")
    if staff is None:
        raise NotAuthorizedException("请先登录")
    if connection.state.get("must_change_password") and \
            connection.scope.get("path") not in PASSWORD_CHANGE_PATHS:
        raise PasswordChangeRequired("请先修改管理员设置的初始密码")
    perm = opt.get("permission")
    if perm and perm not in staff.permissions:
        label = permission_label(connection.app.state.rt, perm)
        if "admin.roles" in staff.permissions:
            # an administrator is told where to grant it, not to ask the administrator
            raise PermissionDeniedException(
                f"需要权限“{label}”：您的角色没有该权限。可在“角色权限”中为相应角色开通"
                "（三员分立：系统管理员不查阅病案）")
        raise PermissionDeniedException(f"需要权限“{label}”，请联系信息科为您的角色开通")


def api_route(scope: str, **opt: Any) -> dict[str, Any]:
    """``opt`` of a route that only API clients holding ``scope`` may call (bearer token; no
    cookie session, so no CSRF token either)."""
    from bingan.core.apiclients import SCOPES

    if scope not in SCOPES:
        raise ValueError(f"unknown API scope {scope!r}")
    return {"api_scope": scope, "exclude_from_csrf": True, **opt}


def permission_label(rt, name: str) -> str:
    """The Chinese label a plugin registered for a staff capability (the name if none)."""
    for group in rt.pm.hook.register_permissions():
        for info in group or []:
            if info.name == name:
                return info.label
    return name


def request_is_https(rt, scope) -> bool:
    """Whether the browser reached us over https: directly, or through one of
    ``trusted_proxies`` that terminated TLS and says so in ``X-Forwarded-Proto`` (the header
    of anyone else is ignored)."""
    if scope.get("scheme") == "https":
        return True
    proto = _header(scope, "x-forwarded-proto")
    peer = scope.get("client")[0] if scope.get("client") else None
    return bool(proto and peer and trusted_peer(peer, rt.config.core.trusted_proxies)
                and proto.split(",")[0].strip().lower() == "https")


def cookie_secure(rt, scheme: Any) -> bool:
    """Whether cookies get the ``Secure`` flag (``cookie_secure``: always, never, or auto:
    on https). ``scheme`` is the request (or its ASGI scope), so that https through a
    trusted proxy counts; a bare scheme string is still understood."""
    mode = rt.config.core.cookie_secure
    if mode != "auto":
        return mode == "always"
    if isinstance(scheme, str):
        return scheme == "https"
    return request_is_https(rt, getattr(scheme, "scope", scheme))


async def secure_cookies(message, scope) -> None:
    """``before_send``: the ``Secure`` flag on cookies of an https request (``cookie_secure``
    auto) that were set without it (Litestar's CSRF cookie is configured once, not per
    request)."""
    if message["type"] != "http.response.start" or scope.get("type") != "http":
        return
    app = scope.get("app")
    rt = getattr(getattr(app, "state", None), "rt", None)
    if rt is None or rt.config.core.cookie_secure != "auto" or not request_is_https(rt, scope):
        return
    out = []
    for k, v in message.get("headers") or []:
        if bytes(k).lower() == b"set-cookie" and b"secure" not in {
                p.strip().lower() for p in bytes(v).split(b";")[1:]}:
            v = bytes(v) + b"; Secure"
        out.append((k, v))
    message["headers"] = out
