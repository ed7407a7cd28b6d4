"""Capture throughput: receiving (validate + store durably) and processing (identify by
barcode + store as a page) scanned A4 pages at 300 DPI, next to their floors.

Floors: for receiving, what any correct receiver must do anyway — decode the whole image
(truncation check) + SHA-256 + an atomic, fsync'd blob write; for processing, decoding the
page and reading its barcodes with zxing-cpp. The capture numbers add the database rows, the
durable task and the audit event (receive), and the frame/page rows and blob writes of the
processed page (process). With the imaging plugin installed, a third row shows a full run
through ``process_page`` as well.

    .venv/bin/python bench/capture_ingest.py [--pages 24]

Figures depend on the machine and its load; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=24, help="pages (in files of 6 with a cover)")
    args = ap.parse_args()

    from PIL import Image

    from support import build_test_runtime
    from bingan.core.migrate import upgrade
    from bingan.core.storage import LocalBlobStore
    from bingan.core.tasks import run_until_idle
    from bingan_capture.codes import read_codes
    from bingan_capture.demo import DemoRecord, pdf_bytes, record_pages

    from bingan.core.records import record_barcode

    tmp = Path(tempfile.mkdtemp(prefix="bench-capture-"))
    rng = random.Random(7)
    per_file = 6
    files = []
    print(f"drawing {args.pages} A4 pages at 300 DPI ...", flush=True)
    for i in range(max(1, args.pages // per_file)):
        mrn = f"{i + 1:08d}"
        rec = DemoRecord(record_barcode(mrn, 1), mrn, f"ZY2026{i + 1:08d}", 1, "测试", "男",
                         "50岁", "内科", "2026-04-01 08:00", "2026-04-09 10:00",
                         (("I10", "高血压病"),), (), "示例医院")
        files.append((rec, record_pages(rec, rng, per_file - 1, cover=True)))

    def setup(enabled):
        from datetime import datetime, timezone

        from bingan.hooks.types import AdmissionIn, PatientIn
        from bingan.core import records

        home = tmp / "-".join(enabled)
        rt = build_test_runtime(home, f"sqlite:///{home}/b.sqlite3", enabled=enabled)
        upgrade(rt)
        with rt.sessions() as s, s.begin():
            for rec, _ in files:
                records.upsert_admission(s, rt, AdmissionIn(
                    patient=PatientIn(mrn=rec.mrn, name=rec.name), admission_no=rec.admission_no,
                    visit_no=1, admitted_at=datetime(2026, 4, 1, tzinfo=timezone.utc)))
        return rt

    blobs = [pdf_bytes(imgs) for _, imgs in files]
    pages = sum(len(imgs) for _, imgs in files)
    jpegs = []
    for _, imgs in files:
        for im in imgs:
            b = io.BytesIO()
            im.save(b, "JPEG", quality=85, dpi=(300, 300))
            jpegs.append(b.getvalue())

    # floors
    store = LocalBlobStore(tmp / "floor")
    t = time.perf_counter()
    for data in jpegs:
        im = Image.open(io.BytesIO(data))
        im.load()
        hashlib.sha256(data).hexdigest()
        store.put(data)
    floor_receive = (time.perf_counter() - t) / len(jpegs)
    t = time.perf_counter()
    for data in jpegs:
        read_codes(Image.open(io.BytesIO(data)))
    floor_process = (time.perf_counter() - t) / len(jpegs)

    rows = [("receive floor (decode + sha256 + atomic write)", floor_receive, None),
            ("process floor (decode + zxing barcodes)", floor_process, None)]
    runs = [["capture"]]
    from bingan.core.plugins import installed_plugins

    if "imaging" in installed_plugins():
        runs.append(["capture", "imaging"])
    for enabled in runs:
        rt = setup(enabled)
        from bingan_capture.ingest import receive

        t = time.perf_counter()
        for i, data in enumerate(blobs):
            with rt.sessions() as s, s.begin():
                receive(s, rt, data, f"f{i}.pdf", "import", by="bench")
        rec_t = (time.perf_counter() - t) / pages
        t = time.perf_counter()
        run_until_idle(rt, kinds=["capture.process"])
        proc_t = (time.perf_counter() - t) / pages
        from sqlalchemy import func, select

        from bingan.core.models import Page

        with rt.sessions() as s:
            stored = s.scalar(select(func.count()).select_from(Page))
        label = "+".join(enabled)
        rows.append((f"receive, {label}", rec_t, floor_receive))
        rows.append((f"process, {label} ({stored} pages stored)", proc_t, floor_process))
        rt.close()

    load = os.getloadavg()
    print(f"\n{pages} pages in {len(blobs)} scanned PDFs (A4, 300 DPI, cover sheets); "
          f"load average {load[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'':58} {'ms/page':>9} {'pages/s':>8} {'x floor':>8}")
    for label, sec, floor in rows:
        ratio = f"{sec / floor:8.1f}" if floor else f"{'':8}"
        print(f"{label:58} {sec * 1000:9.1f} {1 / sec:8.1f} {ratio}")


if __name__ == "__main__":
    main()
