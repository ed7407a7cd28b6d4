"""Tables of the tracking plugin: the current state of each paper record (one row per
admission that was ever moved; a record without a row is in the initial state) and every
move (append-only: who, when, where, from -> to, note, and what caused it)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from bingan.core.models import Base, UTCDateTime, utcnow


class PaperState(Base):
    """Where the paper record of one admission is in the hospital's flow, since when."""

    __tablename__ = "tracking_state"
    __table_args__ = (Index("ix_tracking_state_state_since", "state", "since"),)

    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_move_id: Mapped[int | None] = mapped_column(ForeignKey("tracking_move.id"))


class Move(Base):
    """One move of a paper record from one state to another."""

    __tablename__ = "tracking_move"
    __table_args__ = (Index("ix_tracking_move_admission", "admission_id", "id"),
                      Index("ix_tracking_move_at", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    staff_no: Mapped[str | None] = mapped_column(String(32))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    computer_name: Mapped[str | None] = mapped_column(String(128))
    location: Mapped[str] = mapped_column(String(128), default="")
    note: Mapped[str] = mapped_column(String(500), default="")
    # manual / bulk / event:<name>
    source: Mapped[str] = mapped_column(String(32))
    # the rule that allowed it ("已回收→待编码（签收）", "自动：recovered")
    rule: Mapped[str] = mapped_column(String(128), default="")
