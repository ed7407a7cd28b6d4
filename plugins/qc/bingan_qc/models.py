"""Tables of the qc plugin (prefixed ``qc_``): samples, their records, inspections (of a
sampled record or a per-record spot check) and the verdict on each page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bingan.core.models.base import Base, UTCDateTime, utcnow


class QcSample(Base):
    """The acceptance sample drawn from one capture batch (one per batch)."""

    __tablename__ = "qc_sample"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(Integer, unique=True)  # capture's batch (via hooks)
    batch_name: Mapped[str] = mapped_column(String(128))
    seed: Mapped[int] = mapped_column(BigInteger)
    rate: Mapped[float] = mapped_column(Float)
    population: Mapped[int] = mapped_column(Integer)  # digitized records when drawn
    size: Mapped[int] = mapped_column(Integer)
    drawn_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    drawn_by: Mapped[str | None] = mapped_column(String(32))


class QcSampleItem(Base):
    """A sampled record: pending -> passed | failed -> reinspect -> passed | failed ..."""

    __tablename__ = "qc_sample_item"
    __table_args__ = (UniqueConstraint("sample_id", "admission_id", name="uq_qc_sample_item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("qc_sample.id"), index=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    rounds: Mapped[int] = mapped_column(Integer, default=0)


class QcInspection(Base):
    """One inspection of a record, page by page (a sampled record, or a spot check)."""

    __tablename__ = "qc_inspection"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # sample spot
    item_id: Mapped[int | None] = mapped_column(ForeignKey("qc_sample_item.id"), index=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), index=True)
    round: Mapped[int] = mapped_column(Integer, default=1)
    result: Mapped[str] = mapped_column(String(8))  # pass fail
    pages: Mapped[int] = mapped_column(Integer)
    failed_pages: Mapped[int] = mapped_column(Integer)
    record_reason: Mapped[str | None] = mapped_column(Text)  # e.g. missing pages
    note: Mapped[str | None] = mapped_column(Text)
    rework_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    inspector: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class QcPageCheck(Base):
    """The inspector's verdict on one page."""

    __tablename__ = "qc_page_check"

    id: Mapped[int] = mapped_column(primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("qc_inspection.id"), index=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("page.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(String(8))  # pass fail
    reason: Mapped[str | None] = mapped_column(Text)
