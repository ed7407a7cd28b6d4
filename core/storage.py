"""Content-addressed blob store (SHA-256 keys) and its bookkeeping in the ``blob`` table.

Two layers:

- ``BlobStore`` is what a backend implements (``LocalBlobStore`` here; others, such as
  S3-compatible object storage, come from the ``storage_backend`` hook). A backend knows files,
  not the database.
- ``store_blob``, ``verify_store``, ``sample_fixity`` and ``cleanup_store`` tie the store to the
  ``Blob`` rows. The database is the truth: a blob is *committed* once its row is committed. The
  file is always written (durably) before the row, so a crash can leave a file without a row
  (an orphan, collected by ``cleanup_store``) but never a row without a file.

Writes are atomic: temp file, fsync, rename, fsync of the directory (DESIGN.md, lessons). A kill
leaves at most a temp file (``cleanup_temp``) or an orphan; a reader never sees a partial blob
under its final name. Fixity is a full hash pass: a size check misses a same-size bit flip.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bingan.core.models import Blob, utcnow
# the protocol a backend implements lives in the hook contract; re-exported here
from bingan.hooks.types import BlobMissing as BlobMissing
from bingan.hooks.types import BlobStore as BlobStore
from bingan.hooks.types import Data as Data

CHUNK = 1 << 20  # 1 MiB: streams larger than memory are read and hashed in pieces
BATCH = 500  # rows per database round trip (well under SQLite's bound-parameter limit)
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_FAN_RE = re.compile(r"[0-9a-f]{2}")


class BlobCorrupt(ValueError):
    """A read found content that does not hash to its key (a damaged copy). Stores that check
    on read (the S3 store) raise it instead of handing out wrong bytes."""

    def __init__(self, sha: str) -> None:
        super().__init__(f"blob {sha} is damaged: its content does not hash to its key")
        self.sha = sha


class BadBlobKey(ValueError):
    """A key that is not 64 lowercase hex digits (refused: it could name a path elsewhere)."""


def check_key(sha: str) -> str:
    """Return ``sha`` if it is a well-formed key (64 lowercase hex digits), else raise."""
    if not isinstance(sha, str) or not _SHA_RE.fullmatch(sha):
        raise BadBlobKey(f"not a SHA-256 blob key: {sha!r}")
    return sha


# --------------------------------------------------------------------------------------------
# Local disk
# --------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file or subdirectory) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkdir_durable(path: Path) -> None:
    """Create ``path`` and missing parents, fsyncing each parent that gained an entry."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:  # another writer made it first: its fsync covers it
            continue
        _fsync_dir(d.parent)


