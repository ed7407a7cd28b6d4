"""Second copies and moves of the blob store: the replica, repair, sync and migration.

- ``ReplicatedStore`` wraps the primary store and a replica (``BINGAN_REPLICA_URL``, another
  disk or bucket, any ``storage_backend``). A put writes the primary, then the replica, before it
  returns, so by the time the ``Blob`` row commits both copies exist. When the replica cannot be
  written the put still succeeds (the primary is durable) and the blob is copied later by
  ``sync_replica`` (the ``core.replica_sync`` job, or ``bingan storage replicate``). A read that
  finds the primary copy missing or damaged is served from the replica (checked first).
- ``repair_store`` re-hashes the primary's copies (all rows, or given keys) and restores each
  missing or damaged one from the replica, then hashes it again.
- ``migrate_store`` copies every blob row to another store, verifying each copy by reading it
  back, and keeps a checkpoint file so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bingan.core.models import Blob
from bingan.core.storage import (
    BATCH, BlobCorrupt, BlobMissing, BlobStore, Data, VerifyReport, _batched, _check_rows,
    _require_idle, hash_blob,
)

log = logging.getLogger("bingan.storage")

Progress = Callable[[int, int], object] | None


def read_checked(store: BlobStore, sha: str) -> bytes:
    """The blob's bytes from ``store`` if they hash to ``sha``; ``BlobMissing`` / ``BlobCorrupt``
    otherwise (whatever the store checks itself)."""
    data = store.get(sha)
    if hashlib.sha256(data).hexdigest() != sha:
        raise BlobCorrupt(sha)
    return data


def copy_checked(source: BlobStore, target: BlobStore, sha: str) -> int:
    """Copy blob ``sha`` from ``source`` to ``target`` and return its size.

    The source is hashed as it streams into the target; the target's copy is then hashed too.
    A damaged copy already on the target (which a put may take for "already stored") is removed
    and written again. Raises ``BlobMissing`` / ``BlobCorrupt`` when the source has no good copy
    (what a damaged source wrote lands under another key: an orphan that cleanup collects) and
    ``CopyFailed`` when the target does not read back intact."""
    with source.open(sha) as fh:
        reader = _HashingReader(fh)
        target.put(reader)
    if reader.digest.hexdigest() != sha:
        raise BlobCorrupt(sha)
    for attempt in range(2):
        try:
            actual, actual_size = hash_blob(target, sha)
        except (BlobMissing, BlobCorrupt):
            actual, actual_size = "", -1
        if actual == sha and actual_size == reader.size:
            return reader.size
        if attempt == 0:
            target.delete(sha)
            with source.open(sha) as fh:
                target.put(fh)
    raise CopyFailed(sha)


class CopyFailed(RuntimeError):
    """The target store does not hold an intact copy after writing it."""

    def __init__(self, sha: str) -> None:
        super().__init__(f"blob {sha}: the copy written does not read back intact")
        self.sha = sha


class _HashingReader:
    """A read-only stream that hashes what passes through it."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh, self.digest, self.size = fh, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.fh.read(n)
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk


# --------------------------------------------------------------------------------------------
# The replicated store
# --------------------------------------------------------------------------------------------


