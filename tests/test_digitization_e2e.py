"""End to end through the digitization line, with the real plugins and no stand-ins: capture
receives real-size scans (A4 at 300 DPI, known skew, a cover sheet naming the record), the
imaging plugin's ``process_page``/``assess_page`` clean and judge them, the archive builds the
PDF and decides the digitized status; a blurred page goes to rework and blocks the record until
it is re-captured; an inspector's rework request blocks it until the clerk closes it.

Runs on SQLite and PostgreSQL (the ``db_url`` fixture). The page index (OCR) is not enabled,
so the archive builds straight from ``pages_captured``.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pikepdf
import pytest
from PIL import Image
from sqlalchemy import select

from bingan.hooks import hookimpl
from bingan.core import tasks
from bingan.core.models import Admission, Page, Task
from bingan.core.pages import current_pages, latest_document
from bingan.core.records import to_ref

ENABLED = ["imaging", "capture", "scan-folder", "qc", "archive"]
SKEWS = (2.5, -1.3, 0.7)  # degrees, counter-clockwise, of the text on the three scans
ANGLE_TOLERANCE = 0.05


class Digitized:
    """Records ``record_digitized`` calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    @hookimpl
    def record_digitized(self, admission, document_version):
        self.calls.append((admission.admission_no, document_version))


@pytest.fixture
def line(db_url, tmp_path):
    """A runtime with the digitization plugins only, on each backend."""
    from bingan.core.runtime import set_current
    from support import build_test_runtime

    rt = build_test_runtime(tmp_path / "home", db_url, enabled=ENABLED)
    rec = Digitized()
    rt.pm.register(rec, name="test-digitized")
    yield rt, rec
    rt.close()
    set_current(None)


def _admission(rt):
    import datetime as dt

    from bingan.hooks.types import AdmissionIn, PatientIn
    from bingan.core import records

    utc = dt.timezone.utc
    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn="00234567", name="王五", sex="F"),
            admission_no="ZY202605000123", visit_no=1,
            admitted_at=dt.datetime(2026, 4, 21, 2, 0, tzinfo=utc),
            discharged_at=dt.datetime(2026, 5, 2, 3, 0, tzinfo=utc),
            discharge_department="心血管内科"))
        return adm.id, adm.admission_no, adm.barcode


def _scan(seed: int, angle: float, blur: str | None = None):
    """A synthetic A4 scan at 300 DPI with the text skewed by ``angle``; a 15 px horizontal
    motion blur when asked (a sheet pulled while the feeder scanned it)."""
    from bingan_imaging import synth

    page = synth.make_page(seed, "scanner", angle=angle, dpi=300)
    if blur == "motion":
        kernel = np.zeros((15, 15), np.float32)
        kernel[7, :] = 1 / 15
        page.image = cv2.filter2D(page.image, -1, kernel)
    assert page.effective_dpi == 300 and page.image.shape[:2] == (3508, 2480)
    return page


@pytest.fixture(scope="module")
def scans():
    """The synthetic scans, drawn once for both backends: three skewed pages, a blurred
    fourth sheet and its sharp re-capture."""
    return {"stack": [_scan(100 + i, a) for i, a in enumerate(SKEWS)],
            "blurred": _scan(200, 1.0, blur="motion"), "redo": _scan(201, -0.9)}


def _scanned_pdf(cover: Image.Image, pages) -> bytes:
    """What a scanner's PDF mode writes: one full-page JPEG per page, 300 DPI page size."""
    ims = [cover.convert("RGB")] + [Image.fromarray(cv2.cvtColor(p.image, cv2.COLOR_BGR2RGB))
                                    for p in pages]
    buf = io.BytesIO()
    ims[0].save(buf, "PDF", resolution=300.0, save_all=True, append_images=ims[1:],
                quality=92)
    return buf.getvalue()


def _receive(rt, data: bytes, name: str, **kw):
    from bingan_capture.ingest import receive

    with rt.sessions() as s, s.begin():
        return receive(s, rt, data, name, "hot_folder", by="R0001", **kw)


def _record(rt, aid):
    from bingan_archive.models import ArchiveRecord

    with rt.sessions() as s:
        rec = s.get(ArchiveRecord, aid)
        s.expunge(rec)
        return rec


def _current(rt, aid) -> list[Page]:
    with rt.sessions() as s:
        pages = current_pages(s, aid)
        for p in pages:
            s.expunge(p)
        return pages


