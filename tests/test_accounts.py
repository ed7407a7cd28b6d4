"""Accounts (issue 12 "Accounts", issue 9 M1 and the sign-in items of its Low list).

Own password change, the forced change of a password an administrator set, the password
policy (GB/T 22239 level 3) and staff-number format, TOTP enrolment that keeps its secret,
second-factor failures counted per account across sign-ins, sign-in throttled per source (no
locking someone out from elsewhere, the same answer for unknown staff numbers), sessions ended
by a password or TOTP reset, and the sessions page.
"""

from __future__ import annotations

import datetime as dt
import re

import pyotp
import pytest
from bingan.core.staff import StaffError, add_staff, check_password_policy, ensure_builtin_roles
from webutil import (
    ADMIN_SECRET,
    PASSWORD,
    enroll_secret,
    events,
    live_sessions,
    login,
    login_admin,
    make_admin,
    make_staff,
    post_form,
    shift_sessions,
    staff_row,
    web_client,
)

NEW = "Fresh-pass-2027"


def _wrong(secret: str) -> str:
    return "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"


@pytest.mark.parametrize("password, why", [
    ("12345678", "三类"), ("abcdefgh", "三类"), ("Aa1!", "至少 8 位"),
    ("Aa123456", "常见"), ("P@ssw0rd", "常见"), ("admin@123", "常见"),
    ("abcDEF12", None), ("bingan@2026", None), ("Zy-D0001-x", "工号"),
])
def test_password_policy(password, why):
    if why is None:
        check_password_policy(password, "D0001")
    else:
        with pytest.raises(StaffError, match=why):
            check_password_policy(password, "D0001")


def test_staff_numbers_are_format_checked(rt):
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        for bad in ("x y<z>", "<script>", "a/b", " ", "工号1", "-D1"):
            with pytest.raises(StaffError, match="工号"):
                add_staff(s, bad, "某人", PASSWORD)
        add_staff(s, "D-0001_a", "某人", PASSWORD)
    make_admin(rt)
    with web_client(rt) as c:
        login_admin(c)
        r = post_form(c, "/admin/users", {"staff_no": "x y<z>", "name": "坏工号",
                                          "password": NEW})
        assert r.status_code == 400 and "工号只能由" in r.text and "x y<z>" not in r.text
        r = post_form(c, "/admin/users", {"staff_no": "N9", "name": "弱密码",
                                          "password": "12345678"})
        assert r.status_code == 400 and "三类" in r.text
    assert staff_row(rt, "N9") is None


def test_own_password_change(rt):
    make_staff(rt, "D0201", ["physician"])
    with web_client(rt) as c, web_client(rt) as other:
        assert login(other, "D0201").status_code in (302, 303)
        assert login(c, "D0201").status_code in (302, 303)
        assert "修改密码" in c.get("/").text
        r = post_form(c, "/account/password", {"current": "nope", "password": NEW,
                                               "confirm": NEW})
        assert r.status_code == 400 and "当前密码不正确" in r.text
        r = post_form(c, "/account/password", {"current": PASSWORD, "password": "12345678",
                                               "confirm": "12345678"})
        assert r.status_code == 400 and "三类" in r.text
        r = post_form(c, "/account/password", {"current": PASSWORD, "password": NEW,
                                               "confirm": NEW + "x"})
        assert r.status_code == 400 and "不一致" in r.text
        r = post_form(c, "/account/password", {"current": PASSWORD, "password": NEW,
                                               "confirm": NEW})
        assert r.status_code == 200 and "密码已修改" in r.text
        assert c.get("/api/me").status_code == 200  # this session goes on
        assert other.get("/api/me").status_code == 401  # the others end
        c.cookies.clear()
        assert login(c, "D0201").status_code == 401
        assert login(c, "D0201", NEW).status_code in (302, 303)
    assert [e.outcome for e in events(rt, "account.password")] == ["failed"] * 3 + ["ok"]


def test_admin_set_passwords_must_be_changed_and_resets_end_sessions(rt):
    make_admin(rt)
    with web_client(rt) as admin, web_client(rt) as c:
        login_admin(admin)
        r = post_form(admin, "/admin/users", {"staff_no": "N300", "name": "新医生",
                                              "password": NEW, "roles": "physician"})
        assert r.status_code in (302, 303)
        r = login(c, "N300", NEW, next="/notifications")
        assert r.status_code in (302, 303)
        for path in ("/", "/notifications", "/search"):
            r = c.get(path, follow_redirects=False)
            assert r.status_code in (302, 303) and \
                r.headers["location"].startswith("/account/password"), path
        assert c.get("/api/me").status_code == 403
        page = c.get("/account/password")
        assert page.status_code == 200 and "管理员设置" in page.text
        r = post_form(c, "/account/password", {"current": NEW, "password": PASSWORD,
                                               "confirm": PASSWORD, "next": "/notifications"})
        assert r.status_code in (302, 303) and r.headers["location"] == "/notifications"
        assert c.get("/api/me").status_code == 200
        assert staff_row(rt, "N300").must_change_password is False
        # an administrator's reset: every session of the person ends, and the new password
        # must be changed again
        r = post_form(admin, "/admin/users/N300", {"op": "password", "password": NEW})
        assert r.status_code in (302, 303)
        assert c.get("/api/me").status_code == 401
        assert live_sessions(rt, "N300") == []
        login(c, "N300", NEW)
        assert c.get("/", follow_redirects=False).headers["location"].startswith(
            "/account/password")


