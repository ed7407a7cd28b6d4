"""The admission PDF: structure checked with pikepdf, qpdf --check, versions."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess

import pikepdf
import pytest
from PIL import Image
from sqlalchemy import select

from bingan_archive.pdf import (
    PdfBuildError, bookmark_runs, effective_dpi, jpeg_info, page_size_points, paper_for,
)

SPECS = [
    {"page_type": "病案首页", "dpi": 150},
    {"page_type": "出院记录", "dpi": 300, "w": 300, "h": 420},
    {"page_type": "出院记录", "dpi": 150, "mode": "L"},
    {"page_type": "入院记录", "dpi": None, "jfif_dpi": 200},  # size from the JPEG header
    {"page_type": None, "dpi": None},  # neither: the default 300 DPI
    {"page_type": "出院记录", "dpi": 150},  # a second run of the same type
]


def _doc_bytes(w, admission_id, version=None):
    from bingan.core import pages
    from bingan.core.models import Document

    with w.rt.sessions() as s:
        if version is None:
            doc = pages.latest_document(s, admission_id)
        else:
            doc = s.scalar(select(Document).where(Document.admission_id == admission_id,
                                                  Document.version == version))
        return doc, w.rt.store.get(doc.blob_sha256)


def _qpdf_check(path):
    exe = shutil.which("qpdf")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("qpdf is not installed (apt-get install qpdf)")
        pytest.skip("qpdf is not installed here (apt-get install qpdf); CI requires it")
    res = subprocess.run([exe, "--check", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "No syntax or stream encoding errors found" in res.stdout
    return res.stdout


def test_pdf_structure(world, tmp_path):
    aid = world.admission()
    ids = world.pages(aid, SPECS)
    out = world.build(aid)
    assert out.status == "digitized" and out.document_version == 1 and out.built
    doc, data = _doc_bytes(world, aid)
    assert doc.page_count == len(SPECS) and doc.size == len(data)
    assert hashlib.sha256(data).hexdigest() == doc.blob_sha256

    pdf = pikepdf.open(io.BytesIO(data))
    assert pdf.pdf_version == "1.7"
    assert len(pdf.trailer.ID) == 2 and len(bytes(pdf.trailer.ID[0])) == 16
    assert len(pdf.pages) == len(SPECS)
    expected_sizes = [(240 * 72 / 150, 340 * 72 / 150), (300 * 72 / 300, 420 * 72 / 300),
                      (240 * 72 / 150, 340 * 72 / 150), (240 * 72 / 200, 340 * 72 / 200),
                      (240 * 72 / 300, 340 * 72 / 300), (240 * 72 / 150, 340 * 72 / 150)]
    a5 = (148 * 72 / 25.4, 210 * 72 / 25.4)
    for page, pid, (ew, eh), spec in zip(pdf.pages, ids, expected_sizes, SPECS):
        # the page is the paper (these small test images all fit on A5), the image is drawn
        # at its actual size in the middle
        box = [float(x) for x in page.MediaBox]
        assert box[:2] == [0, 0]
        assert box[2] == pytest.approx(a5[0], abs=1e-3)
        assert box[3] == pytest.approx(a5[1], abs=1e-3)
        cm = page.Contents.read_bytes().decode().split()
        w, _, _, h, x, y = (float(v) for v in cm[1:7])
        assert w == pytest.approx(ew, abs=1e-3) and h == pytest.approx(eh, abs=1e-3)
        assert x == pytest.approx((a5[0] - ew) / 2, abs=1e-3)
        assert y == pytest.approx((a5[1] - eh) / 2, abs=1e-3)
        images = list(page.Resources.XObject.values())
        assert len(images) == 1
        img = images[0]
        assert img.Filter == pikepdf.Name.DCTDecode
        # the stored JPEG, byte for byte: never decoded, never re-encoded
        assert img.read_raw_bytes() == world.images[pid]
        assert (int(img.Width), int(img.Height)) == Image.open(io.BytesIO(world.images[pid])).size
        cs = pikepdf.Name.DeviceGray if spec.get("mode") == "L" else pikepdf.Name.DeviceRGB
        assert img.ColorSpace == cs

    with pdf.open_outline() as outline:
        items = [(o.title, pdf.pages.index(pikepdf.Page(o.destination[0])))
                 for o in outline.root]
    assert items == [("病案首页", 0), ("出院记录", 1), ("入院记录", 3), ("未分类", 4),
                     ("出院记录", 5)]
    assert pdf.Root.PageMode == pikepdf.Name.UseOutlines

    info = pdf.docinfo
    assert str(info.MRN) == "00123456" and str(info.AdmissionNo) == "ZY202605000001"
    assert str(info.PageCount) == "6" and str(info.DischargeDate) == "2026-05-03"
    assert str(info.VisitNo) == "1"
    assert "张三" in str(info.Title) and "00123456" in str(info.Title)
    assert str(info.Producer).startswith("bingan-archive ")
    assert "出院日期 2026-05-03" in str(info.Subject)

    with pdf.open_metadata() as meta:
        assert meta["pdfaid:part"] == "2" and meta["pdfaid:conformance"] == "B"
        assert meta["dc:title"] == str(info.Title)
        assert meta["pdf:Producer"] == str(info.Producer)
        assert meta["{http://bingan.invalid/ns/record/1.0/}mrn"] == "00123456"
        assert meta["{http://bingan.invalid/ns/record/1.0/}pageCount"] == "6"
    assert "/Filter" not in pdf.Root.Metadata  # PDF/A: the XMP stays readable as it is
    xmp = pdf.Root.Metadata.read_bytes().decode()
    assert "pdfaExtension:schemas" in xmp and "<pdfaSchema:prefix>bingan<" in xmp

    (oi,) = list(pdf.Root.OutputIntents)
    assert oi.S == pikepdf.Name.GTS_PDFA1
    icc = oi.DestOutputProfile.read_bytes()
    assert icc[36:40] == b"acsp" and icc[12:16] == b"mntr" and icc[16:20] == b"RGB "
    assert int(oi.DestOutputProfile.N) == 3
    assert pdf.check_pdf_syntax() == []

    path = tmp_path / "record.pdf"
    path.write_bytes(data)
    _qpdf_check(path)


def test_same_content_keeps_version_supplement_adds_one(world, jpeg):
    aid = world.admission()
    world.pages(aid, SPECS[:2])
    first = world.build(aid)
    assert first.built and first.document_version == 1
    again = world.build(aid)  # nothing changed: no new version
    assert not again.built and again.document_version == 1
    doc1, bytes1 = _doc_bytes(world, aid, 1)

    world.pages(aid, [{"page_type": "护理记录", "dpi": 150}])  # a supplementary page
    sup = world.build(aid)
    assert sup.built and sup.document_version == 2 and sup.status == "digitized"
    doc2, bytes2 = _doc_bytes(world, aid, 2)
    assert doc2.page_count == 3 and len(pikepdf.open(io.BytesIO(bytes2)).pages) == 3
    # the old version stays, unchanged
    doc1b, bytes1b = _doc_bytes(world, aid, 1)
    assert bytes1b == bytes1 and doc1b.page_count == 2
    assert world.recorder.calls == [("ZY202605000001", 1), ("ZY202605000001", 2)]

    # a re-capture (replaced page) is a content change too; the replaced page is not in it
    from bingan.core import pages
    from bingan.core.models import Page

    with world.rt.sessions() as s:
        first_page = s.scalar(select(Page).where(Page.admission_id == aid).order_by(Page.seq))
    new_jpeg = jpeg(seed=99)
    with world.rt.sessions() as s, s.begin():
        pages.replace_page(s, world.rt, first_page.id, pages.NewPage(
            image=new_jpeg, dpi=150, qc_status="pass"))
    third = world.build(aid)
    assert third.built and third.document_version == 3
    _, bytes3 = _doc_bytes(world, aid, 3)
    pdf3 = pikepdf.open(io.BytesIO(bytes3))
    assert pdf3.pages[0].Resources.XObject.Im0.read_raw_bytes() == new_jpeg


def test_bad_pages_are_refused_and_nothing_stored(world, jpeg):
    """A PNG, a truncated JPEG, a CMYK JPEG, junk with a JPEG signature: each record gets no
    PDF and a reason naming the page; nothing is announced."""
    from bingan.core.models import Document

    buf = io.BytesIO()
    Image.new("RGB", (50, 60), "white").save(buf, "PNG")
    png = buf.getvalue()
    buf = io.BytesIO()
    Image.new("CMYK", (50, 60), (0, 0, 0, 10)).save(buf, "JPEG")
    cmyk = buf.getvalue()
    good = jpeg(seed=1)
    bads = {"png": (png, "不是 JPEG"), "truncated": (good[: len(good) // 2], "截断"),
            "cmyk": (cmyk, "CMYK"), "text": (b"\xff\xd8\xff not really a jpeg", "损坏")}
    for i, (kind, (bad, why)) in enumerate(bads.items()):
        aid = world.admission(mrn=f"0090000{i}", admission_no=f"ZY20260590000{i}")
        world.pages(aid, [{"data": good}, {"data": bad}])
        out = world.build(aid)
        assert out.status == "failing" and not out.built and out.document_version is None, kind
        assert "PDF 未能生成：第 2 页" in out.reason and why in out.reason, (kind, out.reason)
        with world.rt.sessions() as s:
            assert s.scalar(select(Document).where(Document.admission_id == aid)) is None
    assert world.recorder.calls == []


def test_damaged_blob_is_not_built(world):
    aid = world.admission()
    (pid,) = world.pages(aid, [{"page_type": "病案首页"}])
    from bingan.core.models import Page

    with world.rt.sessions() as s:
        sha = s.get(Page, pid).image_sha256
    path = world.rt.store.path(sha)
    os.chmod(path, 0o644)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # same size, one bit flipped
    path.write_bytes(bytes(raw))
    out = world.build(aid)
    assert out.status == "failing" and "已损坏" in out.reason and out.document_version is None


def test_helpers(jpeg):
    assert bookmark_runs([None, None]) == []
    assert bookmark_runs(["A", "A", None, "B", "A"]) == [
        ("A", 0, 1), ("未分类", 2, 2), ("B", 3, 3), ("A", 4, 4)]
    info = jpeg_info(jpeg(w=100, h=50, dpi=72))
    assert (info.width, info.height, info.components, info.dpi) == (100, 50, 3, 72.0)
    assert effective_dpi(400, info, 300) == 400  # the page's own DPI wins
    assert effective_dpi(None, info, 300) == 72  # then the header's
    assert effective_dpi(None, jpeg_info(jpeg(w=100, h=50)), 300) == 300  # then the default
    assert effective_dpi(10, info, 300) == 72  # nonsense is ignored
    assert page_size_points(2480, 3508, 300) == (595.2, 841.92)  # A4 at 300 DPI
    # the paper a page came from, not the crop (issue 12: 506.88 x 772.8 pt pages)
    mm = 72 / 25.4
    assert paper_for(506.88, 772.8)[0] == "A4"
    name, w, h = paper_for(506.88, 772.8)
    assert (w, h) == pytest.approx((210 * mm, 297 * mm), abs=1e-3)
    assert paper_for(772.8, 506.88)[0] == "A4" and paper_for(772.8, 506.88)[1] > 800  # landscape
    assert paper_for(140 * mm, 200 * mm)[0] == "A5"
    assert paper_for(170 * mm, 245 * mm)[0] == "B5"
    assert paper_for(190 * mm, 265 * mm)[0] == "16K"
    assert paper_for(211 * mm, 298 * mm)[0] == "A4"  # a full sheet scanned a little large
    assert paper_for(297 * mm, 420 * mm) == (None, 297 * mm, 420 * mm)  # A3 keeps its size
    with pytest.raises(PdfBuildError):
        jpeg_info(b"GIF89a....")
