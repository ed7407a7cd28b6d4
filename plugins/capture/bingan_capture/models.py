"""Tables of the capture plugin (all prefixed ``capture_``).

- ``capture_file``: one received file (the original, content-addressed and checksummed in the
  blob store). ``dedupe_key`` (the SHA-256, or ``replace:<page>:<sha>`` for a re-capture) makes
  re-sending the same file idempotent.
- ``capture_frame``: one page image of a file (a TIFF frame, a rasterized PDF page, or the file
  itself), stored at receipt; processing turns it into a core page exactly once.
- ``capture_rework``: the rework queue (pages that failed QC or inspection).
- ``capture_batch`` / ``capture_batch_item`` / ``capture_plan``: batches of records with their
  expected page counts and the planned pages per day.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON, BigInteger, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bingan.core.models.base import Base, UTCDateTime, utcnow


class CaptureBatch(Base):
    """A batch of records digitized together, with a daily plan."""

    __tablename__ = "capture_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    note: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[dt.date] = mapped_column(Date)
    daily_pages: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open closed
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(32))


class CaptureBatchItem(Base):
    """A record of a batch and how many pages it is expected to have (D1 count check)."""

    __tablename__ = "capture_batch_item"
    __table_args__ = (UniqueConstraint("batch_id", "admission_id",
                                       name="uq_capture_batch_item_record"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("capture_batch.id"), index=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), index=True)
    expected_pages: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CapturePlan(Base):
    """Planned pages of a batch on one day."""

    __tablename__ = "capture_plan"
    __table_args__ = (UniqueConstraint("batch_id", "day", name="uq_capture_plan_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("capture_batch.id"), index=True)
    day: Mapped[dt.date] = mapped_column(Date)
    planned_pages: Mapped[int] = mapped_column(Integer)


class CaptureFile(Base):
    """One received file, kept as received (the blob is the checksummed original)."""

    __tablename__ = "capture_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(32))
    device: Mapped[str] = mapped_column(String(16), default="unknown")
    media_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    frames: Mapped[int] = mapped_column(Integer)
    admission_id: Mapped[int | None] = mapped_column(ForeignKey("admission.id"), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("capture_batch.id"), index=True)
    replace_page_id: Mapped[int | None] = mapped_column(ForeignKey("page.id"))
    rework_id: Mapped[int | None] = mapped_column(Integer)
    # the paper photographed (a name of hooks.types.PAPER_SIZES_MM) as the photographer chose
    # it on the phone page; None: nobody said (imaging's camera_paper_mm setting applies)
    paper: Mapped[str | None] = mapped_column(String(8))
    # queued -> done | unidentified (some pages wait for a clerk) ; failed (see error)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    round: Mapped[int] = mapped_column(Integer, default=0)  # processing rounds (assignments)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    received_by: Mapped[str | None] = mapped_column(String(32))
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CaptureFrame(Base):
    """One page image of a received file; becomes one core page (or a cover sheet)."""

    __tablename__ = "capture_frame"
    __table_args__ = (UniqueConstraint("capture_id", "idx", name="uq_capture_frame_idx"),
                      Index("ix_capture_frame_status", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    capture_id: Mapped[int] = mapped_column(ForeignKey("capture_file.id"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"))
    media_type: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    dpi: Mapped[float | None] = mapped_column(Float)
    # pending -> stored | cover | unidentified
    status: Mapped[str] = mapped_column(String(16), default="pending")
    target_admission_id: Mapped[int | None] = mapped_column(ForeignKey("admission.id"))
    admission_id: Mapped[int | None] = mapped_column(ForeignKey("admission.id"), index=True)
    page_id: Mapped[int | None] = mapped_column(ForeignKey("page.id"))
    barcode: Mapped[str | None] = mapped_column(String(64))
    qc_status: Mapped[str | None] = mapped_column(String(8))
    note: Mapped[str | None] = mapped_column(Text)
    notified: Mapped[bool] = mapped_column(Boolean, default=False)
    stored_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)


class CaptureRework(Base):
    """A page (or a whole record when ``page_id`` is None) that must be captured again."""

    __tablename__ = "capture_rework"

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), index=True)
    page_id: Mapped[int | None] = mapped_column(ForeignKey("page.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16))  # qc inspection clerk
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open done
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(32))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(32))
    new_page_id: Mapped[int | None] = mapped_column(ForeignKey("page.id"))
    capture_id: Mapped[int | None] = mapped_column(ForeignKey("capture_file.id"))


class BatchCondition(Base):
    """The digitizer's on-site assessment of a batch's paper (binding, ageing, fragile or torn
    sheets ...): codes of ``conditions.CONDITIONS`` plus free text."""

    __tablename__ = "capture_batch_condition"

    batch_id: Mapped[int] = mapped_column(ForeignKey("capture_batch.id"), primary_key=True)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    assessed_by: Mapped[str | None] = mapped_column(String(32))
    assessed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecordCondition(Base):
    """The same for one record (``batch_id``: the batch it was assessed in, if any)."""

    __tablename__ = "capture_record_condition"

    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), primary_key=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("capture_batch.id"))
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    assessed_by: Mapped[str | None] = mapped_column(String(32))
    assessed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
