"""In-app notifications; every message is stored, then handed to the ``notify`` hook."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bingan.hooks.types import Notification as NotificationMsg
from bingan.core.models import Notification, Staff


def send(session: Session, rt, staff_no: str, title: str, body: str = "",
         href: str | None = None) -> Notification:
    """Store a notification for ``staff_no`` and pass it to plugins (SMS, WeChat Work ...)."""
    staff = session.scalar(select(Staff).where(Staff.staff_no == staff_no))
    if staff is None:
        raise ValueError(f"unknown staff number {staff_no!r}")
    row = Notification(staff_id=staff.id, title=title, body=body, href=href)
    session.add(row)
    session.flush()
    rt.pm.hook.notify(notification=NotificationMsg(staff_no, title, body, href), rt=rt)
    return row


def unread_count(session: Session, staff_id: int) -> int:
    return session.scalar(
        select(func.count()).select_from(Notification)
        .where(Notification.staff_id == staff_id, Notification.read_at.is_(None))
    ) or 0
