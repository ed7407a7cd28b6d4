"""Fixtures for the pageindex tests: a runtime whose OCR uses the float models (the 8-bit ones
are built once per machine, which would cost a fresh CI run half a minute; bench/ocr.py and
test_quantize cover them), records with generated pages, a plugin that records index_record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import SimpleNamespace

import msgspec
import pytest

UTC = dt.timezone.utc


@pytest.fixture
def pirt(rt):
    """``rt`` with pageindex settings for tests (float OCR models)."""
    lp = rt.pm.loaded["pageindex"]
    rt.pm.loaded["pageindex"] = dataclasses.replace(
        lp, settings=msgspec.structs.replace(lp.settings, int8=False))
    return rt


@pytest.fixture
def spy(pirt):
    """A plugin module registered on rt.pm whose index_record records every call."""
    import types

    from bingan.hooks import hookimpl

    mod = types.ModuleType("bingan_test_index_spy")
    mod.calls = []

    @hookimpl
    def index_record(admission, pages):
        mod.calls.append((admission, list(pages)))

    mod.index_record = index_record
    pirt.pm.register(mod, name="test-index-spy")
    yield mod
    pirt.pm.unregister(name="test-index-spy")


@pytest.fixture
def make_record(pirt):
    """make_record(admission_no, [(seed, page_type[, make_page kwargs]), ...]) ->
    namespace(id, mrn, admission_no, page_ids, synth)."""
    from bingan.hooks.types import AdmissionIn, PatientIn
    from bingan.core import pages, records
    from bingan.core.models import Admission

    from bingan_pageindex.synth import make_page

    counter = iter(range(1, 1000))

    def _make(admission_no: str, specs, *, mrn: str | None = None, dpi: int = 150,
              lines: int = 3):
        mrn = mrn or f"0060{next(counter):04d}"
        made = []
        with pirt.sessions() as s, s.begin():
            adm, _ = records.upsert_admission(s, pirt, AdmissionIn(
                patient=PatientIn(mrn=mrn, name="测试患者", sex="F"),
                admission_no=admission_no, visit_no=1,
                admitted_at=dt.datetime(2026, 5, 1, 2, 0, tzinfo=UTC),
                discharged_at=dt.datetime(2026, 5, 9, 2, 0, tzinfo=UTC),
                discharge_department="普外科"))
            ids = []
            for seed, kind, *extra in specs:
                sp = make_page(seed, kind, dpi=dpi, max_lines=lines, noise=False,
                               **(extra[0] if extra else {}))
                made.append(sp)
                p = pages.add_page(s, pirt, s.get(Admission, adm.id), pages.NewPage(
                    image=sp.jpeg(90), width=sp.image.width, height=sp.image.height, dpi=dpi))
                ids.append(p.id)
            return SimpleNamespace(id=adm.id, mrn=mrn, admission_no=admission_no,
                                   page_ids=ids, synth=made)

    return _make


def run_ocr(rt) -> int:
    from bingan.core.tasks import run_until_idle

    return run_until_idle(rt, kinds=["pageindex.ocr"])


@pytest.fixture
def ocr_all():
    return run_ocr


def captured(rt, rec):
    """What capture does after committing pages: call pages_captured."""
    from bingan.core.records import to_ref
    from bingan.core.models import Admission

    with rt.sessions() as s:
        ref = to_ref(s.get(Admission, rec.id))
    rt.pm.hook.pages_captured(rt=rt, admission=ref, page_ids=list(rec.page_ids))


@pytest.fixture
def capture():
    return captured
