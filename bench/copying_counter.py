"""The copy counter from search to printed copy, for a 30-page record (issue 13's figure).

What it does (loopback only, bounded):
1. a fresh BINGAN_HOME and SQLite database with every plugin of plugins.toml, one record of
   --pages A4 pages at 300 DPI (2480 x 3508 scanned-like JPEGs with text, a red seal and paper
   grain) and a record-room clerk;
2. the real app under uvicorn in this process, headless Chromium (Debian's) with Chromium's
   fake camera standing in for the counter's webcam;
3. --rounds times, as the counter does it: search by MRN, tick the stay, capture the patient's
   ID from the camera, choose every page (all page types), consent, register, print to a
   real CUPS queue with the cups-pdf backend, and wait until cups-pdf has written the PDF;
   each step is timed (the person's typing is not: Playwright fills fields at once);
4. two floors beside the figure: building the same stamped PDF in-process (pikepdf, no HTTP,
   no CUPS), and `lp` of that PDF straight to the queue until cups-pdf wrote it (CUPS's own
   time: filters, ghostscript in cups-pdf).

Needs root or a running CUPS with cups-pdf (Debian cups, printer-driver-cups-pdf), chromium.
Run: .venv/bin/python bench/copying_counter.py [--pages 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from bingan_copying.settings import CopyingSettings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "plugins" / "copying" / "tests"))

MRN = "00910001"
ADMISSION = "ZY202611009001"
PASSWORD = "Bench-counter-2026"
TYPES = ["病案首页", "出院记录", "入院记录"] + ["病程记录"] * 8 + ["手术同意书", "麻醉记录", "手术记录"] \
    + ["医嘱单"] * 5 + ["检验报告"] * 6 + ["体温单"] * 2 + ["护理记录"] * 2


def scanned_page(n: int, rng: random.Random) -> bytes:
    """A 300-DPI A4 page that compresses like a scan: lines of text, a seal, paper grain."""
    import numpy as np
    from PIL import Image, ImageDraw

    from bingan.core import fonts

    w, h = 2480, 3508
    im = Image.new("RGB", (w, h), (247, 246, 240))
    d = ImageDraw.Draw(im)
    big, small = fonts.truetype(90), fonts.truetype(44)
    d.text((w // 2, 220), f"{TYPES[n % len(TYPES)]}", font=big, fill=(20, 20, 20), anchor="mm")
    y = 420
    while y < h - 300:
        d.text((200, y), "患者主诉反复胸闷气短三年，加重一周入院。查体：血压 132/84 mmHg"[
            : rng.randint(18, 34)], font=small, fill=(25, 25, 25))
        y += 86
    d.ellipse((1700, 2900, 2200, 3400), outline=(200, 30, 30), width=14)
    arr = np.asarray(im).astype(np.int16)
    arr += np.random.default_rng(n).integers(-9, 9, arr.shape[:2], dtype=np.int16)[..., None]
    buf = io.BytesIO()
    Image.fromarray(arr.clip(0, 255).astype("uint8")).save(buf, "JPEG", quality=85,
                                                           dpi=(300, 300))
    return buf.getvalue()


def setup(home: Path, pages: int):
    import datetime as dt

    from bingan.core import pages as core_pages
    from bingan.core import records
    from bingan.core.config import load_config
    from bingan.core.migrate import upgrade
    from bingan.core.runtime import build_runtime
    from bingan.core.staff import add_department, add_staff, ensure_builtin_roles
    from bingan.hooks.types import AdmissionIn, PatientIn

    cfg = load_config(REPO / "plugins.toml", env={
        "BINGAN_HOME": str(home), "BINGAN_DATABASE_URL": f"sqlite:///{home / 'bench.sqlite3'}"})
    rt = build_runtime(cfg)
    upgrade(rt)
    utc = dt.timezone.utc
    rng = random.Random(7)
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_department(s, "9001", "病案室")
        add_staff(s, "REC9", "窗口", PASSWORD, "9001", ["records"])
        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn=MRN, name="赵复印", sex="F"), admission_no=ADMISSION,
            visit_no=1, admitted_at=dt.datetime(2026, 10, 1, 2, tzinfo=utc),
            discharged_at=dt.datetime(2026, 10, 12, 2, tzinfo=utc), discharge_department="1001",
            admit_department="1001", discharge_way="1"))
        sizes = []
        for i in range(pages):
            data = scanned_page(i, rng)
            sizes.append(len(data))
            core_pages.add_page(s, rt, adm, core_pages.NewPage(
                image=data, original=data, width=2480, height=3508, dpi=300.0,
                page_type=TYPES[i % len(TYPES)], qc_status="pass"))
    return rt, sizes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if not 1 <= args.pages <= 300 or not 1 <= args.rounds <= 20:
        ap.error("--pages 1..300, --rounds 1..20")

    import browserutil
    from cups_queue import ensure_queue, job_pdf
    from playwright.sync_api import sync_playwright

    from bingan.core.web.app import create_app

    queue = ensure_queue(f"bingan-bench-pdf-{os.getpid()}")
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bingan-copybench-") as tmp:
        t0 = time.perf_counter()
        rt, sizes = setup(Path(tmp), args.pages)
        print(f"record: {args.pages} pages, 300 DPI A4, JPEG {sum(sizes) / 2**20:.1f} MB "
              f"(setup {time.perf_counter() - t0:.1f} s); CUPS queue {queue} (cups-pdf)")
        steps: dict[str, list[float]] = {}
        pdfs: list[bytes] = []
        with browserutil.serve_in_thread(create_app(rt, start_scheduler=False)) as base, \
                sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=browserutil.CHROMIUM, headless=True,
                                   args=browserutil.CHROMIUM_ARGS + [
                                       "--use-fake-device-for-media-stream",
                                       "--use-fake-ui-for-media-stream"])
            ctx = b.new_context(base_url=base, locale="zh-CN", permissions=["camera"],
                                viewport={"width": 1280, "height": 900})
            ctx.set_default_timeout(120_000)
            pg = ctx.new_page()
            pg.goto("/login?next=/copying/new")
            browserutil.login(pg, "REC9", PASSWORD)
            pg.wait_for_url("**/copying/new")
            # the camera is opened once per counter session, as an operator leaves it on
            for r in range(args.rounds):
                marks = [("start", time.perf_counter())]
                pg.goto("/copying/new")
                pg.fill("#cp-q", MRN)
                pg.press("#cp-q", "Enter")
                pg.wait_for_selector(f"#adm-{ADMISSION}")
                marks.append(("search", time.perf_counter()))
                pg.check(f"#adm-{ADMISSION}")
                pg.click("#cp-choose")
                pg.wait_for_selector("#cp-form")
                marks.append(("form", time.perf_counter()))
                pg.select_option("#cp-type", "patient")
                pg.fill("#cp-name", "赵复印")
                pg.click(".cp-shoot[data-kind=patient_id]")
                pg.wait_for_function("() => { const v = document.getElementById('cp-video'); "
                                     "return v.videoWidth > 0 && v.currentTime > 0.3; }")
                pg.click("#cp-snap")
                pg.wait_for_selector(".cp-doc.captured[data-kind=patient_id]")
                marks.append(("camera", time.perf_counter()))
                pg.eval_on_selector_all(".cp-all", "els => els.forEach(e => { if (!e.checked) "
                                        "e.click(); })")
                pg.check("#cp-consent")
                pg.click("#cp-submit")
                pg.wait_for_selector("#cp-status")
                marks.append(("register", time.perf_counter()))
                no = pg.url.rsplit("/", 1)[1]
                pg.select_option("#cp-printer", queue)
                pg.click("#cp-print")
                pg.wait_for_selector("#cp-msg")
                marks.append(("print", time.perf_counter()))
                job = pg.inner_text("#cp-msg").split("作业 ")[1].rstrip("）")
                job_pdf(job, timeout=600)
                marks.append(("paper", time.perf_counter()))
                for (_, a), (name, bt) in zip(marks, marks[1:]):
                    steps.setdefault(name, []).append(bt - a)
                steps.setdefault("total", []).append(marks[-1][1] - marks[0][1])
                print(f"round {r + 1}: {no} " + "  ".join(
                    f"{n} {v[-1]:.2f}s" for n, v in steps.items()))
                resp = ctx.request.get(f"/copying/requests/{no}/copy.pdf")
                pdfs.append(resp.body())
            b.close()
        # floors
        from bingan_copying import printing  # noqa: F401
        from bingan_copying.stamp import CopyPage, StampText, build_copy_pdf

        from bingan.core.models import Page
        import datetime as dt
        from sqlalchemy import select

        with rt.sessions() as s:
            stored = [(rt.store.get(p.image_sha256), p.dpi) for p in s.scalars(
                select(Page).order_by(Page.seq))]
        t = time.perf_counter()
        build_copy_pdf([CopyPage(d, dpi) for d, dpi in stored],
                       StampText("示例市第一人民医院", "赵复印", "FY202612080001", dt.date.today()),
                       rt.settings(CopyingSettings).stamp)
        build = time.perf_counter() - t
        t = time.perf_counter()
        out = subprocess.run(["lp", "-d", queue, "-t", "floor", "--", "-"], input=pdfs[-1],
                             capture_output=True, check=True).stdout.decode()
        job_pdf(out.split("request id is ")[1].split()[0], timeout=600)
        lp_floor = time.perf_counter() - t
        rt.close()
    med = {n: statistics.median(v) for n, v in steps.items()}
    print(f"\nsearch to printed copy, {args.pages} pages, median of {args.rounds} "
          f"(load average before: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, "
          f"{os.cpu_count()} cores):")
    print("| step | median s |\n|---|---|")
    labels = {"search": "search by MRN, results shown", "form": "tick the stay, counter form",
              "camera": "webcam capture of the ID", "register": "choose all pages, register",
              "print": "make the stamped PDF, hand it to CUPS", "paper": "CUPS + cups-pdf wrote it",
              "total": "**total**"}
    for k, label in labels.items():
        print(f"| {label} | {med[k]:.2f} |")
    print(f"| floor: stamped PDF built in-process | {build:.2f} |")
    print(f"| floor: `lp` of that PDF until cups-pdf wrote it | {lp_floor:.2f} |")
    print(f"(stamped PDF {len(pdfs[-1]) / 2**20:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
