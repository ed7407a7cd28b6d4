"""``bingan backup`` and ``bingan restore``: everything needed to bring an installation back.

A backup is a folder:

- ``database.sqlite3`` (SQLite's online backup API: a consistent copy while the server runs)
  or ``database.pgdump`` (``pg_dump -Fc`` of an exported snapshot);
- ``blobs.tsv``, the blob manifest (sha256, size, media type) read from that same snapshot;
- ``blobs/`` (unless ``--no-blobs``): the blobs themselves, each copy hashed; without it the
  blobs are expected in the store the restored installation points at (e.g. a replicated
  bucket);
- ``keys/secrets.json`` (the session/ID key, which also encrypts identity-card scans) and
  ``keys/audit.key`` (signs audit checkpoints): without them encrypted data cannot be read and
  the audit chain cannot be verified. Keep backups as protected as the keys themselves;
- ``audit/checkpoints.jsonl``, the signed chain heads, copied *before* the snapshot (so every
  head in it is in the database), and a fresh checkpoint taken just before;
- ``config/plugins.toml``, the settings in force;
- ``manifest.json``, written last, with the SHA-256 of every file above.

The folder is built under ``<dest>.partial`` and renamed when complete: a folder named
``dest`` is always a whole backup. ``restore`` checks every file against the manifest before
writing anything, refuses a home or database that is not empty, and restores blobs first
(content-addressed, so an interrupted restore can simply be run again).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import inspect

from bingan.core.models import utcnow
from bingan.core.storage import LocalBlobStore

FORMAT = "bingan-backup"
VERSION = 1
Progress = Callable[[str, int, int], object] | None


class BackupError(Exception):
    """The backup or restore cannot go on; the message says why (nothing half-written)."""


def _sha_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as pg_dump / pg_restore take it."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url


def _dialect(rt) -> str:
    return str(rt.engine.dialect.name)


def _sqlite_path(rt) -> Path:
    db = rt.engine.url.database
    if not db or db == ":memory:":
        raise BackupError("the SQLite database is in memory: nothing to back up")
    return Path(db)


def _run(cmd: list[str], what: str) -> None:
    if shutil.which(cmd[0]) is None:
        raise BackupError(f"{cmd[0]} is not installed (PostgreSQL client tools are needed for "
                          f"{what})")
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise BackupError(f"{what} failed ({cmd[0]} exit {res.returncode}): "
                          f"{res.stderr.strip()[-800:]}")


# --------------------------------------------------------------------------------------------
# Backup
# --------------------------------------------------------------------------------------------


def _snapshot_sqlite(rt, out: Path) -> tuple[list[tuple[str, int, str]], dict[str, Any]]:
    """Online backup of the SQLite file to ``out``; blob rows and audit head read from it."""
    src = sqlite3.connect(str(_sqlite_path(rt)), timeout=60)
    dst = sqlite3.connect(str(out))
    try:
        src.backup(dst)
    finally:
        src.close()
    try:
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        rows = [(r[0], int(r[1]), r[2]) for r in dst.execute(
            "SELECT sha256, size, media_type FROM blob ORDER BY sha256")]
        head = dst.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    finally:
        dst.close()
    return rows, {"seq": head[0], "hash": head[1]} if head else {}


def _snapshot_pg(rt, out: Path) -> tuple[list[tuple[str, int, str]], dict[str, Any]]:
    """``pg_dump -Fc`` of an exported snapshot; blob rows and audit head read in it."""
    with rt.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        with conn.begin():
            snap = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
            _run(["pg_dump", "-Fc", "--no-owner", "--no-acl", f"--snapshot={snap}",
                  "-f", str(out), libpq_url(rt.config.database_url)], "pg_dump")
            rows = [(r[0], int(r[1]), r[2]) for r in conn.exec_driver_sql(
                "SELECT sha256, size, media_type FROM blob ORDER BY sha256")]
            head = conn.exec_driver_sql("SELECT seq, hash FROM audit_head WHERE id = 1").first()
    return rows, {"seq": head[0], "hash": head[1]} if head else {}


def create_backup(rt, dest: Path, *, include_blobs: bool = True,
                  progress: Progress = None) -> dict[str, Any]:
    """Write a backup folder ``dest`` (see the module doc); returns its manifest."""
    from bingan.core import audit
    from bingan.core.defaults.jobs import audit_checkpoint
    from bingan.core.runtime import audit_key_path
    from bingan.core.storage_ops import copy_checked

    dest = Path(dest).resolve()
    if dest.exists():
        raise BackupError(f"{dest} already exists: a backup goes into a new folder")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent} does not exist")
    if dest == rt.home or rt.home in dest.parents:
        raise BackupError("the backup must be outside BINGAN_HOME (another disk)")
    dialect = _dialect(rt)
    if dialect not in ("sqlite", "postgresql"):
        raise BackupError(f"cannot back up a {dialect} database")
    work = dest.with_name(dest.name + ".partial")
    if work.exists():
        shutil.rmtree(work)  # left by an interrupted backup: never a complete one
    work.mkdir(mode=0o700)
    try:
        with rt.sessions() as s, s.begin():
            audit.record(s, rt, "backup.create", actor=audit.Actor.cli(),
                         detail={"folder": dest.name, "blobs": include_blobs})
        checkpoint = audit_checkpoint(rt, "backup", force=True)
        (work / "audit").mkdir()
        cp = audit.checkpoint_path(rt)
        if cp.exists():
            shutil.copyfile(cp, work / "audit" / "checkpoints.jsonl")
        db_file = work / ("database.sqlite3" if dialect == "sqlite" else "database.pgdump")
        if progress:
            progress("数据库", 0, 1)
        rows, head = (_snapshot_sqlite if dialect == "sqlite" else _snapshot_pg)(rt, db_file)
        if progress:
            progress("数据库", 1, 1)
        with open(work / "blobs.tsv", "w", encoding="utf-8") as fh:
            fh.write("sha256\tsize\tmedia_type\n")
            for sha, size, media in rows:
                fh.write(f"{sha}\t{size}\t{media}\n")
        total_bytes = sum(r[1] for r in rows)
        if include_blobs:
            local = LocalBlobStore(work / "blobs")
            for i, (sha, _size, _media) in enumerate(rows, 1):
                try:
                    copy_checked(rt.store, local, sha)
                except Exception as exc:
                    raise BackupError(f"blob {sha} cannot be copied intact ({exc}); run "
                                      "`bingan storage verify` / `bingan storage repair` "
                                      "first") from exc
                if progress:
                    progress("文件", i, len(rows))
            shutil.rmtree(local.tmp, ignore_errors=True)
        (work / "keys").mkdir(mode=0o700)
        secrets_file = rt.home / "secrets.json"
        shutil.copyfile(secrets_file, work / "keys" / "secrets.json")
        audit_key_file = None
        if not rt.config.core.audit_key:
            shutil.copyfile(audit_key_path(rt.config), work / "keys" / "audit.key")
            audit_key_file = "keys/audit.key"
        if rt.config.path is not None and Path(rt.config.path).is_file():
            (work / "config").mkdir()
            shutil.copyfile(rt.config.path, work / "config" / "plugins.toml")
        files = {str(p.relative_to(work)): _sha_file(p)
                 for p in sorted(work.rglob("*")) if p.is_file()
                 and not str(p.relative_to(work)).startswith("blobs/")}
        manifest = {
            "format": FORMAT, "version": VERSION, "created_at": utcnow().isoformat(),
            "hospital": rt.config.core.hospital_name,
            "database": {"dialect": dialect, "file": db_file.name},
            "store_url": rt.store.url,
            "blobs": {"count": len(rows), "bytes": total_bytes, "included": include_blobs},
            "audit": {"head": head, "checkpoint": checkpoint},
            "keys": {"secrets": "keys/secrets.json", "audit_key": audit_key_file},
            "files": files,
        }
        with open(work / "manifest.json", "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False, indent=2)
        _fsync_tree(work)
        os.replace(work, dest)
        fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


# --------------------------------------------------------------------------------------------
# Restore
# --------------------------------------------------------------------------------------------


def read_manifest(src: Path) -> dict[str, Any]:
    """The manifest of backup folder ``src``, every listed file checked against its hash."""
    src = Path(src)
    try:
        manifest = json.loads((src / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{src} is not a bingan backup (no manifest.json; an interrupted "
                          "backup is left as <name>.partial)") from None
    except json.JSONDecodeError as exc:
        raise BackupError(f"{src}/manifest.json is damaged: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BackupError(f"{src}: not a bingan backup of format version {VERSION}")
    for name, sha in manifest["files"].items():
        path = src / name
        if not path.is_file():
            raise BackupError(f"backup file {name} is missing")
        if _sha_file(path) != sha:
            raise BackupError(f"backup file {name} is damaged (its SHA-256 does not match the "
                              "manifest)")
    return manifest


def manifest_rows(src: Path) -> Iterator[tuple[str, int]]:
    with open(Path(src) / "blobs.tsv", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            sha, size, _media = line.rstrip("\n").split("\t", 2)
            yield sha, int(size)


def _check_empty(rt, manifest: dict[str, Any], src: Path) -> None:
    dialect = _dialect(rt)
    want = manifest["database"]["dialect"]
    if dialect != want and (want, dialect) != ("sqlite", "postgresql"):
        raise BackupError(f"the backup holds a {want} database; BINGAN_DATABASE_URL is "
                          f"{dialect} (restore into the same kind of database, or a SQLite "
                          "backup into PostgreSQL)")
    tables = inspect(rt.engine).get_table_names()
    rt.engine.dispose()
    if tables:
        raise BackupError("the database is not empty (it has tables): restore only goes into "
                          "an empty database")
    from bingan.core import audit

    cp = audit.checkpoint_path(rt)
    if cp.exists() and cp.stat().st_size:
        raise BackupError(f"BINGAN_HOME {rt.home} already has an audit chain "
                          "(audit/checkpoints.jsonl): restore only goes into an empty home")
    if manifest["blobs"]["included"]:
        wanted = {sha for sha, _ in manifest_rows(src)}
        for sha in rt.store.iter_keys():
            if sha not in wanted:
                raise BackupError("the blob store holds files that are not in this backup: "
                                  "restore only goes into an empty store")


def restore_backup(rt, src: Path, progress: Progress = None) -> dict[str, Any]:
    """Restore backup folder ``src`` into this (empty) installation; returns the manifest.

    The runtime's keys are stale afterwards: the process must exit (the CLI does)."""
    from bingan.core import audit
    from bingan.core.runtime import _write_private, audit_key_path
    from bingan.core.storage_ops import copy_checked

    src = Path(src).resolve()
    manifest = read_manifest(src)
    _check_empty(rt, manifest, src)
    rows = list(manifest_rows(src))
    if manifest["blobs"]["included"]:
        backup_store = LocalBlobStore(src / "blobs")
        for i, (sha, _size) in enumerate(rows, 1):
            try:
                copy_checked(backup_store, rt.store, sha)
            except Exception as exc:
                raise BackupError(f"blob {sha} of the backup cannot be restored intact: "
                                  f"{exc}") from exc
            if progress:
                progress("文件", i, len(rows))
    if progress:
        progress("数据库", 0, 1)
    db_file = src / manifest["database"]["file"]
    if manifest["database"]["dialect"] == "sqlite" and _dialect(rt) == "postgresql":
        sqlite_into_postgresql(rt, db_file, progress)
    elif manifest["database"]["dialect"] == "sqlite":
        target = _sqlite_path(rt)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".restore-", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(db_file, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            for suffix in ("-wal", "-shm"):
                Path(str(target) + suffix).unlink(missing_ok=True)
            os.replace(tmp, target)
            fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)  # the rename itself must survive a crash
            finally:
                os.close(fd)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    else:
        _run(["pg_restore", "--no-owner", "--no-acl", "--single-transaction",
              "--exit-on-error", "-d", libpq_url(rt.config.database_url), str(db_file)],
             "pg_restore")
    if progress:
        progress("数据库", 1, 1)
    _write_private(rt.home / "secrets.json", (src / "keys" / "secrets.json").read_text())
    if manifest["keys"].get("audit_key"):
        if rt.config.core.audit_key:
            pass  # the key comes from plugins.toml ([core] audit_key): it is already in force
        else:
            key_path = audit_key_path(rt.config)
            key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_private(key_path, (src / manifest["keys"]["audit_key"]).read_text())
    checkpoints = src / "audit" / "checkpoints.jsonl"
    if checkpoints.exists():
        cp = audit.checkpoint_path(rt)
        cp.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copyfile(checkpoints, cp)
    config = src / "config" / "plugins.toml"
    if config.exists():
        name = "plugins.toml" if not (rt.home / "plugins.toml").exists() else \
            "plugins.toml.restored"
        shutil.copyfile(config, rt.home / name)
        manifest["config_restored_as"] = str(rt.home / name)
    return manifest


