"""``S3BlobStore``: the ``BlobStore`` protocol on an S3-compatible bucket (boto3).

Keys are content addresses (``prefix/ab/cd/<sha256>``). An object is visible whole or not at
all (a single PUT, or a multipart upload that only appears on completion), so a reader never sees
a partial blob. Our SHA-256 is the fixity truth: it is stored in the object's metadata, and
every read hashes the whole object before handing out a byte (``BlobCorrupt`` on a mismatch).
Writes send our SHA-256 as the object's ``x-amz-checksum-sha256`` (for multipart uploads the
SHA-256 of each part) and Content-MD5, so the server itself refuses bytes that are not the
blob's.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from bingan.core.config import ConfigError
from bingan.core.storage import CHUNK, BlobCorrupt, BlobMissing, Data, check_key

MIN_PART = 5 << 20  # S3's smallest part (all but the last)
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_KEY_RE = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


def _b64md5(data: bytes | memoryview) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 (transport check)


def _b64sha(data: bytes | memoryview) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _b64key(sha: str) -> str:
    """Our key as an ``x-amz-checksum-sha256`` value: the server refuses other bytes."""
    return base64.b64encode(bytes.fromhex(sha)).decode()


def _not_found(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _NOT_FOUND


class S3BlobStore:
    """Blobs as objects ``<prefix>ab/cd/<sha>`` in ``bucket``.

    ``client`` is a boto3 S3 client (its retry configuration is the store's); ``part_size`` is
    the multipart threshold and part size; ``spool_dir`` holds streams being hashed before
    upload and objects being checked on read (under BINGAN_HOME, private to the service user).
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "", *, part_size: int = 16 << 20,
                 spool_dir: str | Path | None = None, url: str = "") -> None:
        if part_size < MIN_PART:
            raise ValueError(f"part size must be at least {MIN_PART} bytes")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.part_size = part_size
        self.spool_dir = str(spool_dir) if spool_dir else None
        if self.spool_dir:
            Path(self.spool_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        self.url = url or f"s3://{bucket}/{self.prefix}"

    def __repr__(self) -> str:
        return f"S3BlobStore({self.bucket!r}, {self.prefix!r})"

    def key(self, sha: str) -> str:
        """The object key of blob ``sha``."""
        check_key(sha)
        return f"{self.prefix}{sha[:2]}/{sha[2:4]}/{sha}"

    # -- writing

    def put(self, data: Data) -> str:
        """Store ``data`` and return its SHA-256 (see ``BlobStore.put``).

        Always uploads, without asking first whether the key exists: keys are content
        addresses, so writing the same bytes again changes nothing but the object's age (which
        is what cleanup needs), replaces a damaged copy, and saves a HEAD round trip on every
        new page (nearly every put). An S3 PUT replaces an object atomically."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            view = memoryview(data).cast("B")
            sha = hashlib.sha256(view).hexdigest()
            self._upload(io.BytesIO(view), sha, view.nbytes)
            return sha
        with self._spool() as spool:
            digest = hashlib.sha256()
            size = 0
            while chunk := data.read(CHUNK):
                digest.update(chunk)
                spool.write(chunk)
                size += len(chunk)
            sha = digest.hexdigest()
            spool.seek(0)
            self._upload(spool, sha, size)
        return sha

    def _spool(self) -> Any:
        return tempfile.SpooledTemporaryFile(max_size=self.part_size, dir=self.spool_dir)

    def _head(self, sha: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key(sha))
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise

    def _upload(self, fh: BinaryIO, sha: str, size: int) -> None:
        key = self.key(sha)
        meta = {"sha256": sha}
        if size <= self.part_size:
            body = fh.read()
            # the server checks the bytes against our SHA-256 itself (and against Content-MD5)
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=meta,
                                   ContentMD5=_b64md5(body), ChecksumSHA256=_b64key(sha),
                                   ContentType="application/octet-stream")
            return
        upload_id = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, Metadata=meta, ChecksumAlgorithm="SHA256",
            ContentType="application/octet-stream")["UploadId"]
        try:
            parts = []
            number = 1
            while part := fh.read(self.part_size):
                checksum = _b64sha(part)
                res = self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                    Body=part, ContentMD5=_b64md5(part), ChecksumSHA256=checksum)
                parts.append({"ETag": res["ETag"], "PartNumber": number,
                              "ChecksumSHA256": checksum})
                number += 1
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key,
                                                   UploadId=upload_id)
            except (ClientError, BotoCoreError):
                pass  # cleanup_temp aborts it later
            raise

    # -- reading (every read is hashed in full before it is handed out)

    def _get_object(self, sha: str) -> dict[str, Any]:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(sha))  # type: ignore[no-any-return]
        except ClientError as exc:
            if _not_found(exc):
                raise BlobMissing(sha) from None
            raise

    def _fetch_into(self, sha: str, out: Any) -> None:
        digest = hashlib.sha256()
        body = self._get_object(sha)["Body"]
        try:
            for chunk in body.iter_chunks(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        finally:
            body.close()
        if digest.hexdigest() != sha:
            raise BlobCorrupt(sha)

    def open(self, sha: str) -> BinaryIO:
        """A seekable file on the blob, checked against its key; raises ``BlobMissing`` or
        ``BlobCorrupt``."""
        spool = self._spool()
        try:
            self._fetch_into(sha, spool)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool  # type: ignore[no-any-return]

    def get(self, sha: str) -> bytes:
        """The whole blob, checked against its key; raises ``BlobMissing`` or ``BlobCorrupt``."""
        body = self._get_object(sha)["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        if hashlib.sha256(data).hexdigest() != sha:
            raise BlobCorrupt(sha)
        return data

    def exists(self, sha: str) -> bool:
        return self._head(sha) is not None

    def _require(self, sha: str) -> dict[str, Any]:
        head = self._head(sha)
        if head is None:
            raise BlobMissing(sha)
        return head

    def size(self, sha: str) -> int:
        return int(self._require(sha)["ContentLength"])

    def key_mtime(self, sha: str) -> float:
        return float(self._require(sha)["LastModified"].timestamp())

    def iter_keys(self) -> Iterator[str]:
        """Every stored key in sorted order (S3 lists keys in byte order)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        n = len(self.prefix)
        for page in pages:
            for obj in page.get("Contents", ()):
                m = _KEY_RE.fullmatch(obj["Key"][n:])
                if m and m.group(3).startswith(m.group(1) + m.group(2)):
                    yield m.group(3)

    # -- removing

    def delete(self, sha: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(sha))

    def delete_stale(self, sha: str, older_than_seconds: float) -> bool:
        """Delete the object unless a put refreshed it within ``older_than_seconds``.

        S3 has no atomic rename, so the age check and the delete are two requests and a put of
        the same content can land between them. That put is not lost: ``cleanup_store`` deletes
        only under a claim on the blob's row, and ``store_blob`` (this store does not set
        ``delete_stale_is_atomic``) checks the object after inserting its row and puts it
        again if a cleanup took it (plugins/s3store/tests: the race, step by step)."""
        head = self._head(sha)
        if head is None:
            return False
        if time.time() - head["LastModified"].timestamp() < older_than_seconds:
            return False
        self.delete(sha)
        return True

    def cleanup_temp(self, older_than_seconds: float = 3600) -> int:
        """Abort multipart uploads under our prefix started more than this long ago."""
        cutoff = time.time() - older_than_seconds
        aborted = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for up in page.get("Uploads", ()):
                if up["Initiated"].timestamp() > cutoff:
                    continue
                try:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=up["Key"], UploadId=up["UploadId"])
                except ClientError as exc:
                    if not _not_found(exc) and "NoSuchUpload" not in str(exc):
                        raise
                    continue
                aborted += 1
        return aborted


