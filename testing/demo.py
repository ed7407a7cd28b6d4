"""The demo hospital for tests: loaded once per backend per test run, copied for each test.

``bingan demo load`` with every installed plugin costs a minute or more a backend (300
admissions, each plugin's ``demo_loaded``: drawn and captured page images, bookings, death
cases ...). Tests that need the demo hospital (fixture ``demo_hospital``) share one real load
per backend: the first test that asks for it runs the command line ``demo load`` and the
background tasks it queued (``tasks.run_until_idle``) on a copy of the migrated template, and
keeps the result as a template of its own; every test then gets a fresh copy (database,
BINGAN_HOME with its blobs and indexes, and the audit key), so tests never see each other's
changes. Under pytest-xdist the workers share the template: the first worker to need a
backend builds it under a file lock, the others wait for it and copy.

What the load printed, and which ``demo_loaded`` calls it made, is kept with the template
(``DemoHospital.load``), so tests of the command itself assert on the real load that built it.

Capture draws the page images of one record (``DEMO_PLUGIN_SETTINGS``; ``make demo`` draws
20): the pages and their processing are the same code, and the full drawing is ``make demo``'s
and bench/capture_ingest.py's business.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bingan.hooks import hookimpl
from bingan.testing.db import (
    build_test_runtime, create_pg_database, drop_pg_database, drop_pg_database_soon, make_config,
    pg_url, require_pg,
)

# Plugin settings of the demo runtime (``[plugins.<name>]`` of plugins.toml): page images for
# one demo record instead of twenty.
DEMO_PLUGIN_SETTINGS: dict[str, dict[str, Any]] = {"capture": {"demo_records": 1}}
BUILT = "built.json"


@dataclass(frozen=True)
class DemoLoad:
    """The ``bingan demo load`` that built the template."""

    exit_code: int
    output: str
    # the number of admissions each ``demo_loaded`` call handed to the plugins (recorded by a
    # hook implementation registered for the load)
    demo_loaded: list[int]
    tasks_run: int  # background tasks the load queued, run until none was left


@dataclass
class DemoHospital:
    """A test's own copy of the demo hospital."""

    rt: Any  # bingan.core.runtime.Runtime: every installed plugin enabled
    db_url: str
    home: Path
    load: DemoLoad


def shared_dir(config, tmp_path_factory) -> Path:
    """The folder every process of this test run sees: the run's base temporary folder (under
    pytest-xdist, the controller's, above each worker's own)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if hasattr(config, "workerinput") else base


def demo_runtime(home: Path, db_url: str):
    """A runtime like ``build_test_runtime``'s with the demo's plugin settings."""
    return build_test_runtime(home, db_url, plugin_settings=DEMO_PLUGIN_SETTINGS)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[int] = []

    @hookimpl
    def demo_loaded(self, admissions) -> None:
        self.calls.append(len(admissions))


def _build(where: Path, backend: str, templates: dict, make_runtime: Callable) -> dict:
    """Load the demo into a copy of the migrated template ``templates`` in ``where``."""
    from click.testing import CliRunner

    from bingan.core import tasks
    from bingan.core.cli import Ctx, build_cli
    from bingan.core.runtime import audit_key_path, set_current

    if where.exists():  # a build that failed half-way in this run
        drop_demo_templates(where.parent, backend)
        shutil.rmtree(where)
    where.mkdir(parents=True)
    out: dict[str, Any] = {"backend": backend, "home": str(where / "home"), "pg_name": None}
    if backend == "sqlite":
        path = where / "demo.sqlite3"
        shutil.copyfile(templates["sqlite"], path)
        out["db_url"] = f"sqlite:///{path}"
    else:
        out["pg_name"] = create_pg_database("bingan_demo", templates["pg_template"])
        (where / "pg_name").write_text(out["pg_name"])  # dropped at the end of the run
        out["db_url"] = pg_url(out["pg_name"])
    rt = make_runtime(where / "home", out["db_url"])
    recorder = _Recorder()
    rt.pm.register(recorder, name="bingan-testing-demo-recorder")
    try:
        obj = Ctx()
        obj._rt = rt
        res = CliRunner().invoke(build_cli(rt), ["demo", "load"], obj=obj)
        output = res.output
        if res.exc_info and not isinstance(res.exception, SystemExit):
            output += "".join(traceback.format_exception(*res.exc_info))
        ran = tasks.run_until_idle(rt) if res.exit_code == 0 else 0
        out["audit_key"] = (rt.config.core.audit_key
                            or audit_key_path(rt.config).read_text().strip())
    finally:
        rt.pm.unregister(name="bingan-testing-demo-recorder")
        rt.close()
        set_current(None)
    if backend == "sqlite":
        wal = Path(str(path) + "-wal")
        if wal.exists() and wal.stat().st_size:
            raise RuntimeError(f"{wal} still holds pages after the demo runtime closed")
    out["load"] = {"exit_code": res.exit_code, "output": output,
                   "demo_loaded": recorder.calls, "tasks_run": ran}
    tmp = where / (BUILT + ".tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, where / BUILT)
    return out


def demo_template(root: Path, backend: str, templates: dict,
                  make_runtime: Callable = demo_runtime) -> dict:
    """The demo template of ``backend`` under ``root`` (a folder every worker of the run
    sees), built by the first caller of the run; later callers, in any worker, wait for it."""
    if backend != "sqlite":
        require_pg(templates["pg_template"])
    where = root / f"bingan-demo-{backend}"
    with _locked(root / f"bingan-demo-{backend}.lock"):
        built = where / BUILT
        if built.exists():
            return json.loads(built.read_text())  # type: ignore[no-any-return]
        return _build(where, backend, templates, make_runtime)


def demo_copy(info: dict, dest: Path, make_runtime: Callable = demo_runtime
              ) -> Iterator[DemoHospital]:
    """Generator for a function fixture: a fresh copy of the demo template ``info`` in
    ``dest`` (database, BINGAN_HOME, audit key); yields a ``DemoHospital``."""
    import pytest

    from bingan.core.runtime import audit_key_path, set_current

    if info["load"]["exit_code"] != 0:
        pytest.fail("`bingan demo load` failed when the demo template was built:\n"
                    + info["load"]["output"], pytrace=False)
    home = dest / "demo-home"
    shutil.copytree(info["home"], home, symlinks=True)
    pg_name = None
    if info["pg_name"]:
        pg_name = create_pg_database("bingan_t", info["pg_name"])
        url = pg_url(pg_name)
    else:
        path = dest / "demo.sqlite3"
        shutil.copyfile(info["db_url"].removeprefix("sqlite:///"), path)
        url = f"sqlite:///{path}"
    key = audit_key_path(make_config(home, url))
    key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key.write_text(info["audit_key"])
    key.chmod(0o600)
    rt = make_runtime(home, url)
    try:
        yield DemoHospital(rt=rt, db_url=url, home=home, load=DemoLoad(**info["load"]))
    finally:
        rt.close()
        set_current(None)
        if pg_name:
            drop_pg_database_soon(pg_name)


def drop_demo_templates(root: Path, backend: str = "*") -> None:
    """Drop the PostgreSQL demo templates built under ``root`` (end of the run)."""
    for f in root.glob(f"bingan-demo-{backend}/pg_name"):
        drop_pg_database(f.read_text().strip())
