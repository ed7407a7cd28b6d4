"""Importing a front-page file: every row through ``core.intake``; a bad row is reported
(row, column, reason) and the others go in.

Rows are written in chunks (one transaction per ``CHUNK`` rows, each row in a savepoint), so a
long import never holds the database's write lock for long and a refused row leaves nothing
behind. A dry run checks every row against the rules and the database (and against the other
rows of the file) without writing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bingan.core import audit, intake
from bingan.core.frontpage import COLUMNS, Parsed, problem_column, row_to_admission
from sqlalchemy.exc import IntegrityError

from bingan_admission_import.reader import FileRefused, Limits, read_file
from bingan_admission_import.settings import ImportSettings
from bingan.core.config import CoreSettings

CHUNK = 200


@dataclasses.dataclass(frozen=True)
class RowIssue:
    row: int
    column: str
    reason: str
    value: str | None = None


@dataclasses.dataclass
class Report:
    file_name: str
    dry_run: bool
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    issues: list[RowIssue] = dataclasses.field(default_factory=list)
    rejected: dict[int, list[Any]] = dataclasses.field(default_factory=dict)  # row -> cells
    raw_headers: list[str] = dataclasses.field(default_factory=list)
    unknown_headers: list[str] = dataclasses.field(default_factory=list)
    refused: str | None = None  # the whole file was refused (too big, not a spreadsheet ...)
    preview: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.created + self.updated + self.unchanged

    @property
    def rejected_rows(self) -> int:
        return len(self.rejected)

    def summary(self) -> str:
        if self.refused:
            return f"文件未导入：{self.refused}"
        verb = "校验通过" if self.dry_run else "已导入"
        text = (f"共 {self.total} 行：{verb} {self.accepted} 行"
                + ("" if self.dry_run else f"（新增 {self.created}，更新 {self.updated}，"
                                           f"无变化 {self.unchanged}）")
                + f"，有问题 {self.rejected_rows} 行")
        return text

    def lines(self, limit: int | None = None) -> list[str]:
        """The validation report in Chinese, one line per problem."""
        out = [f"第 {i.row} 行 {i.column}：{i.reason}" + (f"（{i.value}）" if i.value else "")
               for i in self.issues[:limit]]
        if limit is not None and len(self.issues) > limit:
            out.append(f"…… 另有 {len(self.issues) - limit} 个问题，见问题行 Excel")
        return out

    def rejected_xlsx(self) -> bytes:
        """The rejected rows as they were in the file, with a 问题 column, to fix and re-import."""
        import xlsxwriter

        buf = io.BytesIO()
        wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                       "strings_to_urls": False})
        ws = wb.add_worksheet("问题行")
        bold = wb.add_format({"bold": True, "bg_color": "#FDE9D9"})
        ws.write_row(0, 0, ["原行号", "问题", *self.raw_headers], bold)
        reasons: dict[int, list[str]] = {}
        for i in self.issues:
            reasons.setdefault(i.row, []).append(
                f"{i.column}：{i.reason}" + (f"（{i.value}）" if i.value else ""))
        for r, (row_no, cells) in enumerate(sorted(self.rejected.items()), start=1):
            ws.write_number(r, 0, row_no)
            ws.write_string(r, 1, "；".join(reasons.get(row_no, [])))
            for c, v in enumerate(cells, start=2):
                if v is None:
                    continue
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    ws.write_number(r, c, v)
                else:
                    ws.write_string(r, c, _neutralise(str(v)))
        ws.set_column(1, 1, 60)
        ws.freeze_panes(1, 2)
        wb.close()
        return buf.getvalue()


def _neutralise(text: str) -> str:
    """A cell that a spreadsheet would run as a formula is written as text with a quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _FileState:
    """What earlier rows of the same file said (duplicates, one name per MRN)."""

    def __init__(self) -> None:
        self.admissions: dict[str, int] = {}
        self.visits: dict[tuple[str, int], tuple[str, int]] = {}
        self.names: dict[str, tuple[str, int]] = {}

    def problems(self, row: int, a) -> list[RowIssue]:
        out = []
        if a.admission_no in self.admissions:
            out.append(RowIssue(row, "住院号", f"与第 {self.admissions[a.admission_no]} 行重复",
                                a.admission_no))
        key = (a.patient.mrn, a.visit_no)
        if key in self.visits and self.visits[key][0] != a.admission_no:
            out.append(RowIssue(row, "住院次数", f"与第 {self.visits[key][1]} 行的病案号、"
                                                 "住院次数相同", str(a.visit_no)))
        prev = self.names.get(a.patient.mrn)
        if prev and a.patient.name and prev[0] != a.patient.name:
            out.append(RowIssue(row, "姓名", f"同一病案号在第 {prev[1]} 行姓名为 {prev[0]}",
                                a.patient.name))
        return out

    def add(self, row: int, a) -> None:
        self.admissions.setdefault(a.admission_no, row)
        self.visits.setdefault((a.patient.mrn, a.visit_no), (a.admission_no, row))
        if a.patient.name:
            self.names.setdefault(a.patient.mrn, (a.patient.name, row))


