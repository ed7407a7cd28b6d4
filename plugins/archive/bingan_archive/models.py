"""The archive plugin's tables: digitization status per record, and what each PDF was built from."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bingan.core.models import Base, UTCDateTime, utcnow

# Status values of an archive record (shown in Chinese through STATUS_LABELS).
DIGITIZED = "digitized"
INCOMPLETE = "incomplete"
FAILING = "failing"
STATUS_LABELS = {DIGITIZED: "已数字化", INCOMPLETE: "页数不全", FAILING: "未通过（质检/返工）",
                 None: "未采集"}


class ArchiveRecord(Base):
    """Whether one admission is digitized (D10), and why not when it is not."""

    __tablename__ = "archive_record"

    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    expected_pages: Mapped[int | None] = mapped_column(Integer)
    document_version: Mapped[int | None] = mapped_column(Integer)
    digitized_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ArchiveDocument(Base):
    """What a PDF version was built from: a key over its inputs, so the same content is never
    stored twice as a new version. Documents imported from a bag have no row here."""

    __tablename__ = "archive_document"

    document_id: Mapped[int] = mapped_column(ForeignKey("document.id"), primary_key=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), index=True)
    content_key: Mapped[str] = mapped_column(String(64))
    built_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
