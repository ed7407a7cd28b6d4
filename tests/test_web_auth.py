"""Sign-in over HTTP: cookies, wrong passwords, lockout, session expiry and revocation, CSRF,
the second factor, client IP / computer name, and the public and JSON endpoints.

Every test runs on SQLite and PostgreSQL (fixture ``rt``).
"""

from __future__ import annotations

import datetime as dt
import json

import pyotp
import pytest
from sqlalchemy import func, select

from core.models import Staff, WebSession, utcnow
from webutil import (
    ADMIN_SECRET, CSRF_COOKIE, PASSWORD, SESSION_COOKIE, csrf_token, events,
    fast_password_hashing, hidden_inputs, live_sessions, login, login_admin, make_admin,
    make_staff, post_form, shift_sessions, staff_row, web_client,
)

__all__ = ["fast_password_hashing"]  # autouse fixture, imported to apply here


def _cookie_header(resp, name: str) -> str:
    for value in resp.headers.get_list("set-cookie"):
        if value.startswith(name + "="):
            return value
    raise AssertionError(f"no Set-Cookie for {name}: {resp.headers.get_list('set-cookie')}")


def _attrs(set_cookie: str) -> set[str]:
    return {p.strip().lower() for p in set_cookie.split(";")[1:]}


# --------------------------------------------------------------------------- password login


def test_login_sets_httponly_lax_cookie_without_secure_over_http(rt):
    make_staff(rt, "D100", ["physician"])
    with web_client(rt) as c:
        assert c.get("/api/me").status_code == 401
        r = login(c, "D100", next="/notifications")
        assert r.status_code in (302, 303)
        assert r.headers["location"] == "/notifications"
        attrs = _attrs(_cookie_header(r, SESSION_COOKIE))
        assert "httponly" in attrs
        assert "samesite=lax" in attrs
        assert "path=/" in attrs
        assert "secure" not in attrs  # plain http, cookie_secure = "auto"
        me = c.get("/api/me")
        assert me.status_code == 200
        assert me.json()["staff_no"] == "D100"
        assert me.json()["roles"] == ["physician"]
    # the database keeps only the token's hash, never the cookie value
    token = r.cookies[SESSION_COOKIE]
    [ws] = live_sessions(rt, "D100")
    assert ws.token_hash != token and len(ws.token_hash) == 64
    assert ws.mfa_passed is True
    [ev] = events(rt, "login", staff_no="D100")
    assert ev.outcome == "ok"


def test_login_cookie_secure_over_https(rt):
    make_staff(rt, "D101", ["physician"])
    with web_client(rt, https=True) as c:
        r = login(c, "D101")
        assert r.status_code in (302, 303)
        attrs = _attrs(_cookie_header(r, SESSION_COOKIE))
        assert {"secure", "httponly", "samesite=lax"} <= attrs
        assert c.get("/api/me").json()["staff_no"] == "D101"


def test_login_cookie_secure_never_and_always(rt):
    make_staff(rt, "D102", ["physician"])
    rt.config.core.cookie_secure = "never"
    with web_client(rt, https=True) as c:
        assert "secure" not in _attrs(_cookie_header(login(c, "D102"), SESSION_COOKIE))
    rt.config.core.cookie_secure = "always"
    with web_client(rt) as c:
        tok = csrf_token(c)
        # the CSRF cookie is Secure now too, so the client would not send it over http
        assert "secure" in _attrs(_cookie_header(c.get("/login"), CSRF_COOKIE)) or tok
        c.cookies.clear()
        r = c.post("/login", data={"staff_no": "D102", "password": PASSWORD},
                   headers={"x-csrftoken": tok, "cookie": f"{CSRF_COOKIE}={tok}"},
                   follow_redirects=False)
        assert r.status_code in (302, 303), r.text
        assert "secure" in _attrs(_cookie_header(r, SESSION_COOKIE))


