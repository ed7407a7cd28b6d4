"""Screenshots of the login page, the home page and the audit log (1280x800) for the docs.

Needs a running server with an auditor account, e.g.::

    export BINGAN_HOME=/tmp/shots
    .venv/bin/bingan db upgrade
    .venv/bin/bingan user add S0001 审计员甲 --role auditor --password audit@2026x
    .venv/bin/bingan serve --port 8765 &
    .venv/bin/python docs/screenshots/take.py http://127.0.0.1:8765

and Debian's Chromium at /usr/bin/chromium (``make browser``). Writes login.png, home.png and
audit.png next to this script (or into ``--out``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))
import browserutil  # noqa: E402


def take(base_url: str, out: Path, staff_no: str, password: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with sync_playwright() as pw, browserutil.launch_chromium(pw) as browser:
        ctx = browser.new_context(viewport=browserutil.VIEWPORT, locale="zh-CN",
                                  base_url=base_url.rstrip("/"))
        page = ctx.new_page()

        def shot(name: str) -> None:
            page.wait_for_load_state("networkidle")
            path = out / name
            page.screenshot(path=str(path))  # the viewport: exactly 1280x800
            shots.append(path)

        page.goto("/")  # not signed in: redirected to /login
        page.locator("input[name=staff_no]").wait_for()
        shot("login.png")

        browserutil.login(page, staff_no, password)
        page.locator(".topbar .who").wait_for()
        shot("home.png")

        page.locator("nav.sidebar").get_by_role("link", name="审计日志", exact=True).click()
        page.locator("#audit-table table").wait_for()
        shot("audit.png")
        ctx.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="base URL of a running bingan server, e.g. http://127.0.0.1:8765")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: %(default)s)")
    ap.add_argument("--staff-no", default="S0001")
    ap.add_argument("--password", default="audit@2026x")
    args = ap.parse_args(argv)
    if not browserutil.chromium_available():
        print(f"{browserutil.CHROMIUM} not found: run `make browser`", file=sys.stderr)
        return 2
    for path in take(args.url, args.out, args.staff_no, args.password):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
