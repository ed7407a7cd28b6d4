"""Exports: the folder layout, the catalog index table (目录清单), the offline package.

Folder layout (D3)::

    DIR/<MRN>/<MRN>_<visit>_<discharge yyyymmdd>.pdf     (file name: setting ``file_name``)
    DIR/目录清单.xlsx, DIR/目录清单.csv                    (setting ``catalog_name``)

The offline package (D4) is the same folder plus ``index.html``: one self-contained page (plain
inline script, the record list embedded as a JavaScript array, no modules, no fetch) that finds
records by MRN, name, admission number or discharge date and opens the PDFs through relative
links in the browser's own viewer, from file:// with no server. ``--zip`` also writes
``DIR.zip`` beside the folder.

Every PDF is copied from the blob store while hashing; a copy whose SHA-256 differs from the
stored document's is an error (D10: nothing damaged on the way). A file already in place with
the right content is left alone, so an export can be re-run into the same folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import xlsxwriter
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from bingan.core import audit
from bingan.core.exporting import to_csv
from bingan.core.models import Admission, Document, Patient, utcnow
from bingan_archive.models import DIGITIZED, ArchiveRecord
from bingan_archive.service import local_date
from bingan_archive.settings import ArchiveSettings
from bingan.core.config import CoreSettings

CATALOG_HEADERS = ["病案号", "住院号", "住院次数", "患者姓名", "出院日期", "页数",
                   "文件大小（字节）", "SHA-256", "生成时间"]
LAYOUTS = ("folders", "offline")
Progress = Callable[[int], None] | None


class ExportError(RuntimeError):
    """An export that cannot be completed (bad target, a damaged blob ...)."""


@dataclass(frozen=True)
class Item:
    """One exported record: the admission and the PDF version that goes out."""

    admission_id: int
    mrn: str
    admission_no: str
    visit_no: int
    patient_name: str
    name_initials: str
    discharge_date: dt.date | None
    document_id: int
    version: int
    sha256: str
    size: int
    page_count: int
    created_at: dt.datetime
    relpath: str  # posix path of the PDF inside the export folder

    def catalog_row(self, tz: dt.tzinfo) -> list[Any]:
        return [self.mrn, self.admission_no, self.visit_no, self.patient_name,
                self.discharge_date.isoformat() if self.discharge_date else "",
                self.page_count, self.size, self.sha256,
                self.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")]


@dataclass
class ExportResult:
    layout: str
    target: str
    records: int = 0
    bytes: int = 0
    written: int = 0  # PDFs copied (the rest were already in place)
    zip_path: str | None = None
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("files")
        return d


class _NoDate:
    """Formats like a date for records not discharged yet."""

    def __format__(self, spec: str) -> str:
        return "00000000"


_SAFE = re.compile(r"[^0-9A-Za-z_\-\u4e00-\u9fff]")


def safe_part(text: str) -> str:
    """A path component that cannot climb out of the export folder."""
    out = _SAFE.sub("_", str(text)).strip("._")
    return out or "_"


def pdf_relpath(rt, mrn: str, visit_no: int, admission_no: str,
                discharge: dt.date | None) -> str:
    s = rt.settings(ArchiveSettings)
    stem = s.file_name.format(mrn=mrn, visit_no=visit_no, admission_no=admission_no,
                              discharge=discharge or _NoDate(),
                              org_code=rt.settings(CoreSettings).org_code)
    return f"{safe_part(mrn)}/{safe_part(stem)}.pdf"


def _china_bounds(start: dt.date | None, end: dt.date | None, tz: dt.tzinfo):
    lo = dt.datetime.combine(start, dt.time(), tz) if start else None
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz) if end else None
    return lo, hi


def select_items(session: Session, rt, *, start: dt.date | None = None,
                 end: dt.date | None = None, digitized_only: bool = True,
                 admission_ids: Sequence[int] | None = None) -> list[Item]:
    """The records to export, ordered by MRN and visit: with ``digitized_only`` the
    digitized ones with the version they were digitized with, else every admission's latest
    PDF. ``start``/``end`` filter the discharge date (China time, inclusive)."""
    if digitized_only:
        q = (select(Admission, Patient, Document)
             .join(Patient, Patient.id == Admission.patient_id)
             .join(ArchiveRecord, ArchiveRecord.admission_id == Admission.id)
             .join(Document, and_(Document.admission_id == Admission.id,
                                  Document.version == ArchiveRecord.document_version))
             .where(ArchiveRecord.status == DIGITIZED))
    else:
        latest = (select(Document.admission_id, func.max(Document.version).label("v"))
                  .group_by(Document.admission_id).subquery())
        q = (select(Admission, Patient, Document)
             .join(Patient, Patient.id == Admission.patient_id)
             .join(latest, latest.c.admission_id == Admission.id)
             .join(Document, and_(Document.admission_id == Admission.id,
                                  Document.version == latest.c.v)))
    lo, hi = _china_bounds(start, end, rt.tz)
    if lo is not None:
        q = q.where(Admission.discharged_at >= lo)
    if hi is not None:
        q = q.where(Admission.discharged_at < hi)
    if admission_ids is not None:
        q = q.where(Admission.id.in_(list(admission_ids)))
    q = q.order_by(Patient.mrn, Admission.visit_no, Admission.id)
    items: list[Item] = []
    seen: set[str] = set()
    for adm, pat, doc in session.execute(q):
        disc = local_date(adm.discharged_at, rt.tz)
        rel = pdf_relpath(rt, pat.mrn, adm.visit_no, adm.admission_no, disc)
        if rel in seen:  # a file-name pattern without visit_no: keep both files apart
            rel = rel[:-4] + f"_{safe_part(adm.admission_no)}.pdf"
        seen.add(rel)
        items.append(Item(adm.id, pat.mrn, adm.admission_no, adm.visit_no, pat.name,
                          pat.name_initials or "", disc, doc.id, doc.version, doc.blob_sha256,
                          doc.size, doc.page_count, doc.created_at, rel))
    return items


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(dest: Path, data: bytes) -> None:
    """Write a file so that a reader sees the old or the new content, never a part."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(dest.parent)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_blob(rt, sha: str, size: int, dest: Path,
              extra_hashes: Iterable[str] = ()) -> tuple[bool, dict[str, str]]:
    """Copy blob ``sha`` to ``dest`` (atomic), checking its SHA-256 on the way. Returns
    (written, {algorithm: hex}) for ``extra_hashes``; an identical file in place is kept."""
    algos = list(extra_hashes)
    if dest.is_file() and dest.stat().st_size == size and not algos:
        if file_sha256(dest) == sha:
            return False, {}
    dest.parent.mkdir(parents=True, exist_ok=True)
    hashers = {"sha256": hashlib.sha256(), **{a: hashlib.new(a) for a in algos if a != "sha256"}}
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out, rt.store.open(sha) as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                for h in hashers.values():
                    h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        got = hashers["sha256"].hexdigest()
        if got != sha:
            raise ExportError(f"存储中的文件已损坏：{sha[:12]}… 实际哈希 {got[:12]}…")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(dest.parent)
    return True, {a: hashers[a].hexdigest() for a in algos}


