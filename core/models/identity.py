"""Record identity: Patient, Admission (with its front page), Page, Document, Blob."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON, BigInteger, Boolean, Date, Float, ForeignKey, Index, Integer, LargeBinary, String,
    Text, UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bingan.core.models.base import Base, UTCDateTime, utcnow


class Patient(Base):
    """One patient of the hospital, identified by the MRN (病案号)."""

    __tablename__ = "patient"

    id: Mapped[int] = mapped_column(primary_key=True)
    mrn: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    name_pinyin: Mapped[str] = mapped_column(String(256), default="", index=True)
    name_initials: Mapped[str] = mapped_column(String(64), default="", index=True)
    sex: Mapped[str] = mapped_column(String(1), default="U")
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)  # encrypted at rest
    id_number_hash: Mapped[str | None] = mapped_column(String(64), index=True)  # keyed, for lookup
    phone: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(256))
    # A40 patient merge: this MRN was a duplicate; its admissions moved to the survivor.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    admissions: Mapped[list["Admission"]] = relationship(
        back_populates="patient", order_by="Admission.visit_no"
    )


class Admission(Base):
    """One inpatient stay: the 病案 and its front page (病案首页)."""

    __tablename__ = "admission"
    __table_args__ = (
        UniqueConstraint("patient_id", "visit_no", name="uq_admission_patient_visit"),
        Index("ix_admission_discharged_at", "discharged_at"),
        Index("ix_admission_admitted_at", "admitted_at"),
        Index("ix_admission_discharge_dept", "discharge_department"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    admission_no: Mapped[str] = mapped_column(String(32), unique=True)
    visit_no: Mapped[int] = mapped_column(Integer)
    barcode: Mapped[str] = mapped_column(String(64), unique=True)
    admitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    discharged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    admit_department: Mapped[str | None] = mapped_column(String(32))
    discharge_department: Mapped[str | None] = mapped_column(String(32))
    ward: Mapped[str | None] = mapped_column(String(64))
    discharge_way: Mapped[str | None] = mapped_column(String(2), index=True)
    payment_method: Mapped[str | None] = mapped_column(String(4))
    los_days: Mapped[int | None] = mapped_column(Integer)
    age_years: Mapped[int | None] = mapped_column(Integer)
    readmission_31d: Mapped[bool] = mapped_column(Boolean, default=False)
    total_cost: Mapped[float | None] = mapped_column(Float)
    front_page: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Admission cancelled by the HIS (ADT A11, registered in error): no longer a stay.
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="admissions")
    diagnoses: Mapped[list["Diagnosis"]] = relationship(
        cascade="all, delete-orphan", order_by="Diagnosis.seq"
    )
    operations: Mapped[list["Operation"]] = relationship(
        cascade="all, delete-orphan", order_by="Operation.seq"
    )
    signers: Mapped[list["Signer"]] = relationship(cascade="all, delete-orphan")
    pages: Mapped[list["Page"]] = relationship(order_by="Page.seq", viewonly=True)


class Diagnosis(Base):
    """A diagnosis on the front page (ICD-10, national clinical edition 2.0)."""

    __tablename__ = "diagnosis"

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(
        ForeignKey("admission.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # main other outpatient pathology injury
    code: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(128))
    admission_condition: Mapped[str | None] = mapped_column(String(1))


class Operation(Base):
    """An operation on the front page (ICD-9-CM-3, national clinical edition 3.0)."""

    __tablename__ = "operation"

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(
        ForeignKey("admission.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(128))
    op_date: Mapped[dt.date | None] = mapped_column(Date)
    level: Mapped[str | None] = mapped_column(String(4))
    surgeon_no: Mapped[str | None] = mapped_column(String(32))
    assistant1_no: Mapped[str | None] = mapped_column(String(32))
    assistant2_no: Mapped[str | None] = mapped_column(String(32))
    incision_healing: Mapped[str | None] = mapped_column(String(8))
    anaesthesia: Mapped[str | None] = mapped_column(String(32))
    anaesthetist_no: Mapped[str | None] = mapped_column(String(32))


class Signer(Base):
    """A staff member who signed the front page in a role (科主任, 主治医师 ...)."""

    __tablename__ = "signer"
    __table_args__ = (UniqueConstraint("admission_id", "role", name="uq_signer_admission_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(
        ForeignKey("admission.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(32))
    staff_no: Mapped[str] = mapped_column(String(32), index=True)


class Blob(Base):
    """A stored blob (content-addressed). A blob without a row is an orphan."""

    __tablename__ = "blob"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Page(Base):
    """One page image of a record, in record order."""

    __tablename__ = "page"
    __table_args__ = (Index("ix_page_admission_seq", "admission_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"))
    seq: Mapped[int] = mapped_column(Integer)
    page_type: Mapped[str | None] = mapped_column(String(32))
    page_type_confidence: Mapped[float | None] = mapped_column(Float)
    image_sha256: Mapped[str | None] = mapped_column(ForeignKey("blob.sha256"))
    original_sha256: Mapped[str | None] = mapped_column(ForeignKey("blob.sha256"))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    dpi: Mapped[float | None] = mapped_column(Float)
    qc_status: Mapped[str | None] = mapped_column(String(8))
    qc_metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    steps: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("page.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Document(Base):
    """The PDF of an admission; a supplement makes a new version, old versions stay."""

    __tablename__ = "document"
    __table_args__ = (UniqueConstraint("admission_id", "version", name="uq_document_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"))
    page_count: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
