"""Barcodes: reading them on captured pages (zxing-cpp) and printing cover sheets.

A record is named on paper by its record barcode (``core.records.record_barcode``, Code 128):
either on the label stuck on the record's front page, or on a cover sheet (分隔页) that the
scanning staff put in front of each record. A cover sheet carries the record barcode in large
Code 128 and a QR code ``BINGAN-COVER:<barcode>`` that marks the sheet itself as a separator:
it names the record but is never stored as one of its pages.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bingan.core import fonts
from bingan.core.records import RecordError, parse_barcode

COVER_PREFIX = "BINGAN-COVER:"
A4_300 = (2480, 3508)  # A4 at 300 DPI


@dataclass(frozen=True)
class PageCodes:
    """What the barcodes on one page say."""

    record_barcode: str | None
    cover: bool
    texts: tuple[str, ...] = ()


def to_gray_array(image: Any) -> np.ndarray:
    """A grayscale uint8 array from a PIL image, a BGR/gray array or encoded bytes."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        image = Image.open(io.BytesIO(bytes(image)))
    if isinstance(image, Image.Image):
        if image.mode != "L":
            image = image.convert("L")
        return np.asarray(image)
    arr = np.asarray(image)
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[:, :, :3]
        # BGR (the hook contract's array order) to luma
        arr = (arr[:, :, 0] * 0.114 + arr[:, :, 1] * 0.587 + arr[:, :, 2] * 0.299)
    if arr.dtype != np.uint8:
        if arr.dtype == np.uint16:
            arr = arr >> 8
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def read_codes(image: Any) -> PageCodes:
    """Decode the Code 128 and QR codes on a page; return the record barcode found (check
    character verified, so a misread is ignored) and whether the page is a cover sheet."""
    import zxingcpp

    arr = to_gray_array(image)
    found = zxingcpp.read_barcodes(
        arr, formats=[zxingcpp.BarcodeFormat.Code128,  # type: ignore[arg-type]
                      zxingcpp.BarcodeFormat.QRCode])  # (a list: `|` is deprecated in zxing-cpp 2.3)
    return parse_texts(tuple(r.text for r in found if r.valid))


def parse_texts(texts) -> PageCodes:
    """The record barcode (check character verified, so a misread is ignored) and the cover
    mark among decoded barcode texts."""
    record = None
    cover = False
    for text in texts:
        candidate = text.strip().upper()
        if candidate.startswith(COVER_PREFIX):
            cover = True
            candidate = candidate[len(COVER_PREFIX):]
        try:
            parse_barcode(candidate)
        except RecordError:
            continue
        record = record or candidate
    return PageCodes(record, cover, tuple(texts))


# --------------------------------------------------------------------------------------------
# Fonts and cover sheets
# --------------------------------------------------------------------------------------------


def font(size: int, serif: bool = False) -> ImageFont.FreeTypeFont:
    """A font of ``size`` pixels that draws Chinese (core.fonts; raises FontMissing, naming the
    Debian package, when none is installed: a cover sheet of empty boxes is worse than none)."""
    return fonts.truetype(size, serif=serif)


def code128_image(text: str, module_px: int = 5, height_px: int = 220) -> Image.Image:
    """A Code 128 symbol (python-barcode) drawn with exact whole-pixel modules."""
    import barcode

    symbol = barcode.get("code128", text)
    modules = symbol.build()[0]  # "1010..." one char per module
    quiet = 12
    w = (len(modules) + 2 * quiet) * module_px
    im = Image.new("L", (w, height_px), 255)
    px = np.asarray(im).copy()
    for i, m in enumerate(modules):
        if m == "1":
            x = (quiet + i) * module_px
            px[:, x:x + module_px] = 0
    return Image.fromarray(px)


def qr_image(text: str, scale: int = 8) -> Image.Image:
    import segno

    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=scale, border=2)
    return Image.open(io.BytesIO(buf.getvalue())).convert("L")


@dataclass(frozen=True)
class CoverInfo:
    """What a cover sheet prints about its record."""

    barcode: str
    mrn: str
    admission_no: str
    visit_no: int
    patient_name: str
    discharged: str = ""
    department: str = ""
    hospital: str = ""


def cover_sheet_image(info: CoverInfo, size: tuple[int, int] = A4_300) -> Image.Image:
    """An A4 cover sheet at 300 DPI (grayscale)."""
    w, h = size
    s = w / 2480
    im = Image.new("L", size, 255)
    d = ImageDraw.Draw(im)
    d.text((w // 2, int(230 * s)), info.hospital or "病案数字化", font=font(int(70 * s)),
           fill=0, anchor="mm")
    d.text((w // 2, int(380 * s)), "病案扫描封面（分隔页）", font=font(int(110 * s)), fill=0,
           anchor="mm")
    bc = code128_image(info.barcode, module_px=max(2, int(6 * s)), height_px=int(300 * s))
    im.paste(bc, ((w - bc.width) // 2, int(560 * s)))
    d.text((w // 2, int(560 * s) + bc.height + int(60 * s)), info.barcode,
           font=font(int(64 * s)), fill=0, anchor="mm")
    rows = [("病案号", info.mrn), ("姓名", info.patient_name), ("住院号", info.admission_no),
            ("住院次数", f"第 {info.visit_no} 次"), ("出院日期", info.discharged or "—"),
            ("出院科室", info.department or "—")]
    y = int(1180 * s)
    for label, value in rows:
        d.text((int(420 * s), y), label, font=font(int(72 * s)), fill=0)
        d.text((int(900 * s), y), value, font=font(int(72 * s)), fill=0)
        d.line((int(880 * s), y + int(95 * s), int(2060 * s), y + int(95 * s)), fill=0,
               width=max(1, int(3 * s)))
        y += int(150 * s)
    qr = qr_image(COVER_PREFIX + info.barcode, scale=max(3, int(12 * s)))
    im.paste(qr, (w - qr.width - int(200 * s), h - qr.height - int(260 * s)))
    d.text((int(200 * s), h - int(420 * s)), "本页为分隔页：扫描时放在病案第一页之前，",
           font=font(int(52 * s)), fill=0)
    d.text((int(200 * s), h - int(340 * s)), "系统据此识别病案，本页不计入病案页数。",
           font=font(int(52 * s)), fill=0)
    return im


def cover_sheets_pdf(infos: list[CoverInfo]) -> bytes:
    """A printable PDF, one A4 cover sheet per record (300 DPI)."""
    if not infos:
        raise ValueError("no records")
    pages = [cover_sheet_image(i).convert("1", dither=Image.Dither.NONE) for i in infos]
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", resolution=300.0, save_all=True, append_images=pages[1:],
                  title="病案扫描封面", creator="bingan")
    return buf.getvalue()


def cover_info(adm, hospital: str = "", *, tz: dt.tzinfo) -> CoverInfo:
    """CoverInfo of a core Admission row (discharge day in the hospital's ``tz``)."""
    return CoverInfo(
        barcode=adm.barcode, mrn=adm.patient.mrn, admission_no=adm.admission_no,
        visit_no=adm.visit_no, patient_name=adm.patient.name,
        discharged=adm.discharged_at.astimezone(tz).strftime("%Y-%m-%d")
        if adm.discharged_at else "",
        department=_department_name(adm), hospital=hospital)


def _department_name(adm) -> str:
    """The discharge department's name (the code when no department has it)."""
    from sqlalchemy.orm import object_session

    from bingan.core.staff import department_names

    code = adm.discharge_department or ""
    s = object_session(adm)
    return (department_names(s).get(code) or code) if (code and s is not None) else code