def test_wrong_password_and_unknown_staff_get_the_same_answer(rt):
    make_staff(rt, "D103", ["physician"])
    with web_client(rt) as c:
        bad = login(c, "D103", "not-the-password")
        assert bad.status_code == 401
        assert "工号或密码错误" in bad.text
        assert SESSION_COOKIE not in bad.cookies
        unknown = login(c, "NOPE9", "whatever-pass")
        assert unknown.status_code == 401
        assert "工号或密码错误" in unknown.text
        assert c.get("/api/me").status_code == 401
    failed = events(rt, "login", outcome="failed")
    assert [(e.staff_no, json.loads(e.detail)["reason"]) for e in failed] == [
        ("D103", "bad_credentials"), ("NOPE9", "bad_credentials")]
    assert all(e.client_ip == "127.0.0.1" for e in failed)
    assert staff_row(rt, "D103").failed_logins == 1
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(WebSession)) == 0


def test_next_parameter_cannot_redirect_off_site(rt):
    make_staff(rt, "D104", ["physician"])
    with web_client(rt) as c:
        assert login(c, "D104", next="//evil.example/x").headers["location"] == "/"
        assert login(c, "D104", next="https://evil.example/").headers["location"] == "/"


def test_lockout_after_five_failures_then_unlocks_when_time_passes(rt):
    make_staff(rt, "D105", ["physician"])
    assert rt.config.core.lockout_failures == 5
    with web_client(rt) as c:
        for i in range(4):
            r = login(c, "D105", f"wrong-password-{i}")
            assert r.status_code == 401 and "工号或密码错误" in r.text
        r = login(c, "D105", "wrong-password-5")
        assert r.status_code == 401
        assert "账号已锁定" in r.text
        st = staff_row(rt, "D105")
        assert st.failed_logins == 5
        assert st.locked_until > utcnow() + dt.timedelta(minutes=14)
        # locked: even the right password is refused
        r = login(c, "D105")
        assert r.status_code == 401 and "账号已锁定" in r.text
        assert c.get("/api/me").status_code == 401
        reasons = [json.loads(e.detail)["reason"] for e in events(rt, "login", staff_no="D105")]
        assert reasons == ["bad_credentials"] * 4 + ["locked", "locked"]
        # the lock runs out
        with rt.sessions() as s, s.begin():
            s.scalar(select(Staff).where(Staff.staff_no == "D105")).locked_until = (
                utcnow() - dt.timedelta(seconds=1))
        r = login(c, "D105")
        assert r.status_code in (302, 303), r.text
        assert c.get("/api/me").status_code == 200
    st = staff_row(rt, "D105")
    assert st.failed_logins == 0 and st.locked_until is None
    assert events(rt, "login", staff_no="D105")[-1].outcome == "ok"


# --------------------------------------------------------------------------- session life


def test_idle_timeout_redirects_to_login(rt):
    make_staff(rt, "D106", ["physician"])
    rt.config.core.session_idle_minutes = 5
    with web_client(rt) as c:
        login(c, "D106")
        shift_sessions(rt, "D106", last_seen_at=dt.timedelta(minutes=4))
        assert c.get("/").status_code == 200  # within the idle limit; activity is recorded
        shift_sessions(rt, "D106", last_seen_at=dt.timedelta(minutes=4))
        assert c.get("/").status_code == 200  # 8 min since login, but only 4 idle
        shift_sessions(rt, "D106", last_seen_at=dt.timedelta(minutes=6))
        r = c.get("/notifications", follow_redirects=False)
        assert r.status_code in (302, 303)
        assert r.headers["location"] == "/login?next=/notifications"
        # once expired it stays expired
        assert c.get("/api/me").status_code == 401
    assert live_sessions(rt, "D106") == []
    with rt.sessions() as s:
        assert s.scalar(select(WebSession.revoked_by)) == "idle"


