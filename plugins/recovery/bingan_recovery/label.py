"""The adhesive label for a recovered record's cover: 50 x 30 mm (settings), Code 128 of the
record barcode, MRN, patient name and discharge date, as a one-page PDF.

Drawn with fpdf2, which embeds (a subset of) the CJK font that ``bingan.core.fonts`` chooses,
including OpenType/CFF collections such as Noto CJK; the bars come from python-barcode's
Code 128 encoder (charset switching and check symbol), drawn as filled rectangles so they
stay sharp at any printer resolution.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from barcode import Code128
from fpdf import FPDF

from bingan.core import fonts

QUIET_MODULES = 10  # Code 128 asks for a quiet zone of 10 modules on each side


@dataclass(frozen=True)
class LabelData:
    barcode: str
    mrn: str
    name: str
    discharge_date: dt.date | None
    admission_no: str = ""
    ward: str = ""


def modules(code: str) -> str:
    """The Code 128 bar pattern of ``code`` ("1" a bar module, "0" a space)."""
    return Code128(code).build()[0]


def label_pdf(data: LabelData, width_mm: float = 50.0, height_mm: float = 30.0) -> bytes:
    face = fonts.cjk_font()
    pdf = FPDF(unit="mm", format=(width_mm, height_mm))
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_font("cjk", fname=face.path, collection_font_number=face.index)
    pdf.set_title(f"病案标签 {data.barcode}")
    pdf.add_page()
    margin = 2.0
    # line 1: name (large) and MRN
    pdf.set_font("cjk", size=10)
    pdf.text(margin, margin + 3.4, data.name[:12])
    pdf.set_font("cjk", size=7)
    mrn = f"病案号 {data.mrn}"
    pdf.text(width_mm - margin - pdf.get_string_width(mrn), margin + 3.2, mrn)
    # the barcode, quiet zones included, across the label
    bars = modules(data.barcode)
    total = len(bars) + 2 * QUIET_MODULES
    module = (width_mm - 2 * margin) / total
    top, bar_h = margin + 5.0, height_mm * 0.40
    x = margin + QUIET_MODULES * module
    pdf.set_fill_color(0, 0, 0)
    run = 0
    for i, m in enumerate(bars + "0"):
        if m == "1":
            run += 1
            continue
        if run:
            start = i - run
            pdf.rect(x + start * module, top, run * module, bar_h, style="F")
            run = 0
    # the code in clear under the bars
    pdf.set_font("cjk", size=6.5)
    w = pdf.get_string_width(data.barcode)
    pdf.text((width_mm - w) / 2, top + bar_h + 2.6, data.barcode)
    # bottom line: discharge date and admission number
    pdf.set_font("cjk", size=7.5)
    when = data.discharge_date.isoformat() if data.discharge_date else "—"
    pdf.text(margin, height_mm - margin - 0.6, f"出院 {when}")
    if data.admission_no:
        adm = data.admission_no
        pdf.text(width_mm - margin - pdf.get_string_width(adm), height_mm - margin - 0.6, adm)
    return bytes(pdf.output())
