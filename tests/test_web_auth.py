"""Sign-in over HTTP: cookies, wrong passwords, lockout, session expiry and revocation, CSRF,
the second factor, client IP / computer name, and the public and JSON endpoints.

Every test runs on SQLite and PostgreSQL (fixture ``rt``).
"""

from __future__ import annotations

import datetime as dt
import json

import pyotp
from sqlalchemy import func, select

from bingan.core.models import WebSession, utcnow
from webutil import (
    enroll_secret,
    ADMIN_SECRET, CSRF_COOKIE, PASSWORD, SESSION_COOKIE, csrf_token, events,
    live_sessions, login, login_admin, make_admin,
    make_staff, post_form, shift_sessions, staff_row, web_client,
)


def _cookie_header(resp, name: str) -> str:
    for value in resp.headers.get_list("set-cookie"):
        if value.startswith(name + "="):
            return value
    raise AssertionError(f"no Set-Cookie for {name}: {resp.headers.get_list('set-cookie')}")


def _attrs(set_cookie: str) -> set[str]:
    return {p.strip().lower() for p in set_cookie.split(";")[1:]}


# --------------------------------------------------------------------------- password login


def test_session_cookie_flags_and_storage(rt):
    make_staff(rt, "D100", ["physician"])
    with web_client(rt) as c:
        assert c.get("/api/me").status_code == 401
        r = login(c, "D100", next="/notifications")
        assert r.status_code in (302, 303)
        assert r.headers["location"] == "/notifications"
        attrs = _attrs(_cookie_header(r, SESSION_COOKIE))
        assert {"httponly", "samesite=lax", "path=/"} <= attrs
        assert "secure" not in attrs  # plain http, cookie_secure = "auto"
        token = r.cookies[SESSION_COOKIE]
        me = c.get("/api/me")
        assert me.status_code == 200
        assert (me.json()["staff_no"], me.json()["roles"]) == ("D100", ["physician"])
    # the database keeps only the token's hash, never the cookie value
    [ws] = live_sessions(rt, "D100")
    assert ws.token_hash != token and len(ws.token_hash) == 64
    assert ws.mfa_passed is True
    assert [e.outcome for e in events(rt, "login", staff_no="D100")] == ["ok"]

    with web_client(rt, https=True) as c:  # cookie_secure = "auto" over https
        r = login(c, "D100")
        assert r.status_code in (302, 303)
        assert {"secure", "httponly", "samesite=lax"} <= _attrs(_cookie_header(r, SESSION_COOKIE))
        assert c.get("/api/me").json()["staff_no"] == "D100"

    rt.config.core.cookie_secure = "never"
    with web_client(rt, https=True) as c:
        assert "secure" not in _attrs(_cookie_header(login(c, "D100"), SESSION_COOKIE))

    rt.config.core.cookie_secure = "always"
    with web_client(rt) as c:
        first = c.get("/login")
        assert "secure" in _attrs(_cookie_header(first, CSRF_COOKIE))
        tok = first.cookies[CSRF_COOKIE]
        # a Secure cookie is not sent back over http, so hand it over explicitly
        c.cookies.clear()
        r = c.post("/login", data={"staff_no": "D100", "password": PASSWORD},
                   headers={"x-csrftoken": tok, "cookie": f"{CSRF_COOKIE}={tok}"},
                   follow_redirects=False)
        assert r.status_code in (302, 303), r.text
        assert "secure" in _attrs(_cookie_header(r, SESSION_COOKIE))


