"""The restore drill: `bingan backup` of a running installation, `bingan restore` into an empty
home and database, then the blobs, the audit chain and the encrypted data all check out; on
SQLite and PostgreSQL. Damaged backups and non-empty targets are refused with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bingan.core import audit
from bingan.core.backup import BackupError, create_backup, read_manifest, restore_backup
from bingan.core.models import AuditEvent, Blob
from bingan.core.storage import store_blob, verify_store
from fixtures_db import _pg_url, create_pg_database, drop_pg_database
from support import build_test_runtime
from test_cli import _bingan


def _env(home: Path, db_url: str) -> dict[str, str]:
    return {"BINGAN_HOME": str(home), "BINGAN_DATABASE_URL": db_url,
            "BINGAN_KEY_DIR": str(home.parent / "keys")}


@pytest.fixture
def target_db(db_url, tmp_path):
    """An empty database of the same kind as ``db_url`` to restore into."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        return
    name = create_pg_database("bingan_r")
    yield _pg_url(name)
    drop_pg_database(name)


def test_restore_drill(db_url, target_db, tmp_path):
    home = tmp_path / "site1" / "home"
    rt = build_test_runtime(home, db_url)
    secret = "身份证 110101199003071234".encode()
    with rt.sessions() as s, s.begin():
        pages = [store_blob(s, rt.store, f"第{i}页".encode() * 900, "image/jpeg")
                 for i in range(3)]
        sealed = store_blob(s, rt.store, Fernet(rt.fernet_key()).encrypt(secret))
        audit.record(s, rt, "storage.cleanup", actor=audit.Actor.cli(),
                     detail={"temp": 0, "orphans": 0})
    with rt.sessions() as s:
        events = s.scalar(select(func.count()).select_from(AuditEvent))
    rt.close()

    dest = tmp_path / "offsite" / "2026-12-07"
    dest.parent.mkdir()
    res = _bingan(["backup", str(dest)], tmp_path, **_env(home, db_url))
    assert res.returncode == 0, res.stderr
    assert "数据库" in res.stderr and "文件" in res.stderr  # progress bars
    assert "文件 4 个" in res.stdout
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["blobs"] == {"count": 4, "bytes": manifest["blobs"]["bytes"],
                                 "included": True}
    # the backup holds its own audit event and the checkpoint taken for it
    assert manifest["audit"]["head"]["seq"] == events + 2
    assert manifest["audit"]["checkpoint"]["seq"] == events + 2
    assert not (dest.parent / "2026-12-07.partial").exists()
    assert (dest / "keys" / "secrets.json").stat().st_mode & 0o077 == 0

    home2 = tmp_path / "site2" / "home"
    res = _bingan(["restore", str(dest)], tmp_path, **_env(home2, target_db))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "已恢复" in res.stdout and "文件 4 个" in res.stdout

    rt2 = build_test_runtime(home2, target_db)
    try:
        with rt2.sessions() as s:
            report = verify_store(s, rt2.store)
            chain = audit.verify(s, rt2)
            assert s.scalar(select(func.count()).select_from(Blob)) == 4
        assert report.ok and report.checked == 4 and not report.orphans
        assert chain.ok, chain.problem
        assert chain.checked == events + 2
        # the restored keys read what was encrypted before the backup
        assert Fernet(rt2.fernet_key()).decrypt(rt2.store.get(sealed)) == secret
        assert rt2.store.get(pages[1]) == "第1页".encode() * 900
        # a second restore finds the database in use: refused, nothing touched
        with pytest.raises(BackupError, match="not empty"):
            restore_backup(rt2, dest)
    finally:
        rt2.close()


def test_damaged_backup_and_bad_targets_are_refused(rt, tmp_path):
    with rt.sessions() as s, s.begin():
        store_blob(s, rt.store, b"one page" * 100)
    with pytest.raises(BackupError, match="outside BINGAN_HOME"):
        create_backup(rt, rt.home / "bk")
    dest = tmp_path / "bk"
    create_backup(rt, dest, include_blobs=False)
    assert not (dest / "blobs").exists()
    with pytest.raises(BackupError, match="already exists"):
        create_backup(rt, dest)
    assert read_manifest(dest)["blobs"]["included"] is False
    tsv = dest / "blobs.tsv"
    tsv.write_text(tsv.read_text().replace("\t800\t", "\t801\t"))
    with pytest.raises(BackupError, match="blobs.tsv is damaged"):
        read_manifest(dest)
    with pytest.raises(BackupError, match="not a bingan backup"):
        read_manifest(tmp_path)


def test_sqlite_backup_restores_into_postgresql(db_templates, tmp_path):
    """One hospital -> hospital group: a SQLite installation's backup (the demo hospital:
    admissions, staff, roles, audit chain) restored into an empty PostgreSQL database."""
    from bingan.core.demo import load_demo
    from bingan.core.models import Admission, Staff
    from fixtures_db import database_copy, require_pg

    require_pg(db_templates["pg_template"])
    src_url = next(database_copy(db_templates, "sqlite", tmp_path, "unused"))
    rt = build_test_runtime(tmp_path / "site1" / "home", src_url)
    with rt.sessions() as s, s.begin():
        load_demo(s, rt)
        sealed = store_blob(s, rt.store, Fernet(rt.fernet_key()).encrypt(b"ID 1234"))
    with rt.sessions() as s:
        before = {m.__name__: s.scalar(select(func.count()).select_from(m))
                  for m in (Admission, Staff, AuditEvent, Blob)}
    dest = tmp_path / "bk"
    create_backup(rt, dest)
    rt.close()
    name = create_pg_database("bingan_g")
    try:
        rt2 = build_test_runtime(tmp_path / "site2" / "home", _pg_url(name))
        restore_backup(rt2, dest)
        rt2.close()
        rt2 = build_test_runtime(tmp_path / "site2" / "home", _pg_url(name))
        with rt2.sessions() as s:
            assert verify_store(s, rt2.store).ok
            after = {m.__name__: s.scalar(select(func.count()).select_from(m))
                     for m in (Admission, Staff, AuditEvent, Blob)}
            chain = audit.verify(s, rt2)
        assert after == {**before, "AuditEvent": before["AuditEvent"] + 2}
        assert chain.ok, chain.problem
        assert Fernet(rt2.fernet_key()).decrypt(rt2.store.get(sealed)) == b"ID 1234"
        # sequences continue after the copied ids: new rows insert
        with rt2.sessions() as s, s.begin():
            audit.record(s, rt2, "storage.cleanup", actor=audit.Actor.cli(), detail={})
        rt2.close()
    finally:
        drop_pg_database(name)
