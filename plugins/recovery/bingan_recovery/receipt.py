"""The ward's receipt (病案回收交接单) for a 58 mm ESC/POS micro printer, built with
python-escpos on the server: ward, time, staff, count, one line per record (MRN, name,
discharge date) and a signature line. The phone sends the bytes to the printer through Web
Bluetooth; a browser without it prints the same receipt as a page (``lines`` feeds both).

Chinese text is sent as GB18030 (the character set of Chinese ESC/POS printers), which is
what python-escpos's encoder chooses for Han characters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from escpos.printer import Dummy


@dataclass(frozen=True)
class ReceiptLine:
    mrn: str
    name: str
    discharge_date: dt.date | None


@dataclass(frozen=True)
class ReceiptData:
    title: str
    hospital: str
    ward: str
    staff: str
    when: dt.datetime  # local time
    handover_no: str
    lines: tuple[ReceiptLine, ...]


def text_lines(r: ReceiptData) -> list[str]:
    """The body lines (without the title), as printed and as the page shows them."""
    out = [f"病区：{r.ward}", f"时间：{r.when:%Y-%m-%d %H:%M}", f"回收人：{r.staff}",
           f"交接单号：{r.handover_no}", f"份数：{len(r.lines)}"]
    return out


def record_line(ln: ReceiptLine) -> str:
    d = ln.discharge_date.strftime("%m-%d") if ln.discharge_date else "--"
    return f"{ln.mrn} {ln.name[:6]} {d}"


def build(r: ReceiptData, profile: str = "default", columns: int = 32) -> bytes:
    """The ESC/POS bytes of the receipt."""
    p = Dummy(profile=profile)
    p.hw("INIT")
    p.set(align="center", bold=True, double_height=True, double_width=False)
    p.textln(r.title)
    p.set(align="center", bold=False, normal_textsize=True)
    p.textln(r.hospital)
    p.set(align="left", normal_textsize=True)
    p.textln("-" * columns)
    for t in text_lines(r):
        p.textln(t)
    p.textln("-" * columns)
    p.textln("病案号   姓名   出院日期")
    for ln in r.lines:
        p.textln(record_line(ln))
    p.textln("-" * columns)
    p.ln(1)
    p.textln("病区交接人签名：")
    p.ln(2)
    p.textln("_" * columns)
    p.ln(3)
    p.cut(mode="PART", feed=True)
    return p.output
