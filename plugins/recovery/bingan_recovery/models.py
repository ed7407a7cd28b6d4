"""Tables of the recovery plugin: the hospital's own holiday table, the years it checked, the
recovery of each record (one row per admission), every scan uploaded from a phone (one row per
scan id, so a replayed upload changes nothing), ward handovers (receipts) and 补单."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bingan.core.models import Base, UTCDateTime, utcnow

DAY_KINDS = {"closure": "停诊/闭院（非工作日）", "workday": "调休上班（工作日）"}
SOURCE_LABELS = {"ward": "病区回收（手机）", "room": "病案室扫码"}
OUTCOME_LABELS = {
    "recovered": "已回收", "duplicate": "本人已回收（重复）", "taken": "他人已回收",
    "unknown": "条码不存在", "invalid": "条码无效", "not_discharged": "未出院",
}
SUPPLEMENT_STATUS = {"waiting": "待采集", "captured": "已采集", "archived": "已归档（新版本）"}


class HospitalDay(Base):
    """A day the hospital sets itself: a closure (no work) or a make-up workday (调休)."""

    __tablename__ = "recovery_hospital_day"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(128), default="")
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CheckedYear(Base):
    """A year whose holidays and make-up days the hospital entered and confirmed itself."""

    __tablename__ = "recovery_checked_year"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    checked_by: Mapped[str | None] = mapped_column(String(32))
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Recovery(Base):
    """The paper record of one admission is back in the record room."""

    __tablename__ = "recovery_record"
    __table_args__ = (Index("ix_recovery_record_recovered_at", "recovered_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), unique=True)
    recovered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recovered_by: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(8))
    ward: Mapped[str | None] = mapped_column(String(64))
    handover_id: Mapped[int | None] = mapped_column(ForeignKey("recovery_handover.id"))
    label_printed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Handover(Base):
    """One ward visit of a recovery staff member: what the ward handed over (the receipt)."""

    __tablename__ = "recovery_handover"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    ward: Mapped[str] = mapped_column(String(64))
    staff_no: Mapped[str] = mapped_column(String(32))
    staff_name: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Scan(Base):
    """One scan made on a phone, as uploaded; ``client_id`` makes the upload idempotent."""

    __tablename__ = "recovery_scan"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    handover_id: Mapped[int] = mapped_column(ForeignKey("recovery_handover.id"), index=True)
    barcode: Mapped[str] = mapped_column(String(64))
    scanned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    admission_id: Mapped[int | None] = mapped_column(ForeignKey("admission.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Supplement(Base):
    """补单: documents that reached the record room after the record was recovered."""

    __tablename__ = "recovery_supplement"

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    sheets: Mapped[int] = mapped_column(Integer)
    from_ward: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    registered_by: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    captured_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    document_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
