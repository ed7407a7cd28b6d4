"""Build the admission's PDF from its current pages, and decide whether it is digitized.

- ``build_pdf`` stores a new Document version when the content changed (new, replaced,
  re-ordered or re-typed pages, corrected identity) and returns the latest one otherwise.
- ``evaluate`` says whether the record is complete (pages >= the expected count that the
  ``expected_pages`` hook gives; no answer: no count check) and passing (no page with QC
  status ``fail``, nothing reported by the ``digitization_blockers`` hook such as open rework),
  with the reasons in Chinese when it is not (D10).
- ``refresh`` does both and keeps ``archive_record`` up to date; ``announce`` calls
  ``record_digitized`` after the caller committed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from importlib.metadata import version as dist_version
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bingan.hooks.types import AdmissionRef, PaperRecordEvent
from bingan.core import pages as core_pages
from bingan.core.models import Admission, Document, utcnow
from bingan.core.records import to_ref
from bingan_archive.models import (
    DIGITIZED, FAILING, INCOMPLETE, ArchiveDocument, ArchiveRecord,
)
from bingan_archive.pdf import PdfBuildError, PdfMeta, PdfPage, build_pdf_bytes
from bingan_archive.settings import ArchiveSettings
from bingan.core.config import CoreSettings

FORMAT = 1  # bump when the PDF layout changes so that every record is rebuilt once


class BuildError(ValueError):
    """The record's PDF cannot be built now (no pages, a page without image, a bad JPEG)."""


def producer(rt) -> str:
    s = rt.settings(ArchiveSettings)
    if s.producer:
        return s.producer
    return f"bingan-archive {dist_version('bingan-archive')} (pikepdf {dist_version('pikepdf')})"


def local_date(t: dt.datetime | None, tz: dt.tzinfo) -> dt.date | None:
    """The hospital's calendar day (``tz``) of a stored time."""
    return t.astimezone(tz).date() if t is not None else None


