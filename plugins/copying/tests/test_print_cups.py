"""A copy printed through a real CUPS queue (cups-pdf backend): the PDF CUPS produced has
every chosen page with the copy stamp on it; the print register row and the audit event
(a print, with IP and computer name); downloads are registered too; refusals are audited."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pikepdf
import pytest
from PIL import Image
from sqlalchemy import select

from bingan.core import audit
from bingan.core.models import AuditEvent

from bingan_copying import printing, service
from bingan_copying.models import PrintJob
from bingan_copying.stamp import StampText, stamp_box, stamp_image, stamp_lines
from copy_world import A1, A2, PASSWORD, id_card_jpeg
from cups_queue import ensure_queue, job_pdf
from webutil import csrf_token, login, web_client
from bingan_copying.settings import CopyingSettings
from bingan.core.config import CoreSettings

CN = dt.timezone(dt.timedelta(hours=8))


def _register(world, pages, copies=2, **kw) -> str:
    rt = world.rt
    with rt.sessions() as s, s.begin():
        return service.register(s, rt, world.staff("REC1"), audit.Actor(staff_no="REC1"),
                                service.RequestIn(
                                    applicant_type="patient", applicant_name="王小明",
                                    purpose="litigation", admission_nos=kw.pop("adms", [A1]),
                                    page_ids=pages, copies=copies, consent=True,
                                    documents=[service.DocumentIn("patient_id", "upload",
                                                                  id_card_jpeg())], **kw)
                                ).request_no


def red_mask(img: Image.Image) -> np.ndarray:
    a = np.asarray(img.convert("RGB")).astype(int)
    return (a[..., 0] > 150) & (a[..., 1] < 110) & (a[..., 2] < 110)


def assert_stamped(pdf_path_or_bytes, n_pages: int, text: StampText, stamp_settings) -> None:
    """Render every page (pdfium) and compare the red ink in the stamp's box with the stamp
    image of this request: most of the stamp's ink is there, and no red anywhere else."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf_path_or_bytes)
    assert len(doc) == n_pages
    stamp = stamp_image(text, stamp_settings)
    for i in range(len(doc)):
        page = doc[i]
        pw, ph = page.get_size()
        img = page.render(scale=150 / 72).to_pil()
        sx, sy, sw, sh = stamp_box(pw, ph, stamp.width, stamp.height, stamp_settings.width_share)
        k = img.width / pw
        box = (round(sx * k), round((ph - sy - sh) * k), round((sx + sw) * k), round((ph - sy) * k))
        got = red_mask(img)
        want = np.asarray(stamp.getchannel("A").resize((box[2] - box[0], box[3] - box[1]))) > 100
        region = got[box[1]:box[3], box[0]:box[2]]
        both = (region & want).sum()
        assert both / want.sum() > 0.6, f"page {i + 1}: stamp ink found {both / want.sum():.2f}"
        outside = got.sum() - region.sum()
        assert outside < 0.001 * got.size, f"page {i + 1}: red ink outside the stamp"


def test_stamp_lines_name_everything():
    class S:
        title, text = "病案复印专用", "与原件相符"

    lines = [t for t, _, _ in stamp_lines(StampText("示例医院", "王小明", "FY202612070001",
                                                    dt.date(2026, 12, 7)), S)]
    assert lines == ["病案复印专用", "示例医院", "与原件相符", "申请人：王小明", "编号：FY202612070001",
                     "2026年12月07日"]


