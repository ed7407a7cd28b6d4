"""The S3 blob store against a real SeaweedFS server (tests/seaweed.py starts one per session):
the BlobStore contract, multipart, checks on read, retries, start-up errors, the store under
the database on SQLite and PostgreSQL, a replica on S3, and `bingan storage migrate` from a
local store to S3 with BINGAN_STORAGE_URL=s3://... working afterwards."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import threading
import time

import pytest

from bingan.core.config import ConfigError
from bingan.core.storage import (
    BadBlobKey, BlobCorrupt, BlobMissing, LocalBlobStore, cleanup_store, store_blob,
    verify_store,
)
from bingan_s3store.store import S3BlobStore, make_client, open_store, parse_url
from seaweed import new_bucket
from support import build_test_runtime


def _store(server, tmp_path, **opts) -> S3BlobStore:
    return open_store(server.url(new_bucket(server), **opts), str(tmp_path))


def _overwrite(store: S3BlobStore, sha: str, data: bytes, keep_meta: bool = True) -> None:
    """Damage an object behind the store's back (same size, our metadata kept)."""
    store.client.put_object(Bucket=store.bucket, Key=store.key(sha), Body=data,
                            Metadata={"sha256": sha} if keep_meta else {})


def test_blob_store_contract_on_s3(s3_server, tmp_path):
    store = _store(s3_server, tmp_path, part_mb="5")
    small = "病案首页".encode() * 1000
    sha = store.put(small)
    assert sha == hashlib.sha256(small).hexdigest()
    assert store.key(sha) == f"blobs/{sha[:2]}/{sha[2:4]}/{sha}"
    assert store.get(sha) == small and store.size(sha) == len(small) and store.exists(sha)
    with store.open(sha) as fh:
        fh.seek(3)
        assert fh.read(3) == small[3:6]  # a seekable file (PIL, pikepdf)

    big = os.urandom(11 << 20)  # three parts of 5 MiB
    big_sha = store.put(io.BytesIO(big))  # a stream: spooled, hashed, uploaded in parts
    head = store.client.head_object(Bucket=store.bucket, Key=store.key(big_sha))
    assert head["ETag"].strip('"').endswith("-3")  # multipart: the ETag is no content hash
    assert head["Metadata"]["sha256"] == big_sha == hashlib.sha256(big).hexdigest()
    assert store.get(big_sha) == big
    assert list(store.iter_keys()) == sorted([sha, big_sha])

    # putting content already stored refreshes its age (cleanup must not take it for old)
    before = store.key_mtime(sha)
    time.sleep(1.1)
    assert store.put(small) == sha and store.key_mtime(sha) > before
    assert not store.delete_stale(sha, 3600)
    assert store.delete_stale(sha, 0) and not store.exists(sha)
    with pytest.raises(BlobMissing):
        store.get(sha)
    with pytest.raises(BlobMissing):
        store.size(sha)
    with pytest.raises(BadBlobKey):
        store.get("../../etc/passwd")

    # the server checks what it receives against our SHA-256: other bytes are refused
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="BadDigest|Checksum|checksum|digest"):
        store._upload(io.BytesIO(b"not the blob"), "0" * 64, 12)
    assert not store.exists("0" * 64)
    checked = store.put(b"checked by the server")
    got = store.client.get_object(Bucket=store.bucket, Key=store.key(checked),
                                  ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(checked)).decode()
    store.delete(checked)

    # a same-size bit flip is caught on read, whatever the object's metadata says
    flipped = bytearray(big)
    flipped[5 << 20] ^= 0x80
    _overwrite(store, big_sha, bytes(flipped))
    with pytest.raises(BlobCorrupt):
        store.get(big_sha)
    with pytest.raises(BlobCorrupt):
        store.open(big_sha)
    # a put of the right content replaces a copy that is not ours (no sha256 metadata)
    _overwrite(store, big_sha, bytes(flipped), keep_meta=False)
    store.put(big)
    assert store.get(big_sha) == big

    # an interrupted multipart upload is what cleanup_temp aborts
    store.client.create_multipart_upload(Bucket=store.bucket, Key=store.key("a" * 64))
    assert store.cleanup_temp(3600) == 0
    assert store.cleanup_temp(0) == 1
    assert store.client.list_multipart_uploads(
        Bucket=store.bucket, Prefix=store.prefix).get("Uploads", []) == []


