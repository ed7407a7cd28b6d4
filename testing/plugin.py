"""bingan's pytest plugin (entry point ``pytest11``: loaded wherever bingan is installed), so a
plugin's tests run from its own folder or wheel with core's fixtures:

- ``db_templates`` (session): migrated template databases, one per backend;
- ``db_url``: a fresh, migrated, empty database on SQLite and on PostgreSQL (each test runs
  twice; the PostgreSQL half is skipped without a server, fails under CI);
- ``rt``: a runtime with every installed plugin enabled on that database;
- ``empty_db_url``: a brand-new database without tables, on each backend;
- ``demo_hospital``: a copy of the demo hospital (``bingan demo load`` with every installed
  plugin, its background tasks run), on each backend: one real load per backend per test run,
  shared by the tests and the xdist workers (``bingan.testing.demo``);
- ``cheap_argon2`` (autouse): the production password hash with test-sized cost.

Every runtime the tests build refuses undeclared audit actions (BINGAN_STRICT_AUDIT=1).
Helpers: ``bingan.testing.db`` (runtimes, template copies), ``bingan.testing.demo`` (the
shared demo hospital), ``bingan.testing.web`` (a test client, sign-in, audit events).
"""

from __future__ import annotations

import os

import pytest

from bingan.testing.db import (
    build_test_runtime, create_pg_database, database_copy, drop_pg_database_soon,
    migrated_templates, pg_reachable, pg_url, require_pg, wait_for_drops,
)


def pytest_configure(config) -> None:
    # every runtime the tests build (and every CLI they start) refuses undeclared audit actions
    os.environ["BINGAN_STRICT_AUDIT"] = "1"


def pytest_sessionfinish(session) -> None:
    """Each process waits for its tests' databases to be dropped; the run's last process (the
    xdist controller, or the only one) drops the PostgreSQL demo templates the run built."""
    wait_for_drops()
    factory = getattr(session.config, "_tmp_path_factory", None)
    if hasattr(session.config, "workerinput") or factory is None:
        return
    from bingan.testing.demo import drop_demo_templates, shared_dir

    drop_demo_templates(shared_dir(session.config, factory))


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
    require_pg("postgres" if pg_reachable() else None)
    name = create_pg_database("bingan_e")
    yield pg_url(name)
    drop_pg_database_soon(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def demo_hospital(request, db_templates, tmp_path, tmp_path_factory):
    """A fresh copy of the demo hospital on each backend (``bingan.testing.demo.DemoHospital``:
    ``rt``, ``db_url``, ``home`` and ``load``, what the shared ``demo load`` printed)."""
    from bingan.testing.demo import demo_copy, demo_template, shared_dir

    info = demo_template(shared_dir(request.config, tmp_path_factory), request.param,
                         db_templates)
    yield from demo_copy(info, tmp_path)


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch):
    """Production argon2 parameters cost ~130 ms a hash; tests use the same algorithm, cheaper."""
    from argon2 import PasswordHasher

    from bingan.core import staff as core_staff

    monkeypatch.setattr(core_staff, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                              parallelism=1))
