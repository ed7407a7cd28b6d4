"""Shared fixtures (imported by the conftest of tests/, plugins/ and integrations/): every test that touches the database runs on SQLite and on PostgreSQL.

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

# Every runtime the tests build (and every CLI they start) refuses undeclared audit actions.
os.environ["BINGAN_STRICT_AUDIT"] = "1"

PG_ADMIN_URL = os.environ.get("BINGAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_admin_engine():
    from bingan.core.db import normalize_url

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


from support import REPO, build_test_runtime, make_config  # noqa: E402,F401


def create_pg_database(prefix: str, template: str | None = None) -> str:
    """A new PostgreSQL database (a copy of ``template`` when given); returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_engine()
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"'
                          + (f' TEMPLATE "{template}"' if template else ""))
    admin.dispose()
    return name


def drop_pg_database(name: str) -> None:
    admin = _pg_admin_engine()
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


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
    if _pg_reachable():
        name = create_pg_database(prefix)
        rt = make_runtime(home, _pg_url(name))
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
    yield _pg_url(name)
    drop_pg_database(name)


@pytest.fixture(scope="session")
def db_templates(tmp_path_factory):
    """Migrated template databases, one per backend."""
    yield from migrated_templates(tmp_path_factory.mktemp("tplhome"), build_test_runtime,
                                  "bingan_tpl")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, db_templates, tmp_path):
    """A freshly migrated, empty database URL on each backend."""
    yield from database_copy(db_templates, request.param, tmp_path, "bingan_t")


@pytest.fixture
def rt(db_url, tmp_path):
    """A runtime (every installed plugin enabled) on a fresh database of each backend."""
    runtime = build_test_runtime(tmp_path / "home", db_url)
    yield runtime
    runtime.close()
    from bingan.core.runtime import set_current

    set_current(None)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request, tmp_path):
    """A brand-new database with no tables, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    require_pg("postgres" if _pg_reachable() else None)
    name = create_pg_database("bingan_e")
    yield _pg_url(name)
    drop_pg_database(name)


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def sample_eps(monkeypatch):
    """Entry points that install the test plugin ``sample`` (tests/fixtures/bingan_sample)."""
    from importlib.metadata import EntryPoint

    monkeypatch.syspath_prepend(str(FIXTURES))
    return [EntryPoint(name="sample", value="bingan_sample", group="bingan")]


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch):
    """Production argon2 parameters cost ~130 ms a hash; tests use the same algorithm, cheaper."""
    from argon2 import PasswordHasher

    from bingan.core import staff as core_staff

    monkeypatch.setattr(core_staff, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                              parallelism=1))
