"""Tables of the copying plugin: copy requests, their pages, the applicant's identity documents
(the images themselves are encrypted blobs) and the print register."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bingan.core.models import Base, UTCDateTime, utcnow

STATUS_LABELS = {
    "registered": "已登记", "pending": "待审批", "approved": "已批准", "rejected": "已驳回",
    "printed": "已打印", "cancelled": "已作废",
}
SOURCE_LABELS = {"webcam": "摄像头拍摄", "scanner": "扫描仪", "upload": "上传文件"}


class CopyRequest(Base):
    """One copy request at the counter (or from a branch/ward: ``site`` set, needs approval)."""

    __tablename__ = "copy_request"
    __table_args__ = (Index("ix_copy_request_created_at", "created_at"),
                      Index("ix_copy_request_status", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    request_no: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="registered")
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    mrn: Mapped[str] = mapped_column(String(32))
    applicant_type: Mapped[str] = mapped_column(String(32))
    applicant_name: Mapped[str] = mapped_column(String(64))
    applicant_phone: Mapped[str | None] = mapped_column(String(32))
    organization: Mapped[str | None] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(32))
    purpose_note: Mapped[str] = mapped_column(Text, default="")
    copies: Mapped[int] = mapped_column(Integer, default=1)
    pages: Mapped[int] = mapped_column(Integer, default=0)  # pages of one copy
    fee_fen: Mapped[int] = mapped_column(Integer, default=0)
    department: Mapped[str | None] = mapped_column(String(32))  # the first admission's
    consent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    consent_text: Mapped[str] = mapped_column(Text)
    operator_no: Mapped[str] = mapped_column(String(32))
    operator_name: Mapped[str] = mapped_column(String(64), default="")
    site: Mapped[str | None] = mapped_column(String(64))  # None: central record room
    repeat_of: Mapped[list[int]] = mapped_column(JSON, default=list)  # earlier request ids
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)
    identity_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    identity_purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    items: Mapped[list["CopyItem"]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="CopyItem.position")
    documents: Mapped[list["IdentityDocument"]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="IdentityDocument.id")
    prints: Mapped[list["PrintJob"]] = relationship(
        back_populates="request", order_by="PrintJob.id")


class CopyItem(Base):
    """One page chosen for the copy, in output order."""

    __tablename__ = "copy_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("copy_request.id", ondelete="CASCADE"),
                                            index=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), index=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("page.id"))
    page_type: Mapped[str | None] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)

    request: Mapped[CopyRequest] = relationship(back_populates="items")


class IdentityDocument(Base):
    """An applicant's document image, stored encrypted (``blob_sha256`` is the ciphertext's
    key in the blob store; the key is outside the database)."""

    __tablename__ = "copy_identity_document"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("copy_request.id", ondelete="CASCADE"),
                                            index=True)
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # webcam / scanner / upload
    media_type: Mapped[str] = mapped_column(String(32))  # of the plain image
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str] = mapped_column(String(16))
    blob_sha256: Mapped[str | None] = mapped_column(String(64))  # None once purged
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    request: Mapped[CopyRequest] = relationship(back_populates="documents")


class PrintJob(Base):
    """The print register: every output of a copy (a CUPS job or a download)."""

    __tablename__ = "copy_print_job"
    __table_args__ = (Index("ix_copy_print_job_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("copy_request.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    operator_no: Mapped[str] = mapped_column(String(32))
    printer: Mapped[str] = mapped_column(String(128))  # CUPS queue, or "download"
    pages: Mapped[int] = mapped_column(Integer)
    copies: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[str] = mapped_column(Text, default="")
    cups_job: Mapped[str | None] = mapped_column(String(128))
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    computer_name: Mapped[str | None] = mapped_column(String(255))
    content: Mapped[dict] = mapped_column(JSON, default=dict)  # admissions and page types

    request: Mapped[CopyRequest] = relationship(back_populates="prints")
