"""An import started from the web page: its file, phase, progress and result."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bingan.core.models import Base, UTCDateTime, utcnow
from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

STATUS_LABELS = {"checking": "校验中", "checked": "已校验，待确认", "running": "导入中",
                 "done": "已完成", "failed": "失败", "refused": "文件被拒绝"}


class ImportJob(Base):
    __tablename__ = "admission_import_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16), default="checking")
    total_estimate: Mapped[int | None] = mapped_column(Integer)
    done_rows: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