def import_file(rt, path: Path, *, actor: audit.Actor, dry_run: bool = False,
                settings=None, progress: Callable[[int], None] | None = None,
                file_name: str | None = None, preview_rows: int = 0,
                session=None) -> Report:
    """Import (or with ``dry_run`` only check) a front-page file; returns the report. With
    ``session`` everything happens in the caller's transaction (the demo's load)."""
    cfg = settings if settings is not None else rt.settings(ImportSettings)
    name = file_name or path.name
    report = Report(name, dry_run)
    limits = Limits(max_bytes=cfg.max_file_mb * 1024 * 1024, max_rows=cfg.max_rows)
    try:
        sheet = read_file(path, limits)
    except FileRefused as exc:
        report.refused = str(exc)
        _audit(rt, report, actor, session)
        return report
    report.raw_headers, report.unknown_headers = sheet.raw_headers, sheet.unknown
    present = {k for k in sheet.headers if k}
    needed = {"mrn", "visit_no", "name", "admitted_at"} | (
        set() if cfg.admission_no_template else {"admission_no"})
    missing = [h for k, h, _ in COLUMNS if k in needed and k not in present]
    if missing:
        report.refused = "缺少必需的列：" + "、".join(missing)
        _audit(rt, report, actor, session)
        return report
    state = _FileState()
    mrn_ok = re.compile(rt.settings(CoreSettings).mrn_pattern)
    directory: intake.Directory | None = None
    chunk: list[tuple[int, Parsed, list[Any]]] = []
    try:
        for row_no, values, cells in sheet.rows:
            report.total += 1
            parsed = row_to_admission(values, tz=rt.tz,
                                      admission_no_template=cfg.admission_no_template)
            if len(report.preview) < preview_rows:
                report.preview.append({"row": row_no, "admission": parsed.admission,
                                       "problems": parsed.problems})
            if parsed.admission is None:
                _reject(report, row_no, cells, [RowIssue(row_no, c, r, v)
                                                for c, r, v in parsed.problems])
                continue
            # rows of one file are checked against each other when their MRN is one (a
            # malformed MRN is reported by the intake, not as a clash with another bad row)
            if mrn_ok.search(parsed.admission.patient.mrn or ""):
                dup = state.problems(row_no, parsed.admission)
                if dup:
                    _reject(report, row_no, cells, dup)
                    continue
                state.add(row_no, parsed.admission)
            chunk.append((row_no, parsed, cells))
            if len(chunk) >= CHUNK:
                directory = _run_chunk(rt, chunk, report, actor, dry_run, directory, name,
                                       session)
                chunk = []
                if progress:
                    progress(report.total)
        if chunk:
            _run_chunk(rt, chunk, report, actor, dry_run, directory, name, session)
        if progress:
            progress(report.total)
    except FileRefused as exc:
        report.refused = str(exc)
    report.issues.sort(key=lambda i: i.row)
    _audit(rt, report, actor, session)
    return report


def _reject(report: Report, row_no: int, cells: list[Any], issues: list[RowIssue]) -> None:
    report.issues.extend(issues)
    report.rejected[row_no] = cells


@contextlib.contextmanager
def _transaction(rt, session):
    if session is not None:
        yield session
        return
    with rt.sessions() as s, s.begin():
        yield s


def _run_chunk(rt, chunk, report: Report, actor: audit.Actor, dry_run: bool,
               directory: intake.Directory | None, file_name: str,
               session=None) -> intake.Directory:
    with _transaction(rt, session) as s:
        if directory is None:
            directory = intake.Directory(s)
        directory.session = s
        for row_no, parsed, cells in chunk:
            source = intake.Source("import", actor, ref=f"{file_name}#{row_no}")
            a = parsed.admission
            if dry_run:
                _clean, problems = intake.check(s, rt, a, source, directory=directory)
                if problems:
                    _reject(report, row_no, cells, _issues(row_no, problems, parsed))
                else:
                    report.unchanged += 1
                continue
            try:
                with s.begin_nested():
                    res = intake.record_admission(s, rt, a, source, directory=directory)
            except intake.IntakeError as exc:
                _reject(report, row_no, cells, _issues(row_no, exc.problems, parsed))
                continue
            except IntegrityError as exc:  # a rule the intake does not know of (a plugin's)
                _reject(report, row_no, cells, [RowIssue(row_no, "（整行）",
                                                         f"数据库拒绝：{exc.orig}"[:300])])
                continue
            if res.created:
                report.created += 1
            elif res.changed:
                report.updated += 1
            else:
                report.unchanged += 1
    return directory


def _issues(row_no: int, problems: list[intake.Problem], parsed: Parsed) -> list[RowIssue]:
    return [RowIssue(row_no, problem_column(p.field, parsed.origin), p.reason, p.value)
            for p in problems]


def _audit(rt, report: Report, actor: audit.Actor, session=None) -> None:
    with _transaction(rt, session) as s:
        audit.record(s, rt, "admission_import.dry_run" if report.dry_run
                     else "admission_import.run", actor=actor,
                     outcome="failed" if report.refused else "ok",
                     detail={"file": report.file_name, "rows": report.total,
                             "created": report.created, "updated": report.updated,
                             "unchanged": report.unchanged, "rejected": report.rejected_rows,
                             "refused": report.refused})