def test_csrf_cookie_is_httponly_and_secure_on_https_also_behind_a_trusted_proxy(rt):
    """Scripts never read the CSRF cookie (pages hand the token to forms and to htmx), so it
    is HttpOnly; like the session cookie it is Secure on https (cookie_secure = "auto"),
    which includes https ended by one of ``trusted_proxies`` (X-Forwarded-Proto) but not
    that header from anyone else."""
    make_staff(rt, "D110", ["physician"])

    def flags(c, **headers) -> tuple[set[str], set[str], str]:
        first = c.get("/login", headers=headers)
        pre = _attrs(_cookie_header(first, CSRF_COOKIE))
        tok = first.cookies[CSRF_COOKIE]
        c.cookies.clear()  # a Secure cookie is not sent back over http: hand it over
        r = c.post("/login", data={"staff_no": "D110", "password": PASSWORD},
                   headers={"x-csrftoken": tok, "cookie": f"{CSRF_COOKIE}={tok}", **headers},
                   follow_redirects=False)
        assert r.status_code in (302, 303), r.text
        session = _attrs(_cookie_header(r, SESSION_COOKIE))
        bound = _attrs(_cookie_header(r, CSRF_COOKIE))
        assert {"httponly", "samesite=lax", "path=/"} <= pre and "httponly" in bound
        return pre, bound, ("secure" in session)

    with web_client(rt) as c:  # plain http
        pre, bound, secure = flags(c)
        assert "secure" not in pre | bound and not secure
        # the page still gives htmx and the forms their token
        page = c.get("/login").text
        assert 'name="_csrf_token"' in page
    with web_client(rt, https=True) as c:
        pre, bound, secure = flags(c)
        assert "secure" in pre and "secure" in bound and secure
    with web_client(rt, peer="127.0.0.1") as c:  # TLS ended by the trusted proxy
        pre, bound, secure = flags(c, **{"x-forwarded-proto": "https"})
        assert "secure" in pre and "secure" in bound and secure
    with web_client(rt, peer="10.7.7.7") as c:  # anyone else's header counts for nothing
        pre, bound, secure = flags(c, **{"x-forwarded-proto": "https"})
        assert "secure" not in pre | bound and not secure
    rt.config.core.cookie_secure = "never"
    with web_client(rt, https=True) as c:
        pre, bound, secure = flags(c)
        assert "secure" not in pre | bound and not secure


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
        # the next target only ever points back into the site
        assert login(c, "D103", next="//evil.example/x").headers["location"] == "/"
        assert login(c, "D103", next="https://evil.example/").headers["location"] == "/"
        assert login(c, "D103", next="/audit").headers["location"] == "/audit"
    failed = events(rt, "login", outcome="failed")
    assert [(e.staff_no, json.loads(e.detail)["reason"]) for e in failed] == [
        ("D103", "bad_credentials"), ("NOPE9", "bad_credentials")]
    assert all(e.client_ip == "127.0.0.1" for e in failed)
    assert [e.outcome for e in events(rt, "login", staff_no="D103")] == ["failed", "ok", "ok",
                                                                          "ok"]


def test_lockout_after_five_failures_then_unlocks_when_time_passes(rt):
    """Wrong passwords lock this source out of this staff number (per-source throttling:
    tests/test_accounts.py shows other sources are not locked out)."""
    from bingan.core.models import LoginFailure

    make_staff(rt, "D105", ["physician"])
    assert rt.config.core.lockout_failures == 5
    with web_client(rt) as c:
        for i in range(4):
            r = login(c, "D105", f"wrong-password-{i}")
            assert r.status_code == 401 and "工号或密码错误" in r.text
        r = login(c, "D105", "wrong-password-5")
        assert r.status_code == 401
        assert "次数过多" in r.text
        with rt.sessions() as s:
            lf = s.scalar(select(LoginFailure).where(LoginFailure.staff_no == "D105"))
            assert lf.failures == 5 and lf.source == "127.0.0.1"
            assert lf.locked_until > utcnow() + dt.timedelta(minutes=14)
        # locked: even the right password is refused
        r = login(c, "D105")
        assert r.status_code == 401 and "次数过多" in r.text
        assert c.get("/api/me").status_code == 401
        reasons = [json.loads(e.detail)["reason"] for e in events(rt, "login", staff_no="D105")]
        assert reasons == ["bad_credentials"] * 4 + ["locked", "locked"]
        # the lock runs out
        with rt.sessions() as s, s.begin():
            s.scalar(select(LoginFailure).where(LoginFailure.staff_no == "D105")).locked_until = (
                utcnow() - dt.timedelta(seconds=1))
        r = login(c, "D105")
        assert r.status_code in (302, 303), r.text
        assert c.get("/api/me").status_code == 200
    st = staff_row(rt, "D105")
    assert st.failed_logins == 0 and st.locked_until is None
    with rt.sessions() as s:
        assert s.scalar(select(LoginFailure).where(LoginFailure.staff_no == "D105")) is None
    assert events(rt, "login", staff_no="D105")[-1].outcome == "ok"