# --------------------------------------------------------------------------------------------
# Catalog (目录清单)
# --------------------------------------------------------------------------------------------


def catalog_rows(items: Sequence[Item], tz: dt.tzinfo) -> tuple[list[list[Any]], list[Any]]:
    rows = [i.catalog_row(tz) for i in items]
    totals = ["合计", f"{len(items)} 份", "", "", "", sum(i.page_count for i in items),
              sum(i.size for i in items), "", ""]
    return rows, totals


def catalog_xlsx(items: Sequence[Item], title: str, tz: dt.tzinfo) -> bytes:
    """The catalog as an xlsx workbook: frozen bold header, one row per record, a bold
    totals row with SUM formulas (their values cached, so readers without a calculation
    engine see them too)."""
    import io

    rows, totals = catalog_rows(items, tz)
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                   "strings_to_urls": False, "strings_to_numbers": False})
    ws = wb.add_worksheet(title[:31])
    head = wb.add_format({"bold": True, "bg_color": "#E8EEF7", "border": 1})
    bold = wb.add_format({"bold": True, "top": 1})
    widths = [len(h) * 2 + 2 for h in CATALOG_HEADERS]
    for c, h in enumerate(CATALOG_HEADERS):
        ws.write_string(0, c, h, head)
    for r, row in enumerate(rows, start=1):
        for c, v in enumerate(row):
            if isinstance(v, int):
                ws.write_number(r, c, v)
            else:
                ws.write_string(r, c, str(v))
            widths[c] = min(70, max(widths[c], len(str(v)) + 2))
    last = len(rows) + 1
    for c, v in enumerate(totals):
        if c in (5, 6):
            col = chr(ord("A") + c)
            ws.write_formula(last, c, f"=SUM({col}2:{col}{last})", bold, v)
        else:
            ws.write(last, c, v, bold)
    for c, w in enumerate(widths):
        ws.set_column(c, c, w)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(len(rows), 1), len(CATALOG_HEADERS) - 1)
    wb.close()
    return buf.getvalue()