def content_key(adm: Admission, pages: list, default_dpi: float, tz: dt.tzinfo) -> str:
    """A key over everything the PDF is made from (not the build time): equal keys, equal
    content."""
    data = {
        "format": FORMAT, "default_dpi": default_dpi,
        "record": [adm.patient.mrn, adm.admission_no, adm.visit_no, adm.patient.name,
                   str(local_date(adm.discharged_at, tz))],
        "pages": [[p.image_sha256, p.dpi, p.page_type] for p in pages],
    }
    return hashlib.sha256(json.dumps(data, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _read_image(rt, page) -> bytes:
    from bingan.core.storage import BlobMissing

    try:
        data = rt.store.get(page.image_sha256)
    except BlobMissing as exc:
        raise BuildError(f"第 {page.seq} 页的图像不在存储中（{page.image_sha256[:12]}…）") from exc
    if hashlib.sha256(data).hexdigest() != page.image_sha256:
        raise BuildError(f"第 {page.seq} 页的图像在存储中已损坏（哈希不符）")
    return data


def build_pdf(session: Session, rt, admission: Admission, *, created_by: str | None = None,
              note: str | None = None) -> Document:
    """The admission's current PDF: a new Document version if its content changed since the
    last one this plugin built, else that one. Raises ``BuildError``."""
    s = rt.settings(ArchiveSettings)
    pages = core_pages.current_pages(session, admission.id)
    if not pages:
        raise BuildError("尚无页面")
    missing = [p.seq for p in pages if not p.image_sha256]
    if missing:
        raise BuildError("第 " + "、".join(map(str, missing)) + " 页还没有处理后的图像")
    key = content_key(admission, pages, s.default_dpi, rt.tz)
    latest = core_pages.latest_document(session, admission.id)
    if latest is not None:
        built = session.get(ArchiveDocument, latest.id)
        if built is not None and built.content_key == key:
            return latest
    version = (session.scalar(select(func.max(Document.version))
                              .where(Document.admission_id == admission.id)) or 0) + 1
    meta = PdfMeta(
        mrn=admission.patient.mrn, admission_no=admission.admission_no,
        visit_no=admission.visit_no, patient_name=admission.patient.name,
        discharge_date=local_date(admission.discharged_at, rt.tz),
        hospital=rt.settings(CoreSettings).hospital_name, producer=producer(rt),
        created=utcnow().astimezone(rt.tz),
        version=version,
    )
    items = [PdfPage(_read_image(rt, p), p.dpi, p.page_type, f"第 {p.seq} 页") for p in pages]
    try:
        pdf = build_pdf_bytes(items, meta, s.default_dpi)
    except PdfBuildError as exc:
        raise BuildError(str(exc)) from exc
    if note is None:
        note = "首次生成" if latest is None else "页面变更后重新生成"
    doc = core_pages.add_document(session, rt, admission, pdf, len(pages), note=note,
                                  created_by=created_by)
    if doc.version != version:  # pragma: no cover - the admission row lock prevents this
        raise RuntimeError("concurrent PDF build for the same admission")
    session.add(ArchiveDocument(document_id=doc.id, admission_id=admission.id, content_key=key))
    session.flush()
    return doc


def expected_pages(session: Session, rt, ref: AdmissionRef) -> int | None:
    """Capture's ``expected_pages`` (``bingan_capture.hookspecs``; archive depends on capture)."""
    n = rt.pm.hook.expected_pages(rt=rt, session=session, admission=ref)
    return int(n) if n is not None else None


def blockers(session: Session, rt, ref: AdmissionRef) -> list[str]:
    """Every plugin's reasons why the record may not be digitized now (open rework ...)."""
    out: list[str] = []
    for group in rt.pm.hook.digitization_blockers(rt=rt, session=session, admission=ref):
        out.extend(str(r) for r in group or () if r)
    return out


@dataclass
class Evaluation:
    status: str
    reasons: list[str]
    page_count: int
    expected: int | None
    failing_seqs: list[int] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return "；".join(self.reasons)


def evaluate(session: Session, rt, admission: Admission, *, document: Document | None,
             build_error: str | None = None) -> Evaluation:
    """Is the record complete and passing, with a PDF of its current pages?"""
    pages = core_pages.current_pages(session, admission.id)
    n = len(pages)
    ref = to_ref(admission)
    expected = expected_pages(session, rt, ref)
    reasons: list[str] = []
    incomplete = failing = False
    if n == 0:
        incomplete = True
        reasons.append("尚无页面")
    elif expected is not None and n < expected:
        incomplete = True
        reasons.append(f"页数不足：已有 {n} 页，应有 {expected} 页")
    fails = [p.seq for p in pages if p.qc_status == "fail"]
    if fails:
        failing = True
        reasons.append("第 " + "、".join(map(str, fails)) + " 页质检未通过")
    blocked = blockers(session, rt, ref)
    if blocked:
        failing = True
        reasons.extend(blocked)
    if build_error and n:
        failing = True
        reasons.append(f"PDF 未能生成：{build_error}")
    elif n and document is None:
        failing = True
        reasons.append("PDF 尚未生成")
    status = FAILING if failing else INCOMPLETE if incomplete else DIGITIZED
    return Evaluation(status, reasons, n, expected, fails, blocked)


@dataclass(frozen=True)
class Outcome:
    """What ``refresh`` did to one record."""

    admission: AdmissionRef
    status: str
    reason: str
    document_version: int | None
    built: bool  # a new PDF version was stored
    newly_digitized: bool  # record_digitized is due (first time, or a new version)


def refresh(session: Session, rt, admission: Admission, *,
            created_by: str | None = None) -> Outcome:
    """Build the PDF if needed, evaluate, and record the status, in the caller's
    transaction. Call ``announce`` with the outcome after the commit."""
    if session.bind.dialect.name == "postgresql":  # one build per admission at a time
        session.execute(select(Admission.id).where(Admission.id == admission.id)
                        .with_for_update())
    before = core_pages.latest_document(session, admission.id)
    doc, error = None, None
    try:
        doc = build_pdf(session, rt, admission, created_by=created_by)
    except BuildError as exc:
        error = str(exc)
    ev = evaluate(session, rt, admission, document=doc, build_error=error)
    rec = session.get(ArchiveRecord, admission.id)
    if rec is None:
        rec = ArchiveRecord(admission_id=admission.id, status=ev.status)
        session.add(rec)
    was = (rec.status, rec.document_version) if rec.status == DIGITIZED else None
    rec.status, rec.reason = ev.status, ev.reason
    rec.page_count, rec.expected_pages = ev.page_count, ev.expected
    rec.updated_at = utcnow()
    newly = False
    if ev.status == DIGITIZED:
        newly = was is None or was[1] != doc.version
        rec.document_version = doc.version
        if newly:
            rec.digitized_at = utcnow()
            rt.pm.hook.paper_record_event(
                session=session, admission=to_ref(admission), rt=rt,
                event=PaperRecordEvent("digitized", staff_no=created_by,
                                       note=f"第 {doc.version} 版"))
    else:
        rec.document_version = doc.version if doc is not None else None
        rec.digitized_at = None
    session.flush()
    built = doc is not None and (before is None or doc.id != before.id)
    return Outcome(to_ref(admission), ev.status, ev.reason,
                   doc.version if doc is not None else None, built, newly)


def announce(rt, outcomes: list[Outcome]) -> None:
    """Call ``record_digitized`` for the records that became digitized (after commit)."""
    for o in outcomes:
        if o.newly_digitized and o.document_version is not None:
            rt.pm.hook.record_digitized(rt=rt, admission=o.admission, document_version=o.document_version)


def build_one(rt, admission_id: int, created_by: str | None = None) -> Outcome:
    """``refresh`` one admission in its own transaction, then ``announce``."""
    with rt.sessions() as s, s.begin():
        adm = s.get(Admission, admission_id)
        if adm is None:
            raise LookupError(f"admission {admission_id} does not exist")
        outcome = refresh(s, rt, adm, created_by=created_by)
    announce(rt, [outcome])
    return outcome


def status_counts(session: Session) -> dict[str, Any]:
    """How many admissions are digitized, incomplete, failing, or not captured yet (未采集:
    no page of theirs has been captured, so nothing was evaluated)."""
    by = dict(session.execute(select(ArchiveRecord.status, func.count())
                              .group_by(ArchiveRecord.status)).all())
    total = session.scalar(select(func.count()).select_from(Admission)) or 0
    out = {DIGITIZED: by.get(DIGITIZED, 0), INCOMPLETE: by.get(INCOMPLETE, 0),
           FAILING: by.get(FAILING, 0)}
    out["pending"] = max(0, total - sum(by.values()))
    out["total"] = total
    out["documents"] = session.scalar(select(func.count()).select_from(Document)) or 0
    return out


def stale_admissions(session: Session, limit: int = 500) -> list[int]:
    """Admissions with a page newer than their last evaluation (or never evaluated)."""
    from bingan.core.models import Page

    last_page = (select(Page.admission_id.label("aid"), func.max(Page.created_at).label("t"))
                 .group_by(Page.admission_id).subquery())
    q = (select(last_page.c.aid)
         .outerjoin(ArchiveRecord, ArchiveRecord.admission_id == last_page.c.aid)
         .where((ArchiveRecord.updated_at.is_(None)) | (last_page.c.t > ArchiveRecord.updated_at))
         .order_by(last_page.c.aid).limit(limit))
    return list(session.scalars(q))
