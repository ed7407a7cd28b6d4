"""Archive PDF benchmark: building one admission's PDF/A from its processed JPEGs.

Generates ``--pages`` A4 pages at 300 DPI (2480x3508, JPEG quality 85, printed-form-like
content with a red seal) once, then times, on the same bytes:

- floor: copy every JPEG into one file while hashing it (the I/O any PDF writer must do);
- archive: ``bingan_archive.pdf.build_pdf_bytes`` (header parse + 1/8-scale decode per page to
  refuse truncated files, pikepdf writing the JPEGs untouched, XMP, ICC, outline);
- peer: Pillow's own PDF writer (decodes and re-encodes every page: slower and lossy; shown as
  the naive alternative the design rules out).

    .venv/bin/python bench/archive_pdf.py --pages 60 --repeat 3

Figures are medians over ``--repeat`` runs; the machine may be shared (say so when quoting).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image, ImageDraw  # noqa: E402

from bingan_archive.pdf import PdfMeta, PdfPage, build_pdf_bytes  # noqa: E402


def page_jpeg(seed: int) -> bytes:
    rnd = random.Random(seed)
    w, h = 2480, 3508
    img = Image.new("RGB", (w, h), (246, 244, 236))
    d = ImageDraw.Draw(img)
    for y in range(300, h - 300, 70):
        x = 200
        while x < w - 300:
            n = rnd.randrange(30, 160)
            d.line([(x, y), (x + n, y)], fill=(30, 30, 30), width=rnd.choice((3, 4, 5)))
            x += n + rnd.randrange(20, 60)
    d.ellipse([w - 700, h - 700, w - 250, h - 250], outline=(200, 25, 25), width=14)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, dpi=(300, 300))
    return buf.getvalue()


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    t0 = time.perf_counter()
    jpegs = [page_jpeg(i) for i in range(args.pages)]
    total = sum(map(len, jpegs))
    print(f"{args.pages} pages, A4 300 DPI, {total / 1e6:.1f} MB of JPEG "
          f"(generated in {time.perf_counter() - t0:.1f} s)")
    meta = PdfMeta("00123456", "ZY202605000001", 1, "张三", dt.date(2026, 5, 3), "示例医院",
                   "bench", dt.datetime.now(dt.timezone.utc))
    types = ["病案首页", "出院记录", "入院记录"] + ["病程记录"] * 20 + ["医嘱单"] * 20
    pages = [PdfPage(j, 300.0, types[i % len(types)]) for i, j in enumerate(jpegs)]

    with tempfile.TemporaryDirectory() as tmp:
        def floor():
            h = hashlib.sha256()
            with open(Path(tmp) / "floor.bin", "wb") as fh:
                for j in jpegs:
                    h.update(j)
                    fh.write(j)
            return total

        def ours():
            data = build_pdf_bytes(pages, meta)
            (Path(tmp) / "ours.pdf").write_bytes(data)
            return len(data)

        def pillow():
            imgs = [Image.open(io.BytesIO(j)) for j in jpegs]
            out = Path(tmp) / "pillow.pdf"
            imgs[0].save(out, "PDF", save_all=True, append_images=imgs[1:], resolution=300)
            return out.stat().st_size

        rows = []
        for name, fn in (("floor: copy + SHA-256", floor), ("archive (pikepdf, PDF/A)", ours),
                         ("peer: Pillow PDF (re-encodes)", pillow)):
            sec, size = timed(fn, args.repeat)
            rows.append((name, sec, size))
    print(f"{'':32} {'seconds':>8} {'pages/s':>8} {'file MB':>8}")
    for name, sec, size in rows:
        print(f"{name:32} {sec:8.2f} {args.pages / sec:8.1f} {size / 1e6:8.1f}")


if __name__ == "__main__":
    main()