def catalog_csv(items: Sequence[Item], tz: dt.tzinfo) -> bytes:
    """The catalog as CSV (UTF-8 with BOM, so Excel reads the Chinese), totals row last."""
    rows, totals = catalog_rows(items, tz)
    return to_csv(CATALOG_HEADERS, [*rows, totals], tz=tz)


def write_catalog(rt, target: Path, items: Sequence[Item]) -> list[Path]:
    name = rt.settings(ArchiveSettings).catalog_name
    out = []
    for ext, data in (("xlsx", catalog_xlsx(items, name, rt.tz)),
                      ("csv", catalog_csv(items, rt.tz))):
        p = target / f"{name}.{ext}"
        write_atomic(p, data)
        out.append(p)
    return out


# --------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------


def _prepare_target(target: Path) -> Path:
    target = Path(target).resolve()
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target} 不是文件夹")
    target.mkdir(parents=True, exist_ok=True)
    return target


def write_folders(rt, target: Path, items: Sequence[Item], progress: Progress = None,
                  layout: str = "folders") -> ExportResult:
    """PDFs in the folder layout plus the catalog."""
    target = _prepare_target(target)
    res = ExportResult(layout=layout, target=str(target))
    for item in items:
        written, _ = copy_blob(rt, item.sha256, item.size, target / item.relpath)
        res.records += 1
        res.bytes += item.size
        res.written += int(written)
        res.files.append(item.relpath)
        if progress:
            progress(1)
    for p in write_catalog(rt, target, items):
        res.files.append(p.name)
    return res


def viewer_records(items: Sequence[Item]) -> list[dict[str, Any]]:
    return [{"mrn": i.mrn, "name": i.patient_name, "py": i.name_initials,
             "adm": i.admission_no, "visit": i.visit_no,
             "date": i.discharge_date.isoformat() if i.discharge_date else "",
             "pages": i.page_count, "size": i.size, "sha256": i.sha256, "href": i.relpath}
            for i in items]