def test_download_embeds_pages_unchanged_with_stamp(world):
    rt = world.rt
    pages = world.page_ids(A1)[:4]
    no = _register(world, pages)
    pdf, job = printing.download_copy(rt, no, world.staff("REC1"),
                                      audit.Actor("REC1", "10.0.0.9", "BLS-01"))
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        assert len(doc.pages) == 4
        for pid, pg in zip(pages, doc.pages):
            xo = pg.Resources.XObject
            assert xo.Pg.Filter == pikepdf.Name.DCTDecode
            with rt.sessions() as s:
                from bingan.core.models import Page

                stored = rt.store.get(s.get(Page, pid).image_sha256)
            assert xo.Pg.read_raw_bytes() == stored  # never re-encoded
            assert "/Stamp" in xo.keys()
    text = StampText(rt.settings(CoreSettings).hospital_name, "王小明", no, dt.datetime.now(CN).date())
    assert_stamped(pdf, 4, text, rt.settings(CopyingSettings).stamp)
    assert job.printer == "download" and job.ok and job.pages == 4 and job.copies == 2
    with rt.sessions() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "copying.download")).one()
        assert (ev.client_ip, ev.computer_name, ev.mrn) == ("10.0.0.9", "BLS-01", "00800001")
        # the pages were read under the viewer's decision, audited as access.print
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "access.print",
                                                  AuditEvent.outcome == "allow")).first()


@pytest.fixture
def queue():
    return ensure_queue()


def test_print_through_cups_pdf_over_http(world, queue):
    rt = world.rt
    rt.config.core.trusted_launchers = ["10.1.2.3"]
    pages = world.page_ids(A1)[:3] + world.page_ids(A2)[:2]
    no = _register(world, pages, adms=[A1, A2])
    with web_client(rt, peer="10.1.2.3") as c:
        assert login(c, "REC1", PASSWORD).status_code in (302, 303)
        r = c.get(f"/copying/requests/{no}")
        assert queue in r.text
        r = c.post(f"/copying/requests/{no}/print",
                   data={"_csrf_token": csrf_token(c), "printer": queue},
                   headers={"X-Bingan-Computer": "BLS-COUNTER-01"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        assert "msg=" in r.headers["location"], r.headers["location"]
    with rt.sessions() as s:
        job = s.scalars(select(PrintJob)).one()
        assert job.ok and job.printer == queue and job.cups_job.startswith(queue + "-")
        assert (job.pages, job.copies) == (5, 2)
        assert (job.client_ip, job.computer_name) == ("10.1.2.3", "BLS-COUNTER-01")
        assert job.content["admissions"] == [A1, A2]
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "copying.print")).one()
        assert ev.outcome == "ok" and ev.staff_no == "REC1" and ev.mrn == "00800001"
        assert (ev.client_ip, ev.computer_name) == ("10.1.2.3", "BLS-COUNTER-01")
        assert f'"cups_job": "{job.cups_job}"' in ev.detail and '"copies": 2' in ev.detail
        assert service.get_request(s, no).status == "printed"
        cups_job = job.cups_job
    out = job_pdf(cups_job)
    text = StampText(rt.settings(CoreSettings).hospital_name, "王小明", no, dt.datetime.now(CN).date())
    # cups-pdf prints one copy into its file (copies are the printer's business: -n 2 is in
    # the job's attributes)
    assert_stamped(str(out), 5, text, rt.settings(CopyingSettings).stamp)


def test_failed_print_is_registered_and_audited(world, queue):
    rt = world.rt
    no = _register(world, world.page_ids(A1)[:1], copies=1)
    job = printing.print_copy(rt, no, world.staff("REC1"), audit.Actor("REC1", "10.0.0.9"),
                              "no-such-queue")
    assert not job.ok and job.result
    with rt.sessions() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "copying.print")).one()
        assert ev.outcome == "failed"
        assert service.get_request(s, no).status == "registered"


def test_physician_cannot_print(world):
    rt = world.rt
    no = _register(world, world.page_ids(A1)[:1], copies=1)
    with pytest.raises(printing.PrintRefused):
        printing.print_copy(rt, no, world.staff("PHY1"), audit.Actor("PHY1"), "x")
    with web_client(rt) as c:
        login(c, "PHY1", PASSWORD)
        assert c.get(f"/copying/requests/{no}/copy.pdf").status_code == 403
    with rt.sessions() as s:
        assert not s.scalars(select(PrintJob)).all()
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "copying.print")).one()
        assert ev.outcome == "denied" and ev.staff_no == "PHY1"