class LocalBlobStore:
    """Blobs as read-only files under ``root/ab/cd/<sha>``; temp files under ``root/tmp``.

    Two levels of 256-way fan-out keep directories small: 180 million pages make about 2,700
    files per leaf directory. Temp files live under the same root so the final rename never
    crosses a file system.
    """

    # a put racing ``delete_stale`` either refreshes the file before it is renamed away or
    # writes a fresh copy: ``store_blob`` need not check the file after inserting its row
    delete_stale_is_atomic = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.tmp = self.root / "tmp"
        _mkdir_durable(self.tmp)
        self.url = self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    # -- paths

    def path(self, sha: str) -> Path:
        """Where blob ``sha`` lives (whether or not it exists)."""
        check_key(sha)
        return self.root / sha[:2] / sha[2:4] / sha

    def _ensure_fanout(self, sha: str) -> Path:
        leaf = self.root / sha[:2] / sha[2:4]
        if not leaf.is_dir():
            _mkdir_durable(leaf)
        return leaf

    # -- writing

    def put(self, data: Data) -> str:
        """Store ``data`` atomically and durably; return its SHA-256 (see ``BlobStore.put``)."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            view = memoryview(data).cast("B")
            sha = hashlib.sha256(view).hexdigest()
            if self._already_stored(sha, view.nbytes):
                return sha
            chunks = (view[i:i + CHUNK] for i in range(0, view.nbytes, CHUNK))
            tmp, _, _ = self._write_temp(chunks, hashing=False)  # hashed above
        else:
            tmp, sha, size = self._write_temp(_read_chunks(data))
            if self._already_stored(sha, size):
                os.unlink(tmp)
                return sha
        self._publish(tmp, sha)
        return sha

    def _already_stored(self, sha: str, size: int) -> bool:
        """True if an intact-looking copy exists; refresh its mtime (see ``delete_stale``)."""
        path = self.path(sha)
        try:
            if path.stat().st_size != size:
                return False  # damaged copy: the new write replaces it
            os.utime(path)
        except (FileNotFoundError, PermissionError):
            return False  # gone meanwhile, or not ours to touch: write a fresh copy
        return True

    def _write_temp(
        self, chunks: Iterable[bytes | memoryview], hashing: bool = True
    ) -> tuple[str, str, int]:
        """Write chunks to a new temp file, fsync it and make it read-only.

        Returns (temp path, sha256 or "" without ``hashing``, size). The temp file is removed
        if anything fails."""
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="put-", suffix=".tmp")
        digest = hashlib.sha256() if hashing else None
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    if digest is not None:
                        digest.update(chunk)
                    fh.write(chunk)
                    size += len(chunk)
                fh.flush()
                os.fsync(fh.fileno())
                os.fchmod(fh.fileno(), 0o400)  # read-only, for this user only
        except BaseException:
            with _suppress_missing():
                os.unlink(tmp)
            raise
        return tmp, digest.hexdigest() if digest is not None else "", size

    def _publish(self, tmp: str, sha: str) -> None:
        """Rename the finished temp file to its final name and make the rename durable."""
        leaf = self._ensure_fanout(sha)
        try:
            os.replace(tmp, leaf / sha)
        except BaseException:
            with _suppress_missing():
                os.unlink(tmp)
            raise
        _fsync_dir(leaf)

    # -- reading

    def open(self, sha: str) -> BinaryIO:
        """A binary file object on the blob; raises ``BlobMissing``."""
        try:
            return open(self.path(sha), "rb")
        except FileNotFoundError:
            raise BlobMissing(sha) from None

    def get(self, sha: str) -> bytes:
        """The whole blob; raises ``BlobMissing``."""
        with self.open(sha) as fh:
            return fh.read()

    def exists(self, sha: str) -> bool:
        """Whether blob ``sha`` is stored."""
        return self.path(sha).is_file()

    def _stat(self, sha: str) -> os.stat_result:
        try:
            return self.path(sha).stat()
        except FileNotFoundError:
            raise BlobMissing(sha) from None

    def size(self, sha: str) -> int:
        """Stored size in bytes; raises ``BlobMissing``."""
        return self._stat(sha).st_size

    def key_mtime(self, sha: str) -> float:
        """Last put of this blob (file mtime, refreshed by every put); raises ``BlobMissing``."""
        return self._stat(sha).st_mtime

    def iter_keys(self) -> Iterator[str]:
        """Every stored key, in sorted order; stray files that are not blobs are skipped."""
        for d1 in _sorted_names(self.root):
            if not _FAN_RE.fullmatch(d1):
                continue  # "tmp" and anything else that is not a fan-out directory
            for d2 in _sorted_names(self.root / d1):
                if not _FAN_RE.fullmatch(d2):
                    continue
                prefix = d1 + d2
                for name in _sorted_names(self.root / d1 / d2):
                    if _SHA_RE.fullmatch(name) and name.startswith(prefix):
                        yield name

    # -- removing

    def delete(self, sha: str) -> None:
        """Remove blob ``sha``; nothing happens if it is not there."""
        path = self.path(sha)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        _fsync_dir(path.parent)

    def delete_stale(self, sha: str, older_than_seconds: float) -> bool:
        """Remove the blob unless a put touched it within ``older_than_seconds``.

        The blob is first renamed into tmp/ (atomic), and its age is checked *after* the
        rename: a concurrent put either refreshed the mtime before the rename (we see a young
        file and put it back) or found the name gone and wrote its own copy. A cleanup killed
        between the rename and the unlink leaves a ``.trash`` file that ``cleanup_temp`` puts
        back, so a crash never loses a blob someone still wanted."""
        path = self.path(sha)
        trash = self.tmp / f"{sha}.{secrets.token_hex(4)}.trash"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return False
        try:
            young = time.time() - trash.stat().st_mtime < older_than_seconds
        except FileNotFoundError:  # a concurrent cleanup_temp already put it back
            return False
        if young:
            self._restore(trash, sha)
            return False
        with _suppress_missing():
            os.unlink(trash)
        _fsync_dir(path.parent)
        return True

    def _restore(self, trash: Path, sha: str) -> None:
        """Put a ``.trash`` file back under its key (same content, so overwriting is fine)."""
        leaf = self._ensure_fanout(sha)
        with _suppress_missing():
            os.replace(trash, leaf / sha)
            _fsync_dir(leaf)

    def cleanup_temp(self, older_than_seconds: float = 3600) -> int:
        """Remove temp files older than ``older_than_seconds``; return how many went.

        A temp file younger than that may belong to a put still in progress. ``.trash`` files
        (from a cleanup killed mid-way) are put back under their key whatever their age: if
        nobody wants them, the next ``cleanup_store`` removes them as orphans."""
        cutoff = time.time() - older_than_seconds
        removed = 0
        for entry in _scandir(self.tmp):
            if not entry.is_file(follow_symlinks=False):
                continue
            sha = entry.name.split(".", 1)[0]
            if entry.name.endswith(".trash") and _SHA_RE.fullmatch(sha):
                self._restore(Path(entry.path), sha)
                removed += 1
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue  # its writer finished (renamed it) or gave up meanwhile
            removed += 1
        return removed


def _read_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def _sorted_names(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def _scandir(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except FileNotFoundError:
        return []


def _suppress_missing() -> contextlib.suppress:
    return contextlib.suppress(FileNotFoundError)


def hash_blob(store: BlobStore, sha: str) -> tuple[str, int]:
    """Read blob ``sha`` through and return (actual SHA-256, actual size)."""
    digest = hashlib.sha256()
    size = 0
    with store.open(sha) as fh:
        for chunk in _read_chunks(fh):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# --------------------------------------------------------------------------------------------
# The store and the database
# --------------------------------------------------------------------------------------------


def store_blob(
    session: Session, store: BlobStore, data: Data, media_type: str = "application/octet-stream"
) -> str:
    """Put ``data`` in ``store`` (durably, first), then add its ``Blob`` row to ``session``.

    The caller commits; until then the file is an orphan that ``cleanup_store`` leaves alone for
    its grace period. The row is inserted at once with ON CONFLICT DO NOTHING, so two writers of
    the same content do not fail each other, and rows that refer to it (Page, Document) can be
    flushed in any order."""
    sha = store.put(data)
    size = len(memoryview(data).cast("B")) if _is_buffer(data) else store.size(sha)
    values = {
        "sha256": sha, "size": size, "media_type": media_type, "created_at": utcnow(),
    }
    _insert_row(session, values)
    if not getattr(store, "delete_stale_is_atomic", False) and not store.exists(sha):
        # A cleanup deleted the object between our put and our row (on S3 its age check and
        # its delete are two requests). Our row, even uncommitted, now bars every cleanup
        # (``_claim``), so a second put is final.
        _put_again(store, data, sha)
    return sha


def _insert_row(session: Session, values: dict[str, object]) -> bool:
    """INSERT the Blob row unless one exists; True if this inserted it. On PostgreSQL an
    uncommitted row of another transaction makes this wait for that transaction's end (on
    SQLite transactions do not overlap): that is what ``cleanup_store``'s claim relies on."""
    dialect = session.get_bind(Blob).dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        result = session.execute(insert(Blob).values(**values).on_conflict_do_nothing())
        return bool(result.rowcount)  # type: ignore[attr-defined]
    if session.get(Blob, values["sha256"]) is not None:
        return False
    session.add(Blob(**values))
    session.flush()
    return True


