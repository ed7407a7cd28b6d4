"""The home page ``/``: what waits for the person who signs in, by what they may do.

Every plugin says what waits in its own area through ``home_panels`` (a clerk's rework, an
inspector's records to inspect, a physician's applications and the records he still owes the
record room, the record room's loans overdue ...); core adds the system's health for the
administrator and the day's refusals for the auditor. A panel is shown only to staff holding
its permission, the same one its pages need, and carries figures and links, never record
content: the home page asks no access decision, so it shows nothing one would need.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, get
from sqlalchemy import func, select

from bingan.core.models import Admission, AuditEvent, Notification, Staff, Task, WebSession, utcnow
from bingan.core.web.render import in_thread, page
from bingan.hooks import hookimpl
from bingan.hooks.types import HomeItem, HomePanel, StaffRef

# a queued task this much past its start time means no worker is taking the queue
STALE_QUEUE = dt.timedelta(minutes=10)
# how long the admin's health check of pending migrations is remembered (it reads the
# migration scripts and the database's heads: not on every visit)
_MIGRATIONS_TTL = dt.timedelta(minutes=1)
_migrations_cache: dict[int, tuple[dt.datetime, list[str]]] = {}


def panels_for(rt, staff: StaffRef, session) -> list[HomePanel]:
    """The home panels ``staff`` may see, in order: every plugin's answer to
    ``home_panels``, less the panels whose permission ``staff`` lacks."""
    out: list[HomePanel] = []
    for group in rt.pm.hook.home_panels(staff=staff, session=session, rt=rt):
        for p in group or []:
            if p.permission is None or p.permission in staff.permissions:
                out.append(p)
    return sorted(out, key=lambda p: (p.order, p.key))


@get("/")
@in_thread
def home(request: Request) -> Any:
    rt = request.app.state.rt
    staff = request.state.staff
    if "admin.plugins" in staff.permissions:
        # before the page's session: it reads the schema heads on a connection of its own,
        # which on SQLite would wait for the session's transaction (BEGIN IMMEDIATE)
        _pending_migrations(rt)
    with rt.sessions() as s:
        panels = panels_for(rt, staff, s)
        notes = s.scalars(select(Notification).where(Notification.staff_id == staff.id)
                          .order_by(Notification.created_at.desc()).limit(5)).all()
    plugins = ([(lp.info.title or lp.name) for lp in rt.pm.loaded.values()]
               if "admin.plugins" in staff.permissions else None)
    return page(request, "home.html", panels=panels, notes=notes, plugins=plugins)


def _count(session, q) -> int:
    return int(session.scalar(select(func.count()).select_from(q.subquery())) or 0)


def _pending_migrations(rt) -> list[str]:
    """``migrate.pending`` remembered for a minute (the home page calls it before opening its
    session, so the health panel reads the remembered answer)."""
    from bingan.core.migrate import pending

    now = utcnow()
    hit = _migrations_cache.get(id(rt))
    if hit is None or now - hit[0] > _MIGRATIONS_TTL:
        hit = _migrations_cache[id(rt)] = (now, pending(rt))
    return hit[1]


def _health(staff: StaffRef, session, rt) -> HomePanel:
    now = utcnow()
    failed = _count(session, select(Task.id).where(Task.status == "failed"))
    stale = _count(session, select(Task.id).where(Task.status == "queued",
                                                   Task.run_after < now - STALE_QUEUE))
    queued = _count(session, select(Task.id).where(Task.status.in_(("queued", "running"))))
    migrations = len(_pending_migrations(rt))
    locked = _count(session, select(Staff.id).where(Staff.locked_until > now))
    online = _count(session, select(WebSession.id).where(
        WebSession.revoked_at.is_(None), WebSession.mfa_passed.is_(True),
        WebSession.last_seen_at > now - dt.timedelta(
            minutes=rt.config.core.session_idle_minutes)))
    perms = staff.permissions
    items = [
        HomeItem("待执行的数据库升级", migrations, tone="alert" if migrations else ""),
        HomeItem("失败的后台任务", failed, tone="alert" if failed else ""),
        HomeItem("积压超过 10 分钟的任务", stale, tone="warn" if stale else ""),
        HomeItem("排队及运行中的任务", queued),
        HomeItem("当前在线会话", online,
                 "/admin/sessions" if "admin.sessions" in perms else None),
        HomeItem("被锁定的账号", locked, "/admin/users" if "admin.users" in perms else None,
                 tone="warn" if locked else ""),
    ]
    note = ("有失败或积压的后台任务：请在服务器上运行 `bingan tasks status` 查看原因。"
            if failed or stale else "")
    if migrations:
        note = "数据库结构未升级：请运行 `bingan db upgrade`。" + note
    return HomePanel("core.health", "系统运行状态", tuple(items), permission="admin.plugins",
                     order=5, href="/admin/plugins", note=note)


def _audit(staff: StaffRef, session, rt) -> HomePanel:
    today = dt.datetime.now(rt.tz).date()
    start = dt.datetime.combine(today, dt.time(), rt.tz)
    day = select(AuditEvent.seq).where(AuditEvent.ts >= start)
    denied = _count(session, day.where(AuditEvent.outcome.in_(("denied", "deny"))))
    failed_logins = _count(session, day.where(AuditEvent.action.in_(("login", "login.totp")),
                                              AuditEvent.outcome == "failed"))
    q = f"start={today.isoformat()}"
    return HomePanel("core.audit", "今日审计", (
        HomeItem("今日审计事件", _count(session, day), f"/audit?{q}"),
        HomeItem("拒绝访问", denied, f"/audit?{q}&outcome=denied", "warn" if denied else ""),
        HomeItem("登录失败", failed_logins, f"/audit?{q}&action=login&outcome=failed",
                 "warn" if failed_logins else ""),
    ), permission="audit.read", order=6, href="/audit")


def _hospital(staff: StaffRef, session, rt) -> HomePanel:
    """Aggregate figures of the whole archive (no record is named): for the record room."""
    total = int(session.scalar(select(func.count()).select_from(Admission)) or 0)
    inpatients = int(session.scalar(select(func.count()).select_from(Admission).where(
        Admission.discharged_at.is_(None), Admission.cancelled_at.is_(None))) or 0)
    return HomePanel("core.archive", "病案概况", (
        HomeItem("病案总数", total), HomeItem("在院患者", inpatients),
    ), permission="records.manage", order=80)


@hookimpl
def home_panels(staff, session, rt):
    out = []
    if "admin.plugins" in staff.permissions:
        out.append(_health(staff, session, rt))
    if "audit.read" in staff.permissions:
        out.append(_audit(staff, session, rt))
    if "records.manage" in staff.permissions:
        out.append(_hospital(staff, session, rt))
    return out


@hookimpl
def register_routes():
    return [home]
