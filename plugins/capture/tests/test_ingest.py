"""Receiving files: bad input is refused with a clear message and stores nothing; good files
become pages (TIFF frames, PDF pages); re-sending is idempotent."""

from __future__ import annotations

import io
import zlib
import struct

import pytest
from PIL import Image
from sqlalchemy import select

from bingan.core.models import Blob, Page, Task
from bingan.core.pages import current_pages
from bingan.core.tasks import run_until_idle as _run_all
from bingan_capture.ingest import CaptureError, receive
from bingan_capture.models import CaptureFile, CaptureFrame
from bingan_capture.settings import CaptureSettings


def run_until_idle(rt):
    return _run_all(rt, kinds=["capture.process"])


def _receive(rt, data, name="x.jpg", **kw):
    with rt.sessions() as s, s.begin():
        return receive(s, rt, data, name, kw.pop("source", "upload"), by="R0001", **kw)


def _png_bomb(w: int, h: int) -> bytes:
    """A tiny PNG declaring a huge 1-bit image (its zlib stream inflates to w*h/8 bytes)."""
    raw = zlib.compress((b"\x00" + b"\x00" * ((w + 7) // 8)) * 64, 9)  # only 64 rows present

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _bad_files(cap):
    jpg = cap.encode(cap.page_image(), "JPEG", quality=90)
    png = cap.encode(cap.page_image(), "PNG")
    pdf = cap.encode(cap.page_image(), "PDF", resolution=150.0)
    pages = [cap.page_image(f"第{i}页", seed=i) for i in (1, 2, 3)]
    tif = io.BytesIO()
    pages[0].save(tif, "TIFF", save_all=True, append_images=pages[1:], dpi=(300, 300))
    tif = tif.getvalue()
    return {
        # issue 9 (Low): a cut multi-page TIFF was a 500 (Pillow's TypeError while counting)
        "truncated_tiff_half": (tif[: len(tif) // 2], "stack.tif", "TIFF"),
        "truncated_tiff_tail": (tif[:-100], "stack.tif", "截断"),
        "truncated_jpeg": (jpg[: len(jpg) // 2], "scan.jpg", "不完整"),
        "text_as_jpg": ("病案首页\n姓名：张三\n".encode() * 20, "scan.jpg", "不支持的文件类型"),
        "png_bomb": (_png_bomb(40000, 40000), "bomb.png", "解压炸弹"),
        "empty": (b"", "empty.jpg", "文件为空"),
        "truncated_png": (png[: len(png) - 200], "scan.png", "不完整"),
        "truncated_pdf": (pdf[: len(pdf) * 2 // 3], "scan.pdf", "PDF 文件不完整"),
        "gif": (cap.encode(cap.page_image(), "GIF"), "scan.gif", "不支持的文件类型"),
    }


def test_bad_files_are_refused_and_store_nothing(rt, cap, two_records):
    before = cap.counts(rt)
    for case, (data, name, words) in _bad_files(cap).items():
        with pytest.raises(CaptureError) as err:
            _receive(rt, data, name, admission_no=two_records[0].admission_no)
        assert words in str(err.value), (case, str(err.value))
        # no blob, no capture, no frame, no task, no audit event
        assert cap.counts(rt) == before, case
        assert list(rt.store.iter_keys()) == [], case  # not even an orphan file


def test_oversized_and_bomb_limits_follow_settings(rt, cap, two_records):
    settings = rt.settings(CaptureSettings)
    jpg = cap.encode(cap.page_image(size=(600, 800)), "JPEG")
    settings.max_file_mb = 0  # bytes above 0 MB: anything is too big
    with pytest.raises(CaptureError, match="文件过大"):
        _receive(rt, jpg)
    settings.max_file_mb = 100
    rt.config.core.max_page_pixels = 600 * 800 - 1  # one pixel less than the page
    with pytest.raises(CaptureError, match="像素过多"):
        _receive(rt, jpg)
    rt.config.core.max_page_pixels = 100_000_000
    assert cap.counts(rt)["Blob"] == 0
    _receive(rt, jpg)  # within the limits it is taken
    assert cap.counts(rt)["CaptureFile"] == 1


def test_unknown_record_source_or_batch_stores_nothing(rt, cap, two_records):
    jpg = cap.encode(cap.page_image(), "JPEG")
    for kw, words in (({"admission_no": "ZY209999999999"}, "住院号 ZY209999999999 不存在"),
                      ({"admission_no": "BA00123456-01X"}, "校验失败"),
                      ({"batch_id": 99}, "批次 99 不存在"),
                      ({"source": "fax"}, "未知的采集来源")):
        with pytest.raises(CaptureError, match=words):
            _receive(rt, jpg, **kw)
    assert cap.counts(rt)["Blob"] == 0 and cap.counts(rt)["Task"] == 0


def test_multipage_tiff_and_pdf_become_pages(rt, cap, two_records):
    a, b = two_records
    frames = [cap.page_image(f"第{i}页", seed=i) for i in (1, 2)]
    tif = io.BytesIO()
    frames[0].save(tif, "TIFF", save_all=True, append_images=frames[1:], dpi=(300, 300))
    got_t = _receive(rt, tif.getvalue(), "stack.tif", admission_no=a.admission_no)
    # a 2-page PDF without a JPEG inside (bilevel pages): rasterized at pdf_dpi (300)
    bilevel = [f.convert("1") for f in frames]
    pdf = io.BytesIO()
    bilevel[0].save(pdf, "PDF", resolution=150.0, save_all=True, append_images=bilevel[1:])
    got_p = _receive(rt, pdf.getvalue(), "stack.pdf", admission_no=b.admission_no)
    # a scanned PDF (one JPEG per page): the JPEGs are taken as scanned, not re-encoded
    jpdf = io.BytesIO()
    frames[0].save(jpdf, "PDF", resolution=300.0, save_all=True, append_images=frames[1:])
    got_j = _receive(rt, jpdf.getvalue(), "scan.pdf", admission_no=b.admission_no)
    assert (got_t.frames, got_p.frames, got_j.frames) == (2, 2, 2)
    assert run_until_idle(rt) == 3
    with rt.sessions() as s:
        pa, pb = current_pages(s, a.id), current_pages(s, b.id)
        assert [p.seq for p in pa] == [1, 2] and len(pb) == 4
        # PDF pages at 300 DPI: 600x800 px at 150 DPI is 4x5.33 in -> 1200x1600
        raster = s.scalars(select(CaptureFrame).where(CaptureFrame.capture_id == got_p.capture_id)
                           .order_by(CaptureFrame.idx)).all()
        assert [(f.width, f.height, f.dpi) for f in raster] == [(1200, 1600, 300.0)] * 2
        scanned = s.scalars(select(CaptureFrame).where(CaptureFrame.capture_id == got_j.capture_id)
                            .order_by(CaptureFrame.idx)).all()
        assert [(f.media_type, f.width, f.dpi) for f in scanned] == [("image/jpeg", 600, 300.0)] * 2
        embedded = rt.store.get(scanned[0].blob_sha256)
        assert embedded.startswith(b"\xff\xd8") and jpdf.getvalue().find(embedded) > 0
        # the original file is kept whole and checksummed; each page keeps its own original
        capf = s.get(CaptureFile, got_t.capture_id)
        assert rt.store.get(capf.sha256) == tif.getvalue()
        assert s.get(Blob, capf.sha256).size == len(tif.getvalue())
        for p in pa + pb:
            assert p.original_sha256 and p.image_sha256
            Image.open(io.BytesIO(rt.store.get(p.image_sha256))).load()
        assert all(c.status == "done" for c in s.scalars(select(CaptureFile)))


def test_resending_the_same_file_is_idempotent(rt, cap, two_records):
    a, _ = two_records
    jpg = cap.encode(cap.page_image(), "JPEG", quality=90, dpi=(300, 300))
    first = _receive(rt, jpg, "p1.jpg", admission_no=a.admission_no)
    again = _receive(rt, jpg, "p1-copy.jpg", admission_no=a.admission_no)
    assert again.duplicate and not first.duplicate and again.capture_id == first.capture_id
    run_until_idle(rt)
    before = cap.counts(rt)
    third = _receive(rt, jpg, "p1.jpg", source="phone")  # after processing, another source
    assert third.duplicate and third.capture_id == first.capture_id
    after = cap.counts(rt)
    assert {k: after[k] for k in ("CaptureFile", "CaptureFrame", "Task", "Blob", "Page")} == {
        k: before[k] for k in ("CaptureFile", "CaptureFrame", "Task", "Blob", "Page")}
    with rt.sessions() as s:
        assert len(current_pages(s, a.id)) == 1
        assert s.scalar(select(Task).where(Task.kind == "capture.process")).status == "done"
        page = s.scalar(select(Page))
        assert page.dpi == 300.0 and rt.store.get(page.original_sha256) == jpg


def test_without_imaging_pages_are_stored_as_captured(db_url, tmp_path, cap):
    """No ``process_page`` answer (imaging not enabled): the page is stored decoded and
    validated, the JPEG as received, with no QC verdict."""
    from support import build_test_runtime

    rt2 = build_test_runtime(tmp_path / "only-capture", db_url, enabled=["capture"])
    try:
        assert "imaging" not in rt2.pm.loaded
        a = cap.make_admission(rt2, "00123456", "ZY202604000001")
        jpg = cap.encode(cap.page_image(), "JPEG", quality=90)
        png = cap.encode(cap.page_image("2", seed=2), "PNG")
        _receive(rt2, jpg, "p1.jpg", admission_no=a.admission_no)
        _receive(rt2, png, "p2.png", admission_no=a.admission_no)
        assert _run_all(rt2, kinds=["capture.process"]) == 2
        with rt2.sessions() as s:
            p1, p2 = current_pages(s, a.id)
            assert (p1.qc_status, p2.qc_status) == (None, None)
            assert rt2.store.get(p1.image_sha256) == jpg == rt2.store.get(p1.original_sha256)
            assert rt2.store.get(p2.original_sha256) == png
            assert rt2.store.get(p2.image_sha256).startswith(b"\xff\xd8")  # a JPEG for the PDF
            assert (p2.width, p2.height, p2.dpi) == (600, 800, 300.0)
    finally:
        rt2.close()
