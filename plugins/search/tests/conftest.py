"""Fixtures of the search plugin's tests (core's `rt`, `db_url` ... come from plugins/conftest).

``recs`` gives a test the generated admissions. They are loaded through core's real upsert
once per backend into a data template, which each test then gets a fresh copy of (file copy
on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL), like core's empty templates.
"""

from __future__ import annotations

import copy
import shutil
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import search_testdata  # noqa: E402


@pytest.fixture(scope="session")
def _data_templates(db_templates, tmp_path_factory):
    made: dict[str, tuple[str, list]] = {}
    yield made
    for backend, (where, _) in made.items():
        if backend == "postgresql":
            from fixtures_db import _pg_admin_engine

            admin = _pg_admin_engine()
            with admin.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{where}" WITH (FORCE)')
            admin.dispose()


def _make_template(backend: str, db_templates, tmp_path_factory) -> tuple[str, list]:
    from bingan.core.runtime import set_current
    from fixtures_db import _pg_admin_engine, _pg_url
    from support import build_test_runtime

    home = tmp_path_factory.mktemp("searchdata")
    if backend == "sqlite":
        where = str(home / "data.sqlite3")
        shutil.copyfile(db_templates["sqlite"], where)
        url = f"sqlite:///{where}"
    else:
        where = f"bingan_sdata_{uuid.uuid4().hex[:10]}"
        admin = _pg_admin_engine()
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{where}" TEMPLATE "{db_templates["pg_template"]}"')
        admin.dispose()
        url = _pg_url(where)
    rt = build_test_runtime(home / "home", url)
    try:
        recs = search_testdata.load(rt)
    finally:
        rt.close()
        set_current(None)
    return where, recs


@pytest.fixture
def recs(rt, db_url, _data_templates, db_templates, tmp_path_factory):
    """The generated admissions, loaded through core's upsert (both backends)."""
    from bingan.core.runtime import set_current

    backend = rt.engine.dialect.name
    if backend not in _data_templates:
        _data_templates[backend] = _make_template(backend, db_templates, tmp_path_factory)
        set_current(rt)
    where, data = _data_templates[backend]
    rt.engine.dispose()
    if backend == "sqlite":
        target = db_url.removeprefix("sqlite:///")
        for suffix in ("-wal", "-shm"):
            Path(target + suffix).unlink(missing_ok=True)
        shutil.copyfile(where, target)
    else:
        from fixtures_db import _pg_admin_engine

        name = db_url.rsplit("/", 1)[1]
        admin = _pg_admin_engine()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{where}"')
        admin.dispose()
    return copy.deepcopy(data)


@pytest.fixture
def cli_actor():
    from bingan.core.audit import Actor

    return Actor(staff_no="T001", client_ip="10.1.2.3", computer_name="WS-TEST")
