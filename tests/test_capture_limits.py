"""Page and file limits of capture (issue 9, M5 and M6), with the real imaging plugin.

- M5: one pixel limit per page (``[core] max_page_pixels``): capture refuses a bigger page at
  upload, and imaging refuses the same page, so nothing passes the door only to fail five
  times in the queue. A capture whose processing fails for good says why on its page.
- M6: a PDF is measured at upload, not rendered: a 2.8 KB file of 12 pages of 36 x 36 in
  (each 116 MP at 300 DPI) is refused at once with a clear message; a file whose pages
  together exceed ``max_file_pixels`` too; an accepted PDF is rendered by the processing task,
  one page at a time.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import func, select, update

from bingan.core import tasks
from bingan.core.models import Blob, Task
from bingan.core.records import upsert_admission
from bingan.hooks import hookimpl
from bingan.hooks.types import AdmissionIn, PatientIn
from webutil import login, make_staff, web_client
from bingan_capture.settings import CaptureSettings

UTC = dt.timezone.utc


def _admission(rt) -> str:
    with rt.sessions() as s, s.begin():
        adm, _ = upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn="00880001", name="患者甲"), admission_no="ZY202607000001",
            visit_no=1, admitted_at=dt.datetime(2026, 4, 1, tzinfo=UTC),
            discharged_at=dt.datetime(2026, 4, 9, tzinfo=UTC)))
        return adm.admission_no


def _page(size=(600, 800)) -> Image.Image:
    im = Image.new("RGB", size, (250, 250, 248))
    d = ImageDraw.Draw(im)
    for y in range(40, size[1] - 40, 30):
        d.rectangle((30, y, size[0] - 60, y + 10), fill=(20, 20, 20))
    return im


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, dpi=(300, 300))
    return buf.getvalue()


def _blank_pdf(pages: int, w_in: float, h_in: float) -> bytes:
    """A PDF of empty pages of the given size (a few KB whatever the size)."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument.new()
    for _ in range(pages):
        doc.new_page(w_in * 72, h_in * 72)
    buf = io.BytesIO()
    doc.save(buf)
    doc.close()
    return buf.getvalue()


def _clerk(rt) -> None:
    from bingan.core.models import Role

    make_staff(rt, "K001", ["clerk"])
    with rt.sessions() as s, s.begin():
        s.scalar(select(Role).where(Role.name == "clerk")).permissions = ["capture.operate"]


def _receive(rt, data, name, **kw):
    from bingan_capture.ingest import receive

    with rt.sessions() as s, s.begin():
        return receive(s, rt, data, name, "upload", by="R0001", **kw)


def _stored(rt) -> dict[str, int]:
    from bingan_capture.models import CaptureFile

    with rt.sessions() as s:
        return {"blobs": s.scalar(select(func.count()).select_from(Blob)),
                "captures": s.scalar(select(func.count()).select_from(CaptureFile)),
                "tasks": s.scalar(select(func.count()).select_from(Task))}


def test_one_pixel_limit_for_capture_and_imaging(rt):
    from bingan_capture.ingest import CaptureError
    from bingan_imaging import process_page
    from bingan_imaging.codec import ImageTooLarge

    no = _admission(rt)
    jpg = _jpeg(_page((600, 800)))
    rt.config.core.max_page_pixels = 600 * 800 - 1
    before = _stored(rt)
    with pytest.raises(CaptureError, match="像素过多"):
        _receive(rt, jpg, "big.jpg", admission_no=no)
    assert _stored(rt) == before
    with pytest.raises(ImageTooLarge):  # the same limit inside imaging
        process_page(data=jpg, source="scanner", dpi=300.0, rt=rt, paper=None)
    rt.config.core.max_page_pixels = 600 * 800  # exactly the limit: both take it
    assert process_page(data=jpg, source="scanner", dpi=300.0, rt=rt, paper=None).image
    got = _receive(rt, jpg, "ok.jpg", admission_no=no)
    assert tasks.run_until_idle(rt, kinds=["capture.process"]) == 1
    from bingan_capture.models import CaptureFile

    with rt.sessions() as s:
        assert s.get(CaptureFile, got.capture_id).status == "done"


def test_the_36_inch_pdf_is_refused_at_upload_with_a_clear_message(rt):
    from bingan_capture.ingest import CaptureError

    no = _admission(rt)
    pdf = _blank_pdf(12, 36, 36)
    assert len(pdf) < 4000
    before = _stored(rt)
    with pytest.raises(CaptureError) as err:
        _receive(rt, pdf, "huge.pdf", admission_no=no)
    msg = str(err.value)
    assert "PDF 第 1 页" in msg and "像素过多" in msg and "10800×10800" in msg, msg
    assert _stored(rt) == before
    # over the web: a 400 with the message, nothing stored
    _clerk(rt)
    with web_client(rt) as c:
        assert login(c, "K001").status_code in (302, 303)
        from webutil import csrf_token

        r = c.post("/api/capture/upload", files={"file": ("huge.pdf", pdf, "application/pdf")},
                   data={"admission": no, "_csrf_token": csrf_token(c)})
        assert r.status_code == 400 and "像素过多" in r.json()["detail"], r.text
    assert _stored(rt) == before


