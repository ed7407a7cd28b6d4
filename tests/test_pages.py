"""Pages and document versions through the core API."""

from __future__ import annotations

import datetime as dt

import pytest

from bingan.hooks.types import AdmissionIn, PatientIn
from bingan.core import pages, records

UTC = dt.timezone.utc


@pytest.fixture
def adm_id(rt):
    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn="00500001", name="赵六"), admission_no="ZY202605000001",
            visit_no=1, admitted_at=dt.datetime(2026, 5, 1, tzinfo=UTC)))
        return adm.id


def _np(tag: bytes, **kw):
    return pages.NewPage(image=b"\xff\xd8jpeg" + tag, original=b"orig" + tag, **kw)


def test_add_insert_replace_reorder(rt, adm_id):
    from bingan.core.models import Admission

    with rt.sessions() as s, s.begin():
        adm = s.get(Admission, adm_id)
        p1 = pages.add_page(s, rt, adm, _np(b"1", page_type="病案首页"))
        p2 = pages.add_page(s, rt, adm, _np(b"2"))
        p0 = pages.add_page(s, rt, adm, _np(b"0"), seq=1)  # inserted in front
        assert [p.id for p in pages.current_pages(s, adm_id)] == [p0.id, p1.id, p2.id]
        new1 = pages.replace_page(s, rt, p1.id, _np(b"1b", qc_status="pass"))
        cur = pages.current_pages(s, adm_id)
        assert [p.id for p in cur] == [p0.id, new1.id, p2.id]
        assert new1.page_type == "病案首页"  # kept from the page it replaced
        assert [p.id for p in pages.page_history(s, new1.id)] == [p1.id, new1.id]
        with pytest.raises(pages.PageError):
            pages.replace_page(s, rt, p1.id, _np(b"x"))  # already replaced
        pages.reorder(s, adm_id, [p2.id, p0.id, new1.id])
        assert [p.id for p in pages.current_pages(s, adm_id)] == [p2.id, p0.id, new1.id]
        with pytest.raises(pages.PageError):
            pages.reorder(s, adm_id, [p2.id, p0.id])
    assert rt.store.get(new1.image_sha256) == b"\xff\xd8jpeg1b"
    assert rt.store.get(p1.original_sha256) == b"orig1"


def test_document_versions(rt, adm_id):
    from bingan.core.models import Admission

    with rt.sessions() as s, s.begin():
        adm = s.get(Admission, adm_id)
        d1 = pages.add_document(s, rt, adm, b"%PDF-1.7 v1", 3)
        d2 = pages.add_document(s, rt, adm, b"%PDF-1.7 v2", 4, note="补充页")
        assert (d1.version, d2.version) == (1, 2)
        assert pages.latest_document(s, adm_id).id == d2.id
    assert rt.store.get(d1.blob_sha256) == b"%PDF-1.7 v1"
