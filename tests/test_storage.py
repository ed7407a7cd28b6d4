"""Blob store: the local store itself (fast, no database), then its bookkeeping in ``blob``
(on SQLite and PostgreSQL through the ``rt`` fixture)."""

from __future__ import annotations

import hashlib
import io
import os
import random
import stat
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import select

from bingan.core.storage import (
    CHUNK, BadBlobKey, BlobMissing, BlobStore, LocalBlobStore, VerifyReport, cleanup_store,
    purge_blobs, sample_fixity, store_blob, verify_store,
)

# ============================================================================================
# The local store
# ============================================================================================


@pytest.fixture
def store(tmp_path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _age(path: Path, seconds: float) -> None:
    """Make a file look ``seconds`` old."""
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_put_get_round_trip(store):
    data = b"\x00page image\xff" * 1000
    sha = store.put(data)
    assert sha == _sha(data)
    assert store.get(sha) == data
    with store.open(sha) as fh:
        assert fh.read() == data
    assert store.exists(sha)
    assert store.size(sha) == len(data)
    assert store.path(sha) == store.root / sha[:2] / sha[2:4] / sha
    assert list(store.iter_keys()) == [sha]
    assert isinstance(store, BlobStore)
    assert store.url == store.root.as_uri()


def test_put_accepts_bytearray_memoryview_and_streams(store):
    data = os.urandom(3 * CHUNK + 17)  # several chunks and a ragged end
    sha = _sha(data)
    assert store.put(bytearray(data)) == sha
    assert store.put(memoryview(data)) == sha
    assert store.put(io.BytesIO(data)) == sha
    assert store.put(b"") == _sha(b"")
    assert store.get(_sha(b"")) == b""


def test_blob_is_read_only_and_temp_is_empty(store):
    sha = store.put(b"x")
    assert stat.S_IMODE(store.path(sha).stat().st_mode) == 0o400
    assert list(store.tmp.iterdir()) == []


def test_put_is_idempotent_and_refreshes_mtime(store):
    data = b"same content"
    sha = store.put(data)
    inode = store.path(sha).stat().st_ino
    _age(store.path(sha), 7200)
    assert store.put(data) == sha
    assert store.put(io.BytesIO(data)) == sha
    assert store.path(sha).stat().st_ino == inode  # not rewritten
    assert time.time() - store.key_mtime(sha) < 60  # a later cleanup sees it as fresh
    assert list(store.iter_keys()) == [sha]
    assert list(store.tmp.iterdir()) == []


def test_put_repairs_a_copy_of_the_wrong_size(store):
    sha = store.put(b"0123456789")
    path = store.path(sha)
    path.chmod(0o644)
    path.write_bytes(b"0123")  # truncated by something outside bingan
    assert store.put(b"0123456789") == sha
    assert store.get(sha) == b"0123456789"


class _FailingStream(io.RawIOBase):
    """Gives a few chunks, then fails like a dropped network upload."""

    def __init__(self, chunks: int) -> None:
        self.left = chunks

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.left == 0:
            raise OSError("connection reset")
        self.left -= 1
        return b"z" * CHUNK


def test_failed_write_leaves_nothing(store):
    with pytest.raises(OSError, match="connection reset"):
        store.put(_FailingStream(3))
    assert list(store.iter_keys()) == []
    assert list(store.tmp.iterdir()) == []


def test_crash_before_rename_leaves_only_a_temp_file(store, monkeypatch):
    """A kill between fsync and rename: nothing under a final name, cleanup_temp removes it."""

    def killed(tmp, sha):
        # Stands in for _publish, so its own clean-up of the temp file never runs: as a kill.
        raise SystemExit("killed")

    data = b"interrupted"
    monkeypatch.setattr(store, "_publish", killed)
    with pytest.raises(SystemExit):
        store.put(data)
    assert not store.exists(_sha(data))
    leftovers = list(store.tmp.iterdir())
    assert len(leftovers) == 1 and leftovers[0].read_bytes() == data
    assert store.cleanup_temp(older_than_seconds=3600) == 0  # may still be a live writer's
    _age(leftovers[0], 7200)
    assert store.cleanup_temp(older_than_seconds=3600) == 1
    assert list(store.tmp.iterdir()) == []


def test_reader_never_sees_a_partial_blob(store):
    """While big blobs are written, their final names show the whole blob or nothing."""
    blobs = [os.urandom(4 << 20) for _ in range(6)]
    paths = [store.path(_sha(b)) for b in blobs]
    seen_sizes: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for p in paths:
                try:
                    seen_sizes.append(p.stat().st_size)
                except FileNotFoundError:
                    pass

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for b in blobs:
            store.put(io.BytesIO(b))
    finally:
        done.set()
        watcher.join()
    assert seen_sizes and set(seen_sizes) == {4 << 20}


@pytest.mark.parametrize("bad", [
    "../../etc/passwd", "A" * 64, "a" * 63, "a" * 65, "a" * 64 + "\n", "g" * 64,
    "/" + "a" * 63, "", None, 123,
])
def test_bad_keys_are_refused(store, bad):
    for op in (store.get, store.open, store.exists, store.size, store.delete, store.key_mtime,
               store.path):
        with pytest.raises(BadBlobKey):
            op(bad)


def test_missing_blob(store):
    sha = "0" * 64
    assert not store.exists(sha)
    for op in (store.get, store.open, store.size, store.key_mtime):
        with pytest.raises(BlobMissing) as info:
            op(sha)
        assert isinstance(info.value, KeyError)
    store.delete(sha)  # deleting what is not there is fine


def test_delete(store):
    sha = store.put(b"gone soon")
    store.delete(sha)
    assert not store.exists(sha)
    assert list(store.iter_keys()) == []


def test_delete_stale_spares_a_recent_put(store):
    sha = store.put(b"orphan")
    assert store.delete_stale(sha, older_than_seconds=3600) is False  # just put
    assert store.exists(sha)
    _age(store.path(sha), 7200)
    assert store.delete_stale(sha, older_than_seconds=3600) is True
    assert not store.exists(sha)
    assert store.delete_stale(sha, older_than_seconds=0) is False
    assert list(store.tmp.iterdir()) == []


def test_cleanup_temp_puts_back_trash_of_an_interrupted_cleanup(store):
    sha = store.put(b"was being collected")
    os.rename(store.path(sha), store.tmp / f"{sha}.deadbeef.trash")  # cleanup killed here
    assert store.cleanup_temp(older_than_seconds=3600) == 1
    assert store.get(sha) == b"was being collected"
    assert list(store.tmp.iterdir()) == []


def test_cleanup_temp_counts_and_respects_age(store):
    old = [store.tmp / f"put-old{i}.tmp" for i in range(3)]
    for p in old:
        p.write_bytes(b"partial")
        _age(p, 7200)
    fresh = store.tmp / "put-fresh.tmp"
    fresh.write_bytes(b"in progress")
    assert store.cleanup_temp(older_than_seconds=3600) == 3
    assert [p.name for p in store.tmp.iterdir()] == ["put-fresh.tmp"]
    assert store.cleanup_temp(older_than_seconds=0) == 1


def test_iter_keys_skips_strays(store):
    sha = store.put(b"real")
    (store.root / "README").write_text("not a blob")
    (store.root / sha[:2] / sha[2:4] / "notes.txt").write_text("not a blob")
    misplaced = store.root / "00" / "00"
    misplaced.mkdir(parents=True)
    (misplaced / ("ff" * 32)).write_bytes(b"wrong folder")
    assert list(store.iter_keys()) == [sha]


class _Generated(io.RawIOBase):
    """``total`` pseudo-random bytes, produced as they are read (never all in memory)."""

    def __init__(self, total: int, seed: int = 7) -> None:
        self.left = total
        self.rng = random.Random(seed)
        self.digest = hashlib.sha256()
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.largest_read = max(self.largest_read, n)
        chunk = self.rng.randbytes(n)
        self.left -= n
        self.digest.update(chunk)
        return chunk


def test_put_streams_a_20_mb_binaryio_in_chunks(store):
    size = 20 << 20
    stream = _Generated(size)
    tracemalloc.start()
    try:
        sha = store.put(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sha == stream.digest.hexdigest()
    assert store.size(sha) == size
    assert stream.largest_read <= CHUNK
    assert peak < 4 * CHUNK  # a few chunks, not the 20 MB
    check = hashlib.sha256()
    with store.open(sha) as fh:
        while block := fh.read(CHUNK):
            check.update(block)
    assert check.hexdigest() == sha


# -- the default plugin


def test_storage_backend_urls(tmp_path, monkeypatch):
    from bingan.core.config import ConfigError
    from bingan.core.defaults.localstore import storage_backend

    home = tmp_path / "home"
    assert storage_backend(url="", home=str(home)).root == home / "blobs"
    assert storage_backend(url=f"file://{tmp_path}/x", home=str(home)).root == tmp_path / "x"
    assert storage_backend(url=(tmp_path / "sp ace").as_uri(), home="").root == tmp_path / "sp ace"
    monkeypatch.chdir(tmp_path)
    assert storage_backend(url="file:rel/dir", home=str(home)).root == tmp_path / "rel" / "dir"
    assert storage_backend(url="s3://bucket/prefix", home=str(home)) is None
    with pytest.raises(ConfigError, match="another host"):
        storage_backend(url="file://fileserver/share", home=str(home))


# ============================================================================================
# The store and the database (SQLite and PostgreSQL)
# ============================================================================================


def _rows(rt) -> dict[str, tuple]:
    from bingan.core.models import Blob

    with rt.sessions() as s:
        return {b.sha256: (b.size, b.media_type, b.verified_at) for b in s.scalars(select(Blob))}


def _commit_blobs(rt, contents: list[bytes], media_type="image/jpeg") -> list[str]:
    with rt.sessions() as s:
        shas = [store_blob(s, rt.store, c, media_type) for c in contents]
        s.commit()
    return shas


def _flip_byte(store, sha: str, offset: int = 5) -> None:
    path = store.path(sha)
    path.chmod(0o644)  # blobs are read-only
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    path.chmod(0o444)


def test_runtime_store_is_local_under_home(rt):
    assert isinstance(rt.store, LocalBlobStore)
    assert rt.store.root == rt.home / "blobs"


def test_store_blob_writes_file_then_row(rt):
    data = b"%PDF-1.7 fake"
    with rt.sessions() as s:
        sha = store_blob(s, rt.store, data, "application/pdf")
        assert rt.store.get(sha) == data  # durable before the caller commits
        s.rollback()
    assert _rows(rt) == {}  # rolled back: the file is an orphan now
    with rt.sessions() as s:
        assert store_blob(s, rt.store, io.BytesIO(data), "application/pdf") == sha
        assert store_blob(s, rt.store, data, "application/pdf") == sha  # twice in one txn
        s.commit()
    rows = _rows(rt)
    assert list(rows) == [sha]
    assert rows[sha][:2] == (len(data), "application/pdf")


def test_purge_blobs_drops_rows_then_files_and_nothing_when_forgetting_fails(rt):
    keep, a, b = _commit_blobs(rt, [b"kept", b"id card front", b"id card back"])
    rt.store.delete(b)  # a file already gone does not stop the purge

    def failing(session):
        raise RuntimeError("audit failed")

    with pytest.raises(RuntimeError):
        purge_blobs(rt.sessions, rt.store, failing)
    assert set(_rows(rt)) == {keep, a, b} and rt.store.get(a) == b"id card front"

    assert purge_blobs(rt.sessions, rt.store, lambda session: [a, b]) == 2
    assert set(_rows(rt)) == {keep}
    with pytest.raises(BlobMissing):
        rt.store.get(a)
    assert rt.store.get(keep) == b"kept"


def test_store_blob_same_content_from_two_sessions(rt):
    data = b"scanned twice"
    with rt.sessions() as a:
        sha = store_blob(a, rt.store, data)
        a.commit()
    with rt.sessions() as b:
        assert store_blob(b, rt.store, data) == sha  # row exists: no IntegrityError
        b.commit()
    assert list(_rows(rt)) == [sha]


def test_store_blob_rows_can_be_referenced_in_the_same_flush(rt):
    import datetime as dt

    from bingan.core.models import Admission, Page, Patient

    with rt.sessions() as s:
        patient = Patient(mrn="00012345", name="张三")
        adm = Admission(patient=patient, admission_no="ZY20240001", visit_no=1,
                        barcode="B-00012345-1",
                        admitted_at=dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc))
        s.add(adm)
        sha = store_blob(s, rt.store, b"jpeg bytes", "image/jpeg")
        s.flush()
        s.add(Page(admission_id=adm.id, seq=1, image_sha256=sha, original_sha256=sha))
        s.commit()
    report = _verify(rt)
    assert report.ok and report.checked == 1


def _verify(rt, **kw) -> VerifyReport:
    with rt.sessions() as s:
        return verify_store(s, rt.store, **kw)


def test_verify_store_clean(rt):
    shas = _commit_blobs(rt, [b"one", b"two", b"three"])
    calls: list[tuple[int, int]] = []
    report = _verify(rt, progress=lambda done, total: calls.append((done, total)))
    assert report.ok and report.checked == 3
    assert (report.missing, report.corrupt, report.orphans) == ([], [], [])
    assert calls[-1] == (3, 3) and len(calls) == 3
    assert all(row[2] is not None for row in _rows(rt).values())  # verified_at stamped
    assert set(shas) == set(_rows(rt))


def test_verify_store_finds_missing_corrupt_and_orphans(rt):
    good, gone, flipped = _commit_blobs(rt, [b"good page", b"lost page", b"bit-rotted page"])
    rt.store.delete(gone)
    _flip_byte(rt.store, flipped)  # same size: only a hash finds it
    orphan = rt.store.put(b"written, never committed")
    report = _verify(rt)
    assert not report.ok
    assert report.checked == 3
    assert report.missing == [gone]
    assert report.corrupt == [flipped]
    assert report.orphans == [orphan]
    rows = _rows(rt)
    assert rows[good][2] is not None
    assert rows[gone][2] is None and rows[flipped][2] is None


def test_verify_store_flags_a_size_mismatch(rt):
    from bingan.core.models import Blob

    (sha,) = _commit_blobs(rt, [b"sized"])
    with rt.sessions() as s:
        s.get(Blob, sha).size = 999
        s.commit()
    assert _verify(rt).corrupt == [sha]


def test_verify_store_pages_through_batches(rt):
    shas = _commit_blobs(rt, [f"page {i}".encode() for i in range(25)])
    with rt.sessions() as s:
        report = verify_store(s, rt.store, batch_size=4)
    assert report.ok and report.checked == 25 and report.orphans == []
    assert len(shas) == 25


def test_passes_refuse_a_session_inside_a_transaction(rt):
    from bingan.core.db import transaction

    with transaction(rt.sessions) as s:
        for call in (lambda: verify_store(s, rt.store), lambda: sample_fixity(s, rt.store, 1),
                     lambda: cleanup_store(s, rt.store)):
            with pytest.raises(ValueError, match="no transaction open"):
                call()


def test_cleanup_store_removes_old_orphans_and_keeps_fresh_ones(rt):
    store = rt.store
    (kept,) = _commit_blobs(rt, [b"committed"])
    _age(store.path(kept), 7200)  # old, but it has a row
    old_orphan = store.put(b"old orphan")
    _age(store.path(old_orphan), 7200)
    fresh_orphan = store.put(b"writer still in its transaction")
    old_temp = store.tmp / "put-crashed.tmp"
    old_temp.write_bytes(b"partial")
    _age(old_temp, 7200)
    fresh_temp = store.tmp / "put-live.tmp"
    fresh_temp.write_bytes(b"being written")
    with rt.sessions() as s:
        assert cleanup_store(s, store, orphan_grace_seconds=3600) == (1, 1)
    assert set(store.iter_keys()) == {kept, fresh_orphan}
    assert [p.name for p in store.tmp.iterdir()] == ["put-live.tmp"]
    with rt.sessions() as s:
        assert cleanup_store(s, store, orphan_grace_seconds=0) == (1, 1)
    assert list(store.iter_keys()) == [kept]
    assert list(store.tmp.iterdir()) == []
    assert _verify(rt).ok


def test_reupload_of_an_old_orphan_survives_cleanup(rt):
    """An upload that failed an hour ago left an orphan; the retry re-puts the same content
    and, before its transaction commits, the cleanup job runs: the file must stay."""
    store = rt.store
    data = b"the same scan, uploaded again"
    sha = store.put(data)
    _age(store.path(sha), 7200)
    with rt.sessions() as writer:
        assert store_blob(writer, store, data) == sha  # refreshes the orphan's age
        with rt.sessions() as janitor:
            if rt.engine.dialect.name == "sqlite":
                # SQLite: the writer holds the write lock; a real janitor would wait for it.
                # Check the store-level decision, which is what could lose the blob.
                assert store.delete_stale(sha, 3600) is False
            else:
                assert cleanup_store(janitor, store, orphan_grace_seconds=3600) == (0, 0)
        writer.commit()
    assert _verify(rt).ok


def test_sample_fixity(rt):
    shas = _commit_blobs(rt, [f"page {i}".encode() * 50 for i in range(40)])
    with rt.sessions() as s:
        report = sample_fixity(s, rt.store, 5, rng=random.Random(1))
    assert report.ok and report.checked == 5 and report.orphans == []
    verified = {sha for sha, row in _rows(rt).items() if row[2] is not None}
    assert len(verified) == 5 and verified <= set(shas)
    _flip_byte(rt.store, shas[0])
    rt.store.delete(shas[1])
    with rt.sessions() as s:
        whole = sample_fixity(s, rt.store, 100)  # more than the table: every row
    assert whole.checked == 40
    assert whole.corrupt == [shas[0]] and whole.missing == [shas[1]]


def test_sample_fixity_probes_a_larger_table(rt):
    _commit_blobs(rt, [f"blob {i}".encode() for i in range(60)])
    with rt.sessions() as s:
        report = sample_fixity(s, rt.store, 10, rng=random.Random(3))
    assert report.ok and 8 <= report.checked <= 10  # distinct rows from random probes
    with rt.sessions() as s:
        assert sample_fixity(s, rt.store, 0).checked == 0