def _put_again(store: BlobStore, data: Data, sha: str) -> None:
    if not _is_buffer(data):
        seek = getattr(data, "seek", None)
        if seek is None or not getattr(data, "seekable", lambda: False)():
            # the stream is spent: fail the transaction (its caller retries) rather than commit
            # a row without its blob
            raise BlobMissing(sha)
        seek(0)
    if store.put(data) != sha:
        raise BlobCorrupt(sha)


def _is_buffer(data: object) -> bool:
    return isinstance(data, (bytes, bytearray, memoryview))


@dataclass
class VerifyReport:
    """What a fixity pass found. Orphans are not a loss (``cleanup_store`` collects them)."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)  # a row, no file
    corrupt: list[str] = field(default_factory=list)  # content hash != key, or size != row
    orphans: list[str] = field(default_factory=list)  # a file, no row

    @property
    def ok(self) -> bool:
        """True when every checked row has its file, intact."""
        return not self.missing and not self.corrupt


def _require_idle(session: Session, what: str) -> None:
    # These passes commit after every batch so that no transaction (on SQLite: the write lock,
    # since every transaction is BEGIN IMMEDIATE) stays open while files are hashed.
    if session.in_transaction():
        raise ValueError(
            f"{what} commits as it goes: pass a session with no transaction open"
        )


def _check_rows(
    session: Session,
    store: BlobStore,
    rows: list[tuple[str, int]],
    report: VerifyReport,
    progress: Callable[[int, int], object] | None = None,
    total: int = 0,
) -> None:
    """Hash each (sha, size) row's file into ``report``; stamp ``verified_at`` on good ones."""
    good: list[str] = []
    for sha, size in rows:
        try:
            actual, actual_size = hash_blob(store, sha)
        except BlobMissing:
            report.missing.append(sha)
        except BlobCorrupt:
            report.corrupt.append(sha)
        else:
            if actual != sha or actual_size != size:
                report.corrupt.append(sha)
            else:
                good.append(sha)
        report.checked += 1
        if progress is not None:
            progress(report.checked, max(total, report.checked))
    if good:
        session.execute(
            update(Blob).where(Blob.sha256.in_(good)).values(verified_at=utcnow())
        )
    session.commit()


