"""The booking site's security run (B3): builds a throwaway hospital, serves it on loopback,
and attacks it; writes report.md and report.json into --out. Exit status 0 only when every
check ran and found nothing (a tool that is missing is an open item, not a pass).

    .venv/bin/python plugins/booking/security/run.py --out /tmp/booking-security

Checks: the payment callback (replays, forgeries, stale timestamps and a duplicate storm
must pay exactly once); the upload abuse corpus (every file refused with 400, nothing
stored); schemathesis over the OpenAPI operations of /h5 (no server error); wapiti (all its
attack modules) and sqlmap (forms and query parameters, signed-in as a patient) against the
H5 site. wapiti and sqlmap are found on PATH or given with --wapiti / --sqlmap (they pin
libraries of their own: install them in a separate environment, see the README).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[3]
PHONE = "13800138000"
NAME, IDN, MRN = "李秀英", "110101198003070028", "00900001"


def _jpeg(size=(800, 600), text="ID") -> bytes:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", size, (210, 220, 230))
    ImageDraw.Draw(im).text((40, 40), text, fill=(0, 0, 0))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def build_site(out: Path):
    """A fresh SQLite hospital with the booking plugin: one patient with digitized stays."""
    from bingan.core import pages, records
    from bingan.core.config import load_config
    from bingan.core.migrate import upgrade
    from bingan.core.runtime import build_runtime
    from bingan.core.staff import add_department, add_staff, ensure_builtin_roles
    from bingan.hooks.types import AdmissionIn, PatientIn

    home = out / "home"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    env = {"BINGAN_HOME": str(home), "BINGAN_DATABASE_URL": f"sqlite:///{home}/bingan.db",
           "BINGAN_KEY_DIR": str(out / "keys")}
    from bingan.core.plugins import installed_plugins

    # the hospital's plugins.toml, with what this environment has installed (as the tests)
    rt = build_runtime(load_config(REPO / "plugins.toml", env=env)
                       .with_enabled(sorted(installed_plugins())))
    upgrade(rt)
    # the scanners test the handlers, not the rate limits (those have tests of their own):
    # with the limits on, most of their requests would be answered 429
    from bingan_booking.settings import BookingSettings

    conf = rt.settings(BookingSettings)
    conf.lookups_per_hour = conf.posts_per_minute = 1_000_000
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_department(s, "9001", "病案室")
        add_staff(s, "REC1", "周病案", "Correct-horse-9", "9001", ["records"])
    for visit, n in ((1, 3), (2, 2)):
        disc = dt.datetime(2026, 3 + visit * 3, 10, 2, tzinfo=dt.timezone.utc)
        with rt.sessions() as s, s.begin():
            adm, _ = records.upsert_admission(s, rt, AdmissionIn(
                patient=PatientIn(mrn=MRN, name=NAME, sex="F", birth_date=dt.date(1980, 3, 7),
                                  id_number=IDN, phone="13912345678"),
                admission_no=f"ZY20260{visit}000201", visit_no=visit,
                admitted_at=disc - dt.timedelta(days=5), discharged_at=disc,
                admit_department="1001", discharge_department="1001", discharge_way="1"))
            for i in range(n):
                data = _jpeg((600, 840), f"{visit}-{i}")
                pages.add_page(s, rt, adm, pages.NewPage(
                    image=data, original=data, width=600, height=840, dpi=72.0,
                    page_type="出院记录", qc_status="pass"))
    return rt


def form_token(s: requests.Session, base: str) -> str:
    return re.search(r'name="_csrf_token" value="(\w+)"', s.get(base + "/h5/phone",
                                                                timeout=10).text)[1]


def patient_session(base: str, rt, phone: str = PHONE) -> tuple[requests.Session, str]:
    """Sign in through the sandbox's WeChat authorization (a new WeChat user), verify the
    phone, book once. Each tool gets its own, so none runs on a session another ended."""
    from bingan_booking.sms import sandbox_outbox

    s = requests.Session()
    s.verify = False
    s.trust_env = False  # a CA bundle from the environment would override verify=False
    r = s.get(base + "/h5", timeout=10)
    r.raise_for_status()
    tok = form_token(s, base)
    s.post(base + "/h5/phone/code", data={"_csrf_token": tok, "phone": phone}, timeout=30)
    code = re.search(r"验证码为 (\d{6})", sandbox_outbox(rt, {phone}, 1)[0]["text"])[1]
    s.post(base + "/h5/phone", data={"_csrf_token": tok, "phone": phone, "code": code},
           timeout=10)
    r = s.post(base + "/h5/book", data={
        "_csrf_token": tok, "h": "main", "name": NAME, "id_number": IDN, "purpose": "insurance",
        "copies": "1", "applicant_kind": "self", "applicant_name": NAME, "delivery": "pickup",
        "consent": "1", "adm": "ZY202601000201"},
        files={"holding_id": ("me.jpg", _jpeg(), "image/jpeg")}, timeout=20,
        allow_redirects=False)
    pid = r.headers.get("location", "").split("/")[3]
    return s, pid


def check_callbacks(base: str, rt, s: requests.Session, pid: str) -> dict:
    """Replays, forgeries, stale timestamps, a duplicate storm: exactly one payment."""
    from sqlalchemy import func, select

    from bingan.core.models import AuditEvent
    from bingan_booking import sandbox_pay
    from bingan_booking.models import Booking

    page = s.get(f"{base}/h5/b/{pid}/pay", timeout=20).text
    prepay = re.search(r"prepay_id=([^&\"]+)", page)[1]
    k = sandbox_pay.keys(rt.home)
    headers, body = sandbox_pay.platform(rt).pay(prepay, deliver=False)
    res = json.loads(body)
    findings = []

    def post(h, b):
        return requests.post(base + "/h5/pay/notify", data=b.encode(), timeout=90, verify=False,
                             headers={**h, "Content-Type": "application/json"}).status_code

    with rt.sessions() as db:
        o = db.scalar(select(sandbox_pay.SandboxOrder).where(
            sandbox_pay.SandboxOrder.prepay_id == prepay))
        resource = sandbox_pay.transaction(o)
    now = int(time.time())
    for label, (h, b), want in [
        ("day-old", sandbox_pay.notification(k, resource, timestamp=now - 86400), 401),
        ("future", sandbox_pay.notification(k, resource, timestamp=now + 900), 401),
        ("forged", sandbox_pay.notification(sandbox_pay.Keys(**{
            **k.__dict__, "platform_private": sandbox_pay._pem_pair()[0]}), resource), 401),
        ("tampered", (headers, body.replace('"支付成功"', '"x"')), 401),
        ("amount", sandbox_pay.notification(k, {**resource, "amount": {"total": 1}}), 400),
    ]:
        got = post(h, b)
        if got != want:
            findings.append(f"{label} notification answered {got}, expected {want}")
    storm = [(headers, body)] * 20 + [sandbox_pay.notification(k, resource)] * 10
    with cf.ThreadPoolExecutor(6) as ex:
        codes = list(ex.map(lambda hb: post(*hb), storm))
    if any(c >= 500 for c in codes):
        findings.append(f"server errors in the storm: {codes}")
    with rt.sessions() as db:
        paid = db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "booking.paid"))
        state = db.scalar(select(Booking.pay_status).where(Booking.public_id == pid))
    if paid != 1 or state != "paid":
        findings.append(f"{paid} payments recorded (state {state}); expected exactly one")
    del res
    # the refund of a rejection: PROCESSING at the platform, then its result notification
    # under the same attacks, with the refund query (the job's) racing the storm
    import types

    from bingan.core import audit
    from bingan_booking import pay, service

    platform = sandbox_pay.platform(rt)
    platform.refund_settle_seconds = 3600
    with rt.sessions() as db:
        bk = db.scalar(select(Booking).where(Booking.public_id == pid))
        no = bk.booking_no
    service.reject_and_refund(rt, no, types.SimpleNamespace(staff_no="REC1", name="周病案"),
                              audit.Actor(staff_no="REC1"), "安全测试：退款")
    with rt.sessions() as db:
        bk = db.scalar(select(Booking).where(Booking.public_id == pid))
        refund_no = bk.refund_no
        o = db.scalar(select(sandbox_pay.SandboxOrder).where(
            sandbox_pay.SandboxOrder.out_trade_no == bk.out_trade_no))
        plain = sandbox_pay.refund_view(o, {**o.refunds[0], "status": "SUCCESS"},
                                        notification=True)
    rh, rb = platform.settle_refund(refund_no, "SUCCESS", deliver=False)
    now = int(time.time())
    for label, (h, b), want in [
        ("refund day-old", sandbox_pay.notification(k, plain, "REFUND.SUCCESS",
                                                    timestamp=now - 86400), 401),
        ("refund forged", sandbox_pay.notification(sandbox_pay.Keys(**{
            **k.__dict__, "platform_private": sandbox_pay._pem_pair()[0]}), plain,
            "REFUND.SUCCESS"), 401),
        ("refund tampered", (rh, rb.replace('"退款成功"', '"x"')), 401),
        ("refund amount", sandbox_pay.notification(
            k, {**plain, "amount": {**plain["amount"], "refund": 1}}, "REFUND.SUCCESS"), 400),
    ]:
        got = post(h, b)
        if got != want:
            findings.append(f"{label} notification answered {got}, expected {want}")
    rstorm = [(rh, rb)] * 15 + [sandbox_pay.notification(k, plain, "REFUND.SUCCESS")] * 5
    with cf.ThreadPoolExecutor(6) as ex:
        racing = ex.submit(pay.sync_refunds, rt)
        rcodes = list(ex.map(lambda hb: post(*hb), rstorm))
        racing.result()
    if any(c >= 500 for c in rcodes):
        findings.append(f"server errors in the refund storm: {rcodes}")
    with rt.sessions() as db:
        results = db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "booking.refund_result"))
        state = db.scalar(select(Booking.pay_status).where(Booking.public_id == pid))
    if results != 1 or state != "refunded":
        findings.append(f"{results} refund results applied (state {state}); expected one")
    return {"check": "payment and refund callbacks", "ran": True, "findings": findings,
            "detail": f"5 hostile payment notifications and a storm of {len(storm)} "
                      f"({sorted(set(codes))}); 4 hostile refund notifications and a storm of "
                      f"{len(rstorm)} with the refund query racing ({sorted(set(rcodes))}); "
                      f"paid once, refunded once"}


def check_uploads(base: str, rt, s: requests.Session) -> dict:
    from sqlalchemy import func, select

    from bingan_booking.models import Booking

    tok = form_token(s, base)
    corpus = {
        "empty": b"", "html": b"<html><script>alert(1)</script>",
        "svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        "pdf": b"%PDF-1.4\n%%EOF", "truncated": _jpeg()[:300],
        "huge": b"\xff\xd8\xff" + b"0" * (9 * 1024 * 1024),
        "tiny": _jpeg((100, 80)), "php": b"<?php system($_GET['c']); ?>",
        "exe": b"MZ\x90\x00" + b"\x00" * 200,
    }
    with rt.sessions() as db:
        before = db.scalar(select(func.count()).select_from(Booking))
    findings = []
    for name, data in corpus.items():
        r = s.post(base + "/h5/book", timeout=30, allow_redirects=False, data={
            "_csrf_token": tok, "h": "main", "name": NAME, "id_number": IDN,
            "purpose": "insurance", "copies": "1", "applicant_kind": "self",
            "applicant_name": NAME, "delivery": "pickup", "consent": "1",
            "adm": "ZY202601000201"}, files={"holding_id": (f"{name}.jpg", data, "image/jpeg")})
        if r.status_code not in (400, 413):
            findings.append(f"{name}: answered {r.status_code}")
    with rt.sessions() as db:
        after = db.scalar(select(func.count()).select_from(Booking))
    if after != before:
        findings.append(f"{after - before} bookings written from refused uploads")
    return {"check": "upload abuse corpus", "ran": True, "findings": findings,
            "detail": f"{len(corpus)} files"}


class Budget:
    """The run's whole time budget: each tool gets at most its own cap and never more than
    what is left (a tool stopped by the budget is an open item in the report, never a pass)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, cap: float) -> int:
        return max(0, int(min(cap, self.end - time.monotonic())))