class ReplicatedStore:
    """The primary store with a replica written on every put (see the module doc)."""

    def __init__(self, primary: BlobStore, replica: BlobStore) -> None:
        self.primary = primary
        self.replica = replica
        self.url = primary.url
        self.replica_failures = 0  # puts whose replica write failed (sync_replica catches up)

    def __repr__(self) -> str:
        return f"ReplicatedStore({self.primary!r}, replica={self.replica!r})"

    @property
    def delete_stale_is_atomic(self) -> bool:
        """As the primary's: ``store_blob`` checks the primary copy after its row is in (a
        replica copy removed by a racing replica cleanup is restored by ``sync_replica``)."""
        return bool(getattr(self.primary, "delete_stale_is_atomic", False))

    def put(self, data: Data) -> str:
        sha = self.primary.put(data)
        try:
            if isinstance(data, (bytes, bytearray, memoryview)):
                self.replica.put(data)
            else:  # the stream is spent: copy from the primary
                with self.primary.open(sha) as fh:
                    self.replica.put(fh)
        except Exception as exc:  # the primary copy is durable: do not fail the upload
            self.replica_failures += 1
            log.error("replica %r: blob %s not written (%s); the replica sync will copy it",
                      self.replica, sha, exc)
        return sha

    def _fallback(self, sha: str, exc: Exception) -> None:
        log.error("blob %s: primary copy unreadable (%s); serving the replica's. "
                  "Run `bingan storage repair`.", sha, type(exc).__name__)

    def get(self, sha: str) -> bytes:
        try:
            data = self.primary.get(sha)
            if hashlib.sha256(data).hexdigest() != sha:
                raise BlobCorrupt(sha)
            return data
        except (BlobMissing, BlobCorrupt) as exc:
            try:
                data = read_checked(self.replica, sha)
            except (BlobMissing, BlobCorrupt):
                raise exc from None
            self._fallback(sha, exc)
            return data

    def open(self, sha: str) -> BinaryIO:
        try:
            return self.primary.open(sha)
        except (BlobMissing, BlobCorrupt) as exc:
            try:
                fh = self.replica.open(sha)
            except (BlobMissing, BlobCorrupt):
                raise exc from None
            self._fallback(sha, exc)
            return fh

    def exists(self, sha: str) -> bool:
        return self.primary.exists(sha)

    def size(self, sha: str) -> int:
        return self.primary.size(sha)

    def key_mtime(self, sha: str) -> float:
        return self.primary.key_mtime(sha)

    def iter_keys(self) -> Iterator[str]:
        return self.primary.iter_keys()

    def delete(self, sha: str) -> None:
        self.primary.delete(sha)

    def delete_stale(self, sha: str, older_than_seconds: float) -> bool:
        fn = getattr(self.primary, "delete_stale", None)
        if fn is not None:
            return bool(fn(sha, older_than_seconds))
        import time

        if time.time() - self.primary.key_mtime(sha) < older_than_seconds:
            return False
        self.primary.delete(sha)
        return True

    def cleanup_temp(self, older_than_seconds: float = 3600) -> int:
        return self.primary.cleanup_temp(older_than_seconds)


def primary_of(store: BlobStore) -> BlobStore:
    return store.primary if isinstance(store, ReplicatedStore) else store


def replica_of(store: BlobStore) -> BlobStore | None:
    return store.replica if isinstance(store, ReplicatedStore) else None


# --------------------------------------------------------------------------------------------
# Repair and replica sync
# --------------------------------------------------------------------------------------------


@dataclass
class RepairReport:
    """A repair pass: what was checked, what was found, what was restored and what could not."""

    checked: int = 0
    found: list[str] = field(default_factory=list)  # missing or damaged on the primary
    repaired: list[str] = field(default_factory=list)  # restored and re-verified
    unrepaired: list[str] = field(default_factory=list)  # the replica had no good copy either

    @property
    def ok(self) -> bool:
        return not self.unrepaired


def repair_keys(primary: BlobStore, replica: BlobStore, keys: list[str],
                report: RepairReport) -> None:
    """Restore each of ``keys`` on ``primary`` from ``replica`` (see ``copy_checked``)."""
    for sha in keys:
        report.found.append(sha)
        try:
            copy_checked(replica, primary, sha)
        except (BlobMissing, BlobCorrupt, CopyFailed) as exc:
            log.error("blob %s cannot be repaired: %s", sha, exc)
            report.unrepaired.append(sha)
        else:
            log.warning("blob %s restored from the replica and verified", sha)
            report.repaired.append(sha)


def repair_store(session: Session, store: BlobStore, replica: BlobStore | None = None,
                 progress: Progress = None, *, batch_size: int = BATCH) -> RepairReport:
    """Hash every row's primary copy; restore the missing and damaged ones from the replica.

    ``store`` may be the ``ReplicatedStore`` (its parts are used) or a bare primary with
    ``replica`` given. Commits as it goes: pass a session with no transaction open."""
    _require_idle(session, "repair_store")
    primary = primary_of(store)
    replica = replica or replica_of(store)
    if replica is None:
        raise ValueError("no replica configured (BINGAN_REPLICA_URL): nothing to repair from")
    report = RepairReport()
    total = session.scalar(select(func.count()).select_from(Blob)) or 0
    session.commit()
    after = ""
    while True:
        rows = session.execute(select(Blob.sha256, Blob.size).where(Blob.sha256 > after)
                               .order_by(Blob.sha256).limit(batch_size)).all()
        session.commit()
        if not rows:
            break
        found = VerifyReport()
        _check_rows(session, primary, [(r[0], r[1]) for r in rows], found, None)
        report.checked += found.checked
        repair_keys(primary, replica, found.missing + found.corrupt, report)
        if progress is not None:
            progress(report.checked, max(total, report.checked))
        after = rows[-1][0]
    return report


@dataclass
class SyncReport:
    rows: int = 0
    copied: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # the primary copy could not be read


def _merge_missing(rows: Iterator[str], have: Iterator[str]) -> Iterator[str]:
    """Keys of the sorted ``rows`` absent from the sorted ``have`` (one pass over each)."""
    nxt = next(have, None)
    for key in rows:
        while nxt is not None and nxt < key:
            nxt = next(have, None)
        if nxt != key:
            yield key


