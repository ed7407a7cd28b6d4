"""Plugin kernel: loading, blocking, metadata checks, settings, and leaving no trace."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from bingan.core.config import ConfigError
from bingan.core.plugins import DEFAULT_PLUGINS, build_plugin_manager
from bingan.core.runtime import build_runtime
from support import make_config


def _cfg(tmp_path, enabled, **settings):
    cfg = make_config(tmp_path / "home", f"sqlite:///{tmp_path / 'k.sqlite3'}", enabled)
    cfg.plugin_settings.update(settings)
    return cfg


def test_defaults_are_registered_like_plugins(tmp_path, sample_eps):
    pm = build_plugin_manager(_cfg(tmp_path, []), eps=sample_eps)
    for name in DEFAULT_PLUGINS:
        assert pm.get_plugin(name.removeprefix("bingan.")) is not None, name
    # installed but not enabled: blocked, contributes nothing
    assert pm.is_blocked("sample")
    assert "sample" not in pm.loaded
    actions = [a.name for group in pm.hook.register_actions() for a in group]
    assert "sample.peek" not in actions and "view" in actions


def test_enabled_plugin_loads_with_validated_settings(tmp_path, sample_eps):
    pm = build_plugin_manager(_cfg(tmp_path, ["sample"], sample={"greeting": "早上好"}),
                              eps=sample_eps)
    assert pm.settings_of(pm.loaded["sample"].info.settings).greeting == "早上好"
    assert pm.settings_of(pm.loaded["sample"].info.settings).limit == 10
    assert "register_routes" in pm.hooks_implemented("sample")


@pytest.mark.parametrize("settings, needle", [
    ({"limit": "many"}, "[plugins.sample] limit"),
    ({"colour": "red"}, "[plugins.sample] colour"),
    ({"greeting": {"env": "BINGAN_TEST_UNSET_VAR"}}, "BINGAN_TEST_UNSET_VAR"),
])
def test_bad_setting_names_plugin_and_key(tmp_path, sample_eps, settings, needle):
    with pytest.raises(ConfigError) as err:
        build_plugin_manager(_cfg(tmp_path, ["sample"], sample=settings), eps=sample_eps)
    assert needle in str(err.value)


def test_secret_from_environment(tmp_path, sample_eps, monkeypatch):
    monkeypatch.setenv("SAMPLE_GREETING", "密钥问候")
    pm = build_plugin_manager(
        _cfg(tmp_path, ["sample"], sample={"greeting": {"env": "SAMPLE_GREETING"}}),
        eps=sample_eps)
    assert pm.settings_of(pm.loaded["sample"].info.settings).greeting == "密钥问候"


def test_enabled_but_not_installed_names_plugin(tmp_path):
    with pytest.raises(ConfigError, match="plugin ghost: enabled in plugins.toml but not installed"):
        build_plugin_manager(_cfg(tmp_path, ["ghost"]), eps=[])


def test_metadata_needs_are_checked(tmp_path, sample_eps, monkeypatch):
    import dataclasses

    import bingan_sample

    orig = bingan_sample.PLUGIN
    newer = dataclasses.replace(orig, hooks_api="1.9")
    monkeypatch.setattr(bingan_sample, "PLUGIN", newer)
    with pytest.raises(ConfigError, match="plugin sample: needs hooks API 1.9"):
        build_plugin_manager(_cfg(tmp_path, ["sample"]), eps=sample_eps)
    dep = dataclasses.replace(orig, depends_on=("capture",))
    monkeypatch.setattr(bingan_sample, "PLUGIN", dep)
    with pytest.raises(ConfigError, match="plugin sample: depends on plugin capture"):
        build_plugin_manager(_cfg(tmp_path, ["sample"]), eps=sample_eps)


def test_misspelled_hook_fails_at_start(tmp_path):
    import types

    from bingan.hooks import hookimpl

    bad = types.ModuleType("bad_plugin")

    @hookimpl
    def register_route():  # missing "s"
        return []

    bad.register_route = register_route
    with pytest.raises(ConfigError, match="register_route"):
        build_plugin_manager(_cfg(tmp_path, []), eps=[], extra_modules=[bad])


def _footprint(tmp_path, db_url, enabled, eps):
    """Routes, menu hrefs, job ids and commands of an assembled system."""
    from bingan.core.cli import build_cli
    from bingan.core.jobs import all_jobs
    from bingan.core.web.app import create_app
    from bingan.core.web.render import visible_nav
    from bingan.hooks.types import StaffRef

    cfg = make_config(tmp_path / "home", db_url, enabled)
    rt = build_runtime(cfg, eps=eps)
    app = create_app(rt)
    routes = {r.path for r in app.routes}
    everyone = StaffRef(1, "x", "x", None, frozenset({"admin"}), frozenset({"admin.users"}))
    nav = {i.href for _, items in visible_nav(rt, everyone) for i in items}
    jobs = {j.id for j in all_jobs(rt)}
    commands = set(build_cli(rt).commands)
    rt.close()
    return routes, nav, jobs, commands


def test_removed_plugin_leaves_no_trace(tmp_path, sample_eps, db_url):
    on = _footprint(tmp_path, db_url, ["sample"], sample_eps)
    off = _footprint(tmp_path, db_url, [], sample_eps)
    assert "/sample/hello" in on[0] and "/sample/hello" not in off[0]
    assert "/sample/page" in on[1] and "/sample/page" not in off[1]
    assert "sample.tick" in on[2] and "sample.tick" not in off[2]
    assert "sample-hello" in on[3] and "sample-hello" not in off[3]
    # nothing else differs: the plugin's footprint is exactly what it registered
    assert on[0] - off[0] == {"/sample/hello", "/sample/page"}
    assert off[0] <= on[0] and off[1] <= on[1] and off[2] <= on[2] and off[3] <= on[3]


def test_every_installed_plugin_can_be_removed(tmp_path, db_url):
    """For each real plugin of the repo: disabling it removes its routes, menu, jobs, commands."""
    from bingan.core.plugins import installed_plugins

    names = sorted(installed_plugins())
    if not names:
        pytest.skip("no plugins installed")
    full = _footprint(tmp_path, db_url, names, None)
    for name in names:
        rest = [n for n in names if n != name]
        # a plugin that others depend on cannot be removed alone
        try:
            part = _footprint(tmp_path, db_url, rest, None)
        except ConfigError as exc:
            assert "depends on plugin " + name in str(exc)
            continue
        for a, b in zip(part, full):
            assert a <= b


def test_plugin_route_and_template(rt_sample_client):
    c = rt_sample_client
    assert c.get("/sample/hello").json() == {"greeting": "你好"}
    page = c.get("/sample/page")
    assert page.status_code == 200 and 'id="sample"' in page.text
    assert 'href="/sample/page"' in page.text  # its menu entry in the frame


@pytest.fixture
def rt_sample_client(tmp_path, sample_eps, empty_db_url):
    from bingan.core.migrate import upgrade
    from bingan.core.staff import add_staff, ensure_builtin_roles
    from bingan.core.web.app import create_app

    rt = build_runtime(make_config(tmp_path / "home", empty_db_url, ["sample"]), eps=sample_eps)
    upgrade(rt)
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        add_staff(s, "D0001", "医生甲", "doctor@2026", None, ["physician"])
    with TestClient(create_app(rt)) as c:
        c.get("/login")
        r = c.post("/login", data={"staff_no": "D0001", "password": "doctor@2026",
                                   "_csrf_token": c.cookies.get("bingan_csrf")})
        assert r.status_code == 200
        yield c
    rt.close()


def test_plugin_command_runs(tmp_path, sample_eps):
    from bingan.core.cli import build_cli

    rt = build_runtime(make_config(tmp_path / "home", f"sqlite:///{tmp_path}/c.db", ["sample"]),
                       eps=sample_eps)
    res = CliRunner().invoke(build_cli(rt), ["sample-hello"])
    assert res.exit_code == 0 and "sample says hello" in res.output
