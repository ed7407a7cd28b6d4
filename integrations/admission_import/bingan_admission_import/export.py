"""Writing front pages in the import layout (the demo's file, the empty template)."""

from __future__ import annotations

import io
from typing import Any

from bingan.core.frontpage import COLUMNS


def write_rows(rows: list[dict[str, Any]]) -> bytes:
    """An xlsx with every layout column (Chinese headers) and one row per dict."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                   "strings_to_urls": False, "strings_to_numbers": False})
    ws = wb.add_worksheet("住院病案首页")
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7"})
    ws.write_row(0, 0, [h for _, h, _ in COLUMNS], head)
    keys = [k for k, _, _ in COLUMNS]
    for r, row in enumerate(rows, start=1):
        for c, key in enumerate(keys):
            v = row.get(key)
            if v is None or v == "":
                continue
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                ws.write_number(r, c, v)
            else:
                ws.write_string(r, c, str(v))
    ws.freeze_panes(1, 0)
    wb.close()
    return buf.getvalue()