def _row_keys(session: Session, batch_size: int = BATCH) -> Iterator[str]:
    after = ""
    while True:
        keys = list(session.scalars(select(Blob.sha256).where(Blob.sha256 > after)
                                    .order_by(Blob.sha256).limit(batch_size)))
        session.commit()
        if not keys:
            return
        yield from keys
        after = keys[-1]


def sync_replica(session: Session, store: BlobStore, replica: BlobStore | None = None,
                 progress: Progress = None) -> SyncReport:
    """Copy every row's blob that the replica lacks (a sorted merge of the row keys with the
    replica's listing: one pass, no request per blob). Each copy is hashed on both sides."""
    _require_idle(session, "sync_replica")
    primary = primary_of(store)
    replica = replica or replica_of(store)
    if replica is None:
        raise ValueError("no replica configured (BINGAN_REPLICA_URL)")
    report = SyncReport()
    total = session.scalar(select(func.count()).select_from(Blob)) or 0
    session.commit()
    report.rows = total
    missing = list(_merge_missing(_row_keys(session), replica.iter_keys()))
    for i, sha in enumerate(missing, 1):
        try:
            copy_checked(primary, replica, sha)
            report.copied.append(sha)
        except (BlobMissing, BlobCorrupt, CopyFailed) as exc:
            log.error("replica sync: blob %s not copied: %s", sha, exc)
            report.failed.append(sha)
        if progress is not None:
            progress(i, len(missing))
    return report


# --------------------------------------------------------------------------------------------
# Migration
# --------------------------------------------------------------------------------------------


@dataclass
class MigrateReport:
    total: int = 0
    copied: int = 0  # written to the target in this run
    present: int = 0  # already intact on the target (from an earlier run or a replica)
    resumed_after: str = ""  # the checkpoint this run started from ("" = from the start)
    failed: list[str] = field(default_factory=list)  # the source copy is missing or damaged
    done: bool = False


def migration_state_path(home: Path, target_url: str) -> Path:
    tag = hashlib.sha256(target_url.encode()).hexdigest()[:16]
    return home / "migrate" / f"{tag}.json"


def _save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def migrate_store(session: Session, source: BlobStore, target: BlobStore, state_path: Path,
                  progress: Progress = None, *, batch_size: int = BATCH) -> MigrateReport:
    """Copy every row's blob from ``source`` to ``target`` and verify each copy.

    Rows are taken in key order; after each batch the last key is saved to ``state_path``
    (atomically), so a run that is killed resumes after the last finished batch. Blobs already
    intact on the target are not written again. A last pass merges the row keys with the
    target's listing and copies rows added meanwhile. The source is not changed."""
    _require_idle(session, "migrate_store")
    state: dict = {}
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("source") != source.url or state.get("target") != target.url:
            state = {}
    report = MigrateReport(resumed_after=state.get("after", "") if not state.get("done") else "")
    report.total = session.scalar(select(func.count()).select_from(Blob)) or 0
    session.commit()
    after = report.resumed_after
    done_before = 0
    if after:
        done_before = session.scalar(select(func.count()).select_from(Blob)
                                     .where(Blob.sha256 <= after)) or 0
        session.commit()

    def copy(sha: str, size: int) -> None:
        try:
            if target.exists(sha):
                actual, actual_size = hash_blob(target, sha)
                if actual == sha and actual_size == size:
                    report.present += 1
                    return
            copy_checked(source, target, sha)
            report.copied += 1
        except (BlobMissing, BlobCorrupt) as exc:
            log.error("migrate: blob %s not copied: %s", sha, exc)
            report.failed.append(sha)

    n = done_before
    while True:
        rows = session.execute(select(Blob.sha256, Blob.size).where(Blob.sha256 > after)
                               .order_by(Blob.sha256).limit(batch_size)).all()
        session.commit()
        if not rows:
            break
        for sha, size in rows:
            copy(sha, size)
            n += 1
            if progress is not None:
                progress(n, max(report.total, n))
        after = rows[-1][0]
        _save_state(state_path, {"source": source.url, "target": target.url, "after": after})
    # rows committed during the run behind the cursor: find them by merging with the listing
    sizes: dict[str, int] = {}
    late = list(_merge_missing(_row_keys(session), target.iter_keys()))
    for keys in _batched(late, batch_size):
        for sha, size in session.execute(select(Blob.sha256, Blob.size)
                                         .where(Blob.sha256.in_(keys))):
            sizes[sha] = size
        session.commit()
    for sha in late:
        if sha not in report.failed:
            copy(sha, sizes[sha])
    report.done = not report.failed
    _save_state(state_path, {"source": source.url, "target": target.url, "after": after,
                             "done": report.done})
    return report
