"""Reading a front-page file within bounds, before and while parsing, through core's bounded
spreadsheet reader (``bingan.core.spreadsheets``: file size, an xlsx's members and inflated
size, cells and columns counted as rows stream in).

On top of it: the sheet's declared dimension is checked against ``max_rows`` before openpyxl
opens the workbook (a 200,000-row export is refused at once, not after 100,000 rows), the
header row is mapped to the layout (``bingan.core.frontpage``) and rows are numbered as the
spreadsheet shows them.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bingan.core.frontpage import column_key
from bingan.core.spreadsheets import SheetError, SheetLimits, read_rows


class FileRefused(ValueError):
    """The file is refused before or while reading it (the message is Chinese)."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024
    max_uncompressed: int = 128 * 1024 * 1024
    max_rows: int = 100_000
    max_columns: int = 400

    def sheet(self) -> SheetLimits:
        return SheetLimits(max_bytes=self.max_bytes, max_uncompressed=self.max_uncompressed,
                           max_members=200, max_columns=self.max_columns,
                           max_cells=(self.max_rows + 1) * self.max_columns)


@dataclass
class Sheet:
    """The header (layout keys by column index, unknown headers kept as text) and rows."""

    headers: list[str | None]
    raw_headers: list[str]
    rows: Iterator[tuple[int, dict[str, Any], list[Any]]]  # (row number, by key, raw cells)
    unknown: list[str]


def _declared_rows(path: Path) -> int | None:
    """Rows an xlsx's first sheet declares (its ``<dimension>``), read from the zip without
    parsing the workbook; None when it does not say."""
    try:
        with zipfile.ZipFile(path) as z:
            sheet = next((n for n in z.namelist() if n.startswith("xl/worksheets/sheet")), None)
            if sheet is None:
                return None
            with z.open(sheet) as fh:
                head = fh.read(4096).decode("utf-8", errors="replace")
    except (OSError, zipfile.BadZipFile):
        return None  # core's reader says what is wrong with the file
    m = re.search(r'<dimension ref="[A-Z]+\d+:[A-Z]+(\d+)"', head)
    return int(m.group(1)) - 1 if m else None


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
    if path.suffix.lower() not in (".xlsx", ".csv"):
        raise FileRefused("只支持 .xlsx 和 .csv 文件")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise FileRefused(f"文件 {size / 1024 / 1024:.1f} MB，超过上限 "
                          f"{limits.max_bytes // 1024 // 1024} MB")
    if path.suffix.lower() == ".xlsx":
        declared = _declared_rows(path)
        if declared is not None and declared > limits.max_rows:
            raise FileRefused(f"文件有 {declared} 行，超过单次导入上限 {limits.max_rows} 行，"
                              "请拆分后导入")
    try:
        it = read_rows(path.read_bytes(), path.name, limits=limits.sheet())
        header = next(it)
    except SheetError as exc:
        raise FileRefused(str(exc)) from exc
    except StopIteration:
        raise FileRefused("文件没有表头行") from None
    keys, raw, unknown = _headers(header)

    def rows():
        n = 1
        try:
            for cells in it:
                n += 1
                if n - 1 > limits.max_rows:
                    raise FileRefused(f"超过单次导入上限 {limits.max_rows} 行，请拆分后导入")
                if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
                    continue
                yield n, {k: (None if isinstance(v, str) and not v.strip() else v)
                          for k, v in zip(keys, cells) if k}, list(cells)
        except SheetError as exc:
            raise FileRefused(f"第 {n} 行附近：{exc}") from exc

    return Sheet(keys, raw, rows(), unknown)


def estimate_rows(path: Path) -> int | None:
    """Data rows a file says it has (xlsx: the sheet's dimension; csv: its lines), for a
    progress bar; None when unknown."""
    if path.suffix.lower() == ".csv":
        try:
            with open(path, "rb") as fh:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        except OSError:
            return None
        return max(0, lines - 1) or None
    return _declared_rows(path)
