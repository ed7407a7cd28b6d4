"""Labels for label printers, as PDF: the box label (Code 128 of the box number, the box
number large, the range of records inside, the location) and the shelf label (Code 128 of
the shelf code, warehouse and position). The bars come from the recovery plugin's Code 128
pattern (the record label's), drawn as filled rectangles so they stay sharp at any printer
resolution; the record labels of a box are the recovery plugin's record label, one per page.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from fpdf import FPDF

from bingan.core import fonts

from bingan_recovery import label as record_label

QUIET = record_label.QUIET_MODULES


def _pdf(w: float, h: float, title: str) -> FPDF:
    face = fonts.cjk_font()
    pdf = FPDF(unit="mm", format=(w, h))
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_font("cjk", fname=face.path, collection_font_number=face.index)
    pdf.set_title(title)
    return pdf


def _bars(pdf: FPDF, code: str, x0: float, width: float, top: float, height: float) -> None:
    bars = record_label.modules(code)
    module = width / (len(bars) + 2 * QUIET)
    x = x0 + QUIET * module
    pdf.set_fill_color(0, 0, 0)
    run = 0
    for i, m in enumerate(bars + "0"):
        if m == "1":
            run += 1
            continue
        if run:
            pdf.rect(x + (i - run) * module, top, run * module, height, style="F")
            run = 0


def _centered(pdf: FPDF, text: str, w: float, y: float) -> None:
    pdf.text((w - pdf.get_string_width(text)) / 2, y, text)


@dataclass(frozen=True)
class BoxLabel:
    box_no: str
    count: int
    capacity: int
    first: str  # first record: admission no + discharge date
    last: str
    place: str


def box_label_pdf(labels: list[BoxLabel], size: tuple[float, float]) -> bytes:
    """One page per box."""
    w, h = size
    pdf = _pdf(w, h, "病案箱标签")
    m = 3.0
    for lb in labels:
        pdf.add_page()
        pdf.set_font("cjk", size=9)
        pdf.text(m, m + 3.5, "病案箱")
        pdf.set_font("cjk", size=min(22, h * 0.33))
        _centered(pdf, lb.box_no, w, m + h * 0.2)
        _bars(pdf, lb.box_no, m, w - 2 * m, m + h * 0.26, h * 0.32)
        pdf.set_font("cjk", size=8)
        _centered(pdf, lb.box_no, w, m + h * 0.62)
        pdf.set_font("cjk", size=8.5)
        rng = f"{lb.first} 至 {lb.last}" if lb.count else "空箱"
        pdf.text(m, h * 0.76, f"共 {lb.count}/{lb.capacity} 份：{rng}"[:60])
        pdf.set_font("cjk", size=7.5)
        pdf.text(m, h - m - 0.5, lb.place[:64])
    return bytes(pdf.output())


@dataclass(frozen=True)
class ShelfLabel:
    barcode: str
    code: str
    warehouse: str
    position: str


def shelf_label_pdf(labels: list[ShelfLabel], size: tuple[float, float]) -> bytes:
    """One page per shelf level."""
    w, h = size
    pdf = _pdf(w, h, "货架标签")
    m = 2.5
    for lb in labels:
        pdf.add_page()
        pdf.set_font("cjk", size=8)
        pdf.text(m, m + 3, lb.warehouse[:40])
        pdf.set_font("cjk", size=min(16, h * 0.3))
        _centered(pdf, lb.code, w, m + h * 0.28)
        _bars(pdf, lb.barcode, m, w - 2 * m, m + h * 0.34, h * 0.36)
        pdf.set_font("cjk", size=8)
        _centered(pdf, lb.position, w, h - m - 0.5)
    return bytes(pdf.output())


def record_labels_pdf(items: list[record_label.LabelData], width_mm: float,
                      height_mm: float) -> bytes:
    """The recovery plugin's record label for each record, one per page, in one PDF."""
    import pikepdf

    out = pikepdf.new()
    for d in items:
        with pikepdf.open(io.BytesIO(record_label.label_pdf(d, width_mm, height_mm))) as one:
            out.pages.extend(one.pages)
    buf = io.BytesIO()
    out.save(buf)
    return buf.getvalue()