def _assert_cleaned(rt, page: Page, truth) -> None:
    """Stored, cleaned (not the scan), straightened by the true skew, passing QC, 300 DPI."""
    assert page.image_sha256 and page.original_sha256
    assert page.image_sha256 != page.original_sha256
    assert rt.store.get(page.original_sha256) != rt.store.get(page.image_sha256)
    deskew = page.steps["deskew"]
    assert deskew["applied"] is True
    assert abs(deskew["angle"] - truth.angle) <= ANGLE_TOLERANCE, (deskew, truth.angle)
    assert page.steps["dpi"] == 300 and page.steps["dpi_source"] == "declared"
    assert page.qc_status == "pass", page.steps.get("qc_reasons")
    assert page.dpi == 300
    assert page.qc_metrics["sharpness"] > 0.4
    # the processed image is the straightened page: measured again, its text no longer leans
    assert abs(page.qc_metrics["residual_skew"]) < 0.1
    im = Image.open(io.BytesIO(rt.store.get(page.image_sha256)))
    assert im.format == "JPEG" and im.mode == "RGB" and (im.width, im.height) == (
        page.width, page.height)


def _pdf(rt, aid):
    with rt.sessions() as s:
        doc = latest_document(s, aid)
        s.expunge(doc)
    return doc, pikepdf.open(io.BytesIO(rt.store.get(doc.blob_sha256)))


def test_scans_to_digitized_record_and_rework(line, scans):
    from bingan_capture.codes import A4_300, CoverInfo, cover_sheet_image
    from bingan_capture.models import CaptureFrame, CaptureRework
    from bingan_capture.process import close_record_rework

    rt, digitized = line
    aid, admission_no, barcode = _admission(rt)

    # 1. a scanned stack: cover sheet + three skewed pages, the record named only by the cover
    truths = scans["stack"]
    cover = cover_sheet_image(CoverInfo(barcode, "00234567", admission_no, 1, "王五"), A4_300)
    got = _receive(rt, _scanned_pdf(cover, truths), "stack.pdf")
    assert got.frames == 4
    tasks.run_until_idle(rt)
    with rt.sessions() as s:
        frames = list(s.scalars(select(CaptureFrame).order_by(CaptureFrame.idx)))
        assert [f.status for f in frames] == ["cover", "stored", "stored", "stored"]
        assert {f.admission_id for f in frames} == {aid} and all(f.dpi == 300 for f in frames)
    pages = _current(rt, aid)
    assert [p.seq for p in pages] == [1, 2, 3]
    for page, truth in zip(pages, truths):
        _assert_cleaned(rt, page, truth)
    rec = _record(rt, aid)
    assert (rec.status, rec.reason, rec.page_count, rec.document_version) == (
        "digitized", "", 3, 1)
    doc, pdf = _pdf(rt, aid)
    assert (doc.version, doc.page_count, len(pdf.pages)) == (1, 3, 3)
    # the PDF embeds the processed JPEGs as they are stored, drawn at their actual size (300 DPI)
    # on the paper that holds them
    from bingan_archive.pdf import paper_for
    for pdf_page, page in zip(pdf.pages, pages):
        (img,) = list(pdf_page.Resources.XObject.values())
        assert img.read_raw_bytes() == rt.store.get(page.image_sha256)
        (cm,) = [ins for ins in pikepdf.parse_content_stream(pdf_page)
                 if str(ins.operator) == "cm"]
        w_pt, h_pt = (float(v) for v in list(cm.operands)[0:4:3])
        assert (w_pt, h_pt) == (pytest.approx(page.width / 300 * 72, abs=0.01),
                                pytest.approx(page.height / 300 * 72, abs=0.01))
        box = [float(v) for v in pdf_page.mediabox]
        paper = paper_for(w_pt, h_pt)
        assert paper[0] is not None
        assert (box[2] - box[0], box[3] - box[1]) == (pytest.approx(paper[1], abs=0.01),
                                                      pytest.approx(paper[2], abs=0.01))
    assert digitized.calls == [(admission_no, 1)]

    # 2. a fourth sheet, blurred: it is stored, fails QC, goes to rework, blocks the record
    blurred = scans["blurred"]
    _receive(rt, blurred.jpeg(90), "page4.jpg", admission_no=admission_no)
    tasks.run_until_idle(rt)
    p4 = _current(rt, aid)[3]
    assert (p4.seq, p4.qc_status) == (4, "fail")
    assert any("运动模糊" in r for r in p4.steps["qc_reasons"])
    with rt.sessions() as s:
        item = s.scalar(select(CaptureRework).where(CaptureRework.admission_id == aid))
        assert (item.page_id, item.status, item.origin) == (p4.id, "open", "qc")
        item_id, item_reason = item.id, item.reason
    assert "运动模糊" in item_reason
    rec = _record(rt, aid)
    assert (rec.status, rec.digitized_at) == ("failing", None)
    assert rec.reason.startswith(f"第 4 页质检未通过；第 4 页待返工：{item_reason}")
    assert rec.document_version == 2  # the PDF of what is there is kept, not digitized

    # 3. re-captured sharp: the page is replaced, the rework item closes, digitized again
    redo = scans["redo"]
    _receive(rt, redo.jpeg(90), "page4-redo.jpg", replace_page_id=p4.id, rework_id=item_id)
    tasks.run_until_idle(rt)
    pages = _current(rt, aid)
    assert [p.seq for p in pages] == [1, 2, 3, 4] and pages[3].id != p4.id
    _assert_cleaned(rt, pages[3], redo)
    with rt.sessions() as s:
        item = s.get(CaptureRework, item_id)
        assert (item.status, item.new_page_id) == ("done", pages[3].id)
    rec = _record(rt, aid)
    assert (rec.status, rec.reason, rec.page_count, rec.document_version) == (
        "digitized", "", 4, 3)
    doc, pdf = _pdf(rt, aid)
    assert (doc.version, len(pdf.pages)) == (3, 4)
    (img,) = list(pdf.pages[3].Resources.XObject.values())
    assert img.read_raw_bytes() == rt.store.get(pages[3].image_sha256)
    assert digitized.calls == [(admission_no, 1), (admission_no, 3)]

    # 4. acceptance inspection sends the digitized record back as a whole (as the qc plugin
    # does, in its own transaction): no longer digitized, with the reason ...
    with rt.sessions() as s, s.begin():
        ref = to_ref(s.get(Admission, aid))
        (ids,) = rt.pm.hook.request_rework(rt=rt, session=s, admission=ref, page_ids=[],
                                           reason="抽检不合格：缺护理记录", by="Q0001")
    tasks.run_until_idle(rt)
    rec = _record(rt, aid)
    assert (rec.status, rec.reason, rec.digitized_at) == (
        "failing", "整份病案待返工：抽检不合格：缺护理记录", None)
    # ... until the clerk closes the item: digitized again, same PDF (no new version)
    with rt.sessions() as s, s.begin():
        close_record_rework(s, rt, ids[0], by="R0001")
    tasks.run_until_idle(rt)
    rec = _record(rt, aid)
    assert (rec.status, rec.reason, rec.document_version) == ("digitized", "", 3)
    assert digitized.calls[-1] == (admission_no, 3)
    with rt.sessions() as s:
        failed = list(s.scalars(select(Task).where(Task.status != "done")))
    assert failed == []