def test_max_age_redirects_to_login_even_when_active(rt):
    make_staff(rt, "D107", ["physician"])
    with web_client(rt) as c:
        login(c, "D107")
        hours = rt.config.core.session_max_hours
        shift_sessions(rt, "D107", created_at=dt.timedelta(hours=hours) - dt.timedelta(minutes=5))
        assert c.get("/").status_code == 200
        shift_sessions(rt, "D107", created_at=dt.timedelta(minutes=10))
        r = c.get("/", follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    with rt.sessions() as s:
        assert s.scalar(select(WebSession.revoked_by)) == "max_age"


def test_logout_revokes_the_session(rt):
    make_staff(rt, "D108", ["physician"])
    with web_client(rt) as c:
        login(c, "D108")
        stolen = c.cookies[SESSION_COOKIE]
        r = post_form(c, "/logout")
        assert r.status_code in (302, 303) and r.headers["location"] == "/login"
        assert c.get("/api/me").status_code == 401
        # replaying the old cookie does not bring the session back
        c.cookies.set(SESSION_COOKIE, stolen)
        assert c.get("/api/me").status_code == 401
    assert [e.staff_no for e in events(rt, "logout")] == ["D108"]


def test_admin_revokes_a_session(rt):
    make_admin(rt)
    make_staff(rt, "D109", ["physician"])
    with web_client(rt) as user, web_client(rt) as admin:
        login(user, "D109")
        assert user.get("/").status_code == 200
        login_admin(admin)
        [ws] = live_sessions(rt, "D109")
        page = admin.get("/admin/sessions")
        assert page.status_code == 200
        assert f"/admin/sessions/{ws.id}/revoke" in page.text
        r = post_form(admin, f"/admin/sessions/{ws.id}/revoke")
        assert r.status_code in (302, 303)
        r = user.get("/", follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
        assert admin.get("/api/me").status_code == 200  # only that session was revoked
    [ev] = events(rt, "admin.session.revoke")
    assert ev.staff_no == "A001"
    assert json.loads(ev.detail) == {"session": ws.id, "staff_no": "D109"}


def test_disabled_user_cannot_log_in_and_existing_sessions_die(rt):
    make_admin(rt)
    make_staff(rt, "D110", ["physician"])
    with web_client(rt) as user, web_client(rt) as admin:
        login(user, "D110")
        assert user.get("/api/me").status_code == 200
        login_admin(admin)
        r = post_form(admin, "/admin/users/D110", {"op": "disable"})
        assert r.status_code in (302, 303)
        assert user.get("/api/me").status_code == 401
        r = login(user, "D110")
        assert r.status_code == 401 and "账号已停用" in r.text
        assert user.get("/api/me").status_code == 401
    assert staff_row(rt, "D110").active is False
    assert live_sessions(rt, "D110") == []
    assert [e.outcome for e in events(rt, "admin.user.disable")] == ["ok"]
    assert json.loads(events(rt, "login", staff_no="D110")[-1].detail)["reason"] == "disabled"


# --------------------------------------------------------------------------- CSRF


def test_login_without_csrf_token_is_refused(rt):
    make_staff(rt, "D111", ["physician"])
    with web_client(rt) as c:
        csrf_token(c)  # the cookie is there, but the form does not carry the token
        r = c.post("/login", data={"staff_no": "D111", "password": PASSWORD},
                   follow_redirects=False)
        assert r.status_code == 403
        assert SESSION_COOKIE not in r.cookies
        r = c.post("/login", data={"staff_no": "D111", "password": PASSWORD,
                                   "_csrf_token": "forged"}, follow_redirects=False)
        assert r.status_code == 403
        assert c.get("/api/me").status_code == 401
        # the header works as well as the form field
        r = c.post("/login", data={"staff_no": "D111", "password": PASSWORD},
                   headers={"x-csrftoken": csrf_token(c)}, follow_redirects=False)
        assert r.status_code in (302, 303)
    assert [e.outcome for e in events(rt, "login")] == ["ok"]
    assert staff_row(rt, "D111").last_login_at is not None


def test_admin_post_without_csrf_token_changes_nothing(rt):
    make_admin(rt)
    with web_client(rt) as c:
        login_admin(c)
        form = {"staff_no": "N200", "name": "新人", "password": "Another-pass-1",
                "roles": "physician"}
        r = c.post("/admin/users", data=form, follow_redirects=False)
        assert r.status_code == 403
        r = c.post("/admin/users/A001", data={"op": "disable"}, follow_redirects=False)
        assert r.status_code == 403
        assert c.get("/api/me").status_code == 200
    assert staff_row(rt, "N200") is None
    assert staff_row(rt, "A001").active is True
    assert events(rt, "admin.user.add") == [] and events(rt, "admin.user.disable") == []


# --------------------------------------------------------------------------- second factor


def test_non_admin_without_totp_logs_straight_in(rt):
    make_staff(rt, "D112", ["physician", "auditor"])
    with web_client(rt) as c:
        r = login(c, "D112", next="/audit")
        assert r.headers["location"] == "/audit"
        assert c.get("/audit").status_code == 200
    assert events(rt, "login.totp") == []


def _enrol_by_post(rt, c, staff_no: str, secret: str, code: str):
    """POST the enrolment form as the enrolment page would have filled it."""
    from core.web.routes import _enroll_sig

    sig = _enroll_sig(rt, staff_row(rt, staff_no).id, secret)
    return post_form(c, "/login/totp/enroll",
                     {"secret": secret, "sig": sig, "code": code, "next": "/admin/sessions"})


def test_admin_must_enrol_totp_before_reaching_admin_pages(rt):
    make_staff(rt, "A002", ["admin"])
    secret = pyotp.random_base32()
    with web_client(rt) as c:
        r = login(c, "A002", next="/admin/sessions")
        assert r.status_code in (302, 303)
        assert r.headers["location"] == "/login/totp/enroll?next=/admin/sessions"
        # password alone does not open anything
        for path in ("/admin/sessions", "/admin/users", "/"):
            r = c.get(path, follow_redirects=False)
            assert r.status_code in (302, 303), path
            assert r.headers["location"].startswith("/login"), path
        assert c.get("/api/me").status_code == 401
        # a tampered signature is refused
        r = post_form(c, "/login/totp/enroll", {"secret": secret, "sig": "0" * 64,
                                                 "code": pyotp.TOTP(secret).now()})
        assert r.status_code == 403
        # a wrong code is refused and nothing is bound
        r = _enrol_by_post(rt, c, "A002", secret, "000000" if pyotp.TOTP(secret).now()
                           != "000000" else "111111")
        assert r.status_code in (302, 303)
        assert r.headers["location"].startswith("/login/totp/enroll")
        assert staff_row(rt, "A002").totp_secret is None
        assert c.get("/admin/sessions", follow_redirects=False).status_code in (302, 303)
        # the right code binds the authenticator and finishes the sign-in
        r = _enrol_by_post(rt, c, "A002", secret, pyotp.TOTP(secret).now())
        assert r.status_code in (302, 303) and r.headers["location"] == "/admin/sessions"
        assert c.get("/admin/sessions").status_code == 200
    assert staff_row(rt, "A002").totp_secret == secret
    assert [e.outcome for e in events(rt, "login.totp", staff_no="A002")] == ["failed", "ok"]
    assert [e.outcome for e in events(rt, "login", staff_no="A002")] == ["password_ok"]


@pytest.mark.xfail(strict=True, reason=(
    "core bug: GET /login/totp/enroll answers 500. (1) Litestar 2.x calls on_registration again "
    "for handlers already on a path when another method is added to it, so the sync GET handler "
    "is wrapped in AsyncCallable twice and its Template comes back as a coroutine that is then "
    "JSON-encoded; (2) routes.py:138 renders the segno SVG into io.StringIO, but segno writes "
    "bytes (TypeError: string argument expected, got 'bytes')"))
def test_totp_enrolment_page_flow(rt):
    make_staff(rt, "A003", ["admin"])
    with web_client(rt) as c:
        r = login(c, "A003")
        assert r.headers["location"] == "/login/totp/enroll?next=/"
        page = c.get("/login/totp/enroll", params={"next": "/"})
        assert page.status_code == 200
        assert "<svg" in page.text
        fields = hidden_inputs(page.text)
        secret = fields["secret"]
        r = post_form(c, "/login/totp/enroll", {"secret": secret, "sig": fields["sig"],
                                                 "next": "/", "code": pyotp.TOTP(secret).now()})
        assert r.headers["location"] == "/"
        assert c.get("/api/me").status_code == 200
    assert staff_row(rt, "A003").totp_secret == secret


def test_totp_login_wrong_code_refused_then_right_code(rt):
    make_admin(rt)
    with web_client(rt) as c:
        r = login(c, "A001", next="/admin/sessions")
        assert r.headers["location"] == "/login/totp?next=/admin/sessions"
        assert c.get("/admin/users", follow_redirects=False).headers["location"].startswith(
            "/login")
        now = pyotp.TOTP(ADMIN_SECRET).now()
        wrong = "000000" if now != "000000" else "111111"
        r = post_form(c, "/login/totp", {"code": wrong, "next": "/admin/sessions"})
        assert r.status_code == 401
        assert "动态验证码错误" in r.text
        r = c.get("/admin/sessions", follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
        r = post_form(c, "/login/totp", {"code": now, "next": "/admin/sessions"})
        assert r.status_code in (302, 303) and r.headers["location"] == "/admin/sessions"
        assert c.get("/admin/sessions").status_code == 200
    outcomes = [(e.staff_no, e.outcome) for e in events(rt, "login.totp")]
    assert outcomes == [("A001", "failed"), ("A001", "ok")]


def test_totp_post_without_password_step_is_refused(rt):
    make_admin(rt)
    with web_client(rt) as c:
        r = post_form(c, "/login/totp", {"code": pyotp.TOTP(ADMIN_SECRET).now()})
        assert r.status_code == 403
        assert c.get("/api/me").status_code == 401
    assert events(rt, "login.totp") == []


@pytest.mark.xfail(strict=True, reason=(
    "core bug: POST /login/totp/enroll (routes.py totp_enroll_submit) does not refuse when the "
    "account already has a bound authenticator; an enrolment secret/sig pair is valid forever "
    "(sig = HMAC(staff_id, secret), not bound to a session or time), so anyone with the "
    "password and an old unused enrolment form passes the second factor and replaces the "
    "admin's authenticator"))
def test_totp_enrolment_cannot_replace_a_bound_authenticator(rt):
    make_admin(rt)
    other = pyotp.random_base32()
    with web_client(rt) as c:
        r = login(c, "A001")
        assert r.headers["location"].startswith("/login/totp?")
        r = _enrol_by_post(rt, c, "A001", other, pyotp.TOTP(other).now())
        assert c.get("/api/me").status_code == 401
    assert staff_row(rt, "A001").totp_secret == ADMIN_SECRET


# --------------------------------------------------------------------------- permissions, menu


def test_auditor_permissions_and_menu(rt):
    make_staff(rt, "D113", ["auditor"])
    with web_client(rt) as c:
        login(c, "D113")
        home = c.get("/")
        assert home.status_code == 200
        assert "审计日志" in home.text and "用户管理" not in home.text
        assert c.get("/audit").status_code == 200
        r = c.get("/admin/users")
        assert r.status_code == 403
        assert "无权访问" in r.text
        r = c.get("/admin/roles", headers={"accept": "application/json"})
        assert r.status_code == 403 and "admin.roles" in r.json()["detail"]
    denied = events(rt, "page.denied")
    assert [(e.staff_no, e.outcome, json.loads(e.detail)["path"]) for e in denied] == [
        ("D113", "denied", "/admin/users"), ("D113", "denied", "/admin/roles")]


def test_physician_cannot_read_audit_and_admin_menu(rt):
    make_staff(rt, "D114", ["physician"])
    make_admin(rt)
    with web_client(rt) as c:
        login(c, "D114")
        home = c.get("/")
        assert "审计日志" not in home.text and "用户管理" not in home.text
        assert c.get("/audit").status_code == 403
        assert c.get("/audit/export").status_code == 403
        assert c.get("/api/audit").status_code == 403
    with web_client(rt) as c:
        login_admin(c)
        home = c.get("/")
        assert "用户管理" in home.text and "在线会话" in home.text
        assert "审计日志" not in home.text  # the admin role has no audit.read
    assert {json.loads(e.detail)["path"] for e in events(rt, "page.denied", staff_no="D114")} \
        == {"/audit", "/audit/export", "/api/audit"}


# --------------------------------------------------------------------------- client identity


def test_forwarded_for_trusted_only_from_trusted_proxy(rt):
    make_staff(rt, "D115", ["physician"])
    rt.config.core.reverse_dns_timeout_ms = 50
    with web_client(rt, peer="127.0.0.1") as c:  # 127.0.0.1 is in trusted_proxies
        login(c, "D115", headers={"X-Forwarded-For": "203.0.113.9, 10.1.2.3"})
        c.peer_app.peer = "::1"
        login(c, "NOBODY", "x-password", headers={"X-Forwarded-For": "10.7.7.7"})
        # an untrusted peer cannot choose its address
        c.peer_app.peer = "10.9.9.9"
        login(c, "NOBODY", "x-password", headers={"X-Forwarded-For": "10.1.2.3"})
        # garbage in the header falls back to the peer
        c.peer_app.peer = "127.0.0.1"
        login(c, "NOBODY", "x-password", headers={"X-Forwarded-For": "not-an-ip"})
    ips = [e.client_ip for e in events(rt, "login")]
    assert ips == ["10.1.2.3", "10.7.7.7", "10.9.9.9", "127.0.0.1"]
    with rt.sessions() as s:
        assert s.scalar(select(WebSession.client_ip)) == "10.1.2.3"


def test_trusted_proxy_list_comes_from_config(rt):
    make_staff(rt, "D116", ["physician"])
    rt.config.core.trusted_proxies = ["192.0.2.0/24"]
    rt.config.core.reverse_dns_timeout_ms = 50
    with web_client(rt, peer="192.0.2.77") as c:
        login(c, "NOBODY", "x-password", headers={"X-Forwarded-For": "10.4.4.4"})
        c.peer_app.peer = "127.0.0.1"  # no longer trusted
        login(c, "NOBODY", "x-password", headers={"X-Forwarded-For": "10.4.4.4"})
    assert [e.client_ip for e in events(rt, "login")] == ["10.4.4.4", "127.0.0.1"]


def test_computer_name_header_only_from_trusted_launchers_or_proxies(rt):
    make_staff(rt, "D117", ["physician"])
    rt.config.core.trusted_launchers = ["10.20.0.0/16"]
    rt.config.core.reverse_dns_timeout_ms = 50
    hdr = {"X-Bingan-Computer": "NK-WS-07"}
    with web_client(rt, peer="127.0.0.1") as c:
        login(c, "D117", headers=hdr)  # trusted proxy
        c.peer_app.peer = "10.20.3.4"  # trusted launcher
        c.get("/api/admissions/ZY000000001", headers=hdr)
        c.peer_app.peer = "10.30.3.4"  # neither
        c.get("/api/admissions/ZY000000002", headers=hdr)
    [ev] = events(rt, "login")
    assert ev.computer_name == "NK-WS-07"
    views = events(rt, "record.view")
    assert [(e.admission_no, e.client_ip) for e in views] == [
        ("ZY000000001", "10.20.3.4"), ("ZY000000002", "10.30.3.4")]
    assert views[0].computer_name == "NK-WS-07"
    assert views[1].computer_name != "NK-WS-07"


# --------------------------------------------------------------------------- public and JSON


def test_healthz_is_public_json(rt):
    with web_client(rt) as c:
        r = c.get("/healthz")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert body["status"] == "ok"
        assert body["pending_migrations"] == []
        assert isinstance(body["plugins"], list)
        # no session cookie is needed and none is created
        assert SESSION_COOKIE not in r.cookies


def test_logged_out_api_is_401_json_and_pages_redirect(rt):
    with web_client(rt) as c:
        r = c.get("/api/me")
        assert r.status_code == 401
        assert r.json() == {"detail": "未登录或会话已过期"}
        r = c.get("/api/admissions/ZY000000000")
        assert r.status_code == 401 and "detail" in r.json()
        r = c.get("/notifications", follow_redirects=False)
        assert r.status_code in (302, 303)
        assert r.headers["location"] == "/login?next=/notifications"
        r = c.get("/audit", headers={"HX-Request": "true"}, follow_redirects=False)
        assert r.status_code == 401
        assert r.headers["hx-redirect"] == "/login?next=/audit"
        # a bogus cookie is just "not signed in"
        c.cookies.set(SESSION_COOKIE, "forged-token")
        assert c.get("/api/me").status_code == 401


def test_unknown_admission_is_404_json_and_audited(rt):
    make_staff(rt, "D118", ["records"])
    with web_client(rt) as c:
        login(c, "D118")
        r = c.get("/api/admissions/ZY000000000")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/json")
        assert "ZY000000000" in r.json()["detail"]
    [ev] = events(rt, "record.view")
    assert (ev.staff_no, ev.outcome, ev.admission_no) == ("D118", "failed", "ZY000000000")
