"""The bingan command line end to end (each command has --help)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from bingan.core.cli import Ctx, build_cli


def _run(rt, *args, input=None):
    obj = Ctx()
    obj._rt = rt
    return CliRunner().invoke(build_cli(rt), list(args), obj=obj, input=input)


def test_help_everywhere(tmp_path):
    from bingan.core.runtime import build_runtime
    from support import make_config

    rt = build_runtime(make_config(tmp_path / "h", f"sqlite:///{tmp_path}/x.db", []))
    group = build_cli(rt)
    todo = [((), group)]
    while todo:
        path, cmd = todo.pop()
        res = _run(rt, *path, "--help")
        assert res.exit_code == 0 and "Usage" in res.output, path
        for name, sub in getattr(cmd, "commands", {}).items():
            todo.append((path + (name,), sub))


def test_user_commands(rt):
    res = _run(rt, "user", "add", "R0101", "病案员乙", "--role", "records", "--password", "secret@2026")
    assert res.exit_code == 0, res.output
    dup = _run(rt, "user", "add", "R0101", "重复", "--password", "secret@2026")
    assert dup.exit_code == 1 and "已存在" in dup.output
    weak = _run(rt, "user", "passwd", "R0101", "--password", "short")
    assert weak.exit_code == 1 and "8" in weak.output
    assert _run(rt, "user", "passwd", "R0101", "--password", "another@2026").exit_code == 0
    assert _run(rt, "user", "disable", "R0101").exit_code == 0
    from bingan.core.staff import get_staff

    with rt.sessions() as s:
        assert get_staff(s, "R0101").active is False
    assert _run(rt, "user", "disable", "NOPE").exit_code == 1
    from bingan.core.models import AuditEvent
    from sqlalchemy import select

    with rt.sessions() as s:
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
    assert actions == ["admin.user.add", "admin.user.password", "admin.user.disable"]


def test_demo_load_twice_and_if_empty(rt):
    res = _run(rt, "demo", "load")
    assert res.exit_code == 0, res.output
    assert "300 份病案" in res.output and "A0001" in res.output
    again = _run(rt, "demo", "load")
    assert again.exit_code == 1 and "不是空的" in again.output
    skip = _run(rt, "demo", "load", "--if-empty")
    assert skip.exit_code == 0 and "跳过" in skip.output and "A0001" in skip.output


def test_plugins_json(rt):
    res = _run(rt, "plugins", "--json")
    assert res.exit_code == 0
    rows = json.loads(res.output)
    assert all({"name", "installed", "enabled", "version", "hooks"} <= set(r) for r in rows)


def test_serve_refuses_unmigrated_database(tmp_path, empty_db_url):
    from bingan.core.runtime import build_runtime
    from support import make_config

    rt = build_runtime(make_config(tmp_path / "h", empty_db_url, []))
    res = _run(rt, "serve", "--port", "1")
    assert res.exit_code == 1 and "bingan db upgrade" in res.output
    res = _run(rt, "db", "status")
    assert res.exit_code == 1 and "待执行" in res.output
    assert _run(rt, "db", "upgrade").exit_code == 0
    assert _run(rt, "db", "upgrade").exit_code == 0  # idempotent
    assert _run(rt, "db", "status").exit_code == 0
    rt.close()


def test_bad_config_stops_with_plugin_and_key(tmp_path):
    cfg = tmp_path / "plugins.toml"
    cfg.write_text("[core]\nlockout_failures = 'five'\n", encoding="utf-8")
    env = dict(os.environ, BINGAN_CONFIG=str(cfg), BINGAN_HOME=str(tmp_path))
    res = subprocess.run([sys.executable, "-c", "from core.cli import main; main()", "plugins"],
                         env=env, capture_output=True, text=True)
    assert res.returncode == 2
    assert "[core] lockout_failures" in res.stderr


@pytest.mark.parametrize("args", [["jobs"], ["audit", "verify"], ["storage", "verify"]])
def test_read_only_commands_succeed_on_fresh_db(rt, args):
    res = _run(rt, *args)
    assert res.exit_code == 0, res.output
