"""Fixtures of the archive tests: a runtime with only this plugin enabled (so other plugins'
hooks do not run on our pages), records with real JPEG pages made by Pillow at known DPI."""

from __future__ import annotations

import datetime as dt
import io
import random
import shutil
from dataclasses import dataclass, field

import pytest
from PIL import Image, ImageDraw

from bingan.hooks import hookimpl
from bingan.hooks.types import AdmissionIn, PatientIn

UTC = dt.timezone.utc


def make_jpeg(w: int = 240, h: int = 340, color=(230, 230, 220), *, mode: str = "RGB",
              dpi: int | None = None, seed: int = 0, quality: int = 85) -> bytes:
    """A small page-like JPEG: background, a red 'seal', some random 'text' strokes."""
    rnd = random.Random(seed)
    img = Image.new("RGB", (w, h), color)
    d = ImageDraw.Draw(img)
    for _ in range(30):
        x, y = rnd.randrange(10, w - 40), rnd.randrange(10, h - 10)
        d.line([(x, y), (x + rnd.randrange(10, 30), y)], fill=(20, 20, 20), width=2)
    d.ellipse([w - 70, h - 70, w - 20, h - 20], outline=(200, 20, 20), width=3)
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    kw = {"dpi": (dpi, dpi)} if dpi else {}
    img.save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


class Expect:
    """A stand-in capture plan: answers ``expected_pages`` from a dict by admission no."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.calls = 0

    @hookimpl
    def expected_pages(self, session, admission):
        self.calls += 1
        assert session is not None  # the caller's session, so no second connection is needed
        return self.counts.get(admission.admission_no)


class Recorder:
    """Records every ``record_digitized`` call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    @hookimpl
    def record_digitized(self, admission, document_version):
        self.calls.append((admission.admission_no, document_version))


@dataclass
class World:
    """The runtime plus helpers to make records and pages."""

    rt: object
    expect: Expect
    recorder: Recorder
    images: dict[int, bytes] = field(default_factory=dict)  # page id -> JPEG

    def admission(self, mrn: str = "00123456", admission_no: str = "ZY202605000001",
                  visit_no: int = 1, name: str = "张三",
                  discharged: dt.datetime | None = dt.datetime(2026, 5, 3, 2, 0, tzinfo=UTC)) -> int:
        from bingan.core import records

        with self.rt.sessions() as s, s.begin():
            adm, _ = records.upsert_admission(s, self.rt, AdmissionIn(
                patient=PatientIn(mrn=mrn, name=name), admission_no=admission_no,
                visit_no=visit_no, admitted_at=dt.datetime(2026, 4, 20, 1, 0, tzinfo=UTC),
                discharged_at=discharged))
            return adm.id

    def pages(self, admission_id: int, specs: list[dict]) -> list[int]:
        """Add pages: each spec may give page_type, qc_status, dpi, jfif_dpi, w, h, mode."""
        from bingan.core import pages
        from bingan.core.models import Admission

        ids = []
        with self.rt.sessions() as s, s.begin():
            adm = s.get(Admission, admission_id)
            for i, sp in enumerate(specs):
                data = sp.get("data") or make_jpeg(sp.get("w", 240), sp.get("h", 340),
                                                   mode=sp.get("mode", "RGB"),
                                                   dpi=sp.get("jfif_dpi"),
                                                   seed=admission_id * 1000 + len(self.images) + i)
                p = pages.add_page(s, self.rt, adm, pages.NewPage(
                    image=data, original=data, width=sp.get("w", 240), height=sp.get("h", 340),
                    dpi=sp.get("dpi", 150), page_type=sp.get("page_type"),
                    qc_status=sp.get("qc_status", "pass")))
                self.images[p.id] = data
                ids.append(p.id)
        return ids

    def build(self, admission_id: int):
        from bingan_archive import service

        return service.build_one(self.rt, admission_id, created_by="test")


@pytest.fixture
def jpeg():
    """``make_jpeg`` for tests that need image bytes of their own."""
    return make_jpeg


def _runtime(home, db_url):
    from support import build_test_runtime

    return build_test_runtime(home, db_url, enabled=["capture", "archive"])


@pytest.fixture(scope="session")
def archive_templates(tmp_path_factory):
    """Migrated template databases with core and this plugin only, one per backend (so a
    half-written plugin elsewhere in the tree cannot break these tests)."""
    from fixtures_db import migrated_templates

    yield from migrated_templates(tmp_path_factory.mktemp("archive_tpl"), _runtime, "bingan_atpl")


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_db_url(request, archive_templates, tmp_path):
    """A fresh copy of the archive template database on each backend."""
    from fixtures_db import database_copy

    yield from database_copy(archive_templates, request.param, tmp_path, "bingan_at")


def _world(rt, expect=True) -> World:
    w = World(rt, Expect(), Recorder())
    if expect:
        rt.pm.register(w.expect, name="test-expect")
    rt.pm.register(w.recorder, name="test-recorder")
    return w


@pytest.fixture
def world(archive_db_url, tmp_path):
    """Archive-only runtime on each backend."""
    from bingan.core.runtime import set_current

    w = _world(_runtime(tmp_path / "home", archive_db_url))
    yield w
    w.rt.close()
    set_current(None)


def _sqlite_copy(archive_templates, path):
    shutil.copyfile(archive_templates["sqlite"], path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_world(archive_templates, tmp_path):
    """Archive-only runtime on SQLite only (for checks that do not depend on the backend,
    such as the browser test)."""
    from bingan.core.runtime import set_current

    w = _world(_runtime(tmp_path / "home1", _sqlite_copy(archive_templates, tmp_path / "one.db")))
    yield w
    w.rt.close()
    set_current(None)


@pytest.fixture
def other_world(archive_templates, tmp_path):
    """A second hospital system (SQLite) to import bags into. Creating it makes it the current
    runtime: call ``set_current`` to switch (task handlers and hooks use ``current()``)."""
    from bingan.core.runtime import set_current

    w = _world(_runtime(tmp_path / "home2", _sqlite_copy(archive_templates, tmp_path / "two.db")),
               expect=False)
    yield w
    w.rt.close()
    set_current(None)