# --------------------------------------------------------------------------- session life


def test_idle_timeout_and_max_age(rt):
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
        assert c.get("/api/me").status_code == 401  # once expired it stays expired
        with rt.sessions() as s:
            assert s.scalars(select(WebSession.revoked_by)).all() == ["idle"]

        # max age: a session in constant use still ends after session_max_hours
        login(c, "D106")
        hours = rt.config.core.session_max_hours
        shift_sessions(rt, "D106", created_at=dt.timedelta(hours=hours) - dt.timedelta(minutes=5))
        assert c.get("/").status_code == 200
        shift_sessions(rt, "D106", created_at=dt.timedelta(minutes=10))
        r = c.get("/", follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    assert live_sessions(rt, "D106") == []
    with rt.sessions() as s:
        assert sorted(s.scalars(select(WebSession.revoked_by))) == ["idle", "max_age"]


def test_logout_admin_revoke_and_disable_end_sessions(rt):
    make_admin(rt)
    for no in ("D107", "D108", "D109"):
        make_staff(rt, no, ["physician"])
    with web_client(rt) as u7, web_client(rt) as u8, web_client(rt) as u9, \
            web_client(rt) as admin:
        for c, no in ((u7, "D107"), (u8, "D108"), (u9, "D109")):
            login(c, no)
            assert c.get("/").status_code == 200
        login_admin(admin)

        # logout; replaying the old cookie does not bring the session back
        stolen = u7.cookies[SESSION_COOKIE]
        r = post_form(u7, "/logout")
        assert r.status_code in (302, 303) and r.headers["location"] == "/login"
        u7.cookies.set(SESSION_COOKIE, stolen)
        assert u7.get("/api/me").status_code == 401

        # an administrator forces a session off
        [ws8] = live_sessions(rt, "D108")
        page = admin.get("/admin/sessions")
        assert page.status_code == 200
        assert f"/admin/sessions/{ws8.id}/revoke" in page.text
        r = post_form(admin, f"/admin/sessions/{ws8.id}/revoke")
        assert r.status_code in (302, 303)
        r = u8.get("/", follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
        assert u9.get("/").status_code == 200  # only that session was revoked

        # disabling an account ends its sessions and refuses new sign-ins
        r = post_form(admin, "/admin/users/D109", {"op": "disable"})
        assert r.status_code in (302, 303)
        assert u9.get("/api/me").status_code == 401
        r = login(u9, "D109")
        assert r.status_code == 401 and "账号已停用" in r.text
        assert u9.get("/api/me").status_code == 401
        assert admin.get("/api/me").status_code == 200

    assert [e.staff_no for e in events(rt, "logout")] == ["D107"]
    [ev] = events(rt, "admin.session.revoke")
    assert ev.staff_no == "A001"
    assert json.loads(ev.detail) == {"session": ws8.id, "staff_no": "D108"}
    assert staff_row(rt, "D109").active is False
    assert live_sessions(rt, "D109") == []
    assert [e.staff_no for e in events(rt, "admin.user.disable")] == ["A001"]
    assert json.loads(events(rt, "login", staff_no="D109")[-1].detail)["reason"] == "disabled"
    assert [len(live_sessions(rt, n)) for n in ("D107", "D108", "A001")] == [0, 0, 1]


# --------------------------------------------------------------------------- CSRF


def test_posts_without_csrf_token_are_refused_and_change_nothing(rt):
    make_admin(rt)
    with web_client(rt) as c:
        csrf_token(c)  # the cookie is there, but the form does not carry the token
        r = c.post("/login", data={"staff_no": "A001", "password": PASSWORD},
                   follow_redirects=False)
        assert r.status_code == 403
        assert SESSION_COOKIE not in r.cookies
        r = c.post("/login", data={"staff_no": "A001", "password": PASSWORD,
                                   "_csrf_token": "forged"}, follow_redirects=False)
        assert r.status_code == 403
        with rt.sessions() as s:
            assert s.scalar(select(func.count()).select_from(WebSession)) == 0
        assert events(rt, "login") == []
        # the header works as well as the form field
        r = c.post("/login", data={"staff_no": "A001", "password": PASSWORD},
                   headers={"x-csrftoken": csrf_token(c)}, follow_redirects=False)
        assert r.status_code in (302, 303)
        c.cookies.clear()

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


def _enrol_page(c, next: str = "/") -> str:
    """GET the enrolment page of the sign-in in progress; the secret it offers."""
    page = c.get("/login/totp/enroll", params={"next": next})
    assert page.status_code == 200, page.text
    assert "<svg" in page.text  # the QR code
    return enroll_secret(page.text)


def _enrol(c, secret: str, code: str | None = None, next: str = "/"):
    code = code if code is not None else pyotp.TOTP(secret).now()
    return post_form(c, "/login/totp/enroll", {"code": code, "next": next})


def _wrong(secret: str) -> str:
    return "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"


def test_admin_must_enrol_totp_before_reaching_admin_pages(rt):
    make_staff(rt, "A002", ["admin"])
    with web_client(rt) as c:
        r = login(c, "A002", next="/admin/sessions")
        assert r.status_code in (302, 303)
        assert r.headers["location"] == "/login/totp/enroll?next=/admin/sessions"
        # the password alone opens nothing
        for path in ("/admin/sessions", "/admin/users", "/"):
            r = c.get(path, follow_redirects=False)
            assert r.status_code in (302, 303), path
            assert r.headers["location"].startswith("/login"), path
        assert c.get("/api/me").status_code == 401
        secret = _enrol_page(c, "/admin/sessions")
        assert _enrol_page(c, "/admin/sessions") == secret  # a reload keeps the secret
        # a secret the page did not offer: its code is a wrong code here
        other = pyotp.random_base32()
        r = _enrol(c, secret, pyotp.TOTP(other).now(), next="/admin/sessions")
        assert r.status_code == 401 and "动态验证码错误" in r.text
        # a wrong code is refused, says so, and keeps the secret (the scanned authenticator
        # stays good); nothing is bound
        r = _enrol(c, secret, _wrong(secret), next="/admin/sessions")
        assert r.status_code == 401 and "动态验证码错误" in r.text
        assert enroll_secret(r.text) == secret
        assert staff_row(rt, "A002").totp_secret is None
        assert c.get("/admin/sessions", follow_redirects=False).status_code in (302, 303)
        # the right code binds the authenticator and finishes the sign-in
        r = _enrol(c, secret, next="/admin/sessions")
        assert r.status_code in (302, 303) and r.headers["location"] == "/admin/sessions"
        assert c.get("/admin/sessions").status_code == 200
        # once bound, the enrolment page sends to the code form
        r = post_form(c, "/logout")
        login(c, "A002")
        r = c.get("/login/totp/enroll", follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"] == "/login/totp"
        assert c.get("/login/totp").status_code == 200
    assert staff_row(rt, "A002").totp_secret == secret
    assert [e.outcome for e in events(rt, "login.totp", staff_no="A002")] == [
        "failed", "failed", "ok"]
    assert [e.outcome for e in events(rt, "login", staff_no="A002")] == ["password_ok"] * 2


def test_totp_login_wrong_code_refused_then_right_code(rt):
    make_admin(rt)
    with web_client(rt) as c:
        # no password step: the code form is refused
        r = post_form(c, "/login/totp", {"code": pyotp.TOTP(ADMIN_SECRET).now()})
        assert r.status_code == 403
        assert c.get("/login/totp", follow_redirects=False).headers["location"] == "/login"
        assert events(rt, "login.totp") == []

        r = login(c, "A001", next="/admin/sessions")
        assert r.headers["location"] == "/login/totp?next=/admin/sessions"
        r = c.get("/admin/users", follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
        r = post_form(c, "/login/totp", {"code": _wrong(ADMIN_SECRET), "next": "/admin/sessions"})
        assert r.status_code == 401
        assert "动态验证码错误" in r.text
        r = c.get("/admin/sessions", follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
        r = post_form(c, "/login/totp", {"code": pyotp.TOTP(ADMIN_SECRET).now(),
                                         "next": "/admin/sessions"})
        assert r.status_code in (302, 303) and r.headers["location"] == "/admin/sessions"
        assert c.get("/admin/sessions").status_code == 200
    outcomes = [(e.staff_no, e.outcome) for e in events(rt, "login.totp")]
    assert outcomes == [("A001", "failed"), ("A001", "ok")]


def test_enrolment_secret_belongs_to_its_sign_in(rt):
    """The secret offered is kept server side for one sign-in: another sign-in (same
    password) gets its own and cannot bind the first one's, and a bound authenticator cannot
    be replaced by enrolling again (found as a bug: an old unused form used to pass)."""
    make_staff(rt, "A004", ["admin"])
    with web_client(rt) as c1, web_client(rt) as c2:
        login(c1, "A004")
        first = _enrol_page(c1)
        login(c2, "A004")  # a new sign-in ends the first, unfinished one
        second = _enrol_page(c2)
        assert second != first
        assert _enrol(c1, first).status_code == 403  # the first sign-in is gone
        assert c1.get("/api/me").status_code == 401
        r = _enrol(c2, second, pyotp.TOTP(first).now())
        assert r.status_code == 401 and staff_row(rt, "A004").totp_secret is None
        assert _enrol(c2, second).headers["location"] == "/"
        assert c2.get("/api/me").status_code == 200
        post_form(c2, "/logout")
        login(c2, "A004")
        r = c2.get("/login/totp/enroll", follow_redirects=False)
        assert r.headers["location"] == "/login/totp"
        assert _enrol(c2, first).status_code == 403  # already bound: no second enrolment
        assert c2.get("/api/me").status_code == 401
    assert staff_row(rt, "A004").totp_secret == second
    assert [e.outcome for e in events(rt, "login.totp", staff_no="A004")] == ["failed", "ok"]


# --------------------------------------------------------------------------- permissions, menu


def test_permissions_and_menus_by_role(rt):
    make_staff(rt, "D113", ["auditor"])
    make_staff(rt, "D114", ["physician"])
    make_admin(rt)
    with web_client(rt) as c:
        # a non-admin without an authenticator signs straight in
        r = login(c, "D113", next="/audit")
        assert r.headers["location"] == "/audit"
        home = c.get("/")
        assert home.status_code == 200
        assert "审计日志" in home.text and "用户管理" not in home.text
        assert c.get("/audit").status_code == 200
        r = c.get("/admin/users")
        assert r.status_code == 403
        assert "无权访问" in r.text
        r = c.get("/admin/roles", headers={"accept": "application/json"})
        assert r.status_code == 403 and "管理角色" in r.json()["detail"]
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
        assert c.get("/audit").status_code == 403
    assert events(rt, "login.totp", staff_no="D113") == []
    denied = [(e.staff_no, e.outcome, json.loads(e.detail)["path"])
              for e in events(rt, "page.denied")]
    assert denied == [
        ("D113", "denied", "/admin/users"), ("D113", "denied", "/admin/roles"),
        ("D114", "denied", "/audit"), ("D114", "denied", "/audit/export"),
        ("D114", "denied", "/api/audit"), ("A001", "denied", "/audit")]


# --------------------------------------------------------------------------- client identity


def test_client_ip_and_computer_name_only_from_trusted_hops(rt):
    make_staff(rt, "D115", ["physician"])
    make_staff(rt, "D116", ["physician"])
    core = rt.config.core
    core.reverse_dns_timeout_ms = 50
    core.trusted_launchers = ["10.20.0.0/16"]
    comp = {"X-Bingan-Computer": "NK-WS-07"}
    with web_client(rt, peer="127.0.0.1") as c:  # 127.0.0.1 is in trusted_proxies
        login(c, "D115", headers={"X-Forwarded-For": "203.0.113.9, 10.1.2.3", **comp})
        c.peer_app.peer = "::1"
        login(c, "D116", "x-password", headers={"X-Forwarded-For": "10.7.7.7"})
        # an untrusted peer can choose neither its address nor its computer name
        c.peer_app.peer = "10.9.9.9"
        login(c, "D116", "x-password", headers={"X-Forwarded-For": "10.1.2.3", **comp})
        # garbage in the header falls back to the peer
        c.peer_app.peer = "127.0.0.1"
        login(c, "D116", "x-password", headers={"X-Forwarded-For": "not-an-ip"})
        # a trusted launcher may name the computer (but is no proxy)
        c.peer_app.peer = "10.20.3.4"
        c.get("/api/admissions/ZY000000001", headers={"X-Forwarded-For": "10.1.1.1", **comp})
        # the proxy list is read from the configuration on each request
        core.trusted_proxies = ["192.0.2.0/24"]
        c.peer_app.peer = "192.0.2.77"
        login(c, "D116", "x-password", headers={"X-Forwarded-For": "10.4.4.4"})
        c.peer_app.peer = "127.0.0.1"
        login(c, "D116", "x-password", headers={"X-Forwarded-For": "10.4.4.4", **comp})
    logins = events(rt, "login")
    assert [e.client_ip for e in logins] == [
        "10.1.2.3", "10.7.7.7", "10.9.9.9", "127.0.0.1", "10.4.4.4", "127.0.0.1"]
    assert logins[0].computer_name == "NK-WS-07（自称）"  # passed on by the proxy: a claim
    assert logins[2].computer_name != "NK-WS-07"
    assert logins[5].computer_name != "NK-WS-07"
    [view] = events(rt, "record.view")
    assert (view.client_ip, view.computer_name) == ("10.20.3.4", "NK-WS-07")
    with rt.sessions() as s:
        assert s.scalar(select(WebSession.client_ip)) == "10.1.2.3"


# --------------------------------------------------------------------------- public and JSON


def test_public_and_json_endpoints(rt):
    make_staff(rt, "D118", ["records"])
    with web_client(rt) as c:
        r = c.get("/healthz")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert body["status"] == "ok" and body["pending_migrations"] == []
        assert isinstance(body["plugins"], list)
        assert SESSION_COOKIE not in r.cookies

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
        c.cookies.set(SESSION_COOKIE, "forged-token")  # a bogus cookie is "not signed in"
        assert c.get("/api/me").status_code == 401
        c.cookies.clear()

        login(c, "D118")
        r = c.get("/api/admissions/ZY000000000")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/json")
        assert "ZY000000000" in r.json()["detail"]
    assert events(rt, "record.view", outcome="failed", staff_no=None) == []
    [ev] = events(rt, "record.view")
    assert (ev.staff_no, ev.outcome, ev.admission_no) == ("D118", "failed", "ZY000000000")


def test_wrong_totp_codes_lock_the_account(rt):
    make_admin(rt)
    with web_client(rt) as c:
        login(c, "A001")
        for _ in range(5):
            r = post_form(c, "/login/totp", {"code": _wrong(ADMIN_SECRET), "next": "/"})
        # the session died with the fifth wrong code; the right one no longer helps
        r = post_form(c, "/login/totp", {"code": pyotp.TOTP(ADMIN_SECRET).now(), "next": "/"})
        assert r.status_code in (302, 303, 403) and c.get("/api/me").status_code == 401
    assert staff_row(rt, "A001").locked_until is not None
    assert events(rt, "login.totp", staff_no="A001")[-1].outcome == "failed"
