"""The page helper and the thread bridge work with several methods on one path (a Litestar
2.x double-wrap made such sync handlers answer 500)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, get, post
from litestar.response import Redirect
from litestar.testing import TestClient

from bingan.core.web.render import in_thread


def test_in_thread_handler_beside_another_method():
    import threading

    seen = []

    @get("/a")
    @in_thread
    def a() -> Any:
        seen.append(threading.current_thread() is threading.main_thread())
        return Redirect("/b")

    @post("/a")
    @in_thread
    def a2() -> dict:
        return {"ok": 1}

    for _ in range(2):  # two apps from the same handler objects, as the tests do
        with TestClient(Litestar([a, a2])) as c:
            r = c.get("/a", follow_redirects=False)
            assert r.status_code == 302 and r.headers["location"] == "/b"
            assert c.post("/a").json() == {"ok": 1}
    assert seen == [False, False]  # ran off the event loop's thread


def test_openapi_schema_is_public_and_lists_core_apis(tmp_path):
    from bingan.core.runtime import build_runtime
    from bingan.core.web.app import create_app
    from support import make_config

    rt = build_runtime(make_config(tmp_path / "h", f"sqlite:///{tmp_path}/x.db", []))
    with TestClient(create_app(rt)) as c:
        r = c.get("/schema/openapi.json")
        assert r.status_code == 200
        paths = r.json()["paths"]
        assert {"/api/me", "/api/audit", "/api/admissions/{admission_no}"} <= set(paths)
        assert c.get("/api/me").status_code == 401  # the APIs themselves are not public
