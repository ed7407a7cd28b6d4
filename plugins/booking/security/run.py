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


def patient_session(base: str, rt) -> tuple[requests.Session, str]:
    """Sign in through the sandbox's WeChat authorization, verify the phone, book once."""
    from bingan_booking.sms import sandbox_outbox

    s = requests.Session()
    s.verify = False
    s.trust_env = False  # a CA bundle from the environment would override verify=False
    r = s.get(base + "/h5", timeout=10)
    r.raise_for_status()
    tok = form_token(s, base)
    s.post(base + "/h5/phone/code", data={"_csrf_token": tok, "phone": PHONE}, timeout=10)
    code = re.search(r"验证码为 (\d{6})", sandbox_outbox(rt, {PHONE}, 1)[0]["text"])[1]
    s.post(base + "/h5/phone", data={"_csrf_token": tok, "phone": PHONE, "code": code},
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
        return requests.post(base + "/h5/pay/notify", data=b.encode(), timeout=20, verify=False,
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
    with cf.ThreadPoolExecutor(10) as ex:
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
    return {"check": "payment callbacks", "ran": True, "findings": findings,
            "detail": f"5 hostile notifications, a storm of {len(storm)} ({sorted(set(codes))})"}


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


def run_tool(name: str, cmd: list[str], out: Path, timeout: int) -> tuple[int | None, str]:
    log = out / f"{name}.log"
    try:
        # in --out: schemathesis and wapiti leave caches in their working directory
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=out)
    except FileNotFoundError:
        return None, ""
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or "") if isinstance(exc.stdout, str) else ""
        log.write_text(text + "\n[timed out]")
        return -1, text
    log.write_text(p.stdout + "\n" + p.stderr)
    return p.returncode, p.stdout + "\n" + p.stderr


def check_schemathesis(base: str, s: requests.Session, out: Path, exe: str) -> dict:
    cookie = "; ".join(f"{k}={v}" for k, v in s.cookies.items())
    code, text = run_tool("schemathesis", [
        exe, "run", base + "/schema/openapi.json", "--include-path-regex", "^/h5",
        "-c", "not_a_server_error", "-n", "25", "-H", f"Cookie: {cookie}",
        "--tls-verify", "false", "--report", "junit",
        "--report-junit-path", str(out / "schemathesis.xml")], out, 900)
    if code is None:
        return {"check": "schemathesis (API fuzzing)", "ran": False,
                "findings": ["schemathesis not installed"], "detail": ""}
    findings = [] if code == 0 else [f"schemathesis exit {code}: see schemathesis.log"]
    m = re.search(r"(\d+) operations? tested|Operations?:?\s+(\d+)", text)
    return {"check": "schemathesis (API fuzzing, not_a_server_error)", "ran": True,
            "findings": findings, "detail": m[0] if m else ""}


def check_wapiti(base: str, s: requests.Session, out: Path, exe: str | None) -> dict:
    exe = exe or shutil.which("wapiti")
    if not exe:
        return {"check": "wapiti (web vulnerability scan)", "ran": False,
                "findings": ["wapiti not installed (pip install wapiti3, separate venv)"],
                "detail": ""}
    cookies = out / "wapiti-cookies.json"
    host = base.split("//")[1].split(":")[0]
    cookies.write_text(json.dumps({host: {"/": {
        k: {"value": v, "version": 0, "expires": None, "secure": True, "port": None}
        for k, v in s.cookies.items()}}}))
    report = out / "wapiti.json"
    code, _ = run_tool("wapiti", [
        exe, "-u", base + "/h5/", "--scope", "folder", "-m", "all", "--flush-session",
        "-c", str(cookies), "-f", "json", "-o", str(report), "--max-scan-time", "600",
        "--max-attack-time", "120", "-v", "1"], out, 1200)
    if code is None or not report.exists():
        return {"check": "wapiti (web vulnerability scan)", "ran": False,
                "findings": [f"wapiti did not produce a report (exit {code})"], "detail": ""}
    data = json.loads(report.read_text())
    findings = [f"{cat}: {v.get('info', '')} ({v.get('path', '')})"
                for cat, items in (data.get("vulnerabilities") or {}).items() for v in items]
    anomalies = [f"anomaly {cat}: {v.get('info', '')} ({v.get('path', '')})"
                 for cat, items in (data.get("anomalies") or {}).items() for v in items]
    return {"check": "wapiti (web vulnerability scan, all modules)", "ran": True,
            "findings": findings + anomalies,
            "detail": f"{len(data.get('infos', {}).get('crawled_pages', []) or [])} pages crawled"}