def test_declared_page_count_holds_back_a_captured_record(line, scans):
    """A capture batch that declares more pages than a record has (its count check, D1) takes
    back the digitized status, also when the record was captured before it joined the batch;
    a newer batch's recount gives it back."""
    import datetime as dt

    from bingan_capture import batches as bt

    rt, _rec = line
    aid, admission_no, _barcode = _admission(rt)
    stack = scans["stack"][:2]
    ims = [Image.fromarray(cv2.cvtColor(p.image, cv2.COLOR_BGR2RGB)) for p in stack]
    buf = io.BytesIO()
    ims[0].save(buf, "PDF", resolution=300.0, save_all=True, append_images=ims[1:], quality=92)
    _receive(rt, buf.getvalue(), "two.pdf", admission_no=admission_no)
    tasks.run_until_idle(rt)
    rec = _record(rt, aid)
    assert (rec.status, rec.page_count, rec.expected_pages) == ("digitized", 2, None)

    with rt.sessions() as s, s.begin():
        bt.create_batch(s, rt, "补录批", dt.date(2026, 5, 4), 10,
                        bt.parse_text(f"{admission_no},3"), by="R0001")
    tasks.run_until_idle(rt)
    rec = _record(rt, aid)
    assert (rec.status, rec.page_count, rec.expected_pages) == ("incomplete", 2, 3)
    assert "已有 2 页，应有 3 页" in rec.reason

    with rt.sessions() as s, s.begin():
        bt.create_batch(s, rt, "复核批", dt.date(2026, 5, 11), 10,
                        bt.parse_text(f"{admission_no},2"), by="R0001")
    tasks.run_until_idle(rt)
    rec = _record(rt, aid)
    assert (rec.status, rec.expected_pages, rec.reason) == ("digitized", 2, "")
