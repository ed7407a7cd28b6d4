"""Exchange with other digitization systems (D11): BagIt bags (RFC 8493).

Layout of a bag this plugin writes (documented in README.md)::

    bagit.txt                 BagIt-Version: 1.0, UTF-8
    bag-info.txt              Source-Organization, Bagging-Date, Payload-Oxum, Bingan-Layout ...
    manifest-sha256.txt       every payload file
    manifest-sha512.txt
    tagmanifest-sha256.txt    bagit.txt, bag-info.txt, the manifests
    tagmanifest-sha512.txt
    data/records.json         machine-readable index (format "bingan-archive-bag", version 1)
    data/目录清单.xlsx|.csv    the catalog index table
    data/<MRN>/<stem>.pdf     the admission's PDF
    data/<MRN>/<stem>/0001.jpg ...   its processed page images, in record order

The bag is written here (hashes computed while copying) rather than with
``bagit.make_bag``: that function changes the process's working directory, which is not safe
in a threaded server, and writes BagIt 0.97. Every bag written is then validated with the
``bagit`` library, the same check an import runs.

Import validates the bag with ``bagit`` (every checksum), then the index, then every file's
content (JPEG and PDF parse), then that every record names an admission that exists with the
same MRN and has no other pages; any problem refuses the whole bag with a report listing
every bad file or record, and nothing is written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import bagit
import msgspec
from sqlalchemy import select

from bingan.core import audit
from bingan.core import pages as core_pages
from bingan.core.models import Admission, Document, Patient
from bingan.core.records import to_ref
from bingan_archive.exporting import (
    ExportError, ExportResult, Item, catalog_csv, catalog_xlsx, copy_blob, write_atomic,
)
from bingan_archive.pdf import PdfBuildError, jpeg_info
from bingan_archive.settings import ArchiveSettings
from bingan.core.config import CoreSettings

FORMAT = "bingan-archive-bag"
ALGORITHMS = ("sha256", "sha512")
QC_VALUES = (None, "pass", "warn", "fail")
MAX_INDEX_BYTES = 256 << 20


class BagImportError(ValueError):
    """A bag that is refused; ``problems`` lists every reason (files, records)."""

    def __init__(self, summary: str, problems: list[str]):
        super().__init__(summary)
        self.summary = summary
        self.problems = problems

    def report(self) -> str:
        return "\n".join([self.summary, *[f"  - {p}" for p in self.problems]])


# --------------------------------------------------------------------------------------------
# The index (data/records.json)
# --------------------------------------------------------------------------------------------


class PageEntry(msgspec.Struct, forbid_unknown_fields=False):
    seq: int
    file: str
    sha256: str
    dpi: float | None = None
    width: int | None = None
    height: int | None = None
    page_type: str | None = None
    qc_status: str | None = None


class RecordEntry(msgspec.Struct, forbid_unknown_fields=False):
    mrn: str
    admission_no: str
    visit_no: int
    pages: list[PageEntry]
    patient_name: str = ""
    discharge_date: str | None = None
    pdf: str | None = None
    pdf_sha256: str | None = None
    document_version: int | None = None
    page_count: int | None = None


class BagIndex(msgspec.Struct, forbid_unknown_fields=False):
    format: str
    version: int
    records: list[RecordEntry]
    hospital: str = ""
    org_code: str = ""
    created: str = ""


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_bagit():
    """bagit logs every bad file with its path, and paths carry MRNs: nothing identifying a
    patient goes to the logs (the import's audit event has the report)."""
    logger = logging.getLogger("bagit")
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(old)


def _manifest_path(rel: str) -> str:
    """RFC 8493 2.1.3: percent-encode CR, LF and % in manifest file paths."""
    return rel.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _hash_bytes(data: bytes) -> dict[str, str]:
    return {a: hashlib.new(a, data).hexdigest() for a in ALGORITHMS}


def export_bag(rt, target: Path, items: Sequence[Item],
               progress: Callable[[int], None] | None = None) -> ExportResult:
    """Write a bag of ``items`` (PDFs, page images, index, catalog) into the new or empty
    folder ``target`` and validate it with ``bagit``."""
    target = Path(target).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExportError(f"{target} 已存在且不是空文件夹：交换包须写入新文件夹")
    data = target / "data"
    data.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, str]] = {}  # relpath under the bag -> {alg: hex}
    total_bytes = 0
    res = ExportResult(layout="bag", target=str(target))
    records = []
    with rt.sessions() as s:
        for item in items:
            adm = s.get(Admission, item.admission_id)
            pages = core_pages.current_pages(s, item.admission_id)
            _, hashes = copy_blob(rt, item.sha256, item.size, data / item.relpath, ALGORITHMS)
            manifest[f"data/{item.relpath}"] = hashes
            total_bytes += item.size
            page_dir = item.relpath[:-4]
            entries = []
            for i, p in enumerate(pages, start=1):
                rel = f"{page_dir}/{i:04d}.jpg"
                size = rt.store.size(p.image_sha256)
                _, h = copy_blob(rt, p.image_sha256, size, data / rel, ALGORITHMS)
                manifest[f"data/{rel}"] = h
                total_bytes += size
                entries.append({"seq": i, "file": rel, "sha256": p.image_sha256, "dpi": p.dpi,
                                "width": p.width, "height": p.height,
                                "page_type": p.page_type, "qc_status": p.qc_status})
            records.append({
                "mrn": item.mrn, "admission_no": item.admission_no, "visit_no": item.visit_no,
                "patient_name": item.patient_name,
                "discharge_date": item.discharge_date.isoformat() if item.discharge_date else None,
                "pdf": item.relpath, "pdf_sha256": item.sha256,
                "document_version": item.version, "page_count": item.page_count,
                "pages": entries,
            })
            if adm is not None and len(pages) != item.page_count:
                records[-1]["note"] = "pages changed after this PDF version"
            res.records += 1
            res.bytes += item.size
            res.written += 1
            if progress:
                progress(1)
    index = {"format": FORMAT, "version": 1, "hospital": rt.settings(CoreSettings).hospital_name,
             "org_code": rt.settings(CoreSettings).org_code,
             "created": dt.datetime.now(rt.tz).replace(microsecond=0).isoformat(),
             "records": records}
    name = rt.settings(ArchiveSettings).catalog_name
    for rel, blob in (("records.json", json.dumps(index, ensure_ascii=False, indent=1).encode()),
                      (f"{name}.xlsx", catalog_xlsx(items, name, rt.tz)),
                      (f"{name}.csv", catalog_csv(items, rt.tz))):
        write_atomic(data / rel, blob)
        manifest[f"data/{rel}"] = _hash_bytes(blob)
        total_bytes += len(blob)
    for alg in ALGORITHMS:
        lines = "".join(f"{h[alg]}  {_manifest_path(rel)}\n" for rel, h in sorted(manifest.items()))
        write_atomic(target / f"manifest-{alg}.txt", lines.encode("utf-8"))
    write_atomic(target / "bagit.txt",
                 b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    info = [
        ("Source-Organization", rt.settings(CoreSettings).hospital_name),
        ("Organization-Code", rt.settings(CoreSettings).org_code),
        ("External-Description", "bingan 病案数字化交换包：每份住院病案的 PDF、页面图像与目录清单"),
        ("Bagging-Date", dt.date.today().isoformat()),
        ("Bag-Software-Agent", "bingan-archive (https://www.rfc-editor.org/rfc/rfc8493)"),
        ("Bingan-Layout", f"{FORMAT}/1"),
        ("Record-Count", str(len(items))),
        ("Payload-Oxum", f"{total_bytes}.{len(manifest)}"),
    ]
    write_atomic(target / "bag-info.txt",
                 "".join(f"{k}: {v}\n" for k, v in info).encode("utf-8"))
    tags = ["bagit.txt", "bag-info.txt", *[f"manifest-{a}.txt" for a in ALGORITHMS]]
    for alg in ALGORITHMS:
        lines = "".join(
            f"{hashlib.new(alg, (target / t).read_bytes()).hexdigest()}  {t}\n" for t in tags)
        write_atomic(target / f"tagmanifest-{alg}.txt", lines.encode("utf-8"))
    try:
        with _quiet_bagit():
            bagit.Bag(str(target)).validate()
    except bagit.BagError as exc:  # pragma: no cover - would be a bug in the writer above
        raise ExportError(f"写出的交换包未通过 BagIt 校验：{exc}") from exc
    res.files = sorted(manifest)
    return res


# --------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------


def _bag_problems(bag: bagit.Bag | None, exc: bagit.BagError) -> list[str]:
    """Every file that makes the bag invalid, one line each. ``bagit`` stops at the first
    failing check (a wrong Payload-Oxum hides which files are wrong), so after a failure the
    completeness and every checksum are checked here too, through the bag's public lists."""
    out: list[str] = []
    details = list(getattr(exc, "details", None) or [])
    if not details:
        out.append(f"{getattr(exc, 'message', None) or exc}")
    if bag is None:
        return out
    missing, unexpected = bag.compare_manifests_with_fs()
    for path in sorted(missing):
        out.append(f"{path}：清单中有此文件，但包内缺失")
    for path in sorted(unexpected):
        out.append(f"{path}：包内有此文件，但清单中没有")
    bad = set(missing)
    for rel, hashes in sorted(bag.entries.items()):
        if rel in bad or not rel.startswith("data/"):
            continue
        full = Path(bag.path) / bag.normalized_filesystem_names.get(rel, rel)
        if not full.is_file():
            continue
        wrong = []
        with open(full, "rb") as fh:
            hs = {a: hashlib.new(a) for a in hashes if a in hashlib.algorithms_available}
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                for h in hs.values():
                    h.update(chunk)
        for alg, h in hs.items():
            if h.hexdigest() != hashes[alg].lower():
                wrong.append(alg)
        if wrong:
            out.append(f"{rel}：校验值不符（{'、'.join(wrong)}），文件已损坏或被改动")
    return out


@dataclass
class ImportPlan:
    """What an import will write, checked completely before anything is written."""

    bag: Path
    index: BagIndex
    admissions: dict[str, int] = field(default_factory=dict)  # admission_no -> id
    skip_pages: set[str] = field(default_factory=set)  # admission_nos already holding them


@dataclass
class ImportResult:
    records: int = 0
    pages: int = 0
    documents: int = 0
    skipped: int = 0
    page_ids: dict[int, list[int]] = field(default_factory=dict)


def _payload_path(bag_dir: Path, rel: str, payload: set[str], problems: list[str],
                  what: str) -> Path | None:
    full = f"data/{rel}"
    if not rel or rel.startswith("/") or ".." in Path(rel).parts or full not in payload:
        problems.append(f"{what}：文件 {rel!r} 不在交换包的清单中")
        return None
    return bag_dir / "data" / rel


def check_bag(session, rt, bag_dir: Path) -> ImportPlan:
    """Validate a bag completely; raise ``BagImportError`` listing every problem."""
    bag_dir = Path(bag_dir).resolve()
    bag = None
    try:
        with _quiet_bagit():
            bag = bagit.Bag(str(bag_dir))
            bag.validate(processes=1)
    except bagit.BagError as exc:
        raise BagImportError(f"交换包 {bag_dir} 未通过 BagIt 校验，已拒绝导入：",
                             _bag_problems(bag, exc)) from exc
    payload = {p.replace(os.sep, "/") for p in bag.payload_files()}
    index_path = bag_dir / "data" / "records.json"
    if "data/records.json" not in payload:
        raise BagImportError("交换包缺少索引 data/records.json，已拒绝导入：",
                             ["data/records.json：缺失（见 README 中的交换包格式）"])
    if index_path.stat().st_size > MAX_INDEX_BYTES:
        raise BagImportError("索引文件过大，已拒绝导入：", [f"data/records.json 超过 {MAX_INDEX_BYTES} 字节"])
    try:
        index = msgspec.json.decode(index_path.read_bytes(), type=BagIndex)
    except msgspec.DecodeError as exc:
        raise BagImportError("索引 data/records.json 格式错误，已拒绝导入：", [str(exc)]) from exc
    if index.format != FORMAT or index.version != 1:
        raise BagImportError("不支持的交换包格式，已拒绝导入：",
                             [f"format={index.format!r} version={index.version}（应为 {FORMAT} 1）"])
    problems: list[str] = []
    plan = ImportPlan(bag_dir, index)
    seen: set[str] = set()
    for rec in index.records:
        what = f"病案号 {rec.mrn} 住院号 {rec.admission_no}"
        if rec.admission_no in seen:
            problems.append(f"{what}：在索引中出现了两次")
            continue
        seen.add(rec.admission_no)
        adm = session.scalar(select(Admission).join(Patient)
                             .where(Admission.admission_no == rec.admission_no))
        if adm is None:
            problems.append(f"{what}：本院没有这个住院号")
        elif adm.patient.mrn != rec.mrn:
            problems.append(f"{what}：本院该住院号属于病案号 {adm.patient.mrn}，与交换包不符")
        elif adm.visit_no != rec.visit_no:
            problems.append(f"{what}：住院次数为 {adm.visit_no}，交换包中为 {rec.visit_no}")
        else:
            plan.admissions[rec.admission_no] = adm.id
        if not rec.pages:
            problems.append(f"{what}：没有页面")
        if [p.seq for p in rec.pages] != list(range(1, len(rec.pages) + 1)):
            problems.append(f"{what}：页序号应从 1 连续编号")
        for p in rec.pages:
            path = _payload_path(bag_dir, p.file, payload, problems, what)
            if path is None:
                continue
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != p.sha256:
                problems.append(f"data/{p.file}：SHA-256 与索引不符")
                continue
            if p.qc_status not in QC_VALUES:
                problems.append(f"data/{p.file}：质检状态 {p.qc_status!r} 无效")
            try:
                info = jpeg_info(data, f"data/{p.file}")
            except PdfBuildError as exc:
                problems.append(str(exc))
                continue
            if (p.width, p.height) not in ((None, None), (info.width, info.height)):
                problems.append(f"data/{p.file}：尺寸 {info.width}×{info.height} 与索引不符")
        if rec.pdf:
            path = _payload_path(bag_dir, rec.pdf, payload, problems, what)
            if path is not None:
                data = path.read_bytes()
                if rec.pdf_sha256 and hashlib.sha256(data).hexdigest() != rec.pdf_sha256:
                    problems.append(f"data/{rec.pdf}：SHA-256 与索引不符")
                else:
                    problems.extend(_check_pdf(data, rec, f"data/{rec.pdf}"))
        if adm is not None and rec.admission_no in plan.admissions:
            have = [p.image_sha256 for p in core_pages.current_pages(session, adm.id)]
            want = [p.sha256 for p in rec.pages]
            if have == want:
                plan.skip_pages.add(rec.admission_no)
            elif have:
                problems.append(f"{what}：本院已有 {len(have)} 页且与交换包不同，"
                                "请先核对（不覆盖已有页面）")
    if problems:
        raise BagImportError(f"交换包 {bag_dir} 有 {len(problems)} 处问题，已拒绝导入，"
                             "未写入任何内容：", problems)
    return plan


def _check_pdf(data: bytes, rec: RecordEntry, where: str) -> list[str]:
    import pikepdf

    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            n = len(pdf.pages)
    except pikepdf.PdfError as exc:
        return [f"{where}：不是有效的 PDF（{exc}）"]
    want = rec.page_count if rec.page_count is not None else len(rec.pages)
    if n != want:
        return [f"{where}：PDF 有 {n} 页，索引为 {want} 页"]
    return []


def import_bag(rt, bag_dir: Path, *, actor: audit.Actor | None = None,
               progress: Callable[[int], None] | None = None) -> ImportResult:
    """Check, then write every record of the bag in one transaction; then call
    ``pages_captured`` for the records that got pages. Raises ``BagImportError``."""
    res = ImportResult()
    try:
        with rt.sessions() as s, s.begin():
            plan = check_bag(s, rt, bag_dir)
            for rec in plan.index.records:
                adm = s.get(Admission, plan.admissions[rec.admission_no])
                res.records += 1
                if rec.admission_no in plan.skip_pages:
                    res.skipped += 1
                else:
                    ids = []
                    for p in rec.pages:
                        data = (plan.bag / "data" / p.file).read_bytes()
                        info = jpeg_info(data)
                        page = core_pages.add_page(s, rt, adm, core_pages.NewPage(
                            image=data, width=info.width, height=info.height, dpi=p.dpi,
                            page_type=p.page_type, qc_status=p.qc_status,
                            steps={"imported_from": plan.index.hospital or "bag"}))
                        ids.append(page.id)
                    res.pages += len(ids)
                    res.page_ids[adm.id] = ids
                if rec.pdf:
                    data = (plan.bag / "data" / rec.pdf).read_bytes()
                    have = s.scalar(select(Document.id).where(
                        Document.admission_id == adm.id,
                        Document.blob_sha256 == hashlib.sha256(data).hexdigest()).limit(1))
                    if have is None:  # any version with these bytes: imported before
                        core_pages.add_document(
                            s, rt, adm, data, rec.page_count or len(rec.pages),
                            note=f"自交换包导入（{plan.index.hospital or '外部系统'}）",
                            created_by=actor.staff_no if actor else None)
                        res.documents += 1
                if progress:
                    progress(1)
            audit.record(s, rt, "archive.import", actor=actor,
                         detail={"bag": str(plan.bag), "records": res.records,
                                 "pages": res.pages, "documents": res.documents,
                                 "skipped": res.skipped})
    except BagImportError as exc:
        with rt.sessions() as s, s.begin():
            audit.record(s, rt, "archive.import", actor=actor, outcome="failed",
                         detail={"bag": str(bag_dir), "problems": exc.problems[:50]})
        raise
    if res.page_ids:
        with rt.sessions() as s:
            refs = {aid: to_ref(s.get(Admission, aid)) for aid in res.page_ids}
        for aid, ids in res.page_ids.items():
            rt.pm.hook.pages_captured(rt=rt, admission=refs[aid], page_ids=ids)
    return res


__all__ = ["BagImportError", "ImportResult", "check_bag", "export_bag", "import_bag"]