def script_json(data: Any) -> str:
    """JSON safe to put inside an inline <script> (no "</script>" or "<!--" can end it)."""
    return (json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_index(rt, items: Sequence[Item], generated: dt.datetime) -> bytes:
    """The offline viewer page (template ``archive/offline_index.html``, theme-overridable)."""
    from markupsafe import Markup

    from bingan.core.web.templating import build_environment

    env = build_environment(rt)
    html = env.get_template("archive/offline_index.html").render(
        hospital=rt.settings(CoreSettings).hospital_name, generated=generated.astimezone(rt.tz),
        count=len(items), pages=sum(i.page_count for i in items),
        records_json=Markup(script_json(viewer_records(items))),
        catalog_name=rt.settings(ArchiveSettings).catalog_name,
    )
    return html.encode("utf-8")


def write_zip(folder: Path, zip_path: Path, progress: Progress = None) -> Path:
    """Zip ``folder`` (entries under its own name); PDFs are stored, the rest deflated."""
    fd, tmp = tempfile.mkstemp(dir=zip_path.parent, prefix=".part-", suffix=".zip")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            for path in sorted(folder.rglob("*")):
                if not path.is_file() or path.name.startswith(".part-"):
                    continue
                arc = f"{folder.name}/{path.relative_to(folder).as_posix()}"
                comp = zipfile.ZIP_STORED if path.suffix.lower() in (".pdf", ".jpg", ".zip", ".xlsx") \
                    else zipfile.ZIP_DEFLATED
                zf.write(path, arc, compress_type=comp)
                if progress and path.suffix.lower() == ".pdf":
                    progress(1)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, zip_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(zip_path.parent)
    return zip_path


def write_offline(rt, target: Path, items: Sequence[Item], *, make_zip: bool = False,
                  progress: Progress = None) -> ExportResult:
    """The folder layout plus ``index.html``; with ``make_zip`` also ``<target>.zip``."""
    res = write_folders(rt, target, items, progress, layout="offline")
    target = Path(res.target)
    write_atomic(target / "index.html", render_index(rt, items, utcnow()))
    res.files.append("index.html")
    if make_zip:
        res.zip_path = str(write_zip(target, target.with_name(target.name + ".zip")))
    return res


def export(rt, layout: str, target: Path, *, start: dt.date | None = None,
           end: dt.date | None = None, digitized_only: bool = True, make_zip: bool = False,
           actor: audit.Actor | None = None,
           progress_factory: Callable[[int, str], Any] | None = None) -> ExportResult:
    """Select, write and audit one export (``folders``, ``offline`` or ``bag``).

    ``progress_factory(total, label)`` may return a context manager with ``update(n)`` (a
    click progress bar)."""
    if layout not in (*LAYOUTS, "bag"):
        raise ExportError(f"未知的导出方式 {layout!r}（folders、offline 或 bag）")
    with rt.sessions() as s:
        items = select_items(s, rt, start=start, end=end, digitized_only=digitized_only)
    detail: dict[str, Any] = {"layout": layout, "target": str(target),
                              "from": str(start or ""), "to": str(end or ""),
                              "digitized_only": digitized_only}
    try:
        bar = progress_factory(len(items), "导出") if progress_factory else None
        with (bar if bar is not None else _Null()) as b:
            step = b.update if bar is not None else None
            if layout == "bag":
                from bingan_archive.bag import export_bag

                res = export_bag(rt, target, items, progress=step)
            elif layout == "offline":
                res = write_offline(rt, target, items, make_zip=make_zip, progress=step)
            else:
                res = write_folders(rt, target, items, progress=step)
            if make_zip and not res.zip_path:
                # the web offers every export as one download (folders and bags too)
                folder = Path(res.target)
                res.zip_path = str(write_zip(folder, folder.with_name(folder.name + ".zip")))
    except Exception as exc:
        with rt.sessions() as s, s.begin():
            audit.record(s, rt, "archive.export", actor=actor, outcome="failed",
                         detail={**detail, "records": len(items), "error": str(exc)[:500]})
        raise
    with rt.sessions() as s, s.begin():
        audit.record(s, rt, "archive.export", actor=actor,
                     detail={**detail, **res.as_dict()})
    return res


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def export_root(rt) -> Path:
    s = rt.settings(ArchiveSettings)
    return Path(s.export_dir) if s.export_dir else rt.home / "exports"


def _date(v: str | None) -> dt.date | None:
    return dt.date.fromisoformat(v) if v else None


def run_export_task(rt, payload: dict,
                    progress_factory: Callable[[int, str], Any] | None = None) -> dict:
    """The ``archive.export`` task: write under the export folder, audited as the staff
    member who asked; ``progress_factory`` as for ``export``."""
    layout = payload["layout"]
    stamp = dt.datetime.now(rt.tz).strftime("%Y%m%d-%H%M%S")
    target = export_root(rt) / f"{stamp}-{layout}-{payload.get('task_tag', 'web')}"
    actor = audit.Actor(staff_no=payload.get("staff_no"), client_ip=payload.get("client_ip"),
                        computer_name=payload.get("computer_name"))
    res = export(rt, layout, target, start=_date(payload.get("from")),
                 end=_date(payload.get("to")),
                 digitized_only=not payload.get("all_documents", False),
                 make_zip=bool(payload.get("zip")), actor=actor,
                 progress_factory=progress_factory)
    return res.as_dict()
