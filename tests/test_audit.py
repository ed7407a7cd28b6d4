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
    entry = audit_checkpoint(rt)
    assert entry["seq"] == 3  # the checkpoint covers the event that records it
    cps = audit.read_checkpoints(rt)
    assert cps[-1]["seq"] == 3 and cps[-1]["kind"] == "scheduled"
    assert _verify(rt).ok
    assert audit_checkpoint(rt) is None  # nothing moved: no new checkpoint
    _fill(rt, 1)
    assert audit_checkpoint(rt)["seq"] == 5


# -- anchored checkpoints (issue 9, M3) ----------------------------------------------------


def _anchored(tmp_path, db_url, **core):
    """A runtime whose checkpoints also go to a file outside BINGAN_HOME."""
    from support import build_test_runtime

    anchor = tmp_path / "elsewhere" / "audit-anchor.jsonl"
    return build_test_runtime(tmp_path / "home2", db_url, audit_anchor_file=str(anchor),
                              **core), anchor


def _cli(rt, *args):
    from bingan.core.cli import Ctx, build_cli

    obj = Ctx()
    obj._rt = rt
    return CliRunner().invoke(build_cli(rt), list(args), obj=obj)


def test_audit_key_lives_outside_the_data_folder(rt, tmp_path):
    from bingan.core.runtime import audit_key_path, build_runtime
    from support import make_config

    path = audit_key_path(rt.config)
    assert rt.home not in path.parents and path.exists()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().strip().encode() == rt.audit_key
    secrets = json.loads((rt.home / "secrets.json").read_text())
    assert "audit_key" not in secrets and "secret_key" in secrets
    # an older installation's key in secrets.json moves out, unchanged
    home = tmp_path / "old"
    home.mkdir()
    (home / "secrets.json").write_text(json.dumps({"secret_key": "s" * 64,
                                                   "audit_key": "a" * 64}))
    cfg = make_config(home, rt.config.database_url)
    old = build_runtime(cfg)
    assert old.audit_key == b"a" * 64
    assert json.loads((home / "secrets.json").read_text()) == {"secret_key": "s" * 64}
    assert audit_key_path(cfg).read_text() == "a" * 64
    # a key folder or anchor inside BINGAN_HOME is refused at start
    from bingan.core.config import ConfigError

    for key in ("key_dir", "audit_anchor_file"):
        with pytest.raises(ConfigError, match=f"\\[core\\] {key}.*inside BINGAN_HOME"):
            from bingan.core.config import load_config
            from support import REPO

            text = (REPO / "plugins.toml").read_text().replace(
                "[core]", f'[core]\n{key} = "{home / "k"}"', 1)
            (tmp_path / "p.toml").write_text(text)
            load_config(tmp_path / "p.toml", env={"BINGAN_HOME": str(home)})


def test_genesis_checkpoint_at_install_and_emptied_table_found(tmp_path, empty_db_url):
    rt, anchor = _anchored(tmp_path, empty_db_url)
    res = _cli(rt, "db", "upgrade")
    assert res.exit_code == 0 and "创始检查点" in res.output, res.output
    cps = audit.read_checkpoints(rt)
    assert [(c["seq"], c["kind"]) for c in cps] == [(1, "genesis"), (1, "genesis")]
    assert anchor.exists()
    assert "创始" not in _cli(rt, "db", "upgrade").output  # once
    _fill(rt, 4)
    from bingan.core.defaults.jobs import audit_checkpoint

    audit_checkpoint(rt)
    assert _verify(rt).ok
    # delete every event and reset the head; the data folder's checkpoints go too
    _tamper(rt, "DELETE FROM audit_event",
            "UPDATE audit_head SET seq = 0, hash = '" + "0" * 64 + "'")
    audit.checkpoint_path(rt).unlink()
    res = _verify(rt)
    assert not res.ok and "链只到 0" in res.problem, res.problem
    out = _cli(rt, "audit", "verify")
    assert out.exit_code == 1 and "事件被删除" in out.output
    rt.close()


