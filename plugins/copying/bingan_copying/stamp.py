"""The copy: a PDF of the chosen pages, each with the copy stamp (证明印记) drawn on it.

Each page's stored JPEG is embedded byte for byte (``/DCTDecode``, never re-encoded) and the
stamp is drawn over its lower right corner: one image with a soft mask (red ink, transparent
paper) made once per request with Pillow, shared by every page. The stamp reads: the stamp's
title (病案复印专用), the hospital, "与原件相符", the applicant, the request number and the date.
"""

from __future__ import annotations

import datetime as dt
import io
import zlib
from dataclasses import dataclass

import pikepdf
from pikepdf import Array, Dictionary, Name
from PIL import Image, ImageDraw, ImageFont

from bingan.core import fonts

STAMP_PX = 900  # stamp image width; scaled onto each page
DEFAULT_DPI = 300.0


class CopyPdfError(ValueError):
    """A page cannot go into the copy (not a JPEG, corrupt ...)."""


@dataclass(frozen=True)
class StampText:
    hospital: str
    applicant: str
    request_no: str
    date: dt.date


@dataclass(frozen=True)
class CopyPage:
    jpeg: bytes
    dpi: float | None = None
    label: str = ""


def _font(size: int, font_path: str = "", bold: bool = False) -> ImageFont.FreeTypeFont:
    """A font that draws Chinese: the configured file, else core's choice (core.fonts)."""
    try:
        face = fonts.font_file(font_path) if font_path else fonts.cjk_font(bold=bold)
    except fonts.FontMissing as exc:
        raise CopyPdfError(str(exc)) from exc
    return fonts.truetype(size, face)


def stamp_lines(text: StampText, settings_stamp) -> list[tuple[str, float, bool]]:
    """(text, relative size, bold) of each line of the stamp, top to bottom."""
    return [
        (settings_stamp.title, 0.9, False),
        (text.hospital, 1.0, True),
        (settings_stamp.text, 1.75, True),
        (f"申请人：{text.applicant}", 0.85, False),
        (f"编号：{text.request_no}", 0.85, False),
        (f"{text.date:%Y年%m月%d日}", 0.85, False),
    ]


def stamp_image(text: StampText, settings_stamp) -> Image.Image:
    """The stamp as an RGBA image ``STAMP_PX`` wide: a red double frame and the lines."""
    lines = stamp_lines(text, settings_stamp)
    base = 56
    w = STAMP_PX
    heights = [int(base * s * 1.45) for _, s, _ in lines]
    h = sum(heights) + 80
    mask = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(mask)
    d.rounded_rectangle((6, 6, w - 7, h - 7), radius=28, outline=255, width=10)
    d.rounded_rectangle((24, 24, w - 25, h - 25), radius=18, outline=255, width=3)
    y = 40
    for (line, scale, bold), lh in zip(lines, heights):
        size = int(base * scale)
        font = _font(size, settings_stamp.font_path, bold)
        while font.getlength(line) > w - 90 and size > 16:  # long hospital names shrink
            size -= 2
            font = _font(size, settings_stamp.font_path, bold)
        d.text((w // 2, y + lh // 2), line, font=font, fill=255, anchor="mm")
        y += lh
    alpha = mask.point(lambda v: int(v * settings_stamp.opacity))
    img = Image.new("RGBA", (w, h), tuple(settings_stamp.color) + (0,))
    img.putalpha(alpha)
    return img


def _jpeg_header(data: bytes, label: str) -> tuple[int, int, int, float | None]:
    where = f"{label}：" if label else ""
    if data[:3] != b"\xff\xd8\xff":
        raise CopyPdfError(f"{where}不是 JPEG 文件")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "JPEG":
                raise CopyPdfError(f"{where}不是 JPEG 文件")
            mode, (w, h) = img.mode, img.size
            raw = img.info.get("dpi")
    except CopyPdfError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise CopyPdfError(f"{where}JPEG 已损坏（{exc}）") from exc
    if mode not in ("L", "RGB"):
        raise CopyPdfError(f"{where}色彩模式 {mode} 不受支持")
    dpi = None
    if raw and raw[0]:
        try:
            dpi = float(raw[0])
        except (TypeError, ValueError):
            dpi = None
    return w, h, 1 if mode == "L" else 3, dpi


def _stamp_xobject(pdf: pikepdf.Pdf, img: Image.Image) -> pikepdf.Stream:
    rgb = img.convert("RGB").tobytes()
    alpha = img.getchannel("A").tobytes()
    smask = pikepdf.Stream(pdf, zlib.compress(alpha, 6))
    smask.Type, smask.Subtype = Name.XObject, Name.Image
    smask.Width, smask.Height = img.width, img.height
    smask.ColorSpace, smask.BitsPerComponent = Name.DeviceGray, 8
    smask.Filter = Name.FlateDecode
    st = pikepdf.Stream(pdf, zlib.compress(rgb, 6))
    st.Type, st.Subtype = Name.XObject, Name.Image
    st.Width, st.Height = img.width, img.height
    st.ColorSpace, st.BitsPerComponent = Name.DeviceRGB, 8
    st.Filter = Name.FlateDecode
    st.SMask = smask
    return st


def stamp_box(page_w: float, page_h: float, stamp_w: int, stamp_h: int,
              width_share: float) -> tuple[float, float, float, float]:
    """(x, y, width, height) of the stamp on a page in points: lower right, a margin of 4 %."""
    sw = page_w * width_share
    sh = sw * stamp_h / stamp_w
    margin = page_w * 0.04
    return page_w - margin - sw, margin, sw, sh


def build_copy_pdf(pages: list[CopyPage], text: StampText, settings_stamp,
                   title: str = "") -> bytes:
    """The copy as PDF bytes: every page's JPEG as it is stored, the stamp over it."""
    if not pages:
        raise CopyPdfError("没有要复印的页面")
    stamp = stamp_image(text, settings_stamp)
    pdf = pikepdf.new()
    stamp_x = _stamp_xobject(pdf, stamp)
    for pg in pages:
        w, h, comps, header_dpi = _jpeg_header(pg.jpeg, pg.label)
        dpi = next((d for d in (pg.dpi, header_dpi) if d and 50 <= d <= 2400), DEFAULT_DPI)
        pw, ph = round(w * 72.0 / dpi, 3), round(h * 72.0 / dpi, 3)
        im = pikepdf.Stream(pdf, pg.jpeg)
        im.Type, im.Subtype = Name.XObject, Name.Image
        im.Width, im.Height, im.BitsPerComponent = w, h, 8
        im.ColorSpace = Name.DeviceGray if comps == 1 else Name.DeviceRGB
        im.Filter = Name.DCTDecode
        sx, sy, sw, sh = stamp_box(pw, ph, stamp.width, stamp.height,
                                   settings_stamp.width_share)
        content = (f"q {pw} 0 0 {ph} 0 0 cm /Pg Do Q "
                   f"q {sw:.3f} 0 0 {sh:.3f} {sx:.3f} {sy:.3f} cm /Stamp Do Q").encode()
        page = pikepdf.Page(Dictionary(
            Type=Name.Page, MediaBox=Array([0, 0, pw, ph]),
            Resources=Dictionary(XObject=Dictionary(Pg=im, Stamp=stamp_x)),
            Contents=pikepdf.Stream(pdf, content)))
        pdf.pages.append(page)
    pdf.docinfo[Name.Title] = title or f"病历复印件 {text.request_no}"
    pdf.docinfo[Name.Producer] = "bingan copying"
    buf = io.BytesIO()
    pdf.save(buf, deterministic_id=True)
    return buf.getvalue()
