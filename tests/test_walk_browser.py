"""The walk (issue 12): every menu item as every demo role, in Chromium at 1366x768 and on a
390-px phone, on the demo hospital (a few records with page images, processed by the real
background tasks).

Each page fails the walk on a server error, a console error, a horizontal overflow, an htmx
error answer that the page did not show, or a Latin word or internal code in the visible text
outside a short allow-list. Beyond the menus the walk opens what each role meets next: a
record in the viewer (a signing physician), a refusal (a physician who did not sign), the
apply form, searches by pinyin and full text, a QC batch.

Screenshots of every page go to ``BINGAN_WALK_SHOTS`` when that is set (the closing note of
issue 12 lists the ones looked at). Runs on SQLite and PostgreSQL (fixture ``rt``); without
/usr/bin/chromium it is skipped locally and fails under CI.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pyotp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import browserutil  # noqa: E402

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
HTMX = REPO / "core" / "web" / "vendor" / "htmx.min.js"  # what /static/vendor serves
DEMO_PASSWORD = "bingan@2026"
ADMIN_PASSWORD = "Admin@bingan26"
ADMIN_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

# (staff number, what the walk calls the role)
ROLES = [
    ("A0001", "系统管理员"), ("R0001", "病案室主任"), ("R0002", "编码员"), ("Q0001", "质控医师"),
    ("D0001", "医师"), ("N0001", "护士"), ("S0001", "审计员"),
]

DUTY_STAFF = {"A0001", "S0001"}  # system administrator and auditor

# Latin words a Chinese hospital reads as words of its own: formats, standards, units and the
# like. Anything else in letters on a page (an action code, a setting key, an English
# message) fails the walk. Numbers with letters (ZY2024..., D0001, K35.8) are identifiers.
ALLOWED = {
    "PDF", "Excel", "CSV", "BagIt", "TOTP", "OCR", "ICD", "CM", "DPI", "ID", "HIS", "EMR",
    "QR", "JPEG", "JPG", "PNG", "TIFF", "IP", "CDA", "FHIR", "HL", "API", "URL", "xlsx",
    "csv", "pdf", "zip", "SANE", "USB", "Whoosh", "tantivy", "WHO", "ADT", "MLLP", "CUPS",
    "A4", "A5", "B5", "K", "x", "X", "GB", "T", "WS", "kB", "KB", "MB", "GB", "ms", "s",
    "zhangsan", "zs", "Google", "Authenticator", "Microsoft", "App", "SSO", "DRG", "DIP",
    "IHE", "MHD", "XDS", "Chrome", "Edge", "Safari", "Wi", "Fi", "OK", "PACS", "LIS", "ECG", "CT", "MRI", "HbA",
    "mmHg", "kg", "cm", "mg", "ml", "mL", "mmol", "L", "min", "bpm", "NIHSS", "NYHA", "BMI",
    # column names of the 卫统4-1 front-page file, which the import page quotes as the file has them
    "BAH", "ZYCS", "XM", "XB", "RYSJ", "CYSJ", "JBDM", "ZYZD",
}
LATIN = re.compile(r"(?<![A-Za-z0-9_.:/-])[A-Za-z][A-Za-z_.:]*[A-Za-z](?![A-Za-z0-9_.:/-])")

# The text a person sees: visible text nodes, outside elements marked translate="no" (machine
# names, IP addresses, plugin and hook names on the administrator's plugin page: data, not UI).
VISIBLE_TEXT = """() => { const out = [];
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n; while ((n = w.nextNode())) { const p = n.parentElement;
    if (!p || p.closest('[translate=no], script, style, template, noscript')) continue;
    if (!p.getClientRects().length) continue;
    out.push(n.textContent); }
  return out.join(' '); }"""

WATCH = """
window.__walk = {htmxErrors: 0, shown: 0};
document.addEventListener('htmx:responseError', () => { window.__walk.htmxErrors += 1; });
document.addEventListener('htmx:afterRequest', () => {
  window.__walk.shown = document.querySelectorAll('.htmx-error').length; });
