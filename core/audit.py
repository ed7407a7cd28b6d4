"""The audit log: one append-only table, each event hash-chained to the one before.

``hash = HMAC-SHA256(audit_key, prev_hash || canonical JSON of the event)``. The key lives outside
the database and the data folder (``[core] key_dir`` or plugins.toml), so someone who can write
the table, or who has a copy of BINGAN_HOME, cannot forge a consistent chain. Appends lock the
single ``audit_head`` row, which serializes them on PostgreSQL (SQLite's BEGIN IMMEDIATE
already does).

Checkpoints anchor the chain outside the database: the head (seq, hash, time), signed with the
key, appended to BINGAN_HOME/audit/checkpoints.jsonl and to the anchors of ``[core]``
(``audit_anchor_file`` outside BINGAN_HOME, ``audit_syslog``). One is written at install
(``bingan db upgrade``: the genesis), at every server start and every
``audit_checkpoint_minutes`` when the chain moved. ``verify`` checks each signature and that the
chain still holds every anchored head, so deleting or rewriting anchored events, emptying the
table, or forging a checkpoint is found (docs/operations.md says what root can still hide).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import bindparam, event, func, select
from sqlalchemy.orm import Session

from bingan.hooks.types import AuditEventRef
from bingan.core.models import AuditEvent, AuditHead, utcnow

GENESIS = "0" * 64

log = logging.getLogger("bingan.audit")


@dataclass(frozen=True)
class Actor:
    """Who did something and from where (filled by the web layer or the CLI)."""

    staff_no: str | None = None
    client_ip: str | None = None
    computer_name: str | None = None

    @classmethod
    def cli(cls) -> "Actor":
        import getpass
        import socket

        return cls(staff_no=f"cli:{getpass.getuser()}", client_ip="127.0.0.1",
                   computer_name=socket.gethostname())


def _canonical(seq: int, ts: dt.datetime, e: dict[str, Any]) -> bytes:
    fields = [
        seq, ts.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        e["staff_no"], e["client_ip"], e["computer_name"], e["action"], e["mrn"],
        e["admission_no"], e["outcome"], e["detail"],
    ]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def event_hash(key: bytes, prev_hash: str, seq: int, ts: dt.datetime, e: dict[str, Any]) -> str:
    return hmac.new(key, prev_hash.encode() + _canonical(seq, ts, e), hashlib.sha256).hexdigest()


def record(
    session: Session, rt, action: str, *, actor: Actor | None = None, outcome: str = "ok",
    mrn: str | None = None, admission_no: str | None = None,
    detail: dict[str, Any] | None = None, ts: dt.datetime | None = None,
) -> AuditEventRef:
    """Append one event in the caller's transaction and return it.

    ``outcome`` is ``ok``, ``denied``, ``failed`` or ``allow``/``deny`` for access decisions.
    """
    actor = actor or Actor()
    ts = ts or utcnow()
    session.flush()  # the caller's pending changes go first, as they always did
    # Core statements built once: a page view records an event, and the ORM unit of work and
    # building the statements per call cost more than the writes (bench/serving.py)
    conn = session.connection()
    head = conn.execute(_HEAD_Q).first()
    if head is None:  # a database created without core's migration
        raise RuntimeError("audit_head row missing: run `bingan db upgrade`")
    seq = head.seq + 1
    fields = {
        "staff_no": actor.staff_no, "client_ip": actor.client_ip,
        "computer_name": actor.computer_name, "action": action, "mrn": mrn,
        "admission_no": admission_no, "outcome": outcome,
        "detail": json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str),
    }
    if action not in declared_actions(rt):
        if rt.strict_audit:  # tests: an undeclared action is a programming error
            raise UndeclaredAuditAction(
                f"audit action {action!r} is not declared (core's ACTION_LABELS or a plugin's "
                "audit_action_labels hook)")
        log.warning("audit action %r is not declared; recorded all the same", action)
    h = event_hash(rt.audit_key, head.hash, seq, ts, fields)
    conn.execute(_INSERT, {"seq": seq, "ts": ts, "prev_hash": head.hash, "hash": h, **fields})
    conn.execute(_HEAD_UPDATE, {"new_seq": seq, "new_hash": h, "new_ts": ts})
    held = session.identity_map.get(session.identity_key(AuditHead, 1))
    if held is not None:  # an AuditHead this session loaded before is now out of date
        session.expire(held)
    ref = AuditEventRef(
        seq=seq, ts=ts, staff_no=actor.staff_no, action=action, outcome=outcome, mrn=mrn,
        admission_no=admission_no, client_ip=actor.client_ip, computer_name=actor.computer_name,
    )
    _announce_after_commit(session, rt, ref)
    return ref


_HEAD_Q = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1).with_for_update()
_INSERT = AuditEvent.__table__.insert()
_HEAD_UPDATE = (AuditHead.__table__.update().where(AuditHead.__table__.c.id == 1)
                .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"),
                        updated_at=bindparam("new_ts")))


class UndeclaredAuditAction(ValueError):
    """An audit action nobody declared: core's ``ACTION_LABELS`` or a plugin's
    ``audit_action_labels`` (with ``access.<action>`` for every registered record action)."""


def declared_actions(rt) -> dict[str, str]:
    """Every declared audit action with its Chinese label, computed once per runtime."""
    if rt.audit_actions is None:
        rt.audit_actions = action_labels(rt)
    return rt.audit_actions


# -- audit_recorded after the commit ---------------------------------------------------------
# An event is announced (``audit_recorded``) only once the transaction that wrote it commits:
# a forwarder never sees an event that was rolled back. Events written inside a savepoint
# that rolls back are dropped with it.
_PENDING = "bingan_audit_pending"


def _announce_after_commit(session: Session, rt, ref: AuditEventRef) -> None:
    txn = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((txn, rt, ref))


def _inside(txn, ended) -> bool:
    while txn is not None:
        if txn is ended:
            return True
        txn = txn.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [p for p in pending if not _inside(p[0], previous_transaction)]


@event.listens_for(Session, "after_commit")
def _announce(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    for _txn, rt, ref in pending or ():
        try:
            rt.pm.hook.audit_recorded(event=ref, rt=rt)
        except Exception:  # the event is committed; a forwarder's failure must not undo it
            log.exception("audit_recorded failed for event %s", ref.seq)


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""


def _events(session: Session, chunk: int = 5000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = list(session.scalars(
            select(AuditEvent).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(chunk)
        ))
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def checkpoint_path(rt) -> Path:
    return rt.home / "audit" / "checkpoints.jsonl"


def anchor_files(rt) -> list[Path]:
    """Every checkpoint file: the data folder's and ``[core] audit_anchor_file``."""
    out = [checkpoint_path(rt)]
    if rt.config.core.audit_anchor_file:
        out.append(Path(rt.config.core.audit_anchor_file))
    return out


