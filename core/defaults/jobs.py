"""Core's scheduled jobs: grant expiry, audit checkpoint, fixity sample, session cleanup."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, or_
from bingan.hooks import hookimpl
from bingan.hooks.types import JobSpec, PermissionInfo, Runtime

log = logging.getLogger("bingan.jobs")


def expire_grants(rt: Runtime) -> int:
    from bingan.core import grants

    with rt.sessions() as s, s.begin():
        return grants.close_expired(s, rt)


def audit_checkpoint(rt: Runtime, kind: str = "scheduled", force: bool = False) -> dict | None:
    """Anchor the chain head (``audit.write_checkpoint``) unless nothing moved since the last
    checkpoint (and not ``force``). The event that records it is committed first, so the
    checkpoint covers it and an idle chain is not checkpointed again."""
    from bingan.core import audit
    from bingan.core.models import AuditHead

    last = audit.last_checkpoint_seq(rt)
    with rt.sessions() as s, s.begin():
        head = s.get(AuditHead, 1)
        if not force and last is not None and head.seq <= last:
            return None
        audit.record(s, rt, "audit.checkpoint", actor=audit.Actor(staff_no="system"),
                     detail={"kind": kind, "previous": last})
    with rt.sessions() as s:
        return audit.write_checkpoint(s, rt, kind)


def audit_checkpoint_job(rt: Runtime) -> dict | None:
    return audit_checkpoint(rt, "scheduled")


def fixity_sample(rt: Runtime) -> int:
    from bingan.core import audit, storage

    with rt.sessions() as s:  # sample_fixity commits verified_at as it goes
        report = storage.sample_fixity(s, rt.store, rt.config.core.fixity_sample_size)
    with rt.sessions() as s, s.begin():
        audit.record(
            s, rt, "storage.fixity", actor=audit.Actor(staff_no="system"),
            outcome="ok" if report.ok else "failed",
            detail={"checked": report.checked, "missing": report.missing[:20],
                    "corrupt": report.corrupt[:20]},
        )
        if not report.ok:
            log.error("fixity sample found missing=%s corrupt=%s", report.missing, report.corrupt)
        return report.checked


def purge_sessions(rt: Runtime) -> int:
    from bingan.core.models import WebSession, utcnow

    cutoff = utcnow() - dt.timedelta(hours=rt.config.core.session_max_hours * 2)
    with rt.sessions() as s, s.begin():
        res = s.execute(delete(WebSession).where(
            or_(WebSession.last_seen_at < cutoff, WebSession.revoked_at < cutoff)))
        return res.rowcount or 0


@hookimpl
def register_jobs(rt: Runtime):
    minutes = rt.config.core.audit_checkpoint_minutes
    return [
        JobSpec("core.expire_grants", expire_grants, "interval", {"minutes": 1},
                "关闭到期的查阅授权并通知"),
        JobSpec("core.audit_checkpoint", audit_checkpoint_job, "interval", {"minutes": minutes},
                f"每 {minutes} 分钟把审计链头签名写入检查点（链有新事件时）"),
        JobSpec("core.fixity_sample", fixity_sample, "cron", {"hour": 2, "minute": 30},
                "抽样校验存储文件哈希"),
        JobSpec("core.purge_sessions", purge_sessions, "cron", {"hour": 3, "minute": 0},
                "清理过期会话"),
    ]


@hookimpl
def register_permissions():
    return [
        PermissionInfo("admin.users", "管理用户"),
        PermissionInfo("admin.roles", "管理角色"),
        PermissionInfo("admin.departments", "管理科室"),
        PermissionInfo("admin.plugins", "查看插件"),
        PermissionInfo("admin.sessions", "管理会话"),
        PermissionInfo("audit.read", "查看审计日志"),
        PermissionInfo("audit.export", "导出审计日志"),
        PermissionInfo("records.manage", "病案室业务"),
        PermissionInfo("qc.inspect", "质量检查"),
    ]
