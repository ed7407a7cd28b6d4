"""Tables of the reading plugin: administrators' reading rules, and applications to read.

Approved applications become core grants (``core.grants``); the grant is what the access check
uses, the application keeps who asked, why, who decided and when.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bingan.core.models import Base, UTCDateTime, utcnow

SUBJECT_TYPES = {"user": "用户", "role": "角色", "department": "科室"}
EFFECTS = {"allow": "允许", "deny": "禁止"}
# record_scope: None = every record; OWN_DEPARTMENT = records discharged from the reader's own
# department; any other value = records discharged from that department code.
OWN_DEPARTMENT = "$own"

STATUS_LABELS = {"pending": "待审批", "approved": "已批准", "rejected": "已驳回",
                 "cancelled": "已撤回"}


class ReadingRule(Base):
    """An administrator's reading right (or ban) for a user, a role or a department."""

    __tablename__ = "reading_rule"
    __table_args__ = (Index("ix_reading_rule_subject", "subject_type", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(16))  # user / role / department
    subject: Mapped[str] = mapped_column(String(32))       # staff no. / role name / dept code
    effect: Mapped[str] = mapped_column(String(8), default="allow")  # allow / deny
    actions: Mapped[list[str]] = mapped_column(JSON, default=list)
    record_scope: Mapped[str | None] = mapped_column(String(32))
    until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(32))


class ReadingApplication(Base):
    """A staff member's application to read records (M6-M8)."""

    __tablename__ = "reading_application"
    __table_args__ = (Index("ix_reading_application_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    applicant_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"),
                                              index=True)
    applicant_department: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # approvers resolved when the application was made (staff numbers), so a later change of
    # configuration does not orphan it
    approvers: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    items: Mapped[list["ReadingApplicationItem"]] = relationship(
        back_populates="application", cascade="all, delete-orphan",
        order_by="ReadingApplicationItem.id")


class ReadingApplicationItem(Base):
    """One record (admission) or all of one patient's records in an application."""

    __tablename__ = "reading_application_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("reading_application.id", ondelete="CASCADE"), index=True)
    admission_id: Mapped[int | None] = mapped_column(ForeignKey("admission.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), index=True)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grant.id"))

    application: Mapped[ReadingApplication] = relationship(back_populates="items")


PAPER_STATUS = {"open": "待处理", "sent": "已送出", "refused": "不能提供", "cancelled": "已撤回"}


class PaperRequest(Base):
    """A request to the record room for the paper record (a record not digitized yet), when
    no warehouse plugin takes borrowing requests (``paper_record_request``)."""

    __tablename__ = "reading_paper_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"))
    applicant_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_by: Mapped[str | None] = mapped_column(String(32))
    handled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