def _signed_part(entry: dict[str, Any]) -> bytes:
    return json.dumps([entry.get("seq"), entry.get("hash"), entry.get("ts"), entry.get("kind")],
                      separators=(",", ":")).encode()


def sign_checkpoint(key: bytes, entry: dict[str, Any]) -> str:
    return hmac.new(key, b"checkpoint:" + _signed_part(entry), hashlib.sha256).hexdigest()


class CheckpointError(ValueError):
    """A checkpoint file that cannot be trusted (unreadable line, bad signature, order)."""


def parse_checkpoints(text: str, key: bytes, where: str) -> list[dict[str, Any]]:
    """The signed checkpoints in ``text``: one JSON object a line, anything before its ``{``
    ignored (a syslog prefix). Raises CheckpointError naming the line."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        start = line.find("{")
        try:
            # raw_decode: whatever follows the object (syslog's NUL, a newline) is ignored
            entry = json.JSONDecoder().raw_decode(line[start:])[0] if start >= 0 else None
        except json.JSONDecodeError:
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
            raise CheckpointError(f"{where} 第 {n} 行不是检查点")
        if not hmac.compare_digest(str(entry.get("sig", "")), sign_checkpoint(key, entry)):
            raise CheckpointError(f"{where} 第 {n} 行检查点（事件 {entry['seq']}）签名不符："
                                  "被伪造或改动")
        if out and entry["seq"] < out[-1]["seq"]:
            raise CheckpointError(f"{where} 第 {n} 行检查点（事件 {entry['seq']}）早于前一行"
                                  f"（事件 {out[-1]['seq']}）：文件被改动")
        out.append(entry)
    return out


def read_checkpoints(rt, extra: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    """Every checkpoint of every anchor file (plus ``extra`` files, e.g. lines kept from
    syslog), each checked (``parse_checkpoints``)."""
    out = []
    for path in [*anchor_files(rt), *extra]:
        if path.exists():
            out.extend(parse_checkpoints(path.read_text(encoding="utf-8"), rt.audit_key,
                                         str(path)))
    return out


def verify(session: Session, rt, progress=None, extra: tuple[Path, ...] = ()) -> VerifyResult:
    """Walk the whole chain; report the first event that was edited, deleted, inserted or
    moved, and any checkpoint the chain no longer matches or that is not genuine."""
    prev = GENESIS
    expected = 1
    checked = 0
    by_seq: dict[int, str] = {0: GENESIS}
    try:
        checkpoints = read_checkpoints(rt, extra)
    except CheckpointError as exc:
        return VerifyResult(False, 0, None, str(exc))
    wanted = {c["seq"] for c in checkpoints}
    total = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    anchor = rt.config.core.audit_anchor_file
    if anchor and total and not (Path(anchor).exists() and Path(anchor).stat().st_size):
        return VerifyResult(False, 0, None,
                            f"外部检查点文件 {anchor} 缺失或为空（被删除？新配置的请先运行 "
                            "bingan audit checkpoint）")
    for ev in _events(session):
        if ev.seq != expected:
            return VerifyResult(False, checked, expected,
                                f"事件 {expected} 缺失（链中下一条是 {ev.seq}）：有事件被删除或插入")
        fields = {
            "staff_no": ev.staff_no, "client_ip": ev.client_ip,
            "computer_name": ev.computer_name, "action": ev.action, "mrn": ev.mrn,
            "admission_no": ev.admission_no, "outcome": ev.outcome, "detail": ev.detail,
        }
        if ev.prev_hash != prev:
            return VerifyResult(False, checked, ev.seq,
                                f"事件 {ev.seq} 与前一事件不衔接：事件被删除、插入或调换了顺序")
        if event_hash(rt.audit_key, prev, ev.seq, ev.ts, fields) != ev.hash:
            return VerifyResult(False, checked, ev.seq, f"事件 {ev.seq} 的内容与其哈希不符：已被修改")
        if ev.seq in wanted:
            by_seq[ev.seq] = ev.hash
        prev = ev.hash
        expected += 1
        checked += 1
        if progress:
            progress(checked, total)
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != checked or head.hash != prev):
        return VerifyResult(False, checked, checked + 1,
                            f"链头记录为事件 {head.seq}，但链只到 {checked}：最新的事件被删除")
    for c in checkpoints:
        if c["seq"] > checked:
            return VerifyResult(False, checked, checked + 1,
                                f"检查点 {c['ts']} 记录到事件 {c['seq']}，但链只到 {checked}：事件被删除")
        if by_seq.get(c["seq"]) != c["hash"]:
            return VerifyResult(False, checked, c["seq"],
                                f"事件 {c['seq']} 与检查点 {c['ts']} 不符：链被重写")
    return VerifyResult(True, checked)


def last_checkpoint_seq(rt) -> int | None:
    """The newest anchored head, or None when nothing was anchored yet."""
    try:
        cps = read_checkpoints(rt)
    except CheckpointError:
        return None
    return max((c["seq"] for c in cps), default=None)


def _syslog(rt, line: str) -> None:
    import logging
    import logging.handlers

    target = rt.config.core.audit_syslog
    if target == "local":
        address: Any = "/dev/log"
        socktype = None
    else:
        host, port = target[len("udp://"):].rsplit(":", 1)
        address, socktype = (host, int(port)), None
    handler = logging.handlers.SysLogHandler(
        address=address, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV,
        socktype=socktype)
    try:
        handler.ident = "bingan-audit: "
        handler.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO,
                                            "levelname": "INFO"}))
    finally:
        handler.close()


def write_checkpoint(session: Session, rt, kind: str = "manual") -> dict[str, Any]:
    """Append the current chain head, signed, to every anchor (files fsync'd, syslog sent).
    ``kind``: genesis (install), start (server start), scheduled, manual."""
    head = session.get(AuditHead, 1)
    entry: dict[str, Any] = {"seq": head.seq, "hash": head.hash, "ts": utcnow().isoformat(),
                             "kind": kind}
    entry["sig"] = sign_checkpoint(rt.audit_key, entry)
    line = json.dumps(entry)
    for path in anchor_files(rt):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    if rt.config.core.audit_syslog:
        _syslog(rt, line)
    return entry


# How events read in the audit pages (the raw code stays visible as a tooltip).
OUTCOME_LABELS = {"ok": "成功", "failed": "失败", "denied": "拒绝", "allow": "允许",
                  "deny": "拒绝", "password_ok": "待二次验证"}
ACTION_LABELS = {
    "login": "登录", "login.totp": "二次验证", "logout": "退出", "page.denied": "越权访问",
    "account.password": "修改本人密码",
    "access.view": "查阅判定", "access.print": "打印判定", "access.export": "导出判定",
    "record.view": "查阅病案", "audit.search": "查询审计日志", "audit.export": "导出审计日志",
    "audit.checkpoint": "审计检查点", "grant.create": "授予查阅权", "grant.revoke": "撤销查阅权",
    "grant.expire": "查阅权到期", "storage.fixity": "存储抽检", "storage.cleanup": "存储清理",
    "storage.repair": "从副本修复文件", "storage.replicate": "补写副本",
    "storage.migrate": "迁移存储", "backup.create": "备份", "backup.restore": "从备份恢复",
    "demo.load": "载入演示数据", "admin.user.add": "新增用户", "admin.user.save": "修改用户",
    "admin.user.password": "重置密码", "admin.user.unlock": "解除锁定",
    "admin.user.totp_reset": "重置二次验证", "admin.user.disable": "停用用户",
    "admin.user.enable": "启用用户", "admin.department.add": "新增科室",
    "admin.department.update": "修改或停用科室",
    "admin.role.update": "修改角色权限", "admin.role.add": "新增角色", "admin.session.revoke": "强制下线",
    "admission.upsert": "登记/更新住院记录", "admission.refused": "拒收住院记录",
    "admission.cancel": "取消入院", "patient.merge": "合并患者病案号",
    "api.call": "接口调用", "api.auth": "接口凭据被拒", "api.token": "签发接口令牌",
    "api_client.add": "新增接口客户端", "api_client.revoke": "撤销接口客户端",
}


def action_labels(rt=None) -> dict[str, str]:
    """Chinese labels of audit actions: core's, plus every enabled plugin's
    (``audit_action_labels``) when a runtime is given."""
    labels = dict(ACTION_LABELS)
    if rt is not None:
        for group in rt.pm.hook.audit_action_labels():
            labels.update(group or {})
        from bingan.core.permissions import registered_actions

        for name, info in registered_actions(rt).items():  # every access decision is audited
            labels.setdefault(f"access.{name}", f"{info.label}判定")
    return labels


def action_label(action: str, rt=None) -> str:
    return action_labels(rt).get(action, action)


def actor_label(staff_no: str | None) -> str:
    """Who did it, as people read it: staff numbers as they are, the system's own actors in
    words (``system`` 系统, ``demo`` 演示数据, ``cli:root`` 命令行)."""
    if not staff_no:
        return ""
    if staff_no in ("system", "demo"):
        return {"system": "系统", "demo": "演示数据"}[staff_no]
    if staff_no.startswith("cli:"):
        return "命令行"
    return staff_no


def outcome_label(outcome: str) -> str:
    return OUTCOME_LABELS.get(outcome, outcome)
