"""Reading a spreadsheet someone uploaded, with the work bounded before and while parsing.

Every reader of user spreadsheets (batch search lists, capture batch lists, admission imports)
goes through ``read_rows``:

- before anything is parsed: the file size; for an xlsx (a zip) the number of members and
  their declared uncompressed sizes (Python's zipfile never inflates a member past its
  declared size and checks its CRC, so the declared total bounds the XML parsed);
- while reading: rows come one at a time from the first sheet (openpyxl's read-only,
  streaming mode), at most ``max_columns`` cells of each row, and every cell read counts,
  empty ones too (a lone cell in row 1,048,576 makes a million empty rows; an empty row
  counts as one), against ``max_cells``. Trailing empty cells of a row are dropped. The caller stops reading once it has what it needs (its own cap): nothing
  after that is parsed.

(openpyxl reads a sheet's ``<dimension>`` when it opens the workbook; a sheet without one is
scanned to its end for it, without converting any cell: that scan is what
``max_uncompressed`` bounds.)

Text files (csv, txt, Excel's "Unicode text") are decoded (UTF-8, GB18030, UTF-16) and split by
``csv.reader``; their cells count the same way.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class SheetError(ValueError):
    """The file cannot be read or breaks a limit (message in Chinese, for the user)."""


@dataclass(frozen=True)
class SheetLimits:
    """Bounds on one uploaded spreadsheet."""

    max_bytes: int = 5 * 1024 * 1024          # the file as uploaded
    max_uncompressed: int = 32 * 1024 * 1024  # an xlsx's members, inflated (declared sizes)
    max_members: int = 200                     # files inside an xlsx
    max_cells: int = 200_000                   # cells read, empty ones included
    max_columns: int = 64                      # cells read of each row


XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def check_size(data: bytes, limits: SheetLimits) -> None:
    if not data:
        raise SheetError("文件是空的")
    if len(data) > limits.max_bytes:
        raise SheetError(f"文件过大（{_mb(len(data))}，上限 {_mb(limits.max_bytes)}）")


def check_xlsx(data: bytes, limits: SheetLimits) -> None:
    """Refuse an xlsx whose zip would inflate past the limits, before any XML is parsed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise SheetError(f"无法读取 Excel 文件（文件损坏或不是 xlsx）：{exc}") from exc
    if len(infos) > limits.max_members:
        raise SheetError(f"Excel 文件结构异常（包含 {len(infos)} 个部件，上限 "
                         f"{limits.max_members}）")
    total = sum(i.file_size for i in infos)
    if total > limits.max_uncompressed:
        raise SheetError(f"Excel 文件解压后过大（{_mb(total)}，上限 "
                         f"{_mb(limits.max_uncompressed)}），请删除无关的工作表或内容后再导入")


def decode_text(data: bytes) -> str:
    """A text file's content: UTF-16 with a BOM (Excel's "Unicode text"), else UTF-8 (with or
    without BOM), else GB18030; binary content is refused."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise SheetError("无法识别文件编码（UTF-16 文件已损坏）") from exc
    if b"\x00" in data[:4096]:
        raise SheetError("文件不是文本、CSV 或 xlsx")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise SheetError("无法识别文件编码（支持 UTF-8 和 GBK）")


class _Counter:
    def __init__(self, limits: SheetLimits) -> None:
        self.limits = limits
        self.cells = 0

    def add(self, n: int) -> None:
        self.cells += n
        if self.cells > self.limits.max_cells:
            raise SheetError(f"表格内容过多（超过 {self.limits.max_cells} 个单元格，含空单元格），"
                             "请分批导入或删除无关内容")


def _xlsx_rows(data: bytes, limits: SheetLimits) -> Iterator[list[Any]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise SheetError(f"无法读取 Excel 文件（文件损坏或不是 xlsx）：{exc}") from exc
    count = _Counter(limits)
    try:
        if not wb.worksheets:
            raise SheetError("Excel 文件中没有工作表")
        rows = wb.worksheets[0].iter_rows(values_only=True, max_col=limits.max_columns)
        while True:
            try:
                values = next(rows)
            except StopIteration:
                return
            except SheetError:
                raise
            except Exception as exc:
                raise SheetError(f"无法读取 Excel 文件（文件损坏）：{exc}") from exc
            row = list(values)
            while row and row[-1] is None:  # read-only mode pads rows to max_col
                row.pop()
            count.add(max(1, len(row)))  # an empty row counts as one cell
            yield row
    finally:
        wb.close()


def _text_rows(data: bytes, text: str, limits: SheetLimits,
               delimiter: str | None) -> Iterator[list[str]]:
    if delimiter is None:
        delimiter = "\t" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ","
    count = _Counter(limits)
    try:
        for row in csv.reader(io.StringIO(text), delimiter=delimiter):
            count.add(max(1, len(row)))
            yield row[:limits.max_columns]
    except csv.Error as exc:
        raise SheetError(f"无法读取 CSV 文件：{exc}") from exc


def kind_of(filename: str, data: bytes) -> str:
    """``xlsx`` or ``text``, from the content first and the name second; SheetError for the
    old binary .xls."""
    name = (filename or "").lower()
    if data[:4] == XLSX_MAGIC or name.endswith((".xlsx", ".xlsm")):
        return "xlsx"
    if data[:4] == OLE_MAGIC or name.endswith(".xls"):
        raise SheetError("不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 或 .csv")
    return "text"


def read_rows(data: bytes, filename: str = "", *, limits: SheetLimits = SheetLimits(),
              delimiter: str | None = None) -> Iterator[list[Any]]:
    """The rows of an uploaded xlsx (first sheet; cell values as openpyxl reads them) or text
    file (csv, txt; strings split by ``delimiter``, default "," or tab for UTF-16), read
    lazily within ``limits``. Stop iterating when you have enough: nothing later is parsed.
    Raises SheetError (Chinese message) for a file that is unreadable or breaks a limit."""
    check_size(data, limits)
    if kind_of(filename, data) == "xlsx":
        check_xlsx(data, limits)
        return _xlsx_rows(data, limits)
    return _text_rows(data, decode_text(data), limits, delimiter)


__all__ = ["SheetError", "SheetLimits", "check_xlsx", "decode_text", "kind_of", "read_rows"]