def run_tool(name: str, cmd: list[str], out: Path, timeout: int,
             env: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Run a tool niced with its log in --out; (exit status or None when it is missing, or -1
    when stopped at ``timeout``; its output)."""
    log = out / f"{name}.log"
    if timeout <= 0:
        log.write_text("[not started: the run's time budget was spent]")
        return -1, ""
    if shutil.which(cmd[0]) is None and not os.path.exists(cmd[0]):
        return None, ""
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    t0 = time.monotonic()
    try:
        # in --out: schemathesis and wapiti leave caches in their working directory
        p = subprocess.run([*nice, *cmd], capture_output=True, text=True, timeout=timeout,
                           cwd=out, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as exc:
        text = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else \
            (exc.stdout or "")
        log.write_text(text + f"\n[stopped after {timeout} s]")
        return -1, text
    log.write_text(p.stdout + "\n" + p.stderr + f"\n[exit {p.returncode} after "
                   f"{time.monotonic() - t0:.0f} s]")
    return p.returncode, p.stdout + "\n" + p.stderr


def _stopped(name: str, code: int | None, timeout: int) -> list[str]:
    if code == -1:
        return [f"{name} did not finish within its {timeout} s (see {name}.log): not a pass"]
    return []


def check_schemathesis(base: str, s: requests.Session, out: Path, exe: str,
                       budget: Budget) -> dict:
    """schemathesis over the OpenAPI operations of /h5; the figures come from its JUnit
    report (test cases, failures, errors)."""
    import xml.etree.ElementTree as ET

    name = "schemathesis (API fuzzing, not_a_server_error)"
    cookie = "; ".join(f"{k}={v}" for k, v in s.cookies.items())
    junit = out / "schemathesis.xml"
    junit.unlink(missing_ok=True)
    timeout = budget.left(180)
    code, text = run_tool("schemathesis", [
        exe, "run", base + "/schema/openapi.json", "--include-path-regex", "^/h5",
        "-c", "not_a_server_error", "--phases", "examples,coverage,fuzzing", "-n", "8",
        "--exclude-path-regex", "/signout$",
        "-H", f"Cookie: {cookie}",
        "--tls-verify", "false", "--request-timeout", "30", "--report", "junit",
        "--report-junit-path", str(junit)], out, timeout,
        env={"SCHEMATHESIS_HOOKS": str(Path(__file__).with_name("schemathesis_hooks.py")),
             "BOOKING_CSRF_TOKEN": form_token(s, base)})
    if code is None:
        return {"check": name, "ran": False, "findings": ["schemathesis not installed"],
                "detail": ""}
    findings = _stopped("schemathesis", code, timeout)
    detail = ""
    if junit.exists() and junit.stat().st_size:
        root = ET.parse(junit).getroot()
        cases = root.findall(".//testcase")
        bad = [c.get("name", "?") for c in cases
               if c.find("failure") is not None or c.find("error") is not None]
        m = re.search(r"(\d+) generated, (\d+) passed", text)
        warn = re.findall(r"⚠️ ([^\n]+)", text)
        detail = (f"{len(cases)} operations, {len(cases) - len(bad)} passed"
                  + (f"; {m[1]} test cases, {m[2]} passed" if m else "")
                  + (f"; schemathesis notes: {'; '.join(dict.fromkeys(warn))}" if warn else ""))
        findings += [f"server error or failure: {b} (see schemathesis.log)" for b in bad]
        if not cases:
            findings.append("schemathesis tested no operation")
    elif code != -1:
        findings.append(f"schemathesis wrote no report (exit {code}, see schemathesis.log)")
    if code not in (0, -1) and not findings:
        findings.append(f"schemathesis exit {code}: see schemathesis.log")
    return {"check": name, "ran": True, "findings": findings, "detail": detail}


# wapiti's attack modules that apply to this site offline: injections (commands, files, XSS
# stored and reflected, LDAP, CRLF, open redirects), upload, CSRF, security headers, cookie
# flags, CSP, HTTP methods, backups, htaccess, shellshock, spring4shell. Left out: SQL and
# time-based SQL (sqlmap's part of the run, more thorough), XXE and SSRF (they need wapiti's
# endpoint on the internet), brute forcers (buster, brute_login_form, nikto's database
# download, wapp's, htp's), CMS fingerprints (cms, wp_enum), takeover, log4shell and
# network_device (internet or DNS of their own), ssl and https_redirect (TLS is the
# hospital's reverse proxy's; the run's own certificate is self-signed).
WAPITI_MODULES = ("exec,file,xss,permanentxss,ldap,crlf,redirect,upload,csrf,http_headers,"
                  "cookieflags,csp,methods,backup,htaccess,shellshock,spring4shell")


def check_wapiti(base: str, s: requests.Session, out: Path, exe: str | None,
                 budget: Budget) -> dict:
    name = "wapiti (web vulnerability scan)"
    exe = exe or shutil.which("wapiti")
    if not exe:
        return {"check": name, "ran": False,
                "findings": ["wapiti not installed (pip install wapiti3, separate venv)"],
                "detail": ""}
    cookies = out / "wapiti-cookies.json"
    host = base.split("//")[1].split(":")[0]
    cookies.write_text(json.dumps({host: {"/": {
        k: {"value": v, "version": 0, "expires": None, "secure": True, "port": None}
        for k, v in s.cookies.items()}}}))
    report = out / "wapiti.json"
    report.unlink(missing_ok=True)
    timeout = budget.left(540)
    # scan and attack times bounded inside wapiti, the process by the budget
    mods = _wapiti_modules(exe)
    # most modules end in seconds; the injection ones (exec, file, xss, ldap ...) need the
    # time: each may take a quarter of what is left after the crawl (at most 90 s), the
    # process as a whole stays within the budget
    scan = 45
    attack = max(10, min(90, (timeout - scan - 15) // 4))
    code, log = run_tool("wapiti", [
        exe, "-u", base + "/h5/", "--scope", "folder", "-m", mods,
        "-x", base + "/h5/signout", "--flush-session", "-c", str(cookies), "-f", "json", "-o", str(report),
        "-d", "4", "--max-links-per-page", "40", "--max-files-per-dir", "40",
        "--max-scan-time", str(scan), "--max-attack-time", str(attack), "--timeout", "10",
        "--tasks", "4", "-v", "1"], out, timeout)
    # a module wapiti stopped at its attack time did not finish: an open item
    cut = sorted(set(re.findall(r"[Mm]ax(?:imum)? attack time (?:was )?reached for module "
                                r"(\w+)", log)))
    if code is None or not report.exists():
        return {"check": name, "ran": False,
                "findings": _stopped("wapiti", code, timeout)
                or [f"wapiti did not produce a report (exit {code})"], "detail": ""}
    data = json.loads(report.read_text())
    findings = [f"{cat}: {v.get('info', '')} ({v.get('path', '')})"
                for cat, items in (data.get("vulnerabilities") or {}).items() for v in items]
    anomalies = [f"anomaly {cat}: {v.get('info', '')} ({v.get('path', '')})"
                 for cat, items in (data.get("anomalies") or {}).items() for v in items]
    crawled = data.get("infos", {}).get("crawled_pages_nbr") or 0
    extra = sum(len(v) for v in (data.get("additionals") or {}).values())
    return {"check": f"{name}: {mods.count(',') + 1} modules", "ran": True,
            "findings": _stopped("wapiti", code, timeout) + findings + anomalies
            + [f"wapiti module {m} stopped at its {attack} s attack time" for m in cut],
            "detail": f"{crawled} URLs and forms crawled and attacked, {extra} informational "
                      f"notes (wapiti.json), "
                      f"{sum(len(v) for v in (data.get('vulnerabilities') or {}).values())} "
                      f"vulnerabilities, "
                      f"{sum(len(v) for v in (data.get('anomalies') or {}).values())} anomalies"}


def _wapiti_modules(exe: str) -> str:
    """WAPITI_MODULES that this wapiti has (a module it lacks would stop the scan)."""
    try:
        text = subprocess.run([exe, "--list-modules"], capture_output=True, text=True,
                              timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return WAPITI_MODULES
    have = set(re.findall(r"^\s*\[?[+*]?\]?\s*(\w+)", text, re.M))
    mods = [m for m in WAPITI_MODULES.split(",") if m in have]
    return ",".join(mods) or WAPITI_MODULES


SQLMAP_DONE = re.compile(r"all tested parameters do not appear to be injectable|"
                         r"do not appear to be injectable")
SQLMAP_HIT = re.compile(r"is vulnerable|might be injectable|appears to be .* injectable|"
                        r"sqlmap identified the following injection")


def check_sqlmap(base: str, s: requests.Session, out: Path, exe: str | None, pid: str,
                 budget: Budget) -> dict:
    """sqlmap on every parameter of the site's query strings, the booking id in the path and
    the lookup and phone forms: boolean, error, UNION and time-based techniques (1 s delay,
    10 s request timeout), level 2 / risk 1, the payloads of the run's database (SQLite), each
    target within 90 s (the forms, whose CSRF token sqlmap fetches before each request, 240 s),
    in two lanes at once. A target that stopped before sqlmap's own verdict is an open item."""
    name = "sqlmap (SQL injection)"
    exe = exe or shutil.which("sqlmap")
    if not exe:
        return {"check": name, "ran": False,
                "findings": ["sqlmap not installed (pip install sqlmap)"], "detail": ""}
    cookie = "; ".join(f"{k}={v}" for k, v in s.cookies.items())
    csrf = ["--csrf-token", "_csrf_token", "--csrf-url", f"{base}/h5/phone"]
    targets = [
        ["-u", f"{base}/h5/faq?h=main", "-p", "h"],
        ["-u", f"{base}/h5/book?h=main", "-p", "h"],
        ["-u", f"{base}/h5/b/{pid}*"],
        ["-u", f"{base}/h5/book/lookup", "--data",
         "h=main&name=a&id_number=1&mrn=1&patient_phone=1&_csrf_token=x",
         "-p", "h,name,id_number,mrn,patient_phone", *csrf],
        ["-u", f"{base}/h5/phone", "--data", "phone=1&code=1&next=/h5&_csrf_token=x",
         "-p", "phone,code,next", *csrf],
    ]
    def one(i: int, t: list[str]) -> tuple[str, list[str], str] | None:
        timeout = budget.left(240 if "--csrf-token" in t else 90)
        code, text = run_tool(f"sqlmap-{i}", [
            exe, *t, "--batch", "--level", "2", "--risk", "1", "--technique", "BEUT",
            "--time-sec", "1", "--timeout", "10", "--retries", "1", "--dbms", "SQLite",
            *([] if "--csrf-token" in t else ["--threads", "2"]), "--cookie", cookie,
            "--output-dir", str(out / f"sqlmap-{i}"), "--flush-session",
            "--disable-coloring", "--ignore-code", "400,403,404,429", "--skip-waf"],
            out, timeout)
        if code is None:
            return None
        where = t[1].replace(base, "")
        if SQLMAP_HIT.search(text):
            return where, [f"{where}: injectable, see sqlmap-{i}.log"], "injectable"
        if code == -1:
            return where, _stopped(f"sqlmap-{i}", code, timeout), "stopped"
        if SQLMAP_DONE.search(text):
            return where, [], "not injectable"
        return where, [f"{where}: no verdict from sqlmap (exit {code}), see sqlmap-{i}.log"], \
            "no verdict"

    # two lanes, each form first (they fetch the CSRF token before every request: the slowest)
    lanes = [[3, 0], [4, 2, 1]]
    with cf.ThreadPoolExecutor(2) as ex:
        done = list(ex.map(lambda lane: [one(i, targets[i]) for i in lane], lanes))
    outcomes = [o for lane in done for o in lane]
    if any(o is None for o in outcomes):
        return {"check": name, "ran": False, "findings": ["sqlmap could not be started"],
                "detail": ""}
    findings = [f for o in outcomes if o for f in o[1]]
    verdicts = [f"{o[0]}: {o[2]}" for o in outcomes if o]
    return {"check": f"{name}, level 2 risk 1, techniques BEUT, SQLite payloads", "ran": True,
            "findings": findings, "detail": "; ".join(verdicts)}


def self_signed(out: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1: the site is scanned over TLS, as it is served."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    kp, cp = out / "tls-key.pem", out / "tls-cert.pem"
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return kp, cp


class serve_tls:
    """uvicorn over TLS in a daemon thread (the base URL on entering)."""

    def __init__(self, app, out: Path) -> None:
        import threading

        import uvicorn

        sys.path.insert(0, str(REPO / "tests"))
        import browserutil

        self.port = browserutil.free_port()
        kp, cp = self_signed(out)
        self.server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="error",
            ssl_keyfile=str(kp), ssl_certfile=str(cp)))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.wait = browserutil.wait_for_port

    def __enter__(self) -> str:
        self.thread.start()
        self.wait("127.0.0.1", self.port, alive=self.thread)
        return f"https://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def write_report(out: Path, results: list[dict], seconds: float) -> bool:
    """report.md, report.html and report.json from the checks' own results."""
    import html

    ok = all(r["ran"] and not r["findings"] for r in results)
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    verdict = "未发现风险（no open risk）" if ok else "存在未关闭的风险项，见下表（open items）"
    lines = ["# 网上预约复印系统安全测试报告", "", f"生成时间：{when}；用时 {seconds:.0f} 秒", "",
             f"结论：{verdict}", "",
             "| 检查 | 是否执行 | 发现 | 说明 |", "|---|---|---|---|"]
    for r in results:
        cells = [r["check"], "是" if r["ran"] else "否", "；".join(r["findings"]) or "无",
                 r["detail"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ")
                                        for c in cells) + " |")
    lines += ["", "各工具的原始输出：schemathesis.log / schemathesis.xml、wapiti.log / "
              "wapiti.json、sqlmap-*.log（本目录）。"]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = "".join(
        f"<tr><td>{html.escape(r['check'])}</td><td>{'是' if r['ran'] else '否'}</td>"
        f"<td class='{'bad' if r['findings'] or not r['ran'] else 'ok'}'>"
        f"{'<br>'.join(html.escape(f) for f in r['findings']) or '无'}</td>"
        f"<td>{html.escape(r['detail'])}</td></tr>" for r in results)
    (out / "report.html").write_text(
        "<!doctype html><html lang='zh-CN'><meta charset='utf-8'>"
        "<title>网上预约复印系统安全测试报告</title><style>body{font-family:sans-serif;"
        "margin:2em}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}"
        "table{border-collapse:collapse}.bad{color:#b00}.ok{color:#070}</style>"
        f"<h1>网上预约复印系统安全测试报告</h1><p>生成时间：{html.escape(when)}；用时 "
        f"{seconds:.0f} 秒</p><p><b class='{'ok' if ok else 'bad'}'>结论：{verdict}</b></p>"
        "<table><tr><th>检查</th><th>是否执行</th><th>发现</th><th>说明</th></tr>"
        f"{rows}</table></html>\n", encoding="utf-8")
    (out / "report.json").write_text(json.dumps(
        {"no_open_risk": ok, "seconds": round(seconds), "results": results},
        ensure_ascii=False, indent=2))
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--wapiti", help="the wapiti executable (default: on PATH)")
    ap.add_argument("--sqlmap", help="the sqlmap executable (default: on PATH)")
    ap.add_argument("--skip-scanners", action="store_true",
                    help="only the callback, upload and schemathesis checks")
    ap.add_argument("--budget", type=int, default=570,
                    help="seconds for the whole run (default 570: it ends within 10 minutes)")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    budget = Budget(a.budget - 15)  # the report's own time
    a.out.mkdir(parents=True, exist_ok=True)
    from bingan.core.web.app import create_app

    import urllib3

    urllib3.disable_warnings()  # the run's own self-signed certificate
    rt = build_site(a.out)
    results = []
    with serve_tls(create_app(rt), a.out) as base:
        s, pid = patient_session(base, rt)
        for check, name in ((lambda: check_callbacks(base, rt, s, pid), "payment callbacks"),
                            (lambda: check_uploads(base, rt, s), "upload abuse corpus")):
            try:
                results.append(check())
            except Exception as exc:  # noqa: BLE001 - a check that broke is an open item
                results.append({"check": name, "ran": False, "detail": "",
                                "findings": [f"the check stopped: {exc.__class__.__name__}: "
                                             f"{str(exc)[:200]}"]})
        exe = str(Path(sys.executable).with_name("schemathesis"))
        # one patient session per tool (a new WeChat user each); schemathesis alone (all three
        # at once starved the site on a loaded machine), then wapiti beside sqlmap: both spend
        # most of their time waiting on the site's answers
        s1, _ = patient_session(base, rt, "13800138001")
        results.append(check_schemathesis(base, s1, a.out, exe if os.path.exists(exe)
                                          else "schemathesis", budget))
        if not a.skip_scanners:
            s2, _ = patient_session(base, rt, "13800138002")
            s3, pid3 = patient_session(base, rt, "13800138003")
            with cf.ThreadPoolExecutor(2) as ex:
                jobs = [ex.submit(check_wapiti, base, s2, a.out, a.wapiti, budget),
                        ex.submit(check_sqlmap, base, s3, a.out, a.sqlmap, pid3, budget)]
                results += [j.result() for j in jobs]
        if a.skip_scanners:  # not run is an open item, never a pass
            results += [{"check": name, "ran": False, "findings": ["skipped (--skip-scanners)"],
                         "detail": ""} for name in ("wapiti", "sqlmap")]
    ok = write_report(a.out, results, time.monotonic() - t0)
    print((a.out / "report.md").read_text(encoding="utf-8"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
