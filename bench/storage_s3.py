"""Blob store throughput: the S3 store (plugin s3store) on a local SeaweedFS beside the local
disk store and beside boto3 alone (put_object / get_object with no hashing: the floor of what
S3 costs here), plus `storage migrate` (local -> S3, every copy read back and hashed).

Page-sized blobs (1.25 MB, random so nothing compresses) and a few multi-part PDFs. SeaweedFS
runs on the same machine, so the S3 figures are the software's cost (HTTP, the filer, our
hashing), not a network's; over a LAN expect the link's bandwidth to dominate.

    .venv/bin/python bench/storage_s3.py [--pages 200] [--pdfs 2] [--pdf-mb 40]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def rate(label: str, n: int, nbytes: int, seconds: float) -> None:
    print(f"  {label:<44} {n / seconds:8.1f} blobs/s  {nbytes / seconds / 1e6:8.1f} MB/s"
          f"  ({n} in {seconds:.2f} s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--pdfs", type=int, default=2)
    ap.add_argument("--pdf-mb", type=int, default=40)
    args = ap.parse_args()

    from seaweed import ACCESS, start_weed, stop_weed

    for k, v in ACCESS.items():
        os.environ.setdefault(k, v)
    from bingan.core.db import make_engine, make_sessionmaker
    from bingan.core.models import Blob
    from bingan.core.storage import LocalBlobStore, store_blob
    from bingan.core.storage_ops import migrate_store
    from bingan_s3store.store import open_store

    pages = [os.urandom(1_250_000) for _ in range(args.pages)]
    pdfs = [os.urandom(args.pdf_mb << 20) for _ in range(args.pdfs)]
    page_bytes = sum(map(len, pages))
    pdf_bytes = sum(map(len, pdfs))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "weed").mkdir()
        proc, server = start_weed(work / "weed")
        try:
            client = server.client()
            for b in ("raw", "bench", "moved"):
                client.create_bucket(Bucket=b)
            s3 = open_store(server.url("bench"), str(work))
            local = LocalBlobStore(work / "local")
            print(f"{args.pages} pages of 1.25 MB, {args.pdfs} PDFs of {args.pdf_mb} MB "
                  f"(multipart, {s3.part_size >> 20} MB parts); SeaweedFS on this host")
            # contenders alternate blob by blob, so load from other work on a shared machine
            # falls on all of them alike
            print("put (interleaved)")
            spent = dict.fromkeys(("floor", "ck", "store", "local"), 0.0)
            keys = []
            for i, p in enumerate(pages):
                t = time.perf_counter()
                client.put_object(Bucket="raw", Key=f"p/{i}", Body=p)
                spent["floor"] += time.perf_counter() - t
                t = time.perf_counter()
                client.put_object(Bucket="raw", Key=f"c/{i}", Body=p, ChecksumSHA256=base64
                                  .b64encode(hashlib.sha256(p).digest()).decode())
                spent["ck"] += time.perf_counter() - t
                t = time.perf_counter()
                keys.append(s3.put(p))
                spent["store"] += time.perf_counter() - t
                t = time.perf_counter()
                local.put(p)
                spent["local"] += time.perf_counter() - t
            n = len(pages)
            rate("boto3 put_object, no checks (floor)", n, page_bytes, spent["floor"])
            rate("boto3 put_object + x-amz-checksum-sha256", n, page_bytes, spent["ck"])
            rate("S3BlobStore.put (SHA-256 + MD5 checked)", n, page_bytes, spent["store"])
            rate("LocalBlobStore.put (fsync, rename)", n, page_bytes, spent["local"])
            t = time.perf_counter()
            for p in pdfs:
                s3.put(p)
            rate("S3BlobStore.put, multipart PDFs", len(pdfs), pdf_bytes,
                 time.perf_counter() - t)
            print("get (interleaved)")
            spent = dict.fromkeys(("floor", "store", "local"), 0.0)
            for i, k in enumerate(keys):
                t = time.perf_counter()
                client.get_object(Bucket="raw", Key=f"p/{i}")["Body"].read()
                spent["floor"] += time.perf_counter() - t
                t = time.perf_counter()
                s3.get(k)
                spent["store"] += time.perf_counter() - t
                t = time.perf_counter()
                hashlib.sha256(local.get(k)).hexdigest()
                spent["local"] += time.perf_counter() - t
            rate("boto3 get_object, no hashing (floor)", n, page_bytes, spent["floor"])
            rate("S3BlobStore.get (hashed before use)", n, page_bytes, spent["store"])
            rate("LocalBlobStore.get + SHA-256", n, page_bytes, spent["local"])

            engine = make_engine(f"sqlite:///{work / 'bench.sqlite3'}")
            Blob.__table__.create(engine)
            sessions = make_sessionmaker(engine)
            with sessions() as s, s.begin():
                for p in pages:
                    store_blob(s, local, p, "image/jpeg")
            target = open_store(server.url("moved"), str(work))
            print("storage migrate, local -> S3 (each copy read back and hashed)")
            t = time.perf_counter()
            with sessions() as s:
                report = migrate_store(s, local, target, work / "migrate.json")
            rate("migrate_store", report.copied, page_bytes, time.perf_counter() - t)
            assert report.done and report.copied == len(pages)
            engine.dispose()
        finally:
            stop_weed(proc)


if __name__ == "__main__":
    main()
