"""Replica (write-through, read fallback, sync), repair, the repairing fixity job and the
resumable migration, on local stores, each on SQLite and PostgreSQL. The S3 side is in
plugins/s3store/tests (a real SeaweedFS server)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
from sqlalchemy import select

from bingan.core.config import ConfigError
from bingan.core.models import AuditEvent
from bingan.core.storage import LocalBlobStore, store_blob, verify_store
from bingan.core.storage_ops import (
    ReplicatedStore, migrate_store, migration_state_path, repair_store, sync_replica,
)
from support import make_config


def _put(rt, payloads):
    with rt.sessions() as s, s.begin():
        return [store_blob(s, rt.store, p) for p in payloads]


def _damage(store: LocalBlobStore, sha: str) -> None:
    """Flip one bit in place (same size: a size check would not see it)."""
    path = store.path(sha)
    os.chmod(path, 0o600)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def rrt(db_url, tmp_path):
    """A runtime whose store has a replica (BINGAN_REPLICA_URL, another folder)."""
    from bingan.core.runtime import build_runtime, set_current

    cfg = make_config(tmp_path / "home", db_url)
    cfg.replica_url = (tmp_path / "replica").as_uri()
    runtime = build_runtime(cfg)
    yield runtime
    runtime.close()
    set_current(None)


def test_replica_is_written_read_when_the_primary_fails_and_repairs_it(rrt):
    store = rrt.store
    assert isinstance(store, ReplicatedStore)
    primary, replica = store.primary, store.replica
    payloads = [f"第{i}页".encode() * (500 + i) for i in range(4)]
    keys = _put(rrt, payloads)
    assert sorted(replica.iter_keys()) == sorted(keys)  # written before the row committed

    _damage(primary, keys[0])
    primary.delete(keys[1])
    # readers still get the right bytes, from the replica
    assert store.get(keys[0]) == payloads[0]
    with store.open(keys[1]) as fh:
        assert fh.read() == payloads[1]
    # damaged on both sides: nothing to restore from
    _damage(primary, keys[3])
    _damage(replica, keys[3])

    with rrt.sessions() as s:
        before = verify_store(s, primary)
        assert sorted(before.corrupt) == sorted([keys[0], keys[3]])
        assert before.missing == [keys[1]]
        report = repair_store(s, store)
        after = verify_store(s, primary)
    assert sorted(report.repaired) == sorted(keys[:2])
    assert report.unrepaired == [keys[3]] and not report.ok
    assert report.checked == 4
    assert after.corrupt == [keys[3]] and not after.missing
    assert primary.get(keys[0]) == payloads[0] and primary.get(keys[1]) == payloads[1]


def test_fixity_job_repairs_what_it_finds_and_reports_it(rrt):
    from bingan.core.defaults.jobs import fixity_sample

    keys = _put(rrt, [b"a" * 3000, b"b" * 3000, b"c" * 3000])
    primary = rrt.store.primary
    _damage(primary, keys[2])
    primary.delete(keys[0])
    rrt.config.core.fixity_sample_size = 10  # the whole (small) table
    assert fixity_sample(rrt) == 3
    with rrt.sessions() as s:
        assert verify_store(s, primary).ok
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "storage.fixity")
                       .order_by(AuditEvent.seq.desc())).first()
    detail = json.loads(ev.detail)
    assert ev.outcome == "ok"
    assert sorted(detail["repaired"]) == sorted([keys[0], keys[2]])
    assert detail["missing"] == [keys[0]] and detail["corrupt"] == [keys[2]]
    assert detail["unrepaired"] == []


def test_replica_down_at_write_is_caught_up_by_the_sync(rrt):
    from bingan.core.defaults.jobs import replica_sync

    replica = rrt.store.replica
    shutil.rmtree(replica.tmp)
    replica.tmp.write_bytes(b"")  # the replica's disk "fails": no temp file can be made
    keys = _put(rrt, [b"written while the replica was down" * 40])
    assert rrt.store.primary.exists(keys[0]) and not replica.exists(keys[0])
    assert rrt.store.replica_failures == 1
    replica.tmp.unlink()
    replica.tmp.mkdir()
    assert replica_sync(rrt) == 1
    assert replica.get(keys[0]) == b"written while the replica was down" * 40
    with rrt.sessions() as s:
        assert sync_replica(s, rrt.store).copied == []  # nothing left to copy
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "storage.replicate")).one()
    assert json.loads(ev.detail)["copied"] == 1


def test_replica_url_must_name_another_store(db_url, tmp_path):
    from bingan.core.runtime import build_runtime

    cfg = make_config(tmp_path / "home", db_url)
    cfg.replica_url = (tmp_path / "home" / "blobs").as_uri()
    with pytest.raises(ConfigError, match="another disk or bucket"):
        build_runtime(cfg)
    cfg.replica_url = "nfs://server/x"
    with pytest.raises(ConfigError, match="BINGAN_REPLICA_URL 'nfs://server/x': no storage"):
        build_runtime(cfg)


def test_migrate_resumes_after_an_interruption_and_verifies(rt, tmp_path):
    payloads = [f"page {i} ".encode() * 300 for i in range(7)]
    keys = sorted(_put(rt, payloads))
    target = LocalBlobStore(tmp_path / "target")
    state = migration_state_path(rt.home, target.url)

    class Killed(BaseException):
        pass

    def kill_at_third(done, total):
        if done == 3:
            raise Killed

    with rt.sessions() as s, pytest.raises(Killed):
        migrate_store(s, rt.store, target, state, kill_at_third, batch_size=2)
    saved = json.loads(state.read_text())
    assert saved["after"] == keys[1] and not saved.get("done")  # the first batch finished
    assert set(target.iter_keys()) == set(keys[:3])

    # a blob committed during the interruption, behind the cursor
    i = 0
    while True:
        extra = f"late {i}".encode()
        if hashlib.sha256(extra).hexdigest() < keys[1]:
            break
        i += 1
    late = _put(rt, [extra])[0]
    _damage(rt.store, keys[6])  # a damaged source copy is reported, never copied
    seen = []
    with rt.sessions() as s:
        report = migrate_store(s, rt.store, target, state, lambda d, t: seen.append(d),
                               batch_size=2)
        check = verify_store(s, target)
    assert report.resumed_after == keys[1]
    # counted from the checkpoint, not from zero (rows at or before it: 2 done + the late one)
    assert seen[0] == 4 and seen[-1] == 8
    assert report.present == 1 and report.failed == [keys[6]] and not report.done
    assert report.copied == 8 - 2 - 1 - 1  # 8 rows, 2 done before, 1 present, 1 damaged
    assert target.get(late) == extra
    assert check.missing == [keys[6]] and not check.corrupt
    assert json.loads(state.read_text())["done"] is False


def test_migrate_killed_with_sigkill_resumes(rt, tmp_path):
    """A migration process killed with SIGKILL mid-run: the checkpoint it left is whole, and
    the next run resumes from it, ending with every blob on the target, intact."""
    import signal
    import time

    keys = sorted(_put(rt, [f"blob {i} ".encode() * 200 for i in range(40)]))
    target = LocalBlobStore(tmp_path / "target")
    state = migration_state_path(rt.home, target.url)
    rt.engine.dispose()  # the child opens its own connections
    pid = os.fork()
    if pid == 0:  # the migrating process, slowed so the kill lands mid-run
        try:
            with rt.sessions() as s:
                migrate_store(s, rt.store, target, state, lambda d, t: time.sleep(0.05),
                              batch_size=4)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 60
    while not state.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), "the migration finished before the kill: slow it down"
    saved = json.loads(state.read_text())  # never a half-written checkpoint
    assert saved["after"] in keys and not saved.get("done")
    done_before = keys.index(saved["after"]) + 1
    assert 4 <= done_before < 40
    with rt.sessions() as s:
        report = migrate_store(s, rt.store, target, state, batch_size=4)
        check = verify_store(s, target)
    assert report.resumed_after == saved["after"] and report.done
    # blobs copied after the last checkpoint are found intact, not written again
    assert report.copied + report.present == 40 - done_before
    assert check.ok and check.checked == 40 and not check.orphans


def test_repair_replicate_and_verify_commands(rrt):
    """The CLI commands (in process, on the runtime's replicated store): exit codes, messages,
    audit events."""
    from click.testing import CliRunner

    from bingan.core.cli import Ctx, build_cli

    ctx = Ctx()
    ctx._rt = rrt

    def run(*args):
        return CliRunner().invoke(build_cli(rrt), list(args), obj=ctx)

    keys = _put(rrt, [b"one" * 999, b"two" * 999])
    primary, replica = rrt.store.primary, rrt.store.replica
    _damage(primary, keys[0])
    res = run("storage", "verify")
    assert res.exit_code == 1 and "损坏 1" in res.output
    res = run("storage", "repair")
    assert res.exit_code == 0, res.output
    assert "发现问题 1，已从副本修复并复核 1，无法修复 0" in res.output
    assert run("storage", "verify").exit_code == 0
    replica.delete(keys[1])
    res = run("storage", "verify", "--replica")
    assert res.exit_code == 1 and "缺失 1" in res.output
    res = run("storage", "replicate")
    assert res.exit_code == 0 and "补写到副本 1" in res.output
    assert run("storage", "verify", "--replica").exit_code == 0
    _damage(primary, keys[1])
    _damage(replica, keys[1])
    res = run("storage", "repair")
    assert res.exit_code == 1 and f"无法修复 {keys[1]}" in res.output
    with rrt.sessions() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action.in_(["storage.repair", "storage.replicate"]))
            .order_by(AuditEvent.seq))]
    assert actions == ["storage.repair", "storage.replicate", "storage.repair"]
