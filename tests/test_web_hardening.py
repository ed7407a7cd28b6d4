"""The Low findings of issue 9 about the web layer and the data folder: security headers and
no-store, path numbers too large for the database, unexpected errors logged, the CSRF token
bound to the session, 0600/0700 data, and ``bingan storage verify``'s exit code."""

from __future__ import annotations

import logging
import os
import re
import stat

import pytest
from bingan.hooks import hookimpl
from click.testing import CliRunner
from webutil import csrf_token, login, make_staff, post_form, web_client


def test_security_headers_and_no_store(rt):
    make_staff(rt, "D0501", ["physician"])
    with web_client(rt) as c:
        pages = {"login page": c.get("/login")}
        login(c, "D0501")
        pages["home"] = c.get("/")
        pages["json"] = c.get("/api/me")
        pages["404"] = c.get("/no/such/page")
        for name, r in pages.items():
            h = r.headers
            assert h["x-content-type-options"] == "nosniff", name
            assert h["x-frame-options"] == "DENY", name
            assert h["referrer-policy"] == "same-origin", name
            assert "frame-ancestors 'none'" in h["content-security-policy"], name
            assert "default-src 'self'" in h["content-security-policy"], name
            assert h["cache-control"] == "no-store", name
        css = re.search(r'href="(/static/[^"]+\.css)"', pages["home"].text).group(1)
        r = c.get(css)
        assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
        assert "no-store" not in r.headers.get("cache-control", "")


def _int_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route with an int path parameter."""
    out = []
    for route in app.routes:
        params = getattr(route, "path_parameters", {}) or {}
        params = params.values() if isinstance(params, dict) else params
        if not any(getattr(p, "type", None) is int for p in params):
            continue
        for method in sorted(set(getattr(route, "methods", ())) - {"HEAD", "OPTIONS"}):
            out.append((method, route.path))
    return out


@pytest.mark.parametrize("number", [2**63, 2**64, -(2**63) - 1])
def test_numbers_too_large_for_the_database_are_a_400_not_a_500(rt, number):
    from bingan.core.web.app import create_app
    from webutil import ADMIN_SECRET, login_admin

    make_staff(rt, "A001", ["admin"], totp_secret=ADMIN_SECRET)
    from bingan.core.models import Role
    from bingan.core.web.admin import all_permissions

    with rt.sessions() as s, s.begin():  # every capability, so every route is reached
        s.query(Role).filter(Role.name == "admin").one().permissions = sorted(
            p.name for p in all_permissions(rt))
    app = create_app(rt)
    routes = _int_routes(app)
    assert len(routes) >= 5
    with web_client(rt, app=app) as c:
        login_admin(c)
        h = {"x-csrftoken": csrf_token(c)}
        bad = []
        for method, path in routes:
            url = re.sub(r"\{\w+:int\}", str(number), path)
            url = re.sub(r"\{\w+:str\}", "ZY000000000001", url)
            r = c.request(method, url, headers=h, follow_redirects=False)
            if r.status_code >= 500:
                bad.append((method, url, r.status_code))
        assert not bad, bad


class _Broken:
    @hookimpl
    def register_routes(self):
        from litestar import get

        @get("/test/broken", opt={"public": True})
        def broken() -> str:
            raise RuntimeError("boom at the bottom")

        return [broken]


def test_unexpected_errors_are_logged_with_their_traceback(rt, caplog):
    from bingan.core.web.app import create_app

    rt.pm.register(_Broken(), name="test-broken")
    try:
        app = create_app(rt)
    finally:
        rt.pm.unregister(name="test-broken")
    with caplog.at_level(logging.ERROR, logger="bingan.web"), web_client(rt, app=app) as c:
        r = c.get("/test/broken")
        assert r.status_code == 500 and "系统错误" in r.text and "boom" not in r.text
        r = c.get("/test/broken", headers={"accept": "application/json"})
        assert r.status_code == 500 and r.json()["detail"].startswith("系统错误")
    recs = [x for x in caplog.records if x.name == "bingan.web" and x.exc_info]
    assert recs and "RuntimeError: boom at the bottom" in caplog.text
    assert "/test/broken" in recs[0].getMessage()


def test_csrf_token_is_bound_to_the_session(rt):
    make_staff(rt, "D0502", ["physician"])
    with web_client(rt) as victim, web_client(rt) as attacker:
        login(victim, "D0502")
        # a token pair the attacker holds: valid for Litestar, but not the victim's session's
        foreign = csrf_token(attacker)
        victim.cookies.set("bingan_csrf", foreign)
        r = victim.post("/notifications/read", data={"_csrf_token": foreign},
                        follow_redirects=False)
        assert r.status_code == 403
        r = victim.post("/logout", headers={"x-csrftoken": foreign,
                                            "accept": "application/json"})
        assert r.status_code == 403 and "其他会话" in r.json()["detail"]
        assert victim.get("/api/me").status_code == 200  # still signed in: nothing happened
        # the token of the victim's own session works; the one from before sign-in does not
        victim.cookies.clear()
        pre = csrf_token(victim)
        login(victim, "D0502")
        own = victim.cookies.get("bingan_csrf")
        assert own and own != pre
        assert post_form(victim, "/notifications/read").status_code in (302, 303)
        victim.cookies.set("bingan_csrf", pre)
        assert victim.post("/notifications/read", data={"_csrf_token": pre},
                           follow_redirects=False).status_code == 403


def test_data_is_private_to_the_service_user(rt):
    from bingan.core.storage import BlobStore  # noqa: F401 - the store of the runtime

    home = rt.home
    sha = rt.store.put(b"page image bytes")
    blob = next(p for p in home.rglob("*") if p.is_file() and sha in p.name)
    db = [p for p in home.rglob("*.sqlite3")] + [home / "secrets.json"]
    for p in [home, blob, blob.parent, *db]:
        if not p.exists():
            continue
        mode = stat.S_IMODE(os.stat(p).st_mode)
        assert mode & 0o077 == 0, (p, oct(mode))
    assert stat.S_IMODE(os.stat(blob).st_mode) == 0o400


def test_storage_verify_exits_1_with_orphans(rt):
    from bingan.core import pages  # noqa: F401
    from bingan.core.cli import Ctx, build_cli

    obj = Ctx()
    obj._rt = rt
    ok = CliRunner().invoke(build_cli(rt), ["storage", "verify"], obj=obj)
    assert ok.exit_code == 0, ok.output
    rt.store.put(b"a file no row refers to")  # an orphan, as an interrupted capture leaves
    res = CliRunner().invoke(build_cli(rt), ["storage", "verify"], obj=obj)
    assert res.exit_code == 1 and "孤立 1" in res.output and "storage cleanup" in res.output