def make_client(endpoint: str | None, region: str, profile: str | None, attempts: int,
                path_style: bool) -> Any:
    """A boto3 S3 client with retries (exponential backoff with jitter) and timeouts."""
    session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
    cfg = BotoConfig(
        region_name=region,
        retries={"max_attempts": attempts, "mode": "standard"},
        connect_timeout=5, read_timeout=60,
        s3={"addressing_style": "path" if path_style else "virtual"},
        signature_version="s3v4",
    )
    return session.client("s3", endpoint_url=endpoint or None, config=cfg)


def parse_url(url: str) -> dict[str, Any]:
    """Bucket, prefix and options of an ``s3://bucket/prefix?...`` URL; ConfigError if bad."""
    parts = urlsplit(url)
    where = f"BINGAN_STORAGE_URL {url!r}"
    if parts.username or parts.password:
        raise ConfigError(f"{where}: put credentials in AWS_ACCESS_KEY_ID / "
                          "AWS_SECRET_ACCESS_KEY or the credentials file, not in the URL")
    bucket = parts.hostname or ""
    if not _BUCKET_RE.fullmatch(bucket):
        raise ConfigError(f"{where}: {bucket!r} is not a valid bucket name")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    known = {"endpoint", "region", "profile", "part_mb", "path_style", "attempts"}
    unknown = sorted(set(query) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown option {unknown[0]!r} "
                          f"(known: {', '.join(sorted(known))})")
    try:
        part_mb = int(query.get("part_mb", "16"))
        attempts = int(query.get("attempts", "8"))
    except ValueError as exc:
        raise ConfigError(f"{where}: part_mb and attempts must be whole numbers") from exc
    if part_mb < 5 or part_mb > 5120:
        raise ConfigError(f"{where}: part_mb must be between 5 and 5120")
    if attempts < 1:
        raise ConfigError(f"{where}: attempts must be at least 1")
    path_style = query.get("path_style", "1")
    if path_style not in ("0", "1"):
        raise ConfigError(f"{where}: path_style must be 0 or 1")
    return {
        "bucket": bucket, "prefix": unquote(parts.path).strip("/"),
        "endpoint": query.get("endpoint") or None, "region": query.get("region") or "us-east-1",
        "profile": query.get("profile") or None, "part_size": part_mb << 20,
        "attempts": attempts, "path_style": path_style == "1",
    }


def open_store(url: str, home: str) -> S3BlobStore:
    """The store for ``url``; checks at once that the bucket exists and can be reached."""
    opts = parse_url(url)
    where = f"BINGAN_STORAGE_URL {url!r}"
    probe = make_client(opts["endpoint"], opts["region"], opts["profile"], 2, opts["path_style"])
    try:
        probe.head_bucket(Bucket=opts["bucket"])
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND or code == "NoSuchBucket":
            raise ConfigError(f"{where}: bucket {opts['bucket']!r} does not exist (create it "
                              "with the storage system's own tools; bingan does not create "
                              "buckets, so a typo cannot start an empty archive)") from exc
        raise ConfigError(f"{where}: bucket {opts['bucket']!r} refused: {code or exc}") from exc
    except BotoCoreError as exc:
        raise ConfigError(f"{where}: cannot reach the object store: {exc}") from exc
    client = make_client(opts["endpoint"], opts["region"], opts["profile"], opts["attempts"],
                         opts["path_style"])
    spool = Path(home) / "tmp" / "s3" if home else None
    return S3BlobStore(client, opts["bucket"], opts["prefix"], part_size=opts["part_size"],
                       spool_dir=spool, url=url)
