"""Tables of the page index (migration: migrations/versions/pi001_pageindex.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bingan.core.models import Base, UTCDateTime, utcnow


class PageText(Base):
    """The OCR text of one page image, with the positions of its lines.

    One row per (page, image): a re-captured page is a new page row and gets its own text; the
    same task run twice finds the row and does nothing (idempotent).
    ``blocks`` is a list of ``[text, x1, y1, x2, y2, confidence]`` in reading order.
    ``guess_type``/``guess_confidence`` is what ``classify_page`` said from the title band
    (confidence 0 = no title on the page).
    """

    __tablename__ = "pageindex_text"
    __table_args__ = (UniqueConstraint("page_id", "image_sha256",
                                       name="uq_pageindex_text_page_image"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("page.id"), index=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), index=True)
    image_sha256: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")
    blocks: Mapped[list[Any]] = mapped_column(JSON, default=list)
    engine: Mapped[str] = mapped_column(String(64))
    ms: Mapped[int] = mapped_column(Integer, default=0)
    guess_type: Mapped[str | None] = mapped_column(String(32))
    guess_confidence: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PageOverride(Base):
    """A page type set by a clerk on the correction page; automatic passes keep it."""

    __tablename__ = "pageindex_override"

    page_id: Mapped[int] = mapped_column(ForeignKey("page.id"), primary_key=True)
    page_type: Mapped[str] = mapped_column(String(32))
    staff_no: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecordState(Base):
    """Where a record's page index stands: ``pending`` (OCR running), ``indexed`` or
    ``needs_correction`` (some page type below the confidence threshold)."""

    __tablename__ = "pageindex_state"

    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    low_pages: Mapped[int] = mapped_column(Integer, default=0)
    indexed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    corrected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    corrected_by: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
