"""The bingan command line end to end (each command has --help)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_demo_load_twice_and_if_empty(demo_hospital):
    # the first load is the run's shared one, into an empty database, every plugin enabled
    # (bingan.testing.demo); this test has a copy of what it made
    res = demo_hospital.load
    assert res.exit_code == 0, res.output
    assert "300 份病案" in res.output and "A0001" in res.output
    rt = demo_hospital.rt
    again = _run(rt, "demo", "load")
    assert again.exit_code == 1 and "不是空的" in again.output
    skip = _run(rt, "demo", "load", "--if-empty")
    assert skip.exit_code == 0 and "跳过" in skip.output and "A0001" in skip.output


def test_plugins_json(rt):
    res = _run(rt, "plugins", "--json")
    assert res.exit_code == 0
    out = json.loads(res.output)
    assert out["config_source"] and out["config"]
    rows = out["plugins"]
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
    res = subprocess.run([sys.executable, "-c", "from bingan.core.cli import main; main()",
                          "plugins"], env=env, capture_output=True, text=True, cwd=tmp_path,
                         check=False)
    assert res.returncode == 2
    assert "[core] lockout_failures" in res.stderr


@pytest.mark.parametrize("args", [["jobs"], ["audit", "verify"], ["storage", "verify"]])
def test_read_only_commands_succeed_on_fresh_db(rt, args):
    res = _run(rt, *args)
    assert res.exit_code == 0, res.output


def _bingan(args, cwd, **env):
    """The installed ``bingan`` script run in ``cwd`` with only the given BINGAN_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("BINGAN_")}
    exe = Path(sys.executable).with_name("bingan")
    return subprocess.run([str(exe), *args], env={**base, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_finds_its_config_from_any_directory(tmp_path):
    """Run from an unrelated folder, the CLI reads the installed default plugins.toml (the
    same file the server reads) and has the enabled plugins' commands; BINGAN_HOME's
    plugins.toml comes before it, BINGAN_CONFIG before both; ``plugins`` says which file."""
    from bingan.core.config import default_config_path

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = _bingan(["plugins"], elsewhere, BINGAN_HOME=str(tmp_path / "h1"))
    assert res.returncode == 0, res.stderr
    assert f"配置文件：{default_config_path()}（随程序安装的默认配置）" in res.stdout
    assert "imaging" in res.stdout and "已启用" in res.stdout
    res = _bingan(["imaging", "--help"], elsewhere, BINGAN_HOME=str(tmp_path / "h1"))
    assert res.returncode == 0 and "Usage" in res.stdout, res.stderr

    home = tmp_path / "h2"
    home.mkdir()
    (home / "plugins.toml").write_text('[plugins]\nenabled = ["search"]\n', encoding="utf-8")
    res = _bingan(["plugins", "--json"], elsewhere, BINGAN_HOME=str(home))
    out = json.loads(res.stdout)
    assert out["config"] == str(home / "plugins.toml") and out["config_source"] == "BINGAN_HOME"
    assert [r["name"] for r in out["plugins"] if r["enabled"]] == ["search"]
    res = _bingan(["imaging", "--help"], elsewhere, BINGAN_HOME=str(home))
    assert res.returncode == 2 and "imaging" in res.stderr

    mine = tmp_path / "mine.toml"
    mine.write_text('[plugins]\nenabled = ["imaging"]\n', encoding="utf-8")
    res = _bingan(["plugins", "--json"], elsewhere, BINGAN_HOME=str(home),
                  BINGAN_CONFIG=str(mine))
    out = json.loads(res.stdout)
    assert out["config"] == str(mine) and out["config_source"] == "BINGAN_CONFIG"
    assert [r["name"] for r in out["plugins"] if r["enabled"]] == ["imaging"]

    res = _bingan(["plugins"], elsewhere, BINGAN_CONFIG=str(tmp_path / "missing.toml"))
    assert res.returncode == 2
    assert "missing.toml: configuration file not found (BINGAN_CONFIG)" in res.stderr


@pytest.mark.parametrize("url, needle", [
    ("s3://bucket/blobs", ("BINGAN_STORAGE_URL 's3://bucket/blobs': no storage backend for the "
                           "'s3' scheme")),
    ("nfs://server/blobs", "no storage backend for the 'nfs' scheme"),
    ("file://server/share", "a file: URL cannot name another host"),
    ("FILE_UNDER_A_FILE", "cannot hold blobs"),
])
def test_bad_storage_url_stops_start_up(tmp_path, url, needle):
    """An unknown or unusable BINGAN_STORAGE_URL stops the server and every command at
    start-up with a message (no traceback, nothing served), like any other bad setting."""
    (tmp_path / "a-file").write_text("x")
    if url == "FILE_UNDER_A_FILE":
        url = (tmp_path / "a-file" / "blobs").as_uri()
    cfg = tmp_path / "plugins.toml"
    cfg.write_text("[plugins]\nenabled = []\n", encoding="utf-8")
    for args in (["serve", "--port", "1"], ["plugins"]):
        res = _bingan(args, tmp_path, BINGAN_HOME=str(tmp_path / "h"), BINGAN_CONFIG=str(cfg),
                      BINGAN_STORAGE_URL=url)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert res.stderr.startswith("配置错误：") and needle in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and "已启动" not in res.stdout
