"""A real CUPS queue with the cups-pdf backend for the print tests.

Uses the machine's CUPS scheduler (started when it is not running and we are root, as on CI),
adds a queue of this process (``bingan-test-pdf-<pid>``, device ``cups-pdf:/``; CUPS prints one
job per queue at a time, so parallel test processes each get their own) and removes it when
the process ends, and finds the PDF cups-pdf wrote for a job in its ``Out`` folder. Without CUPS the tests are skipped locally
and fail under CI (like the PostgreSQL half of the database tests)."""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

QUEUE = f"bingan-test-pdf-{os.getpid()}"
CONF = Path("/etc/cups/cups-pdf.conf")
PPD = "lsb/usr/cups-pdf/CUPS-PDF_opt.ppd"


def _unavailable(why: str):
    if os.environ.get("CI"):
        pytest.fail(f"CUPS print test cannot run: {why}")
    pytest.skip(f"CUPS print test cannot run: {why}")


def _run(*cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _remove(name: str) -> None:
    subprocess.run(["lpadmin", "-x", name], capture_output=True, timeout=30)


def ensure_queue(name: str = QUEUE) -> str:
    for tool in ("lp", "lpstat", "lpadmin"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            _unavailable(f"{tool} missing (Debian packages cups, printer-driver-cups-pdf)")
    if not Path("/usr/lib/cups/backend/cups-pdf").exists():
        _unavailable("the cups-pdf backend is missing (printer-driver-cups-pdf)")
    if "is running" not in _run("lpstat", "-r").stdout:
        if os.geteuid() != 0:
            _unavailable("the CUPS scheduler is not running and we are not root to start it")
        subprocess.run(["cupsd"], capture_output=True, timeout=30)
        for _ in range(50):
            if "is running" in _run("lpstat", "-r").stdout:
                break
            time.sleep(0.2)
        else:
            _unavailable("cupsd did not start")
    if name not in _run("lpstat", "-e").stdout.split():
        r = _run("lpadmin", "-p", name, "-v", "cups-pdf:/", "-E", "-m", PPD)
        if r.returncode != 0:
            _unavailable(f"lpadmin failed: {r.stderr.strip()}")
        atexit.register(_remove, name)
    return name


def out_dir() -> Path:
    """cups-pdf's output folder for jobs of the current user."""
    out = "/var/spool/cups-pdf/${USER}"
    if CONF.exists():
        for line in CONF.read_text().splitlines():
            m = re.match(r"^\s*Out\s+(\S+)", line)
            if m:
                out = m.group(1)
    user = pwd.getpwuid(os.geteuid())
    return Path(out.replace("${HOME}", user.pw_dir).replace("${USER}", user.pw_name))


def job_pdf(job_id: str, timeout: float = 300) -> Path:
    """Wait for the job to complete and return the PDF cups-pdf wrote for it."""
    n = job_id.rsplit("-", 1)[1]
    deadline = time.monotonic() + timeout
    folder = out_dir()
    while time.monotonic() < deadline:
        found = sorted(folder.glob(f"*job_{n}.pdf")) if folder.exists() else []
        if found and found[0].stat().st_size > 0 and job_id not in _run("lpstat", "-o").stdout:
            return found[0]
        time.sleep(0.3)
    raise AssertionError(f"cups-pdf wrote no file for {job_id} in {folder} "
                         f"({_run('lpstat', '-W', 'all', '-o').stdout.strip()[-300:]})")
