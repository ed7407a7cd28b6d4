"""Production staff see a record's pages only while it is in their work (issue 9, M7).

One record in each state (none, being captured, in rework, in an open QC sample, awaiting
page-index correction), and every production route that shows page images or OCR text
(capture, QC, page index; pages, forms, JSON API) asked about each, on both databases:

- in the route's work: the page as stored (200), the form, the OCR text;
- otherwise: a form or API answers 403 and shows nothing of the record's pages; a page image
  answers 303 to the viewer's copy, which applies the reading policy (403 without a right) and
  burns in the reader's watermark (with a grant: a 200 whose bytes are not the stored ones).
Every refusal is audited.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from bingan.core.grants import create_grant
from bingan.core.models import AuditEvent, Role, utcnow
from bingan.core.pages import NewPage, add_page
from bingan.core.records import upsert_admission
from bingan.core.staff import ensure_builtin_roles
from bingan.hooks.types import AdmissionIn, PatientIn
from webutil import login, make_staff, post_form, web_client
from bingan_capture.settings import CaptureSettings

UTC = dt.timezone.utc
OCR = "血压一百三十毫米汞柱"
STATES = ("none", "capture", "rework", "qc_sample", "pageindex")


def _jpeg(i: int) -> bytes:
    im = Image.new("L", (300, 420), 250)
    ImageDraw.Draw(im).rectangle((20, 20 + i, 200, 60 + i), fill=20)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def world(rt):
    """Five records, one per state; a clerk, an inspector, a corrector, a physician."""
    from bingan_capture.models import (
        CaptureBatch, CaptureBatchItem, CaptureFile, CaptureFrame, CaptureRework,
    )
    from bingan_pageindex.models import PageText, RecordState
    from bingan_qc.models import QcSample, QcSampleItem

    out = {}
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        perms = {"clerk": ["capture.operate"], "qc": ["qc.inspect"]}
        for role in s.scalars(select(Role).where(Role.name.in_(perms))):
            role.permissions = perms[role.name]
        s.add(Role(name="indexer", label="索引员", permissions=["pageindex.correct"]))
        closed = CaptureBatch(name="已结束批次", start_date=dt.date(2026, 5, 1), status="closed")
        open_ = CaptureBatch(name="采集中批次", start_date=dt.date(2026, 5, 1), status="open")
        s.add_all([closed, open_])
        s.flush()
        done = QcSample(batch_id=closed.id, batch_name=closed.name, seed=1, rate=0.05,
                        population=1, size=1)
        running = QcSample(batch_id=open_.id, batch_name=open_.name, seed=2, rate=0.05,
                           population=2, size=2)
        s.add_all([done, running])
        s.flush()
        for i, state in enumerate(STATES):
            adm, _ = upsert_admission(s, rt, AdmissionIn(
                patient=PatientIn(mrn=f"{770000 + i:08d}", name=f"患者{i}"),
                admission_no=f"ZY20260700{i:04d}", visit_no=1,
                admitted_at=dt.datetime(2026, 4, 1, tzinfo=UTC),
                discharged_at=dt.datetime(2026, 4, 9, tzinfo=UTC)))
            pg = add_page(s, rt, adm, NewPage(image=_jpeg(i), original=_jpeg(i)))
            s.add(PageText(page_id=pg.id, admission_id=adm.id, image_sha256=pg.image_sha256,
                           text=OCR, blocks=[], engine="test"))
            # every record was captured once (a stored frame) and was once in a closed batch,
            # in an accepted sample and indexed: history, not work
            cap = CaptureFile(dedupe_key=f"k{i}", sha256=pg.image_sha256, filename="a.jpg",
                              source="upload", media_type="image/jpeg", size=1, frames=1,
                              admission_id=adm.id, status="done",
                              received_at=utcnow() - dt.timedelta(days=3))
            s.add(cap)
            s.flush()
            frame = CaptureFrame(capture_id=cap.id, idx=0, blob_sha256=pg.image_sha256,
                                 media_type="image/jpeg", width=300, height=420,
                                 status="stored", admission_id=adm.id, page_id=pg.id)
            s.add_all([frame, CaptureBatchItem(batch_id=closed.id, admission_id=adm.id,
                                               expected_pages=1),
                       QcSampleItem(sample_id=done.id, admission_id=adm.id, status="passed"),
                       RecordState(admission_id=adm.id, status="indexed", pages=1)])
            s.flush()
            if state == "capture":
                s.add(CaptureBatchItem(batch_id=open_.id, admission_id=adm.id,
                                       expected_pages=1))
            elif state == "rework":
                s.add(CaptureRework(admission_id=adm.id, page_id=pg.id, reason="模糊",
                                    origin="qc"))
            elif state == "qc_sample":
                s.add(QcSampleItem(sample_id=running.id, admission_id=adm.id,
                                   status="pending"))
            elif state == "pageindex":
                s.get(RecordState, adm.id).status = "needs_correction"
            s.flush()
            items = {it.sample_id: it.id for it in s.scalars(select(QcSampleItem).where(
                QcSampleItem.admission_id == adm.id))}
            out[state] = {"no": adm.admission_no, "page": pg.id, "frame": frame.id,
                          "item": items.get(running.id, items[done.id]),
                          "stored": rt.store.get(pg.image_sha256)}
    make_staff(rt, "K001", ["clerk"])
    make_staff(rt, "Q001", ["qc"])
    make_staff(rt, "I001", ["indexer"])
    return out


# route -> (who, the work in which it shows the record, how to ask)
IMAGES = {
    "capture.page": ("K001", {"capture", "rework"}, "/capture/pages/{page}/image?size=thumb"),
    "capture.frame": ("K001", {"capture", "rework"}, "/capture/frames/{frame}/image"),
    "qc.page": ("Q001", {"qc_sample", "capture", "rework"}, "/qc/pages/{page}/image"),
    "pageindex.page": ("I001", {"pageindex"}, "/pageindex/pages/{page}/image?w=200"),
}
FORMS = {
    "qc.item": ("Q001", {"qc_sample", "capture", "rework"}, "GET", "/qc/items/{item}"),
    "qc.item.submit": ("Q001", {"qc_sample", "capture", "rework"}, "POST",
                       "/qc/items/{item}"),
    "qc.spot": ("Q001", {"qc_sample", "capture", "rework"}, "GET", "/qc/spot?admission={no}"),
    "qc.spot.submit": ("Q001", {"qc_sample", "capture", "rework"}, "POST", "/qc/spot/{no}"),
    "pageindex.record": ("I001", {"pageindex"}, "GET", "/pageindex/records/{no}"),
    "pageindex.save": ("I001", {"pageindex"}, "POST", "/pageindex/records/{no}"),
    "pageindex.api": ("I001", {"pageindex"}, "GET", "/api/pageindex/records/{no}"),
}


def _denials(rt) -> int:
    with rt.sessions() as s:
        return len(s.scalars(select(AuditEvent).where(AuditEvent.outcome == "denied")).all())


@pytest.mark.parametrize("route", sorted(IMAGES))
def test_page_images_only_in_work_else_through_the_viewer(rt, world, route):
    who, works, url = IMAGES[route]
    with web_client(rt) as c:
        assert login(c, who).status_code in (302, 303)
        for state, rec in world.items():
            before = _denials(rt)
            r = c.get(url.format(**rec), follow_redirects=False)
            if state in works:
                assert r.status_code == 200, (route, state, r.text)
                assert r.headers["content-type"] == "image/jpeg"
                continue
            assert r.status_code == 303, (route, state, r.status_code)
            loc = r.headers["location"]
            assert loc.startswith(f"/records/{rec['no']}/pages/{rec['page']}.jpg"), loc
            assert _denials(rt) == before + 1
            # the viewer applies the reading policy: no right, no page
            assert c.get(loc).status_code == 403
        # with a reading grant the viewer serves the page, watermarked (not the stored bytes)
        rec = world["none"]
        with rt.sessions() as s, s.begin():
            create_grant(s, rt, staff_no=who, actions=["view"], admission_no=rec["no"],
                         deadline=utcnow() + dt.timedelta(hours=1), reason="复印登记")
        r = c.get(url.format(**rec))
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert str(r.url.path) == f"/records/{rec['no']}/pages/{rec['page']}.jpg"
        assert r.content != rec["stored"]


@pytest.mark.parametrize("route", sorted(FORMS))
def test_forms_and_ocr_text_only_in_work(rt, world, route):
    who, works, method, url = FORMS[route]
    with web_client(rt) as c:
        assert login(c, who).status_code in (302, 303)
        for state, rec in world.items():
            before = _denials(rt)
            if method == "GET":
                r = c.get(url.format(**rec), follow_redirects=False)
            else:  # an empty verdict / order: refused for being out of work, or for the input
                r = post_form(c, url.format(**rec), {"order": str(rec["page"])})
            if state in works:
                assert r.status_code != 403, (route, state, r.text[:300])
                if route.startswith("pageindex") and method == "GET":
                    assert OCR in r.text
                continue
            assert r.status_code == 403, (route, state, r.status_code)
            assert OCR not in r.text and f"/pages/{rec['page']}/image" not in r.text
            assert "不在" in r.text
            assert _denials(rt) == before + 1


def test_hook_record_work(rt, world):
    from bingan.core.models import Admission
    from bingan.core.work import record_work

    with rt.sessions() as s:
        got = {state: record_work(s, rt, s.scalar(select(Admission).where(
            Admission.admission_no == rec["no"]))) for state, rec in world.items()}
    assert got == {"none": set(), "capture": {"capture"}, "rework": {"rework"},
                   "qc_sample": {"qc_sample"}, "pageindex": {"pageindex"}}


def test_a_fresh_capture_is_capture_work_for_work_hours(rt, world):
    from bingan_capture.models import CaptureFile

    from bingan.core.models import Admission
    from bingan.core.work import record_work

    with rt.sessions() as s, s.begin():
        adm = s.scalar(select(Admission).where(Admission.admission_no == world["none"]["no"]))
        cap = s.scalar(select(CaptureFile).where(CaptureFile.admission_id == adm.id))
        cap.received_at = utcnow() - dt.timedelta(hours=23)
        s.flush()
        assert record_work(s, rt, adm) == {"capture"}
        rt.settings(CaptureSettings).work_hours = 22
        assert record_work(s, rt, adm) == set()
