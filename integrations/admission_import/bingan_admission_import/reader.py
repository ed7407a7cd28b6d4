"""Reading a front-page file within bounds, before and while parsing.

A spreadsheet is a zip of XML: a small upload can inflate to gigabytes. Before openpyxl sees
an xlsx, the file size, the zip's uncompressed size and compression ratio, and the sheet's
declared dimension are checked; rows are then streamed (read-only mode) and reading stops at
``max_rows`` and ``max_columns``. A CSV is checked for size, decoded as UTF-8 (with BOM) or
GB18030, and read with a bounded field size.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bingan.core.frontpage import column_key


class FileRefused(ValueError):
    """The file is refused before or while reading it (the message is Chinese)."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024
    max_uncompressed: int = 400 * 1024 * 1024
    max_ratio: int = 200
    max_rows: int = 100_000
    max_columns: int = 400


@dataclass
class Sheet:
    """The header (layout keys by column index, unknown headers kept as text) and rows."""

    headers: list[str | None]
    raw_headers: list[str]
    rows: Iterator[tuple[int, dict[str, Any], list[Any]]]  # (row number, by key, raw cells)
    unknown: list[str]


def _check_zip(path: Path, limits: Limits) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            total = 0
            for info in z.infolist():
                total += info.file_size
                if info.compress_size and info.file_size / info.compress_size > limits.max_ratio \
                        and info.file_size > 1024 * 1024:
                    raise FileRefused(f"文件内容压缩比异常（{info.filename}），拒绝读取")
            if total > limits.max_uncompressed:
                raise FileRefused(f"文件解压后超过 {limits.max_uncompressed // 1024 // 1024} MB，"
                                  "请拆分后导入")
            sheet = next((n for n in z.namelist() if n.startswith("xl/worksheets/sheet")), None)
            if sheet is None:
                raise FileRefused("不是有效的 xlsx 文件（没有工作表）")
            with z.open(sheet) as fh:
                head = fh.read(4096).decode("utf-8", errors="replace")
            m = re.search(r'<dimension ref="[A-Z]+\d+:([A-Z]+)(\d+)"', head)
            if m and int(m.group(2)) > limits.max_rows + 1:
                raise FileRefused(f"文件有 {int(m.group(2)) - 1} 行，超过单次导入上限 "
                                  f"{limits.max_rows} 行，请拆分后导入")
    except zipfile.BadZipFile as exc:
        raise FileRefused("不是有效的 xlsx 文件") from exc


def _headers(cells: list[Any]) -> tuple[list[str | None], list[str], list[str]]:
    raw = ["" if c is None else str(c).strip() for c in cells]
    keys = [column_key(c) if c else None for c in raw]
    seen: set[str] = set()
    for i, k in enumerate(keys):
        if k is not None and k in seen:
            raise FileRefused(f"表头“{raw[i]}”重复")
        if k:
            seen.add(k)
    unknown = [r for r, k in zip(raw, keys) if r and k is None]
    return keys, raw, unknown


def read_file(path: Path, limits: Limits | None = None) -> Sheet:
    """Open a front-page file (.xlsx or .csv) for streaming; FileRefused when out of bounds."""
    limits = limits or Limits()
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise FileRefused(f"文件 {size // 1024 // 1024} MB，超过上限 "
                          f"{limits.max_bytes // 1024 // 1024} MB")
    if size == 0:
        raise FileRefused("文件是空的")
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _read_xlsx(path, limits)
    if suffix == ".csv":
        return _read_csv(path, limits)
    raise FileRefused("只支持 .xlsx 和 .csv 文件")


def _read_xlsx(path: Path, limits: Limits) -> Sheet:
    from openpyxl import load_workbook

    _check_zip(path, limits)
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a broken file
        raise FileRefused(f"无法读取 xlsx 文件：{type(exc).__name__}") from exc
    ws = wb.worksheets[0]
    it = ws.iter_rows(values_only=True, max_col=limits.max_columns + 1)
    try:
        header = list(next(it))
    except StopIteration:
        wb.close()
        raise FileRefused("文件没有表头行") from None
    while header and (header[-1] is None or not str(header[-1]).strip()):
        header.pop()  # read-only rows are padded to max_col
    if len(header) > limits.max_columns:
        wb.close()
        raise FileRefused(f"列数超过上限 {limits.max_columns}")
    keys, raw, unknown = _headers(header)

    def rows():
        try:
            for n, cells in enumerate(it, start=2):
                if n - 1 > limits.max_rows:
                    raise FileRefused(f"超过单次导入上限 {limits.max_rows} 行，请拆分后导入")
                cells = list(cells)
                if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
                    continue
                yield n, {k: v for k, v in zip(keys, cells) if k}, cells
        finally:
            wb.close()

    return Sheet(keys, raw, rows(), unknown)


def _read_csv(path: Path, limits: Limits) -> Sheet:
    data = path.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise FileRefused("CSV 文件编码无法识别（应为 UTF-8 或 GB18030）")
    csv.field_size_limit(64 * 1024)
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise FileRefused("文件没有表头行") from None
    except csv.Error as exc:
        raise FileRefused(f"CSV 格式错误：{exc}") from exc
    if len(header) > limits.max_columns:
        raise FileRefused(f"列数超过上限 {limits.max_columns}")
    keys, raw, unknown = _headers(header)

    def rows():
        try:
            for n, cells in enumerate(reader, start=2):
                if n - 1 > limits.max_rows:
                    raise FileRefused(f"超过单次导入上限 {limits.max_rows} 行，请拆分后导入")
                if not any(c.strip() for c in cells):
                    continue
                yield n, {k: (v if v.strip() else None) for k, v in zip(keys, cells) if k}, cells
        except csv.Error as exc:
            raise FileRefused(f"CSV 格式错误（第 {reader.line_num} 行）：{exc}") from exc

    return Sheet(keys, raw, rows(), unknown)


def estimate_rows(path: Path) -> int | None:
    """Data rows a file says it has (xlsx: the sheet's dimension; csv: its lines), for a
    progress bar; None when unknown. Reads no more than the header of the sheet."""
    try:
        if path.suffix.lower() == ".csv":
            with open(path, "rb") as fh:
                return max(0, sum(chunk.count(b"\n") for chunk in iter(
                    lambda: fh.read(1 << 20), b"")) - 1) or None
        with zipfile.ZipFile(path) as z:
            sheet = next((n for n in z.namelist() if n.startswith("xl/worksheets/sheet")), None)
            if sheet is None:
                return None
            with z.open(sheet) as fh:
                head = fh.read(4096).decode("utf-8", errors="replace")
        m = re.search(r'<dimension ref="[A-Z]+\d+:[A-Z]+(\d+)"', head)
        return int(m.group(1)) - 1 if m else None
    except (OSError, zipfile.BadZipFile):
        return None