"""


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (required under CI)")
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser():
    if not browserutil.chromium_available():
        _missing(f"{browserutil.CHROMIUM} not found; `make browser` installs Debian's chromium")
    if not HTMX.exists():
        _missing("core/web/vendor/htmx.min.js is missing; run `npm ci` (make setup does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, browserutil.launch_chromium(pw) as b:
        yield b


@pytest.fixture
def rt(demo_hospital):
    """The runtime of a copy of the run's shared demo hospital (bingan.testing.demo: `bingan
    demo load` with every plugin, capture's page images for one record, the background tasks
    run), on each backend."""
    return demo_hospital.rt


@pytest.fixture
def demo(rt, browser):
    """The demo hospital served on a free port, the administrator's authenticator bound."""
    from sqlalchemy import select

    from bingan.core.models import Staff
    from bingan.core.web.app import create_app

    with rt.sessions() as s, s.begin():
        s.scalar(select(Staff).where(Staff.staff_no == "A0001")).totp_secret = ADMIN_SECRET
    with browserutil.serve_in_thread(create_app(rt)) as base_url:
        yield base_url


class Walker:
    """One signed-in browser context at one width; ``visit`` checks a page."""

    def __init__(self, browser, base_url: str, staff_no: str, viewport: dict, shots: Path | None):
        self.staff_no, self.viewport, self.shots = staff_no, viewport, shots
        self.ctx = browser.new_context(viewport=viewport, locale="zh-CN", base_url=base_url)
        self.ctx.set_default_timeout(15_000)
        self.ctx.add_init_script(WATCH)
        self.page = self.ctx.new_page()
        self.problems: list[str] = []
        self.links: list[str] = []  # plain page links met on the way (checked for 403)
        self.where = ""
        pg = self.page
        pg.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load")
              and self.problems.append(f"{self.where}: console: {m.text}"))
        pg.on("pageerror", lambda e: self.problems.append(f"{self.where}: pageerror: {e}"))
        pg.on("response", lambda r: r.status >= 500
              and self.problems.append(f"{self.where}: {r.status} {r.url}"))
        pg.on("dialog", lambda d: d.accept())

    def sign_in(self) -> None:
        pg = self.page
        pg.goto("/login")
        password = ADMIN_PASSWORD if self.staff_no == "A0001" else DEMO_PASSWORD
        browserutil.login(pg, self.staff_no, password)
        if "/login/totp" in pg.url:
            pg.fill("input[name=code]", pyotp.TOTP(ADMIN_SECRET).now())
            pg.locator("form button[type=submit]").first.click()
            pg.wait_for_load_state("domcontentloaded")
        pg.locator(".topbar").wait_for()
        assert "/login" not in pg.url, f"{self.staff_no} could not sign in: {pg.url}"

    def menu(self) -> list[tuple[str, str]]:
        return self.page.eval_on_selector_all(
            "nav.sidebar a", "els => els.map(a => [a.textContent.trim(), a.getAttribute('href')])")

    def check(self, label: str) -> None:
        pg = self.page
        pg.wait_for_load_state("load")
        # htmx fragments a page loads by itself (hx-trigger="load", polling) settle first
        pg.wait_for_function("() => !document.querySelector('.htmx-request')", timeout=10_000)
        w = self.viewport["width"]
        wide = pg.evaluate("document.documentElement.scrollWidth")
        if wide > w + 1:
            culprit = pg.evaluate("""(w) => { const out = [];
              for (const el of document.querySelectorAll('body *')) {
                const r = el.getBoundingClientRect();
                if (r.right > w + 1 && getComputedStyle(el).position !== 'fixed') {
                  let p = el.parentElement, clipped = false;
                  while (p) { const o = getComputedStyle(p).overflowX;
                    if (o === 'auto' || o === 'scroll' || o === 'hidden') { clipped = true; break; }
                    p = p.parentElement; }
                  if (!clipped) out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                    + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : ''));
                }
                if (out.length > 3) break; }
              return out.join(', '); }""", w)
            self.problems.append(f"{label}: {wide}px wide at {w}px ({culprit})")
        for link in pg.eval_on_selector_all(
                "main a[href^='/']:not([download]):not([target])",
                "els => els.map(a => a.getAttribute('href'))"):
            path = link.split("#")[0]
            if path and path not in self.links and not re.search(
                    r"\.(xlsx|csv|pdf|zip|jpg|png)(\?|$)|/download|/export", path):
                self.links.append(path)
        walk = pg.evaluate("window.__walk || {htmxErrors: 0, shown: 0}")
        if walk["htmxErrors"] and not walk["shown"]:
            self.problems.append(f"{label}: an htmx error answer was not shown")
        text = pg.evaluate(VISIBLE_TEXT)
        latin = sorted({m for m in LATIN.findall(text) if m not in ALLOWED})
        if latin:
            self.problems.append(f"{label}: Latin words or codes on the page: {latin[:8]}")
        if self.shots is not None:
            name = f"{self.staff_no}_{w}_{re.sub(r'[^A-Za-z0-9]+', '_', label).strip('_')}.png"
            pg.screenshot(path=str(self.shots / name), full_page=False)

    def visit(self, href: str, label: str | None = None) -> None:
        self.where = label or href
        resp = self.page.goto(href)
        if resp is not None and resp.status >= 500:
            self.problems.append(f"{href}: {resp.status}")
        self.check(self.where)

    def close(self) -> None:
        self.ctx.close()


def _walk_role(browser, base_url: str, staff_no: str, viewport: dict, shots: Path | None,
               extra: list[str]) -> list[str]:
    w = Walker(browser, base_url, staff_no, viewport, shots)
    try:
        w.sign_in()
        w.check("/")
        if viewport is PHONE:
            # the menu folds away behind 菜单 and opens with it
            assert not w.page.locator("nav.sidebar").is_visible()
            w.page.click("#menu-toggle")
            assert w.page.locator("nav.sidebar").is_visible()
        items = w.menu()
        assert items, f"{staff_no} has no menu"
        if staff_no in DUTY_STAFF:  # 三员分立: no applications to read records of their own
            own = [h for _, h in items if h in ("/reading/apply", "/reading/applications",
                                                 "/reading/grants")]
            assert not own, f"{staff_no} is offered {own}"
        actives = w.page.locator("nav.sidebar a.active").count()
        assert actives <= 1, f"{staff_no}: {actives} menu items highlighted on /"
        for label, href in items:
            w.visit(href, f"{label} {href}")
            assert w.page.locator("nav.sidebar a.active").count() <= 1, href
        # links the role meets on its pages must not answer 403 (a dead end): the batch
        # links a clerk sees, for one
        seen = {h for _, h in items} | set(extra)
        for href in w.links[:60]:
            if href not in seen:
                seen.add(href)
                status = w.page.request.get(href).status
                if status == 403:
                    w.problems.append(f"link to {href} answers 403")
        for href in extra:
            w.visit(href)
            if href.startswith("/records/") and w.page.locator("#rd-reader").count():
                # the viewer: the page image starts on the first screen (summary folded)
                top = w.page.evaluate("document.querySelector('#rd-viewer')"
                                      ".getBoundingClientRect().top")
                if top > viewport["height"]:
                    w.problems.append(f"{href}: the page image starts below the fold ({top}px)")
                if "hl=" in href:  # the phrase is marked where OCR read it
                    w.page.wait_for_function("() => (document.getElementById('rd-hits') || {})"
                                             ".textContent && !document.getElementById('rd-hits')"
                                             ".textContent.startsWith('正在')")
                    hits = w.page.locator("#rd-hits").inner_text()
                    if not w.page.locator(".rd-mark").count():
                        w.problems.append(f"{href}: no marks on the page ({hits})")
                    if viewport is DESKTOP and w.shots is not None:
                        w.page.screenshot(path=str(w.shots / f"{staff_no}_marks.png"))
        return w.problems
    finally:
        w.close()


def _extras(rt) -> dict[str, list[str]]:
    """What each role meets beyond the menu, from the demo data."""
    from sqlalchemy import select

    from bingan.core.models import Admission, Page, Signer

    with rt.sessions() as s:
        with_pages = s.scalars(select(Admission).join(Page, Page.admission_id == Admission.id)
                               .order_by(Admission.id).limit(1)).first()
        signer = s.scalar(select(Signer.staff_no).where(Signer.admission_id == with_pages.id)
                          .order_by(Signer.id).limit(1))
        adm_no, name = with_pages.admission_no, with_pages.patient.name
        death = s.scalar(select(Admission.admission_no).where(Admission.discharge_way == "5")
                         .order_by(Admission.id).limit(1))
        from bingan_pageindex.models import PageText

        first_page = s.scalar(select(Page.id).join(PageText, PageText.page_id == Page.id).where(
            Page.admission_id == with_pages.id, Page.replaced_by_id.is_(None),
            PageText.text.contains("出院")).order_by(Page.seq).limit(1))
        from bingan_capture.models import CaptureBatch

        batch = s.scalar(select(CaptureBatch.id).order_by(CaptureBatch.id).limit(1))
        paper_only = s.scalar(select(Admission.admission_no).where(
            ~Admission.id.in_(select(Page.admission_id))).order_by(Admission.id).limit(1))
    reports = ["/reports/view/capture.production?group=week",
               "/reports/view/recovery.rate?group=department",
               "/reports/view/copying.copies?group=month",
               "/reports/view/deathcase.progress?start=2024-01-01&group=month"]
    return {
        "signer": signer, "admission_no": adm_no,
        # the viewer opened from a full-text hit: the phrase marked on the page
        "signer_extra": [f"/records/{adm_no}?hl=出院&page={first_page}"],
        "R0001": ["/search/simple?name=" + name, f"/search/simple?admission_no={adm_no.lower()}",
                  "/search/fulltext?q=出院", f"/archive/find?admission_no={adm_no}",
                  f"/capture/batches/{batch}", "/pageindex?status=all",
                  f"/search/simple?admission_no={paper_only}",
                  *reports, *([f"/deathcase/cases/{death}"] if death else []),
                  # the patients' WeChat H5 site (booking; sandbox sign-in on the way)
                  "/h5", "/h5/phone", "/h5/book", "/h5/faq", "/h5/help", "/h5/mine"],
        "Q0001": ["/qc/spot?admission=" + adm_no, "/reports/view/qc.pass_rate"],
        "D0001": [f"/records/{adm_no}", f"/reading/apply?admission_no={adm_no}",
                  f"/reading/paper?admission_no={paper_only}",
                  "/reports/view/reading.mine?group=week"],
        "S0001": ["/reports/view/core.audit?group=staff", "/reports/view/core.audit?group=day"],
    }


def test_walk_every_page_as_every_role(rt, demo, browser):
    shots = os.environ.get("BINGAN_WALK_SHOTS")
    shots_dir = Path(shots) if shots else None
    if shots_dir:
        shots_dir.mkdir(parents=True, exist_ok=True)
    extras = _extras(rt)
    problems: list[str] = []
    roles = list(ROLES)
    if extras["signer"] and extras["signer"] not in dict(roles):
        roles.append((extras["signer"], "签名医师"))
    for staff_no, _role in roles:
        # the layout does not depend on the database: phones are walked on SQLite only
        for viewport in ((DESKTOP, PHONE) if rt.engine.dialect.name == "sqlite" else (DESKTOP,)):
            extra = list(extras.get(staff_no, []))
            if staff_no == extras["signer"]:
                extra.append(f"/records/{extras['admission_no']}")
                extra += extras["signer_extra"]
            problems += [f"[{staff_no} {viewport['width']}] {p}" for p in
                         _walk_role(browser, demo, staff_no, viewport, shots_dir, extra)]
    assert not problems, "\n".join(problems)
