"""Tables of the HL7 listener: every message received (for de-duplication, the ACK it got and
the log), and per admission the event time of the last discharge-state change (so an older
message arriving late does not undo a newer one)."""

from __future__ import annotations

import datetime as dt

from bingan.core.models import Base, UTCDateTime, utcnow
from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

STATUS_LABELS = {"applied": "已处理", "ignored": "已忽略", "parked": "待入院消息",
                 "rejected": "已拒收"}


class Hl7Message(Base):
    """One received message. ``raw`` is kept for parked (waiting for their admission) and
    rejected messages only, for replay and for the integrator to see what was wrong."""

    __tablename__ = "hl7_message"
    __table_args__ = (
        UniqueConstraint("sender", "control_id", name="uq_hl7_message_sender_control"),
        Index("ix_hl7_message_status_adm", "status", "admission_no"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sender: Mapped[str] = mapped_column(String(128))  # MSH-3^MSH-4
    control_id: Mapped[str] = mapped_column(String(64))  # MSH-10
    event: Mapped[str] = mapped_column(String(8))  # A01 ...
    event_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    peer: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    ack_code: Mapped[str] = mapped_column(String(2))
    ack_text: Mapped[str] = mapped_column(Text, default="")
    mrn: Mapped[str | None] = mapped_column(String(32))
    admission_no: Mapped[str | None] = mapped_column(String(32))
    raw: Mapped[str | None] = mapped_column(Text)


class Hl7VisitState(Base):
    """The newest discharge-state event (A01/A03/A11/A13) applied to an admission."""

    __tablename__ = "hl7_visit_state"

    admission_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    event: Mapped[str] = mapped_column(String(8))
    event_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
