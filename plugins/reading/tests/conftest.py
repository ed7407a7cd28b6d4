"""Fixtures of the reading plugin's tests; helpers live in reading_world (a unique module name,
so it never collides with another folder's helpers on sys.path).

The matrix hospital (reading_world.build_world) is built once per backend into a template
database and home folder (blobs, keys); each test gets a copy, as fixtures_db does for the
empty schema, so a test starts in ~0.1 s instead of building the world again.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures_db import (  # noqa: E402
    _pg_url, create_pg_database, drop_pg_database, require_pg)
from reading_world import READING_ONLY, World, build_world, make_runtime  # noqa: E402
from bingan_reading.settings import ReadingSettings


def _close(r) -> None:
    from bingan.core.runtime import set_current

    r.close()
    set_current(None)


@pytest.fixture(scope="session")
def world_templates(db_templates, tmp_path_factory):
    """backend -> (database url or PG database name, home folder, World without runtime)."""
    out: dict[str, tuple[str, Path, World]] = {}
    pg_names = []
    from argon2 import PasswordHasher

    from bingan.core import staff as core_staff

    cheap = pytest.MonkeyPatch()  # as fixtures_db.cheap_argon2, for a session fixture
    cheap.setattr(core_staff, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                        parallelism=1))
    for backend in ("sqlite", "postgresql"):
        base = tmp_path_factory.mktemp(f"world-{backend}")
        if backend == "sqlite":
            path = base / "world.sqlite3"
            shutil.copyfile(db_templates["sqlite"], path)
            url, ref = f"sqlite:///{path}", str(path)
        else:
            if not db_templates["pg_template"]:
                continue
            name = create_pg_database("bingan_rw", db_templates["pg_template"])
            pg_names.append(name)
            url, ref = _pg_url(name), name
        r = make_runtime(base / "home", url)
        w = build_world(r)
        _close(r)
        out[backend] = (ref, base / "home", dataclasses.replace(w, rt=None))
    cheap.undo()
    yield out
    for name in pg_names:
        drop_pg_database(name)


@pytest.fixture(scope="session")
def pg_dropper():
    """Drops test databases in the background (a DROP takes ~1 s on a busy server)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-drop")
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, world_templates, tmp_path, pg_dropper):
    """A copy of the matrix hospital on each backend; ``world.rt`` is its runtime."""
    backend = request.param
    if backend not in world_templates:
        require_pg(None)
    ref, home, w = world_templates[backend]
    shutil.copytree(home, tmp_path / "home")
    pg_name = None
    if backend == "sqlite":
        shutil.copyfile(ref, tmp_path / "w.sqlite3")
        url = f"sqlite:///{tmp_path / 'w.sqlite3'}"
    else:
        pg_name = create_pg_database("bingan_rt", ref)
        url = _pg_url(pg_name)
    r = make_runtime(tmp_path / "home", url)
    r.settings(ReadingSettings).approvers = {"*": ["staff:APPR"]}
    yield dataclasses.replace(w, rt=r)
    _close(r)
    if pg_name:
        pg_dropper.submit(drop_pg_database, pg_name)


if READING_ONLY:
    from fixtures_db import migrated_templates

    @pytest.fixture(scope="session")
    def db_templates(tmp_path_factory):
        yield from migrated_templates(tmp_path_factory.mktemp("tplhome"), make_runtime,
                                      "bingan_tpl")

    @pytest.fixture
    def rt(db_url, tmp_path):
        r = make_runtime(tmp_path / "home", db_url)
        yield r
        _close(r)
