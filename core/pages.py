"""Pages and documents of a record: stored through the blob store, versioned, never lost.

A re-captured page (rework) is a new row; the old one points at it (``replaced_by_id``) and
stays, so the history is kept. A supplement to a record builds a new Document version; old
versions stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bingan.hooks.types import PageRef
from bingan.core.models import Admission, Document, Page
from bingan.core.storage import store_blob


class PageError(ValueError):
    """A page operation that cannot be done (unknown page, bad order ...)."""


@dataclass(frozen=True)
class NewPage:
    """What a capture or processing step delivers for one page."""

    image: bytes  # processed image (JPEG), what the PDF embeds and readers see
    original: bytes | None = None  # as received (kept, checksummed)
    media_type: str = "image/jpeg"
    original_media_type: str = "application/octet-stream"
    width: int | None = None
    height: int | None = None
    dpi: float | None = None
    page_type: str | None = None
    page_type_confidence: float | None = None
    qc_status: str | None = None
    qc_metrics: dict[str, Any] | None = None
    steps: dict[str, Any] | None = None


def page_ref(p: Page) -> PageRef:
    return PageRef(id=p.id, admission_id=p.admission_id, seq=p.seq, page_type=p.page_type,
                   image_sha256=p.image_sha256, original_sha256=p.original_sha256)


def current_pages(session: Session, admission_id: int) -> list[Page]:
    """The record's pages in order, without replaced ones."""
    return list(session.scalars(
        select(Page).where(Page.admission_id == admission_id, Page.replaced_by_id.is_(None))
        .order_by(Page.seq, Page.id)))


def _fill(page: Page, session: Session, rt, new: NewPage) -> None:
    page.image_sha256 = store_blob(session, rt.store, new.image, new.media_type)
    if new.original is not None:
        page.original_sha256 = store_blob(session, rt.store, new.original,
                                          new.original_media_type)
    page.width, page.height, page.dpi = new.width, new.height, new.dpi
    page.page_type, page.page_type_confidence = new.page_type, new.page_type_confidence
    page.qc_status, page.qc_metrics, page.steps = new.qc_status, new.qc_metrics or {}, new.steps or {}


def _lock_record(session: Session, admission_id: int) -> None:
    """Serialize page numbering per record (two workers appending to one record on
    PostgreSQL would otherwise pick the same number; SQLite's BEGIN IMMEDIATE already does)."""
    session.execute(select(Admission.id).where(Admission.id == admission_id).with_for_update())


def add_page(session: Session, rt, admission: Admission, new: NewPage,
             seq: int | None = None) -> Page:
    """Append a page (or insert at ``seq``, shifting later pages)."""
    _lock_record(session, admission.id)
    last = session.scalar(select(func.max(Page.seq)).where(
        Page.admission_id == admission.id, Page.replaced_by_id.is_(None))) or 0
    if seq is None or seq > last:
        seq = last + 1
    else:
        for p in current_pages(session, admission.id):
            if p.seq >= seq:
                p.seq += 1
    page = Page(admission_id=admission.id, seq=seq)
    _fill(page, session, rt, new)
    session.add(page)
    session.flush()
    return page


def replace_page(session: Session, rt, page_id: int, new: NewPage) -> Page:
    """Re-capture: a new row at the same place; the old row stays and points to it."""
    old = session.get(Page, page_id)
    if old is not None:
        _lock_record(session, old.admission_id)
        session.refresh(old)
    if old is None or old.replaced_by_id is not None:
        raise PageError(f"页面 {page_id} 不存在或已被替换")
    page = Page(admission_id=old.admission_id, seq=old.seq)
    _fill(page, session, rt, new)
    if new.page_type is None:
        page.page_type, page.page_type_confidence = old.page_type, old.page_type_confidence
    session.add(page)
    session.flush()
    old.replaced_by_id = page.id
    session.flush()
    return page


def page_history(session: Session, page_id: int) -> list[Page]:
    """The chain of pages a page replaced, oldest first, ending with ``page_id``."""
    chain = [session.get(Page, page_id)]
    while True:
        prev = session.scalar(select(Page).where(Page.replaced_by_id == chain[0].id))
        if prev is None:
            return chain
        chain.insert(0, prev)


def reorder(session: Session, admission_id: int, page_ids: list[int]) -> None:
    """Put the record's current pages in the given order (all of them, each once)."""
    pages = {p.id: p for p in current_pages(session, admission_id)}
    if sorted(page_ids) != sorted(pages):
        raise PageError("新顺序必须恰好包含本病案的全部页面")
    for i, pid in enumerate(page_ids, start=1):
        pages[pid].seq = i
    session.flush()


def add_document(session: Session, rt, admission: Admission, pdf: bytes, page_count: int,
                 note: str | None = None, created_by: str | None = None) -> Document:
    """Store a new version of the admission's PDF."""
    version = (session.scalar(select(func.max(Document.version))
                              .where(Document.admission_id == admission.id)) or 0) + 1
    sha = store_blob(session, rt.store, pdf, "application/pdf")
    doc = Document(admission_id=admission.id, version=version, blob_sha256=sha,
                   page_count=page_count, size=len(pdf), note=note, created_by=created_by)
    session.add(doc)
    session.flush()
    return doc


def latest_document(session: Session, admission_id: int) -> Document | None:
    return session.scalar(select(Document).where(Document.admission_id == admission_id)
                          .order_by(Document.version.desc()).limit(1))
