"""Databases and runtimes for tests, on SQLite and PostgreSQL.

Each run migrates one template database per backend (with every installed plugin enabled) and
each test gets a fresh copy: a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on
PostgreSQL. PostgreSQL comes from BINGAN_TEST_PG (default postgresql://postgres@127.0.0.1:5432/
postgres); when it is unreachable the PostgreSQL half is skipped locally and fails under CI.
The fixtures over these are in ``bingan.testing.plugin``.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import uuid
import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("BINGAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_admin_engine():
    from bingan.core.db import normalize_url

    return sa.create_engine(normalize_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")


def pg_reachable() -> bool:
    try:
        eng = pg_admin_engine()
        with eng.connect() as c:
            c.exec_driver_sql("select 1")
        eng.dispose()
        return True
    except Exception:
        return False


def pg_url(dbname: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


def make_config(home: Path, db_url: str, enabled: list[str] | None = None, *,
                plugin_settings: dict[str, dict] | None = None, **core_overrides):
    """A Config for tests: the plugins.toml installed with core, our own home and database,
    ``enabled`` plugins (default: every installed one), ``[core]`` settings overridden and
    ``plugin_settings`` (``{name: {key: value}}``, as ``[plugins.<name>]``) merged in."""
    from bingan.core.config import default_config_path, load_config
    from bingan.core.plugins import installed_plugins

    env = {"BINGAN_HOME": str(home), "BINGAN_DATABASE_URL": db_url,
           "BINGAN_KEY_DIR": str(home.parent / "keys")}  # the audit key, outside home
    cfg = load_config(default_config_path(), env=env)
    if enabled is None:
        enabled = sorted(installed_plugins())
    cfg = cfg.with_enabled(enabled)
    for k, v in core_overrides.items():
        setattr(cfg.core, k, v)
    for name, table in (plugin_settings or {}).items():
        cfg.plugin_settings[name] = {**cfg.plugin_settings.get(name, {}), **table}
    return cfg


def build_test_runtime(home: Path, db_url: str, enabled: list[str] | None = None, **kw):
    """A runtime on ``db_url`` (see ``make_config``)."""
    from bingan.core.runtime import build_runtime

    return build_runtime(make_config(home, db_url, enabled, **kw))


def create_pg_database(prefix: str, template: str | None = None) -> str:
    """A new PostgreSQL database (a copy of ``template`` when given); returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = pg_admin_engine()
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"'
                          + (f' TEMPLATE "{template}"' if template else ""))
    admin.dispose()
    return name


def drop_pg_database(name: str) -> None:
    admin = pg_admin_engine()
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


# DROP DATABASE waits for a checkpoint of the whole server: a second or more when other work
# has written much. A test's database is dropped in this process's background thread, while
# the next test runs; the plugin waits for the last drops at the end of the run.
_drops: queue.Queue[str | None] = queue.Queue()
_dropper: threading.Thread | None = None
_dropper_lock = threading.Lock()


def _drop_loop() -> None:
    while (name := _drops.get()) is not None:
        try:
            drop_pg_database(name)
        except Exception as exc:  # noqa: BLE001 - reported at the end, the test has passed
            warnings.warn(f"could not drop test database {name}: {exc}", stacklevel=1)
        finally:
            _drops.task_done()
    _drops.task_done()


def drop_pg_database_soon(name: str) -> None:
    """Drop ``name`` in the background (see ``wait_for_drops``)."""
    global _dropper
    with _dropper_lock:
        if _dropper is None or not _dropper.is_alive():
            _dropper = threading.Thread(target=_drop_loop, name="bingan-test-dropper",
                                        daemon=True)
            _dropper.start()
    _drops.put(name)


def wait_for_drops() -> None:
    """Block until the databases handed to ``drop_pg_database_soon`` are dropped."""
    if _dropper is not None and _dropper.is_alive():
        _drops.join()


def require_pg(template: str | None) -> None:
    """Skip the PostgreSQL half of a test when there is no server (fail under CI)."""
    if not template:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable at " + PG_ADMIN_URL)
        pytest.skip("PostgreSQL not reachable")


def migrated_templates(home: Path, make_runtime, prefix: str):
    """Generator for a session fixture: migrates one template database per backend with the
    runtime ``make_runtime(home, url)`` builds, yields ``{"sqlite": path, "pg_template": name
    or None}``, and drops the PostgreSQL template afterwards."""
    from bingan.core.migrate import upgrade
    from bingan.core.runtime import set_current

    sqlite_path = home / "template.sqlite3"
    out: dict[str, str | None] = {"sqlite": str(sqlite_path), "pg_template": None}
    rt = make_runtime(home, f"sqlite:///{sqlite_path}")
    upgrade(rt)
    rt.close()
    if pg_reachable():
        name = create_pg_database(prefix)
        rt = make_runtime(home, pg_url(name))
        upgrade(rt)
        rt.close()
        out["pg_template"] = name
    set_current(None)
    yield out
    if out["pg_template"]:
        drop_pg_database(out["pg_template"])


def database_copy(templates: dict, backend: str, tmp_path: Path, prefix: str):
    """Generator for a function fixture: a fresh copy of a template database on ``backend``
    (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL); yields its URL."""
    if backend == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copyfile(templates["sqlite"], path)
        yield f"sqlite:///{path}"
        return
    require_pg(templates["pg_template"])
    name = create_pg_database(prefix, templates["pg_template"])
    yield pg_url(name)
    drop_pg_database_soon(name)