def test_totp_reset_ends_sessions(rt):
    # an administrator's second factor is reset by the security administrator (三员分立)
    make_staff(rt, "X0001", ["secadmin"], totp_secret=ADMIN_SECRET)
    make_admin(rt, "A0002")
    with web_client(rt) as admin, web_client(rt) as c:
        login_admin(admin, "X0001")
        login_admin(c, "A0002")
        assert c.get("/api/me").status_code == 200
        r = post_form(admin, "/admin/users/A0002", {"op": "totp_reset"})
        assert r.status_code in (302, 303)
        assert c.get("/api/me").status_code == 401
        assert staff_row(rt, "A0002").totp_secret is None


def test_enrolment_keeps_its_secret_and_says_the_code_was_wrong(rt):
    make_staff(rt, "A0003", ["admin"])
    with web_client(rt) as c:
        login(c, "A0003")
        first = enroll_secret(c.get("/login/totp/enroll").text)
        assert enroll_secret(c.get("/login/totp/enroll").text) == first
        r = post_form(c, "/login/totp/enroll", {"code": _wrong(first), "next": "/"})
        assert r.status_code == 401 and "动态验证码错误" in r.text
        assert enroll_secret(r.text) == first  # the authenticator already scanned stays good
        r = post_form(c, "/login/totp/enroll", {"code": pyotp.TOTP(first).now(), "next": "/"})
        assert r.status_code in (302, 303) and c.get("/api/me").status_code == 200
    assert staff_row(rt, "A0003").totp_secret == first


def test_second_factor_failures_count_across_sign_ins_and_a_lock_ends_pending_ones(rt):
    make_admin(rt)
    with web_client(rt) as c, web_client(rt) as early:
        login(early, "A001")  # a sign-in begun before the lock (another tab)
        for _ in range(3):  # signing in again with the password resets nothing
            login(c, "A001")
            r = post_form(c, "/login/totp", {"code": _wrong(ADMIN_SECRET), "next": "/"})
            assert r.status_code == 401
        login(c, "A001")
        post_form(c, "/login/totp", {"code": _wrong(ADMIN_SECRET), "next": "/"})
        r = post_form(c, "/login/totp", {"code": _wrong(ADMIN_SECRET), "next": "/"})
        assert r.status_code == 401 and "锁定" in r.text  # the fifth wrong code
        assert staff_row(rt, "A001").locked_until is not None
        # neither this sign-in nor the one begun earlier can finish with the right code
        for client in (c, early):
            r = post_form(client, "/login/totp", {"code": pyotp.TOTP(ADMIN_SECRET).now(),
                                                  "next": "/"})
            assert r.status_code in (401, 403)
            assert client.get("/api/me").status_code == 401
        # and the right password only says the account is locked
        r = login(c, "A001")
        assert r.status_code == 401 and "次数过多" in r.text
    assert live_sessions(rt, "A001") == []
    fails = [e for e in events(rt, "login.totp") if e.outcome == "failed"]
    assert len(fails) == 5 and '"locked": true' in fails[-1].detail


def test_sign_in_is_throttled_per_source_and_unknown_numbers_look_the_same(rt):
    make_staff(rt, "D0301", ["physician"])
    with web_client(rt, peer="10.0.0.66") as attacker, web_client(rt, peer="10.0.0.7") as user:
        answers = {}
        for no in ("D0301", "NOSUCH1"):
            texts = []
            for _ in range(6):
                r = login(attacker, no, "Wrong-pass-1")
                assert r.status_code == 401
                texts.append(r.text.split('role="alert">')[1].split("<")[0])
            answers[no] = texts
        # the same answers for a staff number that exists and one that does not (the unlock
        # time is when each lock began plus the lock period, so it may differ by a minute)
        def masked(texts):
            return [re.sub(r"\d\d:\d\d", "HH:MM", t) for t in texts]
        assert masked(answers["D0301"]) == masked(answers["NOSUCH1"])
        assert answers["D0301"][0] == "工号或密码错误" and "次数过多" in answers["D0301"][-1]
        # the attacker's source is locked out of D0301, even with the right password ...
        assert login(attacker, "D0301").status_code == 401
        # ... but D0301 signs in from their own computer
        assert login(user, "D0301").status_code in (302, 303)
        assert user.get("/api/me").status_code == 200
        # one source spraying many staff numbers is stopped as a whole
        for i in range(12):
            login(attacker, f"X{i}", "Wrong-pass-1")
        r = login(attacker, "D0302", "Wrong-pass-1")
        assert r.status_code == 401 and "本机登录失败次数过多" in r.text
    assert staff_row(rt, "D0301").locked_until is None


def test_sessions_page_and_no_half_sessions(rt):
    make_admin(rt)
    make_staff(rt, "D0401", ["physician"])
    make_staff(rt, "A0005", ["admin"], totp_secret=ADMIN_SECRET)
    with web_client(rt) as admin, web_client(rt) as doc, web_client(rt) as half:
        login_admin(admin)
        login(doc, "D0401")
        login(half, "A0005")  # password only, second factor pending
        login(half, "A0005")  # again: the first half-session is ended
        assert len(live_sessions(rt, "A0005")) == 1
        html = admin.get("/admin/sessions").text
        rows = {line.split("<td>")[1].split("</td>")[0]: line
                for line in html.split("<tr>") if "<td>" in line}
        assert "未启用" in rows["D0401"] and "已通过" not in rows["D0401"]
        assert "已通过" in rows["A001"]
        assert "A0005" not in rows  # a sign-in waiting for its code is no session
        # a pending sign-in ends after a few minutes
        shift_sessions(rt, "A0005", created_at=dt.timedelta(minutes=11))
        r = post_form(half, "/login/totp", {"code": pyotp.TOTP(ADMIN_SECRET).now()})
        assert r.status_code == 403 and live_sessions(rt, "A0005") == []
