"""Shared fixtures: every test that touches the database runs on SQLite and on PostgreSQL.

Each run migrates one template database per backend (with every installed plugin enabled) and
each test gets a fresh copy: a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on
PostgreSQL. PostgreSQL comes from BINGAN_TEST_PG (default postgresql://postgres@127.0.0.1:5432/
postgres); when it is unreachable the PostgreSQL half is skipped locally and fails under CI.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.config import load_config
from core.plugins import installed_plugins

PG_ADMIN_URL = os.environ.get("BINGAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REPO = Path(__file__).resolve().parents[1]


def _pg_admin_engine():
    from core.db import normalize_url

    return sa.create_engine(normalize_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")


def _pg_reachable() -> bool:
    try:
        eng = _pg_admin_engine()
        with eng.connect() as c:
            c.exec_driver_sql("select 1")
        eng.dispose()
        return True
    except Exception:
        return False


def _pg_url(dbname: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


def make_config(home: Path, db_url: str, enabled: list[str] | None = None, **core_overrides):
    """A Config for tests: repo plugins.toml, our own home and database."""
    env = {"BINGAN_HOME": str(home), "BINGAN_DATABASE_URL": db_url}
    cfg = load_config(REPO / "plugins.toml", env=env)
    if enabled is None:
        enabled = sorted(installed_plugins())
    cfg = cfg.with_enabled(enabled)
    for k, v in core_overrides.items():
        setattr(cfg.core, k, v)
    return cfg


def build_test_runtime(home: Path, db_url: str, enabled: list[str] | None = None, **kw):
    from core.runtime import build_runtime

    return build_runtime(make_config(home, db_url, enabled, **kw))


@pytest.fixture(scope="session")
def _templates(tmp_path_factory):
    """Migrated template databases, one per backend."""
    from core.migrate import upgrade

    out: dict[str, str | None] = {}
    home = tmp_path_factory.mktemp("tplhome")
    sqlite_path = home / "template.sqlite3"
    rt = build_test_runtime(home, f"sqlite:///{sqlite_path}")
    upgrade(rt)
    rt.close()
    out["sqlite"] = str(sqlite_path)
    out["pg_template"] = None
    if _pg_reachable():
        name = f"bingan_tpl_{uuid.uuid4().hex[:10]}"
        admin = _pg_admin_engine()
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        rt = build_test_runtime(home, _pg_url(name))
        upgrade(rt)
        rt.close()
        out["pg_template"] = name
        admin.dispose()
    yield out
    if out["pg_template"]:
        admin = _pg_admin_engine()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{out["pg_template"]}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, _templates, tmp_path):
    """A freshly migrated, empty database URL on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copyfile(_templates["sqlite"], path)
        yield f"sqlite:///{path}"
        return
    if not _templates["pg_template"]:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable at " + PG_ADMIN_URL)
        pytest.skip("PostgreSQL not reachable")
    name = f"bingan_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_engine()
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{_templates["pg_template"]}"')
    yield _pg_url(name)
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def rt(db_url, tmp_path):
    """A runtime (every installed plugin enabled) on a fresh database of each backend."""
    runtime = build_test_runtime(tmp_path / "home", db_url)
    yield runtime
    runtime.close()
    from core.runtime import set_current

    set_current(None)
