"""The audit chain: verify finds an edited, deleted, inserted or reordered event; the table is
append-only; checkpoints catch a truncated tail; appends are serialized under concurrency."""

from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from bingan.core import audit
from bingan.core.models import AuditEvent


def _fill(rt, n=6):
    with rt.sessions() as s, s.begin():
        for i in range(n):
            audit.record(s, rt, "record.view", actor=audit.Actor("D0001", "10.0.0.8", "pc-8"),
                         mrn=f"0010000{i}", admission_no=f"ZY20260100000{i}")


def _tamper(rt, *sql: str):
    """Bypass the append-only triggers as an attacker with DB rights would."""
    with rt.engine.begin() as c:
        if c.dialect.name == "sqlite":
            c.exec_driver_sql("DROP TRIGGER audit_event_no_update")
            c.exec_driver_sql("DROP TRIGGER audit_event_no_delete")
        else:
            c.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        for q in sql:
            c.execute(text(q))


def _verify(rt):
    with rt.sessions() as s:
        return audit.verify(s, rt)


def test_clean_chain_verifies(rt):
    _fill(rt)
    res = _verify(rt)
    assert res.ok and res.checked == 6


def test_append_only_at_the_database(rt):
    _fill(rt, 2)
    with pytest.raises(Exception, match="append-only"):
        with rt.engine.begin() as c:
            c.execute(text("UPDATE audit_event SET outcome='ok' WHERE seq=1"))
    with pytest.raises(Exception, match="append-only"):
        with rt.engine.begin() as c:
            c.execute(text("DELETE FROM audit_event WHERE seq=2"))
    # issue 9 M3: TRUNCATE passed the row triggers on PostgreSQL (SQLite has no TRUNCATE;
    # its DELETE without WHERE is refused above)
    if rt.engine.dialect.name == "postgresql":
        for table in ("audit_event", "audit_head"):
            with pytest.raises(Exception, match="append-only"):
                with rt.engine.begin() as c:
                    c.execute(text(f"TRUNCATE {table}"))
    else:
        with pytest.raises(Exception, match="append-only"):
            with rt.engine.begin() as c:
                c.execute(text("DELETE FROM audit_event"))
    assert _verify(rt).ok


def test_edited_event_found(rt):
    _fill(rt)
    _tamper(rt, "UPDATE audit_event SET staff_no='D9999' WHERE seq=3")
    res = _verify(rt)
    assert not res.ok and res.first_bad_seq == 3 and "修改" in res.problem


def test_deleted_event_found(rt):
    _fill(rt)
    _tamper(rt, "DELETE FROM audit_event WHERE seq=4")
    res = _verify(rt)
    assert not res.ok and res.first_bad_seq == 4


def test_inserted_event_found(rt):
    _fill(rt)
    # make room at seq 3 and insert a forged event that copies a real one's hash fields
    _tamper(
        rt,
        "UPDATE audit_event SET seq = seq + 100 WHERE seq >= 3",
        "UPDATE audit_event SET seq = seq - 99 WHERE seq >= 100",
        "INSERT INTO audit_event (seq, ts, staff_no, action, outcome, detail, prev_hash, hash) "
        "SELECT 3, ts, 'EVIL', 'record.view', 'ok', '{}', hash, hash FROM audit_event WHERE seq=2",
    )
    res = _verify(rt)
    assert not res.ok and res.first_bad_seq == 3


def test_reordered_events_found(rt):
    _fill(rt)
    _tamper(rt, "UPDATE audit_event SET seq = 99 WHERE seq = 2",
            "UPDATE audit_event SET seq = 2 WHERE seq = 5",
            "UPDATE audit_event SET seq = 5 WHERE seq = 99")
    res = _verify(rt)
    assert not res.ok and res.first_bad_seq == 2


def test_truncated_tail_found_by_head_and_checkpoint(rt):
    _fill(rt)
    with rt.sessions() as s, s.begin():
        entry = audit.write_checkpoint(s, rt)
    assert entry["seq"] == 6
    _tamper(rt, "DELETE FROM audit_event WHERE seq >= 5",
            "UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit_event WHERE seq = 4)")
    res = _verify(rt)
    assert not res.ok and "检查点" in res.problem


def test_forged_key_does_not_verify(rt):
    _fill(rt, 2)
    rt.audit_key = b"another key"
    res = _verify(rt)
    assert not res.ok and res.first_bad_seq == 1


def test_cli_verify_exit_codes(rt, monkeypatch):
    from bingan.core.cli import Ctx, build_cli

    _fill(rt, 3)
    obj = Ctx()
    obj._rt = rt
    ok = CliRunner().invoke(build_cli(rt), ["audit", "verify"], obj=obj)
    assert ok.exit_code == 0 and "3 条事件" in ok.output
    _tamper(rt, "UPDATE audit_event SET outcome='denied' WHERE seq=2")
    bad = CliRunner().invoke(build_cli(rt), ["audit", "verify"], obj=obj)
    assert bad.exit_code == 1 and "2" in bad.output


def test_event_fields_and_detail(rt):
    with rt.sessions() as s, s.begin():
        ev = audit.record(s, rt, "login", actor=audit.Actor("A0001", "10.1.2.3", "nurse-pc"),
                          outcome="failed", detail={"reason": "bad_credentials"})
    with rt.sessions() as s:
        row = s.get(AuditEvent, ev.seq)
        assert (row.staff_no, row.client_ip, row.computer_name, row.outcome) == (
            "A0001", "10.1.2.3", "nurse-pc", "failed")
        assert json.loads(row.detail) == {"reason": "bad_credentials"}
        assert row.ts.tzinfo is not None


def test_concurrent_appends_keep_one_chain(rt):
    """8 writers x 25 events, each in its own transaction: no lost or forked event."""
    errors = []

    def writer(k):
        try:
            for i in range(25):
                with rt.sessions() as s, s.begin():
                    audit.record(s, rt, "record.view", actor=audit.Actor(f"W{k}"),
                                 detail={"i": i})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    res = _verify(rt)
    assert res.ok and res.checked == 200


def test_checkpoint_job_writes_head(rt):
    from bingan.core.defaults.jobs import audit_checkpoint

    _fill(rt, 2)
    entry = audit_checkpoint()
    assert entry["seq"] == 2
    cps = audit.read_checkpoints(rt)
    assert cps[-1]["seq"] == 2
    assert _verify(rt).ok  # the checkpoint event itself joined the chain after the checkpoint
