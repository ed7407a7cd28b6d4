"""PDFs of the deathcase plugin, drawn with fpdf2 (which embeds a subset of the CJK font
``bingan.core.fonts`` chooses, and JPEG page images as they are, without re-encoding) and
assembled with pikepdf: the labels, the cover page (case label), the charge list rendered
from its items, and a record's export in the configured order with the charge list merged
where the order puts it."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from dataclasses import dataclass

import pikepdf
from barcode import Code128
from fpdf import FPDF

from bingan.core import fonts

from bingan_deathcase.hookspecs import ChargeList

QUIET = 10


@dataclass(frozen=True)
class CaseInfo:
    """What the labels and the cover page show about a record."""

    hospital: str
    mrn: str
    name: str
    sex: str
    admission_no: str
    visit_no: int
    barcode: str
    discharge_way: str  # the label: 死亡 / 非医嘱离院
    admitted: dt.date
    discharged: dt.date | None
    department: str


def _pdf(fmt) -> FPDF:
    face = fonts.cjk_font()
    pdf = FPDF(unit="mm", format=fmt)
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_font("cjk", fname=face.path, collection_font_number=face.index)
    return pdf


def _barcode(pdf: FPDF, code: str, x: float, y: float, w: float, h: float) -> None:
    bars = Code128(code).build()[0]
    module = w / (len(bars) + 2 * QUIET)
    x0 = x + QUIET * module
    pdf.set_fill_color(0, 0, 0)
    run = 0
    for i, m in enumerate(bars + "0"):
        if m == "1":
            run += 1
            continue
        if run:
            pdf.rect(x0 + (i - run) * module, y, run * module, h, style="F")
            run = 0


def _case_lines(c: CaseInfo) -> list[tuple[str, str]]:
    return [("离院方式", c.discharge_way), ("科室", c.department or "—"),
            ("入院日期", c.admitted.isoformat()),
            ("出院日期", c.discharged.isoformat() if c.discharged else "—"),
            ("住院号", c.admission_no), ("住院次数", str(c.visit_no))]


def labels_pdf(c: CaseInfo, width_mm: float = 80.0, height_mm: float = 50.0) -> bytes:
    """Two labels: the record label (name, MRN, Code 128 of the record barcode) and the case
    label (discharge way, dates, department)."""
    pdf = _pdf((width_mm, height_mm))
    pdf.set_title(f"病案标签 {c.barcode}")
    m = 3.0
    pdf.add_page()
    pdf.set_font("cjk", size=13)
    pdf.text(m, m + 5, c.name[:12])
    pdf.set_font("cjk", size=9)
    t = f"病案号 {c.mrn}"
    pdf.text(width_mm - m - pdf.get_string_width(t), m + 5, t)
    _barcode(pdf, c.barcode, m, m + 9, width_mm - 2 * m, height_mm * 0.38)
    pdf.set_font("cjk", size=8)
    pdf.text((width_mm - pdf.get_string_width(c.barcode)) / 2, m + 9 + height_mm * 0.38 + 3.5,
             c.barcode)
    pdf.text(m, height_mm - m, f"第 {c.visit_no} 次住院  {c.admission_no}")
    pdf.add_page()
    pdf.set_font("cjk", size=12)
    pdf.text(m, m + 5, f"{c.discharge_way}病例")
    pdf.set_font("cjk", size=9)
    t = f"{c.name} {c.mrn}"
    pdf.text(width_mm - m - pdf.get_string_width(t), m + 5, t)
    y = m + 12
    for k, v in _case_lines(c):
        pdf.text(m, y, f"{k}：{v}")
        y += 5.5
    return bytes(pdf.output())


def cover_pdf(c: CaseInfo) -> bytes:
    """An A4 first page: the hospital, the case label, the record barcode."""
    pdf = _pdf("A4")
    pdf.set_title(f"{c.discharge_way}病例 {c.mrn}")
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    t = c.hospital
    pdf.text((210 - pdf.get_string_width(t)) / 2, 40, t)
    pdf.set_font("cjk", size=22)
    t = f"{c.discharge_way}病例"
    pdf.text((210 - pdf.get_string_width(t)) / 2, 58, t)
    pdf.set_font("cjk", size=13)
    y = 85
    for k, v in [("姓名", c.name), ("性别", {"M": "男", "F": "女"}.get(c.sex, "未知")),
                 ("病案号", c.mrn)] + _case_lines(c):
        pdf.text(55, y, f"{k}：{v}")
        y += 10
    _barcode(pdf, c.barcode, 55, y + 5, 100, 18)
    pdf.set_font("cjk", size=10)
    pdf.text((210 - pdf.get_string_width(c.barcode)) / 2, y + 29, c.barcode)
    return bytes(pdf.output())


def _money(v: float | None) -> str:
    return "" if v is None else f"{v:,.2f}"


def charge_pdf(charges: ChargeList, c: CaseInfo) -> tuple[bytes, int]:
    """The charge list as A4 pages: a header naming the record, a table of the items, the
    total on the last page. Returns the PDF and its page count."""
    pdf = _pdf("A4")
    pdf.set_title(f"收费清单 {c.mrn}")
    cols = [("日期", 22), ("类别", 22), ("项目名称", 58), ("规格", 22), ("数量", 14),
            ("单位", 12), ("单价", 16), ("金额", 18)]
    left, top, row_h, bottom = 8.0, 12.0, 6.0, 285.0
    page_no = 0
    y = 0.0

    def header() -> float:
        nonlocal page_no
        pdf.add_page()
        page_no += 1
        pdf.set_font("cjk", size=14)
        t = f"{c.hospital} 住院收费清单"
        pdf.text((210 - pdf.get_string_width(t)) / 2, top + 4, t)
        pdf.set_font("cjk", size=9)
        pdf.text(left, top + 12, f"姓名：{c.name}  病案号：{c.mrn}  住院号：{c.admission_no}  "
                                 f"科室：{c.department}  来源：{charges.source}")
        pdf.text(200 - pdf.get_string_width(f"第 {page_no} 页"), top + 12, f"第 {page_no} 页")
        yy = top + 16
        x = left
        pdf.set_fill_color(232, 238, 247)
        for name, w in cols:
            pdf.rect(x, yy, w, row_h, style="DF")
            pdf.text(x + 1, yy + 4.2, name)
            x += w
        return yy + row_h

    def fit(text: str, w: float) -> str:
        while text and pdf.get_string_width(text) > w - 2:
            text = text[:-1]
        return text

    y = header()
    pdf.set_font("cjk", size=8)
    for it in charges.items:
        if y + row_h > bottom:
            y = header()
            pdf.set_font("cjk", size=8)
        cells = [it.day.isoformat() if it.day else "", it.category, it.name, it.spec,
                 "" if it.quantity is None else f"{it.quantity:g}", it.unit,
                 _money(it.price), _money(it.amount)]
        x = left
        for (name, w), v in zip(cols, cells):
            pdf.rect(x, y, w, row_h)
            v = fit(v, w)
            if name in ("数量", "单价", "金额"):
                pdf.text(x + w - 1 - pdf.get_string_width(v), y + 4.2, v)
            else:
                pdf.text(x + 1, y + 4.2, v)
            x += w
        y += row_h
    if y + row_h > bottom:
        y = header()
    pdf.set_font("cjk", size=10)
    t = f"合计：{len(charges.items)} 项，金额 {_money(charges.total)} 元"
    pdf.text(200 - pdf.get_string_width(t), y + 6, t)
    return bytes(pdf.output()), page_no


def pages_pdf(images: list[tuple[bytes, int | None, int | None, float | None]]) -> bytes:
    """Record pages (JPEG bytes, width, height, dpi) as a PDF, one image per page at its own
    size (the captured DPI; 300 when unknown), embedded without re-encoding."""
    pdf = FPDF(unit="mm")
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    for data, w, h, dpi in images:
        if not (w and h):
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
        d = dpi or 300.0
        wmm, hmm = w / d * 25.4, h / d * 25.4
        pdf.add_page(format=(wmm, hmm))
        pdf.image(io.BytesIO(data), x=0, y=0, w=wmm, h=hmm)
    return bytes(pdf.output())


def assemble(parts: list[bytes]) -> tuple[bytes, int]:
    """One PDF of the parts in order (each a PDF); returns it and its page count."""
    with contextlib.ExitStack() as stack:  # sources stay open until the result is saved
        out = stack.enter_context(pikepdf.new())
        for part in parts:
            src = stack.enter_context(pikepdf.open(io.BytesIO(part)))
            out.pages.extend(src.pages)
        buf = io.BytesIO()
        n = len(out.pages)
        out.save(buf, deterministic_id=True)
    return buf.getvalue(), n