def check_sqlmap(base: str, s: requests.Session, out: Path, exe: str | None, pid: str) -> dict:
    exe = exe or shutil.which("sqlmap")
    if not exe:
        return {"check": "sqlmap (SQL injection)", "ran": False,
                "findings": ["sqlmap not installed (pip install sqlmap)"], "detail": ""}
    cookie = "; ".join(f"{k}={v}" for k, v in s.cookies.items())
    findings, targets = [], [
        ["-u", f"{base}/h5/faq?h=main"], ["-u", f"{base}/h5/book?h=main"],
        ["-u", f"{base}/h5/b/{pid}*"],
        ["-u", f"{base}/h5/book/lookup", "--data",
         "h=main&name=a&id_number=1&mrn=1&patient_phone=1&_csrf_token=x",
         "--csrf-token", "_csrf_token", "--csrf-url", f"{base}/h5/phone"],
        ["-u", f"{base}/h5/phone", "--data", "phone=1&code=1&next=/h5&_csrf_token=x",
         "--csrf-token", "_csrf_token", "--csrf-url", f"{base}/h5/phone"],
    ]
    for i, t in enumerate(targets):
        code, text = run_tool(f"sqlmap-{i}", [
            exe, *t, "--batch", "--level", "3", "--risk", "2", "--cookie", cookie,
            "--output-dir", str(out / "sqlmap"), "--flush-session", "--disable-coloring",
            "--ignore-code", "400,403,404,429"], out, 900)
        if code is None:
            return {"check": "sqlmap (SQL injection)", "ran": False,
                    "findings": ["sqlmap could not be started"], "detail": ""}
        if re.search(r"is vulnerable|might be injectable|sqlmap identified the following "
                     r"injection", text):
            findings.append(f"target {i} ({t[1]}): injectable, see sqlmap-{i}.log")
    return {"check": "sqlmap (SQL injection, level 3 risk 2)", "ran": True,
            "findings": findings, "detail": f"{len(targets)} targets"}


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


def write_report(out: Path, results: list[dict]) -> bool:
    ok = all(r["ran"] and not r["findings"] for r in results)
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = ["# 网上预约复印系统安全测试报告", "", f"生成时间：{when}", "",
             f"结论：{'未发现风险' if ok else '存在未关闭的风险项，见下表'}", "",
             "| 检查 | 是否执行 | 发现 | 说明 |", "|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['check']} | {'是' if r['ran'] else '否'} | "
                     f"{'；'.join(r['findings']) or '无'} | {r['detail']} |")
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "report.json").write_text(json.dumps({"no_open_risk": ok, "results": results},
                                                ensure_ascii=False, indent=2))
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--wapiti", help="the wapiti executable (default: on PATH)")
    ap.add_argument("--sqlmap", help="the sqlmap executable (default: on PATH)")
    ap.add_argument("--skip-scanners", action="store_true",
                    help="only the callback, upload and schemathesis checks")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    from bingan.core.web.app import create_app

    import urllib3

    urllib3.disable_warnings()  # the run's own self-signed certificate
    rt = build_site(a.out)
    results = []
    with serve_tls(create_app(rt), a.out) as base:
        s, pid = patient_session(base, rt)
        results.append(check_callbacks(base, rt, s, pid))
        results.append(check_uploads(base, rt, s))
        exe = str(Path(sys.executable).with_name("schemathesis"))
        results.append(check_schemathesis(base, s, a.out, exe if os.path.exists(exe)
                                          else "schemathesis"))
        if a.skip_scanners:  # not run is an open item, never a pass
            results += [{"check": name, "ran": False, "findings": ["skipped (--skip-scanners)"],
                         "detail": ""} for name in ("wapiti", "sqlmap")]
        else:
            results.append(check_wapiti(base, s, a.out, a.wapiti))
            results.append(check_sqlmap(base, s, a.out, a.sqlmap, pid))
    ok = write_report(a.out, results)
    print((a.out / "report.md").read_text(encoding="utf-8"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
