"""Tables of the deathcase plugin: the work on each record (labels, charge list), every
export (one row per PDF version) and every batch (one zip with its manifest), with who did
what and when, and the upload to the quality-control platform."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bingan.core.models import Base, UTCDateTime, utcnow

STATES = {"prepare": "待准备", "labelled": "已制作标签", "charges": "已合并收费清单",
          "exported": "已导出", "uploaded": "已上传"}
CHARGE_SOURCES = {"his": "HIS 接口", "xlsx": "上传 Excel", "pdf": "上传 PDF"}


class DeathcaseCase(Base):
    """The preparation of one record (an admission with 离院方式 4 or 5)."""

    __tablename__ = "deathcase_case"

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), unique=True)
    labels_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    labels_by: Mapped[str | None] = mapped_column(String(32))
    charge_sha256: Mapped[str | None] = mapped_column(ForeignKey("blob.sha256"))
    charge_pages: Mapped[int | None] = mapped_column(Integer)
    charge_source: Mapped[str | None] = mapped_column(String(8))
    charge_filename: Mapped[str | None] = mapped_column(String(255))
    charge_total: Mapped[float | None] = mapped_column(Float)
    charge_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    charge_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeathcaseBatch(Base):
    """One export of several records: a zip of their PDFs and the manifest (xlsx + csv)."""

    __tablename__ = "deathcase_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_no: Mapped[str] = mapped_column(String(32), unique=True)
    records: Mapped[int] = mapped_column(Integer)
    zip_sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"))
    zip_size: Mapped[int] = mapped_column(BigInteger)
    manifest_xlsx_sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"))
    manifest_csv_sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploaded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    uploaded_by: Mapped[str | None] = mapped_column(String(32))
    upload_note: Mapped[str | None] = mapped_column(Text)


class DeathcaseExport(Base):
    """One exported PDF of one record; exporting again after a correction adds a version."""

    __tablename__ = "deathcase_export"
    __table_args__ = (UniqueConstraint("admission_id", "version",
                                       name="uq_deathcase_export_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("deathcase_batch.id"), index=True)
    file_name: Mapped[str] = mapped_column(String(255))
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"))
    pages: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    page_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # record pages, in order
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
