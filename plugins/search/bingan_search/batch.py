"""Batch search: many admission numbers or MRNs, pasted or imported from xlsx/csv/txt.

The result lists what was found (every admission of a found MRN) and, just as important,
which numbers were not found. Excel tends to turn "00123456" into the number 123456: numeric
cells are read as integers and the result warns that leading zeros may be lost.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec
from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core.records import name_pinyin
from bingan.core.spreadsheets import SheetError, SheetLimits, read_rows
from bingan.core import identifiers
from bingan_search.names import has_han
from bingan_search.query import A, P
from bingan_search.results import SORTS, Hit, hits_for

BatchKind = Literal["admission_no", "mrn", "auto"]
KIND_LABELS = {"admission_no": "住院号", "mrn": "病案号", "auto": "自动识别（住院号或病案号）"}
HEADER_WORDS = {"住院号", "病案号", "admission_no", "mrn", "号码", "编号", "序号"}
_SPLIT = re.compile(r"[\s,，、;；|]+")
CHUNK = 500


class BatchError(ValueError):
    """The input cannot be read or is too big (message in Chinese)."""


class BatchInput(msgspec.Struct):
    """Numbers read from a paste or a file, in order, with warnings about the input."""

    numbers: list[str]
    warnings: list[str] = msgspec.field(default_factory=list)


class BatchHit(msgspec.Struct):
    """A found admission and the input number that found it."""

    number: str
    matched_by: str  # admission_no or mrn
    hit: Hit


class BatchResult(msgspec.Struct):
    kind: str
    submitted: int  # numbers given, duplicates included
    unique: int
    found_numbers: int
    not_found: list[str]
    duplicates: list[str]
    warnings: list[str]
    total: int  # admissions found
    page: int
    page_size: int
    pages: int
    sort: str | None
    desc: bool
    hits: list[BatchHit]


def split_text(text: str) -> list[str]:
    return [t for t in _SPLIT.split(text or "") if t]


def read_upload(filename: str, data: bytes, max_bytes: int,
                max_numbers: int | None = None) -> BatchInput:
    """Numbers from an uploaded xlsx, csv or txt file; BatchError when unreadable.

    Read through core.spreadsheets (bounded before and while parsing); with ``max_numbers``
    reading stops at the first number past it (``clean`` then refuses the list), so the rest
    of a huge sheet is never parsed."""
    numbers: list[str] = []
    plausible = 0  # numbers that clean() keeps (no header word, no Chinese)
    numeric = 0
    try:
        for row in read_rows(data, filename, limits=SheetLimits(max_bytes=max_bytes)):
            for v in row:
                if v is None or isinstance(v, bool):
                    continue
                if isinstance(v, float) and v.is_integer():
                    v = int(v)
                if isinstance(v, int):
                    numeric += 1
                    found = [str(v)]
                elif isinstance(v, str):
                    found = split_text(v)
                else:
                    found = [str(v)]
                numbers += found
                plausible += sum(1 for n in found if n not in HEADER_WORDS and not has_han(n))
            if max_numbers is not None and plausible > max_numbers:
                break
    except SheetError as exc:
        raise BatchError(str(exc)) from exc
    warnings = []
    if numeric:
        warnings.append(f"有 {numeric} 个单元格是数字格式，号码开头的 0 可能已被 Excel 去掉；"
                        "请把该列设为“文本”格式后再导入")
    return BatchInput(numbers, warnings)


def clean(inp: BatchInput, max_numbers: int) -> BatchInput:
    """Drop header words and other text with Chinese characters (headers, remarks: numbers
    never contain them), refuse empty or oversized input."""
    numbers: list[str] = []
    skipped: list[str] = []
    for n in (x.strip() for x in inp.numbers):
        if not n or n in HEADER_WORDS:
            continue
        if has_han(n):
            skipped.append(n)
            continue
        numbers.append(identifiers.clean(n))  # zy2024020025, full-width digits: as stored
    if not numbers:
        raise BatchError("没有找到任何号码")
    if len(numbers) > max_numbers:
        raise BatchError(f"号码过多（{len(numbers)} 个，一次最多 {max_numbers} 个）")
    warnings = list(inp.warnings)
    if skipped:
        shown = "、".join(skipped[:5]) + ("……" if len(skipped) > 5 else "")
        warnings.append(f"已忽略 {len(skipped)} 个含汉字的内容（表头或备注）：{shown}")
    return BatchInput(numbers, warnings)


def _lookup(session: Session, numbers: list[str], kind: str,
            mrn_pattern: str | None = None) -> dict[str, list[tuple[int, str]]]:
    """number -> [(admission id, matched_by)] in admission order.

    An MRN typed without its leading zeros (``200025`` for ``00200025``) finds the padded one
    (``identifiers.mrn_candidates`` with the hospital's ``mrn_pattern``); a number that is
    itself a stored MRN keeps that meaning."""
    found: dict[str, list[tuple[int, str]]] = {}
    for i in range(0, len(numbers), CHUNK):
        part = numbers[i:i + CHUNK]
        if kind in ("admission_no", "auto"):
            for adm_id, no in session.execute(
                    select(A.id, A.admission_no).where(A.admission_no.in_(part))):
                found.setdefault(no, []).append((adm_id, "admission_no"))
        if kind in ("mrn", "auto"):
            typed_for: dict[str, str] = {}  # candidate MRN -> the number typed
            for n in part:
                for cand in identifiers.mrn_candidates(n, mrn_pattern):
                    if cand == n or cand not in typed_for:
                        typed_for[cand] = n
            by_mrn: dict[str, list[int]] = {}
            for adm_id, mrn in session.execute(
                    select(A.id, P.mrn).join(P.id.table, P.id == A.patient_id)
                    .where(P.mrn.in_(list(typed_for)))
                    .order_by(P.mrn, A.visit_no)):
                by_mrn.setdefault(mrn, []).append(adm_id)
            for n in part:  # the exact MRN if stored, else its padded forms
                cands = identifiers.mrn_candidates(n, mrn_pattern)
                hit = [c for c in cands if c in by_mrn]
                if n in by_mrn:
                    hit = [n]
                for c in hit:
                    if typed_for.get(c) == n:
                        found.setdefault(n, []).extend((a, "mrn") for a in by_mrn[c])
    return found


def _sort_key(sort: str):
    def key(bh: BatchHit):
        h = bh.hit
        v = {"discharged_at": h.discharged_at, "admitted_at": h.admitted_at, "mrn": h.mrn,
             "name": name_pinyin(h.name)[0], "admission_no": h.admission_no,
             "visit_no": h.visit_no, "department": h.department_code, "age": h.age_years,
             "los": h.los_days}[sort]
        return v
    return key


def run_batch(session: Session, inp: BatchInput, kind: str, *, page: int, page_size: int,
              sort: str | None, desc: bool, mrn_pattern: str | None = None) -> BatchResult:
    """Look every number up; found rows in input order unless a sort column is given."""
    if kind not in KIND_LABELS:
        raise BatchError(f"未知的号码类型 {kind!r}（可用：admission_no、mrn、auto）")
    if sort is not None and sort not in SORTS:
        raise BatchError(f"不能按 {sort!r} 排序")
    seen: set[str] = set()
    unique: list[str] = []
    dups: list[str] = []
    for n in inp.numbers:
        if n in seen:
            if n not in dups:
                dups.append(n)
            continue
        seen.add(n)
        unique.append(n)
    found = _lookup(session, unique, kind, mrn_pattern)
    pairs: list[tuple[str, int, str]] = []
    for n in unique:
        for adm_id, by in found.get(n, []):
            pairs.append((n, adm_id, by))
    total = len(pairs)
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    window = slice((page - 1) * page_size, page * page_size)
    if sort is None:  # input order: only the rows of this page are needed
        pairs = pairs[window]
    hits: list[BatchHit] = []
    for i in range(0, len(pairs), CHUNK):
        part = pairs[i:i + CHUNK]
        rows = hits_for(session, [p[1] for p in part])
        hits.extend(BatchHit(n, by, h) for (n, _, by), h in zip(part, rows))
    if sort is not None:
        key = _sort_key(sort)
        present = [h for h in hits if key(h) is not None]
        missing = [h for h in hits if key(h) is None]
        present.sort(key=key, reverse=desc)  # stable: ties keep input order
        hits = (present + missing)[window]
    return BatchResult(
        kind=kind, submitted=len(inp.numbers), unique=len(unique),
        found_numbers=sum(1 for n in unique if n in found),
        not_found=[n for n in unique if n not in found], duplicates=dups,
        warnings=list(inp.warnings), total=total, page=page, page_size=page_size, pages=pages,
        sort=sort, desc=desc, hits=hits,
    )


def all_rows(session: Session, inp: BatchInput, kind: str, sort: str | None, desc: bool,
             max_rows: int, mrn_pattern: str | None = None) -> tuple[BatchResult, list[BatchHit]]:
    """Everything for an export: the result (page 1 of everything) and all found rows."""
    res = run_batch(session, inp, kind, page=1, page_size=max(1, max_rows), sort=sort, desc=desc,
                    mrn_pattern=mrn_pattern)
    return res, res.hits
