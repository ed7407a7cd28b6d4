"""core.spreadsheets: uploaded spreadsheets are read within bounds (issue 9, H1).

The attack files are made here the way an attacker makes them: a sheet's XML written by hand
(millions of cells compress to a few hundred KB), a zip whose members inflate far beyond the
file, a lone cell in the sheet's last row. None of them may be parsed whole.
"""

from __future__ import annotations

import io

import openpyxl
import pytest
from bingan.core.spreadsheets import SheetError, SheetLimits, read_rows
from sheet_attacks import SHEET_HEAD, SHEET_TAIL, handmade_xlsx, number_rows


def test_reading_stops_at_the_callers_cap_and_never_parses_the_rest():
    # 30,000 rows of numbers, then XML that breaks the parser: reading the first 5,001
    # values works, so nothing after them was parsed
    head = SHEET_HEAD.replace("<sheetData>", '<dimension ref="A1:J30001"/><sheetData>')
    sheet = (head.encode() + number_rows(1, 30_000) + b"<row r=\"x\"><c><v>broken"
             + SHEET_TAIL.encode())
    data = handmade_xlsx(sheet)
    assert len(data) < 1_000_000  # a few hundred KB, as in the finding
    values = []
    for row in read_rows(data, "numbers.xlsx", limits=SheetLimits(max_cells=10**7, max_uncompressed=10**9)):
        values += [v for v in row if v is not None]
        if len(values) > 5000:
            break
    assert len(values) == 5010
    # reading on meets the broken part: a clear error, not a 500
    with pytest.raises(SheetError, match="无法读取 Excel"):
        for _ in read_rows(data, "numbers.xlsx", limits=SheetLimits(max_cells=10**7, max_uncompressed=10**9)):
            pass


def test_cell_count_is_bounded_empty_cells_included():
    # one cell in the sheet's last row: a million empty rows in between
    sheet = (SHEET_HEAD + '<row r="1"><c t="n"><v>1</v></c></row>'
             '<row r="1048576"><c r="A1048576" t="n"><v>2</v></c></row>' + SHEET_TAIL)
    with pytest.raises(SheetError, match="超过 1000 个单元格"):
        list(read_rows(handmade_xlsx(sheet.encode()), limits=SheetLimits(max_cells=1000)))
    # wide rows count every cell too; only max_columns of a row are returned
    wide = SHEET_HEAD.encode() + number_rows(1, 3, cols=500) + SHEET_TAIL.encode()
    rows = list(read_rows(handmade_xlsx(wide), limits=SheetLimits(max_columns=20)))
    assert [len(r) for r in rows] == [20, 20, 20]


def test_declared_uncompressed_size_is_checked_before_parsing():
    sheet = SHEET_HEAD.encode() + number_rows(1, 50_000) + SHEET_TAIL.encode()
    data = handmade_xlsx(sheet)
    with pytest.raises(SheetError, match="解压后过大"):
        read_rows(data, limits=SheetLimits(max_uncompressed=1024 * 1024))  # raised at once
    # a member whose header lies about its size: zipfile stops at the declared size
    # and the CRC check fails, so the lie gains nothing
    buf = bytearray(data)
    i = buf.find(b"xl/worksheets/sheet1.xml", buf.find(b"PK\x01\x02"))
    hdr = buf.rfind(b"PK\x01\x02", 0, i)
    buf[hdr + 24:hdr + 28] = (100).to_bytes(4, "little")  # central directory: 100 bytes
    with pytest.raises(SheetError):
        list(read_rows(bytes(buf), limits=SheetLimits(max_cells=10**7, max_uncompressed=10**9)))
    with pytest.raises(SheetError, match="部件"):
        read_rows(data, limits=SheetLimits(max_members=3))


def test_size_kind_and_encodings():
    with pytest.raises(SheetError, match="文件过大"):
        read_rows(b"1" * 101, limits=SheetLimits(max_bytes=100))
    with pytest.raises(SheetError, match="空的"):
        read_rows(b"")
    with pytest.raises(SheetError, match=r"\.xls"):
        read_rows(b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "old.xls")
    with pytest.raises(SheetError, match="不是 xlsx"):
        read_rows(b"PK\x03\x04 not a zip at all")
    with pytest.raises(SheetError, match="不是文本"):
        read_rows(b"\x00\x01\x02binary")
    assert list(read_rows("住院号,页数\nZY1,3\n".encode("gb18030"))) == [["住院号", "页数"],
                                                                      ["ZY1", "3"]]
    assert list(read_rows("\ufeffa,b\n".encode())) == [["a", "b"]]
    assert list(read_rows("a\tb\r\nc\td\r\n".encode("utf-16"))) == [["a", "b"], ["c", "d"]]
    with pytest.raises(SheetError, match="超过 3 个单元格"):
        list(read_rows(b"1,2\n3,4\n", limits=SheetLimits(max_cells=3)))


def test_a_real_workbook_reads_as_written():
    wb = openpyxl.Workbook()
    wb.active.append(["住院号", "应有页数"])
    wb.active.append(["ZY202401000001", 12])
    buf = io.BytesIO()
    wb.save(buf)
    assert list(read_rows(buf.getvalue(), "x.xlsx")) == [["住院号", "应有页数"],
                                                          ["ZY202401000001", 12]]
