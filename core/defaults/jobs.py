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
    """Hash a random sample of blobs; with a replica, restore what is missing or damaged from
    it (and hash the restored copy again). The audit event lists what was found, repaired and
    left unrepaired."""
    from bingan.core import audit, storage
    from bingan.core.storage_ops import RepairReport, primary_of, repair_keys, replica_of

    primary, replica = primary_of(rt.store), replica_of(rt.store)
    with rt.sessions() as s:  # sample_fixity commits verified_at as it goes
        report = storage.sample_fixity(s, primary, rt.config.core.fixity_sample_size)
    repair = RepairReport()
    bad = report.missing + report.corrupt
    if bad and replica is not None:
        repair_keys(primary, replica, bad, repair)
    unrepaired = repair.unrepaired if replica is not None else bad
    with rt.sessions() as s, s.begin():
        audit.record(
            s, rt, "storage.fixity", actor=audit.Actor(staff_no="system"),
            outcome="ok" if not unrepaired else "failed",
            detail={"checked": report.checked, "missing": report.missing[:20],
                    "corrupt": report.corrupt[:20], "repaired": repair.repaired[:20],
                    "unrepaired": unrepaired[:20], "replica": replica is not None},
        )
    if repair.repaired:
        log.warning("fixity sample repaired from the replica: %s", repair.repaired)
    if unrepaired:
        log.error("fixity sample found missing=%s corrupt=%s, not repaired: %s",
                  report.missing, report.corrupt, unrepaired)
    return report.checked


def replica_sync(rt: Runtime) -> int:
    """Copy to the replica the blobs whose write-through failed (the replica was down)."""
    from bingan.core import audit
    from bingan.core.storage_ops import replica_of, sync_replica

    if replica_of(rt.store) is None:
        return 0
    with rt.sessions() as s:
        report = sync_replica(s, rt.store)
    if report.copied or report.failed:
        with rt.sessions() as s, s.begin():
            audit.record(s, rt, "storage.replicate", actor=audit.Actor(staff_no="system"),
                         outcome="ok" if not report.failed else "failed",
                         detail={"copied": len(report.copied), "failed": report.failed[:20]})
    return len(report.copied)


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
        *([JobSpec("core.replica_sync", replica_sync, "interval", {"minutes": 30},
                   "把写入时未能写到副本的文件补写到副本")] if rt.config.replica_url else []),
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
