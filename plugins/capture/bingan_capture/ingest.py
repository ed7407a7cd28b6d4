"""Receiving files: validate, split into pages, store durably, queue processing.

``receive`` is the one entry point every source uses (hot folder, upload, phone, SANE, CLI,
demo). It accepts JPEG, PNG, TIFF (every frame) and PDF (every page rasterized at
``pdf_dpi``), recognised by their magic bytes, not by the file name. Everything is decoded
before anything is stored, so a truncated file, a file of another type, an empty or oversized
file, or a decompression bomb is refused with a clear (Chinese) message and leaves nothing
behind: no blob, no row, no task.

A file that passes is stored as received (``core.storage.store_blob``: the SHA-256 is the
checksum and the idempotency key), each page of it too (the file itself for a one-page JPEG,
PNG or TIFF; a lossless PNG per TIFF frame or PDF page), with a ``capture_file`` row, one
``capture_frame`` row per page and a durable ``capture.process`` task, all in the caller's
transaction: the file is acknowledged once that commits. Sending the same file again returns
the first capture and stores nothing new.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bingan.core import audit, tasks
from bingan.core.models import Admission, Page
from bingan.core.records import RecordError, parse_barcode
from bingan.core.storage import store_blob
from bingan.hooks.types import PAPER_SIZES_MM
from bingan_capture.models import CaptureBatch, CaptureFile, CaptureFrame, CaptureRework
from bingan_capture.settings import CaptureSettings
from bingan.core.config import CoreSettings

TASK_KIND = "capture.process"

MAGIC: list[tuple[bytes, str]] = [
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"II+\x00", "image/tiff"),  # BigTIFF
    (b"MM\x00+", "image/tiff"),
    (b"%PDF-", "application/pdf"),
]
ACCEPTED = "JPEG、PNG、TIFF、PDF"


class CaptureError(ValueError):
    """A file or request that capture refuses; the message says why (in Chinese)."""


@dataclass(frozen=True)
class Frame:
    """One page of a received file, encoded, ready to be stored."""

    data: bytes
    media_type: str
    width: int
    height: int
    dpi: float | None


@dataclass(frozen=True)
class Received:
    """What ``receive`` did: the capture it made (or found), and its pages."""

    capture_id: int
    sha256: str
    frames: int
    duplicate: bool
    media_type: str
    task_id: int | None = None


def sniff(data: bytes) -> str | None:
    """The media type from the magic bytes, or None for anything we do not accept."""
    for magic, media_type in MAGIC:
        if data.startswith(magic):
            return media_type
    return None


def _dpi(info: dict) -> float | None:
    dpi = info.get("dpi")
    if not dpi:
        return None
    try:
        x = float(dpi[0] if isinstance(dpi, (tuple, list)) else dpi)
    except (TypeError, ValueError):
        return None
    return round(x, 2) if x > 1 else None  # 1 (or 0) means "no unit" in JFIF/PNG


def _check_pixels(w: int, h: int, limit: int, where: str) -> None:
    if w <= 0 or h <= 0:
        raise CaptureError(f"{where}尺寸无效（{w}×{h}）")
    if w * h > limit:
        raise CaptureError(
            f"{where}像素过多（{w}×{h} = {w * h / 1e6:.0f} 百万像素，上限 {limit / 1e6:.0f} 百万），"
            "疑似解压炸弹，已拒收")


def _open(data: bytes, limit: int) -> Image.Image:
    with warnings.catch_warnings():
        # we apply our own (configurable) limit below; Pillow's own errors are turned into ours
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise CaptureError(f"图像像素过多，疑似解压炸弹，已拒收（{exc}）") from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise CaptureError(f"文件无法解码（已损坏或不完整）：{exc}") from exc
    _check_pixels(im.width, im.height, limit, "图像")
    return im


def _load(im: Image.Image, where: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im.load()
        except Image.DecompressionBombError as exc:
            raise CaptureError(f"{where}像素过多，疑似解压炸弹，已拒收") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            text = str(exc)
            if "truncated" in text or "broken" in text or isinstance(exc, EOFError):
                raise CaptureError(f"{where}不完整（文件被截断或损坏），已拒收") from exc
            raise CaptureError(f"{where}无法解码（已损坏）：{text}") from exc


def _png(im: Image.Image, dpi: float | None) -> bytes:
    if im.mode not in ("1", "L", "RGB", "RGBA", "LA", "P", "I;16"):
        im = im.convert("RGB")
    buf = io.BytesIO()
    kw = {"dpi": (dpi, dpi)} if dpi else {}
    im.save(buf, "PNG", compress_level=1, **kw)
    return buf.getvalue()


PDF = "application/pdf"


def _check_total(pixels: int, settings, what: str) -> None:
    if pixels > settings.max_file_pixels:
        raise CaptureError(
            f"{what}各页合计 {pixels / 1e6:.0f} 百万像素，超过每个文件 "
            f"{settings.max_file_pixels / 1e6:.0f} 百万像素的上限（请分成几个文件），已拒收")


def extract_frames(data: bytes, media_type: str, settings, max_pixels: int) -> list[Frame]:
    """Check every page of a file and return them encoded: images are decoded (this is the
    validation); a PDF is only opened and measured (page count, each page's pixels at
    ``pdf_dpi``, their total), and its pages are placeholders (``media_type`` PDF, the file's
    bytes) that the processing task renders one at a time (``render_pdf_page``), off the
    request. No page may have more than ``max_pixels`` pixels, nor a file more than
    ``max_file_pixels`` in all."""
    limit = max_pixels
    if media_type == PDF:
        return _pdf_plan(data, settings, limit)
    im = _open(data, limit)
    fmt = (im.format or "").upper()
    expected = {"image/jpeg": "JPEG", "image/png": "PNG", "image/tiff": "TIFF"}[media_type]
    if fmt != expected:
        raise CaptureError(f"文件内容（{fmt or '未知'}）与其文件头不符，已拒收")
    if media_type != "image/tiff":
        _load(im, "图像")
        return [Frame(data, media_type, im.width, im.height, _dpi(im.info))]
    # a cut multi-page TIFF fails while Pillow walks its directories, with errors of any kind
    # (EOFError, OSError, TypeError "Missing dimensions", struct.error ...): all are refusals
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            n = getattr(im, "n_frames", 1)
    except Exception as exc:
        raise CaptureError("TIFF 文件不完整（页目录损坏或文件被截断），已拒收") from exc
    if n > settings.max_pages_per_file:
        raise CaptureError(f"TIFF 共 {n} 页，超过每个文件 {settings.max_pages_per_file} 页的上限")
    total = 0
    for i in range(n):  # sizes first (directories only), then decode
        try:
            im.seek(i)
        except Exception as exc:  # as above
            raise CaptureError(f"TIFF 第 {i + 1} 页缺失（文件被截断），已拒收") from exc
        _check_pixels(im.width, im.height, limit, f"TIFF 第 {i + 1} 页")
        total += im.width * im.height
    _check_total(total, settings, "TIFF ")
    frames = []
    for i in range(n):
        where = f"TIFF 第 {i + 1} 页" if n > 1 else "TIFF 图像"
        try:
            im.seek(i)
        except Exception as exc:  # as above
            raise CaptureError(f"{where}缺失（文件被截断），已拒收") from exc
        _check_pixels(im.width, im.height, limit, where)
        _load(im, where)
        dpi = _dpi(im.info)
        if n == 1:
            frames.append(Frame(data, media_type, im.width, im.height, dpi))
        else:
            frames.append(Frame(_png(im, dpi), "image/png", im.width, im.height, dpi))
    return frames


def _pdf_open(data: bytes):
    import pypdfium2 as pdfium

    if b"%%EOF" not in data[-2048:]:
        raise CaptureError("PDF 文件不完整（缺少文件结束标记，可能传输中断），已拒收")
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise CaptureError(f"PDF 文件无法打开（已损坏或加密）：{exc}") from exc


def _pdf_page(page, i: int, settings, max_pixels: int, render: bool) -> Frame:
    """Page ``i``: its scanned JPEG as it is, or its raster at ``pdf_dpi`` (PNG). Without
    ``render`` only measured: a placeholder with the size it will have."""
    import pypdfium2 as pdfium

    dpi = float(settings.pdf_dpi)
    embedded = _embedded_jpeg(page, max_pixels, i, load=render)
    if embedded is not None:
        return embedded if render else Frame(b"", PDF, embedded.width, embedded.height,
                                             embedded.dpi)
    w_pt, h_pt = page.get_size()
    w, h = round(w_pt * dpi / 72.0), round(h_pt * dpi / 72.0)
    _check_pixels(w, h, max_pixels, f"PDF 第 {i + 1} 页（按 {settings.pdf_dpi} DPI）")
    if not render:
        return Frame(b"", PDF, w, h, dpi)
    try:
        bitmap = page.render(scale=dpi / 72.0, may_draw_forms=True)
    except pdfium.PdfiumError as exc:
        raise CaptureError(f"PDF 第 {i + 1} 页无法渲染：{exc}") from exc
    im = bitmap.to_pil().convert("RGB")
    bitmap.close()
    return Frame(_png(im, dpi), "image/png", im.width, im.height, dpi)


def _pdf_plan(data: bytes, settings, max_pixels: int) -> list[Frame]:
    """Measure a PDF without rendering it: one placeholder frame per page (see
    ``extract_frames``)."""
    doc = _pdf_open(data)
    try:
        n = len(doc)
        if n == 0:
            raise CaptureError("PDF 文件没有页面")
        if n > settings.max_pages_per_file:
            raise CaptureError(f"PDF 共 {n} 页，超过每个文件 {settings.max_pages_per_file} 页的上限")
        frames = []
        for i in range(n):
            page = doc[i]
            try:
                fr = _pdf_page(page, i, settings, max_pixels, render=False)
            finally:
                page.close()
            frames.append(Frame(data, PDF, fr.width, fr.height, fr.dpi))
        _check_total(sum(f.width * f.height for f in frames), settings, "PDF ")
        return frames
    finally:
        doc.close()


def render_pdf_page(data: bytes, i: int, settings, max_pixels: int) -> Frame:
    """Page ``i`` of a received PDF, rendered (or its scanned JPEG): what the processing task
    stores in place of the placeholder, one page at a time."""
    doc = _pdf_open(data)
    try:
        if not 0 <= i < len(doc):
            raise CaptureError(f"PDF 没有第 {i + 1} 页")
        page = doc[i]
        try:
            return _pdf_page(page, i, settings, max_pixels, render=True)
        finally:
            page.close()
    finally:
        doc.close()


def _embedded_jpeg(page, max_pixels: int, i: int, load: bool = True) -> Frame | None:
    """A scanned PDF page (one full-page JPEG and nothing else) yields that JPEG as it was
    scanned: no second lossy encoding, the scan's own resolution. Anything else is None and
    gets rasterized. Without ``load`` the JPEG is only measured (its header), not decoded."""
    import pypdfium2 as pdfium

    if page.get_rotation() % 360:
        return None
    objs = list(page.get_objects(max_depth=1))
    if len(objs) != 1 or not isinstance(objs[0], pdfium.PdfImage):
        return None
    img = objs[0]
    try:
        if img.get_filters() != ["DCTDecode"]:
            return None
        a, b, c, d, _e, _f = img.get_matrix().get()
        w_pt, h_pt = page.get_size()
        if abs(b) > 1e-6 or abs(c) > 1e-6 or a < 0.98 * w_pt or d < 0.98 * h_pt:
            return None
        data = bytes(img.get_data(decode_simple=False))
    except pdfium.PdfiumError:
        return None
    if not data.startswith(b"\xff\xd8"):
        return None
    where = f"PDF 第 {i + 1} 页图像"
    im = _open(data, max_pixels)
    if im.format != "JPEG" or im.mode not in ("L", "RGB"):
        return None
    if load:
        _load(im, where)
    dpi = round(im.width / (w_pt / 72.0), 2)
    return Frame(data, "image/jpeg", im.width, im.height, dpi)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------

_BARCODE_LIKE = re.compile(r"^BA[0-9A-Z]+-\d{2,}[0-9A-Z]$", re.I)


def resolve_admission(session: Session, text: str) -> Admission:
    """An admission from what a clerk typed or scanned: an admission number (住院号) or a
    record barcode (BA...). Raises CaptureError with a clear message."""
    text = (text or "").strip()
    if not text:
        raise CaptureError("请填写住院号或扫描病案条码")
    if _BARCODE_LIKE.match(text):
        try:
            parse_barcode(text)
        except RecordError as exc:
            raise CaptureError(f"病案条码 {text} 校验失败（可能误读），请重新扫描") from exc
        adm = session.scalar(select(Admission).where(Admission.barcode == text.upper()))
        if adm is None:
            raise CaptureError(f"病案条码 {text} 没有对应的病案")
        return adm
    adm = session.scalar(select(Admission).where(Admission.admission_no == text))
    if adm is None:
        raise CaptureError(f"住院号 {text} 不存在")
    return adm


def sources(rt) -> dict:
    """Registered capture sources by name (``capture_sources`` hook)."""
    out = {}
    for group in rt.pm.hook.capture_sources(rt=rt):
        for src in group or []:
            out[src.name] = src
    return out


# --------------------------------------------------------------------------------------------
# receive
# --------------------------------------------------------------------------------------------


def receive(session: Session, rt, data: bytes, filename: str, source: str, *,
            admission_no: str | None = None, batch_id: int | None = None,
            by: str | None = None, replace_page_id: int | None = None,
            rework_id: int | None = None, actor: audit.Actor | None = None,
            paper: str | None = None) -> Received:
    """Validate and store one file in the caller's transaction (see module docstring).

    ``admission_no`` (or a record barcode) names the record explicitly; without it pages are
    identified by barcode while processing. ``replace_page_id`` makes this a re-capture of
    that page (rework). ``paper``: the paper photographed (A4, A5, B5, 16K; None: not said),
    handed to ``process_page`` (a photo's DPI follows from it). Raises ``CaptureError`` and
    stores nothing when anything is wrong.
    """
    settings = rt.settings(CaptureSettings)
    srcs = sources(rt)
    src = srcs.get(source)
    if src is None:
        raise CaptureError(f"未知的采集来源 {source!r}（可用：{'、'.join(sorted(srcs))}）")
    filename = (filename or "unnamed").replace("\\", "/").rsplit("/", 1)[-1][:255] or "unnamed"
    if paper is not None and paper not in PAPER_SIZES_MM:
        raise CaptureError(f"未知的纸张 {paper!r}（可选：{'、'.join(PAPER_SIZES_MM)}），已拒收")
    if data is None or len(data) == 0:
        raise CaptureError("文件为空，已拒收")
    limit = settings.max_file_mb * 1024 * 1024
    if len(data) > limit:
        raise CaptureError(
            f"文件过大（{len(data) / 1048576:.1f} MB，上限 {settings.max_file_mb} MB），已拒收")
    media_type = sniff(data)
    if media_type is None:
        raise CaptureError(f"不支持的文件类型（仅接受 {ACCEPTED}；按文件内容判断，"
                           "而非扩展名），已拒收")

    adm = None
    replace_page = None
    if replace_page_id is not None:
        replace_page = session.get(Page, replace_page_id)
        if replace_page is None or replace_page.replaced_by_id is not None:
            raise CaptureError(f"页面 {replace_page_id} 不存在或已被替换，无法重新采集")
        adm = session.get(Admission, replace_page.admission_id)
        if admission_no and resolve_admission(session, admission_no).id != adm.id:
            raise CaptureError("重新采集的页面不属于所选病案")
    elif admission_no:
        adm = resolve_admission(session, admission_no)
    if batch_id is not None and session.get(CaptureBatch, batch_id) is None:
        raise CaptureError(f"批次 {batch_id} 不存在")
    if rework_id is not None:
        rw = session.get(CaptureRework, rework_id)
        if rw is None or rw.status != "open":
            raise CaptureError(f"返工单 {rework_id} 不存在或已完成")

    sha = hashlib.sha256(data).hexdigest()
    key = sha if replace_page is None else f"replace:{replace_page.id}:{sha}"
    existing = session.scalar(select(CaptureFile).where(CaptureFile.dedupe_key == key))
    if existing is not None:
        return Received(existing.id, sha, existing.frames, True, existing.media_type)

    frames = extract_frames(data, media_type, settings,  # raises CaptureError: nothing stored
                            rt.settings(CoreSettings).max_page_pixels)

    stored_sha = store_blob(session, rt.store, data, media_type)
    assert stored_sha == sha
    cap = CaptureFile(
        dedupe_key=key, sha256=sha, filename=filename, source=source, device=src.device,
        media_type=media_type, size=len(data), frames=len(frames),
        admission_id=adm.id if adm else None, batch_id=batch_id,
        replace_page_id=replace_page.id if replace_page else None, rework_id=rework_id,
        paper=paper, status="queued", round=0, received_by=by)
    try:
        with session.begin_nested():  # a concurrent receive of the same file may win the key
            session.add(cap)
            session.flush()
    except IntegrityError:
        existing = session.scalar(select(CaptureFile).where(CaptureFile.dedupe_key == key))
        return Received(existing.id, sha, existing.frames, True, existing.media_type)
    for i, fr in enumerate(frames):
        fsha = sha if fr.data is data else store_blob(session, rt.store, fr.data, fr.media_type)
        session.add(CaptureFrame(capture_id=cap.id, idx=i, blob_sha256=fsha,
                                 media_type=fr.media_type, width=fr.width, height=fr.height,
                                 dpi=fr.dpi, status="pending", notified=False))
    session.flush()
    task = tasks.enqueue(session, rt, TASK_KIND, {"capture_id": cap.id},
                         dedupe_key=f"capture:{cap.id}:0", max_attempts=5)
    audit.record(session, rt, "capture.receive", actor=actor or audit.Actor(staff_no=by),
                 mrn=adm.patient.mrn if adm else None,
                 admission_no=adm.admission_no if adm else None,
                 detail={"capture_id": cap.id, "file": filename, "source": source,
                         "sha256": sha, "pages": len(frames),
                         "replace_page_id": cap.replace_page_id,
                         **({"paper": paper} if paper else {})})
    return Received(cap.id, sha, len(frames), False, media_type, task.id)
