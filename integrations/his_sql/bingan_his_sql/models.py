"""Where each HIS source's pull got to (its watermark), and the rows it could not take."""

from __future__ import annotations

import datetime as dt

from bingan.core.models import Base, UTCDateTime, utcnow
from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column


class HisSqlState(Base):
    __tablename__ = "his_sql_state"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    # the last row taken: its watermark (JSON-typed text: a time, a number or a string) and key
    watermark: Mapped[str | None] = mapped_column(Text)
    last_key: Mapped[str | None] = mapped_column(String(128))
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)


class HisSqlIssue(Base):
    """A HIS row refused by the admission rules: which row, which column, why."""

    __tablename__ = "his_sql_issue"
    __table_args__ = (Index("ix_his_sql_issue_source_key", "source", "row_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    row_key: Mapped[str] = mapped_column(String(128))
    watermark: Mapped[str | None] = mapped_column(Text)
    column: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    value: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