def _batched(items: Iterable[str], n: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def _known(session: Session, keys: list[str]) -> set[str]:
    """Which of ``keys`` have a committed row (ends the read transaction)."""
    found = set(session.scalars(select(Blob.sha256).where(Blob.sha256.in_(keys))))
    session.commit()
    return found


def _count_rows(session: Session) -> int:
    total = session.scalar(select(func.count()).select_from(Blob)) or 0
    session.commit()
    return total


def verify_store(
    session: Session,
    store: BlobStore,
    progress: Callable[[int, int], object] | None = None,
    *,
    batch_size: int = BATCH,
) -> VerifyReport:
    """Full fixity pass: hash every row's file, then list the store for orphans.

    ``progress(done, total)`` is called after each row. Commits ``verified_at`` after every
    batch, so pass a session with no transaction open. An orphan younger than the cleanup grace
    may be a write whose transaction has not committed yet."""
    _require_idle(session, "verify_store")
    report = VerifyReport()
    total = _count_rows(session)
    after = ""
    while True:
        rows = session.execute(
            select(Blob.sha256, Blob.size)
            .where(Blob.sha256 > after).order_by(Blob.sha256).limit(batch_size)
        ).all()
        session.commit()
        if not rows:
            break
        _check_rows(session, store, [tuple(r) for r in rows], report, progress, total)
        after = rows[-1][0]
    for keys in _batched(store.iter_keys(), batch_size):
        known = _known(session, keys)
        report.orphans.extend(k for k in keys if k not in known)
    return report


def sample_fixity(
    session: Session, store: BlobStore, n: int, rng: random.Random | None = None
) -> VerifyReport:
    """Hash the files of about ``n`` random rows (the scheduled fixity job).

    Rows are found by probing random keys (``sha256 >= k``, one indexed lookup each), which is
    close to uniform because keys are hashes; a large table is never scanned. Commits
    ``verified_at``; pass a session with no transaction open. Orphans are not looked for."""
    _require_idle(session, "sample_fixity")
    rng = rng or random.Random()
    report = VerifyReport()
    total = _count_rows(session)
    if n <= 0 or total == 0:
        return report
    if n * 2 >= total:  # small table: read it, sample exactly
        rows = [tuple(r) for r in session.execute(select(Blob.sha256, Blob.size)).all()]
        rows = rng.sample(rows, min(n, len(rows)))
    else:
        rows = _probe_random_rows(session, n, rng)
    session.commit()
    _check_rows(session, store, rows, report)
    return report


def _probe_random_rows(session: Session, n: int, rng: random.Random) -> list[tuple[str, int]]:
    """About ``n`` distinct random rows, by looking up the first key at or after random keys."""
    picked: dict[str, int] = {}
    for _ in range(n * 4):  # duplicates are rare when n is under half the table
        if len(picked) >= n:
            break
        probe = f"{rng.getrandbits(256):064x}"
        row = session.execute(
            select(Blob.sha256, Blob.size)
            .where(Blob.sha256 >= probe).order_by(Blob.sha256).limit(1)
        ).first()
        if row is None:  # past the last key: wrap around
            row = session.execute(
                select(Blob.sha256, Blob.size).order_by(Blob.sha256).limit(1)
            ).first()
        if row is not None:
            picked[row[0]] = row[1]
    return list(picked.items())


def cleanup_store(
    session: Session,
    store: BlobStore,
    orphan_grace_seconds: float = 3600,
    *,
    batch_size: int = BATCH,
) -> tuple[int, int]:
    """Remove leftover temp files and orphans (files without a row); return (temp, orphans).

    Both must be older than ``orphan_grace_seconds``: a younger orphan may belong to a writer
    whose transaction has not committed yet (``store_blob`` writes the file first). A put of
    content already stored refreshes its age, and each orphan is deleted under a claim on its
    row (``_delete_claimed``), so re-uploading an old orphan while it is being removed is safe on
    every store. Use 0 only when no writer is running. Pass a session with no transaction
    open."""
    _require_idle(session, "cleanup_store")
    temp_removed = store.cleanup_temp(older_than_seconds=orphan_grace_seconds)
    orphans_removed = 0
    for keys in _batched(store.iter_keys(), batch_size):
        old = [k for k in keys if _is_old(store, k, orphan_grace_seconds)]
        if not old:
            continue
        known = _known(session, old)
        for sha in old:
            if sha not in known and _delete_claimed(session, store, sha,
                                                    orphan_grace_seconds):
                orphans_removed += 1
    return temp_removed, orphans_removed


def purge_blobs(sessions: Callable[[], Session], store: BlobStore,
                forget: Callable[[Session], list[str]]) -> int:
    """Delete blobs a retention rule lets go (identity photos, ID cards); return how many.

    ``forget(session)`` clears what refers to them, with its audit events, and returns their
    keys; it must leave out a key another row still uses. Their ``blob`` rows go in the same
    transaction, the files only after the commit: a crash in between leaves orphans that
    ``cleanup_store`` removes, never a row without its file.

    Only for content nobody stores again: encrypted images, whose random nonce makes every
    ciphertext unique. A writer putting the same bytes between the commit and the delete would
    lose its file (``cleanup_store`` guards against that with a claim on the row; this does
    not)."""
    with sessions() as s, s.begin():
        doomed = forget(s)
        s.flush()
        for sha in doomed:
            row = s.get(Blob, sha)
            if row is not None:
                s.delete(row)
    for sha in doomed:
        with contextlib.suppress(BlobMissing):
            store.delete(sha)
    return len(doomed)


def _delete_claimed(session: Session, store: BlobStore, sha: str, grace: float) -> bool:
    """Delete orphan ``sha`` while holding a claim on its row, so no writer can commit a row
    for it meanwhile.

    The claim is a placeholder ``Blob`` row inserted in an open transaction and rolled back
    afterwards: a writer's ``store_blob`` INSERT of the same key waits for it (PostgreSQL) or
    cannot run at the same time (SQLite), and then checks that its object still exists
    (stores whose ``delete_stale`` is not atomic, such as S3, where a put can land between the
    age check and the delete) and puts it again if not. A row that exists (committed, or a
    writer's still open: then this waits for it) means the blob is not an orphan. One key per
    transaction, so a claim never waits on a writer while holding another."""
    try:
        if not _insert_row(session, {"sha256": sha, "size": 0, "created_at": utcnow(),
                                     "media_type": "application/x-bingan-cleanup-claim"}):
            return False
        return _delete_orphan(store, sha, grace)
    finally:
        session.rollback()  # the claim was only a lock


def _is_old(store: BlobStore, sha: str, grace: float) -> bool:
    try:
        return time.time() - store.key_mtime(sha) >= grace
    except BlobMissing:
        return False


def _delete_orphan(store: BlobStore, sha: str, grace: float) -> bool:
    delete_stale = getattr(store, "delete_stale", None)
    if delete_stale is not None:
        return bool(delete_stale(sha, grace))
    if not _is_old(store, sha, grace):  # a put refreshed it since we looked
        return False
    store.delete(sha)
    return True


__all__ = [
    "BadBlobKey", "BlobCorrupt", "BlobMissing", "BlobStore", "LocalBlobStore", "VerifyReport", "check_key",
    "cleanup_store", "hash_blob", "sample_fixity", "store_blob", "verify_store",
]