# --------------------------------------------------------------------------------------------
# One hospital -> hospital group: a SQLite backup restored into PostgreSQL
# --------------------------------------------------------------------------------------------


def sqlite_into_postgresql(rt, db_file: Path, progress: Progress = None,
                           batch: int = 2000) -> int:
    """Copy a SQLite database file into this (empty) PostgreSQL database; returns the rows.

    In one PostgreSQL transaction: the schema is built by the migrations up to exactly the
    revisions the SQLite file is at (so an older backup restores into newer software; then run
    ``bingan db upgrade``), rows the migrations seed are replaced by the backup's, every
    table's rows are copied in foreign-key order (read with the
    column types the SQLite file declares, written with PostgreSQL's), and every serial
    sequence is set past the highest id. Any failure rolls all of it back."""
    from alembic import command
    from alembic.util.exc import CommandError
    from sqlalchemy import MetaData, Table, create_engine, func, select, text

    from bingan.core.migrate import alembic_config

    src = create_engine(f"sqlite:///file:{db_file}?mode=ro&uri=true")
    copied = 0
    try:
        with src.connect() as sconn:
            heads = [r[0] for r in sconn.exec_driver_sql(
                "SELECT version_num FROM alembic_version")]
            smeta = MetaData()
            smeta.reflect(sconn)
            tables = [t for t in smeta.sorted_tables if t.name != "alembic_version"]
            counts = {t.name: sconn.execute(select(func.count()).select_from(t)).scalar() or 0
                      for t in tables}
            total = sum(counts.values())
            cfg = alembic_config(rt)
            with rt.engine.begin() as pconn:
                cfg.attributes["connection"] = pconn
                for head in heads:
                    try:
                        command.upgrade(cfg, head)
                    except CommandError as exc:
                        raise BackupError(
                            f"the backup's schema revision {head} is unknown here: enable the "
                            "same plugins as the backup (its config/plugins.toml) and use the "
                            f"same or a newer bingan ({exc})") from exc
                targets = {t.name: Table(t.name, MetaData(), autoload_with=pconn)
                           for t in tables}
                for t in reversed(tables):  # rows the migrations seed come from the backup
                    if pconn.execute(select(func.count()).select_from(targets[t.name])).scalar():
                        pconn.execute(targets[t.name].delete())
                for t in tables:
                    target = targets[t.name]
                    cols = [c.name for c in t.columns if c.name in target.columns]
                    missing = [c.name for c in target.columns
                               if c.name not in t.columns and not c.nullable
                               and c.server_default is None]
                    if missing:
                        raise BackupError(f"table {t.name}: PostgreSQL needs {missing} that "
                                          "the backup lacks")
                    result = sconn.execution_options(yield_per=batch).execute(
                        select(*[t.c[name] for name in cols]))
                    for rows in result.partitions():
                        pconn.execute(target.insert(), [dict(zip(cols, r)) for r in rows])
                        copied += len(rows)
                        if progress:
                            progress("数据库", copied, total)
                for t in tables:
                    for c in t.columns:
                        seq = pconn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                            {"t": t.name, "c": c.name}).scalar()
                        if seq:
                            pconn.execute(text(
                                f'SELECT setval(:s, coalesce((SELECT max("{c.name}") '
                                f'FROM "{t.name}"), 0) + 1, false)'), {"s": seq})
    finally:
        src.dispose()
    return copied
