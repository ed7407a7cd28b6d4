"""Screenshots of the digitization and find-and-read pages (1280x800) for the docs.

Needs a running server with the demo data loaded and its background tasks done (capture,
OCR, PDF), e.g.::

    export BINGAN_HOME=/tmp/shots
    .venv/bin/bingan db upgrade && .venv/bin/bingan demo load
    .venv/bin/bingan serve --port 8765 &
    .venv/bin/bingan tasks status            # wait until nothing is queued
    .venv/bin/python docs/screenshots/take_features.py http://127.0.0.1:8765 ZY2024010247 D0014

ADMISSION is a demo admission with page images; SIGNER a physician who signed it (reads it
without applying). Writes capture_batch.png, qc.png, archive.png, pageindex.png,
search_simple.png, search_combined.png, search_fulltext.png, viewer.png and reading_apply.png
next to this script (or into ``--out``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))
import browserutil  # noqa: E402

DEMO_PASSWORD = "bingan@2026"


def take(base_url: str, out: Path, admission_no: str, signer: str, name: str,
         phrase: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with sync_playwright() as pw, browserutil.launch_chromium(pw) as browser:

        def session(staff_no: str):
            ctx = browser.new_context(viewport=browserutil.VIEWPORT, locale="zh-CN",
                                      base_url=base_url.rstrip("/"))
            page = ctx.new_page()
            page.goto("/")
            browserutil.login(page, staff_no, DEMO_PASSWORD)
            page.locator(".topbar .who").wait_for()
            return ctx, page

        def shot(page, name: str, full: bool = False) -> None:
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(400)  # charts animate in
            path = out / name
            page.screenshot(path=str(path), full_page=full)
            shots.append(path)

        ctx, page = session("R0001")  # record room: capture, QC, archive, search
        page.goto("/capture/batches/1")
        shot(page, "capture_batch.png")
        page.goto("/archive")
        shot(page, "archive.png")
        page.goto(f"/pageindex/records/{admission_no}")
        shot(page, "pageindex.png")
        page.goto(f"/search/simple?name={name}")
        shot(page, "search_simple.png")
        page.goto("/search/combined")
        shot(page, "search_combined.png")
        page.goto(f"/search/fulltext?q={phrase}")
        shot(page, "search_fulltext.png")
        ctx.close()

        ctx, page = session("Q0001")  # quality control: the acceptance sampling
        page.goto("/qc")
        shot(page, "qc.png")
        ctx.close()

        ctx, page = session(signer)  # a physician who signed the record reads it
        page.goto(f"/records/{admission_no}")
        page.locator("img").first.wait_for()
        shot(page, "viewer.png")
        page.goto("/reading/apply")
        shot(page, "reading_apply.png")
        ctx.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="base URL of a running bingan server")
    ap.add_argument("admission", help="a demo admission number with page images")
    ap.add_argument("signer", help="staff number of a physician who signed that admission")
    ap.add_argument("--name", default="zh", help="what to search by name (default: %(default)s)")
    ap.add_argument("--phrase", default="诊断", help="full-text phrase (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: %(default)s)")
    args = ap.parse_args(argv)
    for p in take(args.url, args.out, args.admission, args.signer, args.name, args.phrase):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