def test_rewritten_chain_and_forged_checkpoints_are_found(tmp_path, db_url):
    """An attacker with the database and the data folder: edits events and re-hashes the chain
    with a key it does not have, or with the real key (root on the host) and rewrites the
    data folder's checkpoints; the anchor outside still holds the old heads."""
    rt, anchor = _anchored(tmp_path, db_url)
    from bingan.core.defaults.jobs import audit_checkpoint

    _fill(rt, 2)
    audit_checkpoint(rt)
    _fill(rt, 3)
    audit_checkpoint(rt)
    assert _verify(rt).ok
    # forged line without the key
    with open(anchor, "a") as fh:
        fh.write(json.dumps({"seq": 99, "hash": "f" * 64, "ts": "2026-12-07T00:00:00",
                             "kind": "manual", "sig": "0" * 64}) + "\n")
    res = _verify(rt)
    assert not res.ok and "签名不符" in res.problem
    lines = anchor.read_text().splitlines()[:-1]
    anchor.write_text("\n".join(reversed(lines)) + "\n")  # reordered lines
    assert "早于前一行" in _verify(rt).problem
    anchor.write_text("\n".join(lines) + "\n")
    assert _verify(rt).ok
    # re-hash events 3.. with the real key after an edit, fix the head, rewrite home's file
    from bingan.core.models import AuditEvent

    with rt.sessions() as s:
        rows = s.query(AuditEvent).order_by(AuditEvent.seq).all()
        prev = rows[1].hash
        new = []
        for ev in rows[2:]:
            fields = {"staff_no": ev.staff_no, "client_ip": ev.client_ip,
                      "computer_name": ev.computer_name, "action": ev.action, "mrn": ev.mrn,
                      "admission_no": ev.admission_no,
                      "outcome": "denied" if ev.seq == 3 else ev.outcome, "detail": ev.detail}
            h = audit.event_hash(rt.audit_key, prev, ev.seq, ev.ts, fields)
            new.append((ev.seq, prev, h, fields["outcome"]))
            prev = h
    _tamper(rt, *[f"UPDATE audit_event SET prev_hash='{p}', hash='{h}', outcome='{o}' "
                  f"WHERE seq={q}" for q, p, h, o in new],
            f"UPDATE audit_head SET hash='{prev}'")
    with rt.sessions() as s:
        fake = audit.write_checkpoint(s, rt)  # a consistent checkpoint of the rewritten chain
    home_lines = [json.loads(x) for x in audit.checkpoint_path(rt).read_text().splitlines()]
    audit.checkpoint_path(rt).write_text(json.dumps(fake) + "\n")
    anchor.write_text("\n".join(lines) + "\n")  # the anchor outside is append-only for it
    assert home_lines
    res = _verify(rt)
    assert not res.ok and "链被重写" in res.problem, res.problem
    # an anchor file that disappears is reported
    anchor.unlink()
    res = _verify(rt)
    assert not res.ok and "外部检查点文件" in res.problem
    rt.close()


def test_checkpoints_reach_syslog_and_verify_reads_them_back(tmp_path, db_url):
    import socket

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    port = rx.getsockname()[1]
    rt, anchor = _anchored(tmp_path, db_url, audit_syslog=f"udp://127.0.0.1:{port}")
    _fill(rt, 3)
    from bingan.core.defaults.jobs import audit_checkpoint

    entry = audit_checkpoint(rt, "manual", force=True)
    msg = rx.recv(65536).decode()
    rx.close()
    assert msg.startswith("<") and "bingan-audit: " in msg and entry["sig"] in msg
    kept = tmp_path / "from-syslog.log"
    kept.write_text("Dec  7 17:30:00 host " + msg[msg.index(">") + 1:] + "\n")
    ok = _cli(rt, "audit", "verify", "--anchor", str(kept))
    assert ok.exit_code == 0, ok.output
    # the events that checkpoint covered cannot go quietly, even with every local file gone
    _tamper(rt, "DELETE FROM audit_event WHERE seq >= 3",
            "UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM audit_event WHERE seq = 2)")
    audit.checkpoint_path(rt).unlink()
    anchor.unlink()
    rt.config.core.audit_anchor_file = ""
    res = _cli(rt, "audit", "verify", "--anchor", str(kept))
    assert res.exit_code == 1 and "事件被删除" in res.output, res.output
    rt.close()
