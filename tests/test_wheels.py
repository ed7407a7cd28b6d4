"""Core and a plugin built as wheels from a clean copy of the sources, installed into a fresh
virtual environment (no checkout, no node_modules), serve their front-end files.

The sources are the tracked files only, so the build itself must fetch htmx and ECharts from
npm (setup.py) as a release build would; pip installs the dependencies from the configured
index, as a hospital's installation does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _tracked_copy(dest: Path, *parts: str) -> None:
    """The files git tracks under ``parts`` (links kept as links), copied to ``dest``."""
    out = subprocess.run(["git", "ls-files", "-z", "--", *parts], cwd=REPO, capture_output=True,
                         check=True).stdout.decode().split("\0")
    for rel in filter(None, out):
        src, dst = REPO / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        elif src.exists():  # deleted in the work tree but not yet in git
            shutil.copy2(src, dst)


def _run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, **kw)
    assert res.returncode == 0, f"{cmd}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_wheels_serve_their_front_end_files(tmp_path):
    if not shutil.which("npm"):
        pytest.fail("npm (Node.js) is needed to build bingan's wheels")
    src = tmp_path / "src"
    _tracked_copy(src, "core", "hooks", "themes", "testing", "pyproject.toml", "setup.py",
                  "package.json", "package-lock.json", "plugins.toml", "README.md", "LICENSE",
                  "build-helper", "plugins/capture")
    assert not (src / "core" / "web" / "vendor").exists()  # never committed
    wheels = tmp_path / "wheels"
    # the shared npm build step first: core's and the plugin's builds require it (pip finds it
    # beside them, as a hospital's index carries it beside bingan)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
          str(src / "build-helper")])
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--find-links", str(wheels),
          "-w", str(wheels), str(src), str(src / "plugins" / "capture")])
    core_whl, = wheels.glob("bingan-*.whl")
    capture_whl, = wheels.glob("bingan_capture-*.whl")
    with zipfile.ZipFile(core_whl) as z:
        names = set(z.namelist())
        assert "bingan/core/web/vendor/htmx.min.js" in names
        assert "bingan/core/data/plugins.toml" in names
        htmx = z.read("bingan/core/web/vendor/htmx.min.js")
        assert z.read("bingan/core/data/plugins.toml") == (REPO / "plugins.toml").read_bytes()
        assert not [n for n in names if "node_modules" in n]
    with zipfile.ZipFile(capture_whl) as z:
        echarts = z.read("bingan_capture/static/vendor/echarts.min.js")
        assert not [n for n in z.namelist() if "node_modules" in n]
    assert b"htmx" in htmx[:2000] and len(echarts) > 500_000

    venv = tmp_path / "venv"
    # a venv without pip of its own (quicker to make); this pip installs into it
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py, bingan = venv / "bin" / "python", venv / "bin" / "bingan"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-compile",
          str(core_whl), str(capture_whl)])

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BINGAN_", "PYTHON", "VIRTUAL_ENV"))}
    env["BINGAN_HOME"] = str(tmp_path / "home")
    res = _run([str(bingan), "plugins"], env=env, cwd=elsewhere)
    where = "import bingan.core, os; print(os.path.dirname(bingan.core.__file__))"
    site = _run([str(py), "-c", where], env=env, cwd=elsewhere).stdout.strip()
    assert f"配置文件：{site}/data/plugins.toml（随程序安装的默认配置）" in res.stdout
    assert "capture" in res.stdout and "已启用" in res.stdout
    _run([str(bingan), "db", "upgrade"], env=env, cwd=elsewhere)

    port = _free_port()
    server = subprocess.Popen([str(bingan), "serve", "--port", str(port), "--no-scheduler"],
                              env=env, cwd=elsewhere, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                status, _ = _get(base + "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stdout.read().decode()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.5)
        status, body = _get(base + "/static/vendor/htmx.min.js")
        assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(htmx).digest()
        status, body = _get(base + "/static/capture/vendor/echarts.min.js")
        assert status == 200 and body == echarts
        status, page = _get(base + "/login")
        assert status == 200 and b'src="/static/vendor/htmx.min.js"' in page
    finally:
        server.terminate()
        server.wait(timeout=30)
