"""Template lookup: hospital theme, then plugin templates, then the default theme; an override
can extend the template it replaces through the ``default:`` prefix."""

from __future__ import annotations

from litestar.testing import TestClient

from bingan.core.runtime import build_runtime
from support import make_config


def _theme(tmp_path):
    theme = tmp_path / "hospital_x"
    (theme / "templates").mkdir(parents=True)
    (theme / "static").mkdir()
    (theme / "templates" / "login.html").write_text(
        '{% extends "default:login.html" %}{% block title %}某院登录{% endblock %}',
        encoding="utf-8")
    (theme / "static" / "hospital.css").write_text("body{color:red}")
    return theme


def test_hospital_theme_overrides_and_extends_default(tmp_path, sample_eps):
    from bingan.core.web.app import create_app
    from bingan.core.web.templating import build_environment, template_dirs

    cfg = make_config(tmp_path / "home", f"sqlite:///{tmp_path}/t.db", ["sample"])
    cfg.core.theme = str(_theme(tmp_path))
    rt = build_runtime(cfg, eps=sample_eps)
    dirs = [str(d) for d in template_dirs(rt)]
    assert dirs[0].endswith("hospital_x/templates")
    assert "bingan_sample" in dirs[1] and dirs[-1].endswith("themes/default/templates")
    env = build_environment(rt)
    html = env.get_template("login.html").render(csrf_token=lambda: "t", csrf_input="",
                                                 hospital="H", next="/", error=None)
    assert "<title>某院登录" in html and 'name="staff_no"' in html  # the block changed, the rest kept
    assert env.get_template("sample/page.html")  # plugin template reachable
    with TestClient(create_app(rt)) as c:
        assert "某院登录" in c.get("/login").text
        assert c.get("/static/theme/hospital.css").text == "body{color:red}"
        assert c.get("/static/theme/theme.css").status_code == 200  # falls back to default


def test_default_theme_only(tmp_path):
    from bingan.core.web.templating import template_dirs

    rt = build_runtime(make_config(tmp_path / "home", f"sqlite:///{tmp_path}/t.db", []))
    assert [d.name for d in template_dirs(rt)] == ["templates"]
