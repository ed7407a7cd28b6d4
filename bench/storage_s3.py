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
            print("put")
            t = time.perf_counter()
            for i, p in enumerate(pages):
                client.put_object(Bucket="raw", Key=f"p/{i}", Body=p)
            rate("boto3 put_object, no hashing (floor)", len(pages), page_bytes,
                 time.perf_counter() - t)
            t = time.perf_counter()
            keys = [s3.put(p) for p in pages]
            rate("S3BlobStore.put (SHA-256, Content-MD5, HEAD)", len(pages), page_bytes,
                 time.perf_counter() - t)
            t = time.perf_counter()
            for p in pages:
                local.put(p)
            rate("LocalBlobStore.put (fsync, rename)", len(pages), page_bytes,
                 time.perf_counter() - t)
            t = time.perf_counter()
            for p in pdfs:
                s3.put(p)
            rate("S3BlobStore.put, multipart PDFs", len(pdfs), pdf_bytes,
                 time.perf_counter() - t)
            print("get")
            t = time.perf_counter()
            for i in range(len(pages)):
                client.get_object(Bucket="raw", Key=f"p/{i}")["Body"].read()
            rate("boto3 get_object, no hashing (floor)", len(pages), page_bytes,
                 time.perf_counter() - t)
            t = time.perf_counter()
            for k in keys:
                s3.get(k)
            rate("S3BlobStore.get (hashed before use)", len(pages), page_bytes,
                 time.perf_counter() - t)
            t = time.perf_counter()
            for k in keys:
                hashlib.sha256(local.get(k)).hexdigest()
            rate("LocalBlobStore.get + SHA-256", len(pages), page_bytes,
                 time.perf_counter() - t)

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