def test_total_pixels_of_a_file_are_bounded_before_rendering(rt):
    from bingan_capture.ingest import CaptureError

    no = _admission(rt)
    rt.settings(CaptureSettings).max_file_pixels = 3 * 2550 * 3300  # three Letter pages at 300 DPI
    before = _stored(rt)
    with pytest.raises(CaptureError, match="合计 34 百万像素.*请分成几个文件"):
        _receive(rt, _blank_pdf(4, 8.5, 11), "four.pdf", admission_no=no)
    assert _stored(rt) == before
    # a multi-page TIFF is measured the same way, before any frame is decoded
    frames = [_page((2550, 3300)).convert("L") for _ in range(4)]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:], compression="tiff_lzw")
    with pytest.raises(CaptureError, match="合计"):
        _receive(rt, buf.getvalue(), "four.tif", admission_no=no)
    assert _stored(rt) == before
    got = _receive(rt, _blank_pdf(3, 8.5, 11), "three.pdf", admission_no=no)
    assert got.frames == 3


def test_pdf_pages_are_rendered_by_the_task_one_at_a_time(rt):
    from bingan_capture.models import CaptureFile, CaptureFrame

    no = _admission(rt)
    pdf = io.BytesIO()
    pages = [_page(), _page((800, 600))]
    pages[0].convert("1").save(pdf, "PDF", resolution=150.0, save_all=True,
                               append_images=[pages[1].convert("1")])
    got = _receive(rt, pdf.getvalue(), "two.pdf", admission_no=no)
    with rt.sessions() as s:  # received: measured placeholders, nothing rendered yet
        frames = s.scalars(select(CaptureFrame).where(
            CaptureFrame.capture_id == got.capture_id).order_by(CaptureFrame.idx)).all()
        assert [(f.media_type, f.width, f.height, f.blob_sha256) for f in frames] == [
            ("application/pdf", 1200, 1600, got.sha256), ("application/pdf", 1600, 1200,
                                                          got.sha256)]
    assert tasks.run_until_idle(rt, kinds=["capture.process"]) == 1
    with rt.sessions() as s:
        frames = s.scalars(select(CaptureFrame).where(
            CaptureFrame.capture_id == got.capture_id).order_by(CaptureFrame.idx)).all()
        assert [(f.media_type, f.width, f.height, f.status) for f in frames] == [
            ("image/png", 1200, 1600, "stored"), ("image/png", 1600, 1200, "stored")]
        for f in frames:
            assert Image.open(io.BytesIO(rt.store.get(f.blob_sha256))).size == (f.width,
                                                                                f.height)
        assert s.get(CaptureFile, got.capture_id).status == "done"


class Broken:
    """A page processor that fails: ``RuntimeError`` (worth retrying) or ``ValueError`` (the
    page itself is refused)."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    @hookimpl
    def process_page(self, data, source, dpi):
        raise self.exc


@pytest.mark.parametrize("exc,attempts", [
    (RuntimeError("图像处理服务不可用"), 5),
    (ValueError("图像像素过多"), 1),
])
def test_a_capture_that_fails_for_good_says_why_on_its_page(rt, exc, attempts):
    from bingan_capture.models import CaptureFile

    no = _admission(rt)
    rt.pm.register(Broken(exc), name="test-broken")
    got = _receive(rt, _jpeg(_page()), "a.jpg", admission_no=no)
    for _ in range(6):  # each retry is due at once
        with rt.sessions() as s, s.begin():
            s.execute(update(Task).where(Task.status == "queued").values(
                run_after=dt.datetime(2000, 1, 1, tzinfo=UTC)))
        tasks.run_until_idle(rt, kinds=["capture.process"])
    with rt.sessions() as s:
        task = s.scalar(select(Task).where(Task.kind == "capture.process"))
        cap = s.get(CaptureFile, got.capture_id)
        assert task.attempts == attempts
        assert cap.status == "failed" and str(exc) in cap.error, cap.error
    _clerk(rt)
    with web_client(rt) as c:
        assert login(c, "K001").status_code in (302, 303)
        r = c.get(f"/capture/captures/{got.capture_id}")
        assert r.status_code == 200 and str(exc) in r.text and "失败" in r.text
        assert "处理中" not in r.text
        assert c.get(f"/api/capture/captures/{got.capture_id}").json()["status"] == "failed"
