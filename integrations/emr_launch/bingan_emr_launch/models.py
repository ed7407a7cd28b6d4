"""The nonces of launch links already used: a link opens the viewer once."""

from __future__ import annotations

import datetime as dt

from bingan.core.models import Base, UTCDateTime, utcnow
from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column


class EmrLaunchNonce(Base):
    __tablename__ = "emr_launch_nonce"
    __table_args__ = (UniqueConstraint("system", "nonce", name="uq_emr_launch_nonce"),
                      Index("ix_emr_launch_nonce_expires", "expires_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # after this the link is expired anyway: the row may go
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
