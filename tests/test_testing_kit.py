"""Core's test kit (bingan.testing) is an installed pytest plugin: a plugin's tests run outside
this repository, from any folder, with core's fixtures (``rt`` on SQLite and PostgreSQL) and
web helpers, and without this repository's conftests or tests/ on the path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

PLUGIN_TEST = '''
from sqlalchemy import select

from bingan.core.models import AuditEvent
from bingan.testing.web import login, make_staff, web_client


def test_outside_the_repository(rt, db_url):
    assert rt.config.database_url == db_url
    assert "reading" in rt.pm.loaded  # every installed plugin enabled (reading among them)
    make_staff(rt, "R900", ["records"])
    with web_client(rt) as c:
        assert login(c, "R900").status_code in (302, 303)
        assert c.get("/records/ZY209901000001").status_code == 404
    with rt.sessions() as s:
        ev = s.scalar(select(AuditEvent).where(AuditEvent.action == "record.view"))
        assert ev.outcome == "failed" and ev.staff_no == "R900"
'''


def test_kit_is_a_pytest11_entry_point():
    eps = [ep for ep in entry_points(group="pytest11") if ep.name == "bingan"]
    assert [ep.value for ep in eps] == ["bingan.testing.plugin"]


def test_a_plugins_tests_run_from_their_own_folder(tmp_path):
    folder = tmp_path / "someplugin" / "tests"
    folder.mkdir(parents=True)
    (folder / "test_outside.py").write_text(textwrap.dedent(PLUGIN_TEST), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BINGAN_HOME")}
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path / "someplugin"), "-c", os.devnull, str(folder)],
        cwd=tmp_path / "someplugin", env=env, capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    # both backends ran (or PostgreSQL was skipped for want of a server, never errored)
    assert "2 passed" in out or ("1 passed" in out and "1 skipped" in out), out[-1000:]