class _FlakyProxy:
    """A TCP proxy to the S3 server that drops the first ``drops`` connections at once."""

    def __init__(self, target_port: int, drops: int) -> None:
        self.target, self.drops, self.accepted = target_port, drops, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted <= self.drops:
                conn.close()
                continue
            up = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def test_requests_are_retried_with_backoff(s3_server, tmp_path):
    bucket = new_bucket(s3_server)
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    proxy = _FlakyProxy(port, drops=2)
    try:
        client = make_client(f"http://127.0.0.1:{proxy.port}", "us-east-1", None, 4, True)
        store = S3BlobStore(client, bucket, "p", spool_dir=tmp_path)
        sha = store.put(b"survives two dropped connections")
        assert proxy.accepted >= 3
        assert store.get(sha) == b"survives two dropped connections"
        proxy.drops = proxy.accepted + 10  # the server is gone for good: a clear error
        client = make_client(f"http://127.0.0.1:{proxy.port}", "us-east-1", None, 2, True)
        with pytest.raises(Exception, match="Connection|connection|closed|Endpoint"):
            S3BlobStore(client, bucket, "p").get(sha)
    finally:
        proxy.close()


def test_s3_urls_and_start_up_errors(s3_server, tmp_path):
    opts = parse_url("s3://archive-2026/blobs/zy?endpoint=http://10.0.0.5:8333&part_mb=32")
    assert opts["bucket"] == "archive-2026" and opts["prefix"] == "blobs/zy"
    assert opts["part_size"] == 32 << 20 and opts["endpoint"] == "http://10.0.0.5:8333"
    for url, needle in [
        ("s3://key:secret@bucket/x", "not in the URL"),
        ("s3://B_ad/x", "not a valid bucket name"),
        ("s3://bucket/x?part_mb=2", "part_mb must be between 5 and 5120"),
        ("s3://bucket/x?endpont=http://h", "unknown option 'endpont'"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            parse_url(url)
    with pytest.raises(ConfigError, match="does not exist"):
        open_store(s3_server.url("no-such-bucket-here"), str(tmp_path))
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with pytest.raises(ConfigError, match="cannot reach the object store"):
        open_store(f"s3://bucket/x?endpoint=http://127.0.0.1:{port}", str(tmp_path))


def test_s3_store_under_the_database(s3_server, db_url, tmp_path):
    """store_blob, verify, cleanup and a replica on S3, on SQLite and PostgreSQL."""
    from bingan.core.storage_ops import ReplicatedStore, repair_store

    url = s3_server.url(new_bucket(s3_server), "zy")
    rt = build_test_runtime(tmp_path / "home", db_url)
    rt.config.storage_url = url
    rt._store = None
    try:
        store = rt.store
        assert isinstance(store, S3BlobStore) and store.prefix == "zy/"
        with rt.sessions() as s, s.begin():
            keys = [store_blob(s, store, f"第{i}页".encode() * 2000, "image/jpeg")
                    for i in range(3)]
        orphan = store.put(b"written, never committed")
        with rt.sessions() as s:
            report = verify_store(s, store)
            assert report.ok and report.checked == 3 and report.orphans == [orphan]
            assert cleanup_store(s, store, orphan_grace_seconds=0) == (0, 1)
            _overwrite(store, keys[1], b"x" * store.size(keys[1]))
            bad = verify_store(s, store)
            assert bad.corrupt == [keys[1]] and not bad.missing and not bad.orphans

        # a local primary with its replica on S3: repair restores from the bucket
        local = LocalBlobStore(tmp_path / "local")
        both = ReplicatedStore(local, store)
        data = b"replicated to the bucket" * 100
        with rt.sessions() as s, s.begin():
            sha = store_blob(s, both, data)
        assert store.get(sha) == data
        local.delete(sha)
        assert both.get(sha) == data  # served from the bucket meanwhile
        with rt.sessions() as s:
            report = repair_store(s, both)
        # the other rows were never on the local disk: restored from the bucket, except the
        # one damaged there
        assert sorted(report.repaired) == sorted({sha, keys[0], keys[2]})
        assert report.unrepaired == [keys[1]] and local.get(sha) == data
    finally:
        rt.close()


def test_migrate_local_to_s3_then_run_on_s3(s3_server, db_url, tmp_path):
    """`bingan storage migrate s3://...` (progress bar, verified), then the installation runs
    with BINGAN_STORAGE_URL=s3://...: verify is clean and a new blob goes to the bucket."""
    from test_cli import _bingan

    home = tmp_path / "home"
    rt = build_test_runtime(home, db_url)
    with rt.sessions() as s, s.begin():
        keys = [store_blob(s, rt.store, os.urandom(3000 + i)) for i in range(4)]
    rt.close()
    env = {"BINGAN_HOME": str(home), "BINGAN_DATABASE_URL": db_url,
           "BINGAN_KEY_DIR": str(tmp_path / "keys"),
           "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
           "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"]}
    bucket = new_bucket(s3_server)
    url = s3_server.url(bucket)
    res = _bingan(["storage", "migrate", url], tmp_path, **env)
    assert res.returncode == 0, res.stderr
    assert "迁移文件" in res.stderr and "本次复制并校验 4" in res.stdout
    assert "迁移完成" in res.stdout
    res = _bingan(["storage", "verify"], tmp_path, **env, BINGAN_STORAGE_URL=url)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "已校验 4 个文件：缺失 0，损坏 0，孤立 0" in res.stdout

    rt = build_test_runtime(home, db_url)
    rt.config.storage_url = url
    rt._store = None
    try:
        assert isinstance(rt.store, S3BlobStore)
        assert sorted(rt.store.iter_keys()) == sorted(keys)
        with rt.sessions() as s, s.begin():
            new = store_blob(s, rt.store, b"after the move")
        assert make_client(s3_server.endpoint, "us-east-1", None, 2, True).get_object(
            Bucket=bucket, Key=rt.store.key(new))["Body"].read() == b"after the move"
    finally:
        rt.close()


def test_backup_of_an_s3_installation_restores(s3_server, db_url, tmp_path):
    """Blobs on S3: a backup with the blobs restores into a new home whose store is another
    bucket; a --no-blobs backup (the bucket is replicated elsewhere) restores against the
    same bucket. Both verify clean afterwards."""
    from bingan.core import audit
    from bingan.core.backup import create_backup, restore_backup
    from fixtures_db import _pg_url, create_pg_database, drop_pg_database

    def runtime(home, url, store_url):
        rt = build_test_runtime(home, url)
        rt.config.storage_url = store_url
        rt._store = None
        return rt

    bucket_url = s3_server.url(new_bucket(s3_server))
    rt = runtime(tmp_path / "a" / "home", db_url, bucket_url)
    with rt.sessions() as s, s.begin():
        keys = [store_blob(s, rt.store, os.urandom(2000 + i)) for i in range(3)]
    create_backup(rt, tmp_path / "full")
    create_backup(rt, tmp_path / "manifest-only", include_blobs=False)
    rt.close()
    for name, store_url in (("full", s3_server.url(new_bucket(s3_server))),
                            ("manifest-only", bucket_url)):
        if db_url.startswith("sqlite"):
            target, dbname = f"sqlite:///{tmp_path / (name + '.sqlite3')}", None
        else:
            dbname = create_pg_database("bingan_s")
            target = _pg_url(dbname)
        try:
            rt2 = runtime(tmp_path / name / "home", target, store_url)
            restore_backup(rt2, tmp_path / name)
            rt2.close()
            rt2 = runtime(tmp_path / name / "home", target, store_url)
            with rt2.sessions() as s:
                report = verify_store(s, rt2.store)
                assert report.ok and report.checked == 3 and not report.orphans, name
                assert audit.verify(s, rt2).ok
            assert sorted(rt2.store.iter_keys()) == sorted(keys)
            rt2.close()
        finally:
            if dbname:
                drop_pg_database(dbname)


def _race_cleanup_with_a_put(rt, store: S3BlobStore, data: bytes) -> tuple[int, str]:
    """An old orphan of ``data`` is being removed by ``cleanup_store``; its DELETE is held
    back until a writer has put the same content again (after the cleanup's age check), then
    goes out while the writer inserts and commits its row. Returns (orphans the cleanup
    removed, the key)."""
    sha = store.put(data)  # written, never committed: an orphan
    at_delete, writer_put = threading.Event(), threading.Event()
    real_delete, real_put = store.client.delete_object, store.put

    def held_delete(**kwargs):
        at_delete.set()
        assert writer_put.wait(30), "the writer never put"
        return real_delete(**kwargs)

    def put(d):
        out = real_put(d)
        writer_put.set()
        return out

    result: dict[str, object] = {}

    def cleanup() -> None:
        with rt.sessions() as s:
            result["cleanup"] = cleanup_store(s, store, orphan_grace_seconds=0)

    def writer() -> None:
        with rt.sessions() as s, s.begin():
            result["writer"] = store_blob(s, store, data, "image/jpeg")

    store.client.delete_object = held_delete
    store.put = put  # type: ignore[method-assign]
    try:
        cleaner = threading.Thread(target=cleanup)
        cleaner.start()
        assert at_delete.wait(30), "the cleanup never reached its delete"
        writing = threading.Thread(target=writer)  # puts, then its row waits for the claim
        writing.start()
        cleaner.join(60)
        writing.join(60)
        assert not cleaner.is_alive() and not writing.is_alive()
    finally:
        del store.client.delete_object, store.put
    assert result["writer"] == sha
    return result["cleanup"][1], sha  # type: ignore[index]


def test_cleanup_racing_a_put_of_the_same_content_keeps_the_committed_blob(
        s3_server, db_url, tmp_path):
    """S3 has no atomic rename: the cleanup's age check and its DELETE are two requests, and a
    put of the same content can land between them. The writer's row waits for the cleanup's
    claim, then the writer finds the object gone and puts it again: the committed blob is
    there. With that check switched off, the same steps lose it (the race is real here)."""
    from sqlalchemy import select

    from bingan.core.models import Blob

    rt = build_test_runtime(tmp_path / "home", db_url)
    try:
        store = _store(s3_server, tmp_path)
        assert not getattr(store, "delete_stale_is_atomic", False)
        data = "病程记录 第1页".encode() * 4000
        removed, sha = _race_cleanup_with_a_put(rt, store, data)
        assert removed == 1  # the cleanup's DELETE did go out after the writer's put
        with rt.sessions() as s:
            assert s.scalar(select(Blob.size).where(Blob.sha256 == sha)) == len(data)
        assert store.get(sha) == data  # committed and stored
        with rt.sessions() as s:
            report = verify_store(s, store)
        assert report.ok and report.checked == 1 and not report.orphans

        # the same steps without the writer's check: the committed row has no object
        other = "病程记录 第2页".encode() * 4000
        store.delete_stale_is_atomic = True  # type: ignore[attr-defined]
        removed, lost = _race_cleanup_with_a_put(rt, store, other)
        assert removed == 1 and not store.exists(lost)
        with rt.sessions() as s:
            assert verify_store(s, store).missing == [lost]
    finally:
        rt.close()
