"""Table export (xlsx with xlsxwriter, csv with a BOM so Excel reads Chinese)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any, Iterable, Sequence
from urllib.parse import quote

import xlsxwriter


def _cell(v: Any, tz: dt.tzinfo) -> Any:
    if isinstance(v, dt.datetime):
        return v.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, dt.date):
        return v.isoformat()
    return "" if v is None else v


def to_xlsx(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
            tz: dt.tzinfo) -> bytes:
    """An xlsx workbook with one sheet, a bold frozen header row and fitted column widths.
    Times are written as the hospital's clock (``tz``, the runtime's ``rt.tz``) shows them."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                   "strings_to_urls": False})
    ws = wb.add_worksheet(title[:31])
    bold = wb.add_format({"bold": True, "bg_color": "#E8EEF7", "border": 1})
    widths = [len(h) * 2 + 2 for h in headers]
    for c, h in enumerate(headers):
        ws.write(0, c, h, bold)
    n = 0
    for n, row in enumerate(rows, start=1):
        for c, v in enumerate(row):
            v = _cell(v, tz)
            ws.write(n, c, v)
            widths[c] = min(60, max(widths[c], len(str(v)) + 2))
    for c, w in enumerate(widths):
        ws.set_column(c, c, w)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(n, 1), len(headers) - 1)
    wb.close()
    return buf.getvalue()


# A text cell starting with one of these is run as a formula by Excel, LibreOffice or WPS
# (OWASP "CSV Injection"): = + - @, tab and carriage return, and their full-width forms,
# which an input method produces and some spreadsheet programs accept the same way.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def neutralize_cell(v: Any) -> Any:
    """A CSV cell that no spreadsheet program runs as a formula: text starting with a formula
    character gets a leading apostrophe (OWASP's advice; the spreadsheet shows the text as
    written). Numbers, dates and other text pass unchanged."""
    if isinstance(v, str) and v.startswith(FORMULA_STARTS):
        return "'" + v
    return v


def to_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, tz: dt.tzinfo) -> bytes:
    """A CSV file (UTF-8 with BOM, so Excel reads the Chinese) whose every cell, headers
    included, went through ``neutralize_cell``. Every CSV the product writes comes from here."""
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_MINIMAL)
    w.writerow([neutralize_cell(h) for h in headers])
    for row in rows:
        w.writerow([neutralize_cell(_cell(v, tz)) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def content_disposition(filename: str) -> str:
    """An attachment header safe for Chinese file names (RFC 6266 filename*)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
