"""Dedicated workers (issue 18, "Work"): pipeline throughput, kill -9 through the whole ingest,
disk full.

    .venv/bin/python bench/workers.py throughput [--procs 1,2,4] [--records 4] [--pages 5]
    .venv/bin/python bench/workers.py crash [--cycles 1000] [--seed N] [--sqlite]
    .venv/bin/python bench/workers.py diskfull [--size-mb 64]

throughput: scanned A4 records at 300 DPI (a barcode cover sheet and --pages pages each, as
scanned PDFs) are received (``ingest.receive``: stored, queued), then ``bingan worker -n N``
runs the whole chain: capture.process (barcode, imaging: deskew, crop, QC) -> pageindex.ocr
(OCR, page types) -> archive.build (the record's PDF). Printed per N: wall time from the
workers' start to the last task done, pages/s, the speed-up over 1 process (the peer), the
machine's CPU busy share over the run (all agents' load included: the machine is shared) and
where the workers' time went per task kind: what limits it.

crash: the real web server (uvicorn, ``[core] workers = 0``) and 2 ``bingan worker``
processes, with 2 uploader threads posting distinct pages to /api/capture/upload as a
scanning station does (a page is retried until the server acknowledges it). Each cycle
SIGKILLs the server, a worker, or all of them, after a random 0.1-0.8 s, and starts them
again. Server and workers are forked from a "zygote" that imported everything once, so a
cycle costs its delay, not an interpreter start. After the last cycle the survivors drain the
queue and the bench checks: every acknowledged upload is stored (0 lost), every page is
stored once (no frame stored twice, no page twice in its record), OCR text once per page,
each record's PDF holds exactly its pages, no task failed, every blob hashes to its key.

diskfull: BINGAN_HOME (SQLite database and blobs) on a small tmpfs mounted for the run (root
needed; without it the run says so and stops), filled almost full by a filler file. Uploads
go on until the disk refuses them: every upload the server acknowledged must be stored and
hash-correct, the refused ones got an error (never a success). Then the filler is deleted: the
refused uploads are sent again and everything is processed.

tests/test_worker_crash.py runs a few crash cycles and the disk-full check in the suite.
Figures depend on the machine and its load; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
PG_ADMIN = os.environ.get("BINGAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "Bench-clerk-2026"
CHAIN = ["imaging", "capture", "pageindex", "archive"]


# ------------------------------------------------------------------------------------------
# A home, a database, a configuration
# ------------------------------------------------------------------------------------------


@dataclass
class World:
    home: Path
    db_url: str
    env: dict[str, str]
    plugins: list[str]
    pg_name: str | None = None

    def runtime(self):
        from bingan.core.config import load_config
        from bingan.core.runtime import build_runtime

        return build_runtime(load_config(env=self.env))

    def drop(self) -> None:
        if self.pg_name:
            import sqlalchemy as sa

            eng = sa.create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
                                   isolation_level="AUTOCOMMIT")
            with eng.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
            eng.dispose()


def pg_reachable() -> bool:
    import sqlalchemy as sa

    try:
        eng = sa.create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"))
        with eng.connect() as c:
            c.exec_driver_sql("select 1")
        eng.dispose()
        return True
    except Exception:
        return False


def make_world(root: Path, plugins: list[str], *, pg: bool, records: int = 0,
               extra_toml: str = "", home: Path | None = None) -> World:
    """A migrated database, a plugins.toml (web server runs no tasks), a clerk, records."""
    home = home or root / "home"
    home.mkdir(parents=True, exist_ok=True)
    pg_name = None
    if pg:
        import sqlalchemy as sa

        pg_name = f"bench_workers_{uuid.uuid4().hex[:10]}"
        eng = sa.create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
                               isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{pg_name}"')
        eng.dispose()
        db_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + pg_name
    else:
        db_url = f"sqlite:///{home / 'bingan.sqlite3'}"
    cfg = root / "plugins.toml"
    cfg.write_text(
        '[core]\nhospital_name = "压测医院"\nworkers = 0\nscheduler = false\n'
        "task_lease_seconds = 20\n"
        "[plugins]\nenabled = [" + ", ".join(f'"{p}"' for p in plugins) + "]\n" + extra_toml,
        encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINGAN_")}
    env.update(BINGAN_CONFIG=str(cfg), BINGAN_HOME=str(home), BINGAN_DATABASE_URL=db_url,
               BINGAN_KEY_DIR=str(root / "keys"))
    world = World(home, db_url, env, plugins, pg_name)
    from argon2 import PasswordHasher

    from bingan.core import records as core_records
    from bingan.core import staff as core_staff
    from bingan.core.migrate import upgrade
    from bingan.core.models import Role
    from bingan.hooks.types import AdmissionIn, PatientIn
    import datetime as dt
    from sqlalchemy import select

    core_staff._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    rt = world.runtime()
    upgrade(rt)
    with rt.sessions() as s, s.begin():
        core_staff.ensure_builtin_roles(s)
        core_staff.add_department(s, "1001", "心血管内科")
        core_staff.add_staff(s, "C0001", "压测采集员", PASSWORD, "1001", ["clerk"])
        role = s.scalar(select(Role).where(Role.name == "clerk"))
        role.permissions = sorted(set(role.permissions or []) | {"capture.operate"})
        for i in range(records):
            core_records.upsert_admission(s, rt, AdmissionIn(
                patient=PatientIn(mrn=f"{i + 1:08d}", name=f"压测{i:03d}"),
                admission_no=f"ZY2026{i + 1:08d}", visit_no=1,
                admitted_at=dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc),
                discharged_at=dt.datetime(2026, 4, 9, tzinfo=dt.timezone.utc),
                discharge_department="1001"))
    rt.close()
    return world


# ------------------------------------------------------------------------------------------
# Throughput with 1, 2, 4 worker processes
# ------------------------------------------------------------------------------------------


def cpu_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine (/proc/stat)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


TASK_LINE = re.compile(r"任务 #(\d+) (\S+) 用时 ([\d.]+) 秒")


def throughput(procs: int, records: int, pages: int, pg: bool, files: list[bytes],
               root: Path) -> dict:
    from sqlalchemy import func, select

    from bingan.core.models import Page, Task
    from bingan_capture.ingest import receive

    world = make_world(root, CHAIN, pg=pg, records=records)
    rt = world.runtime()
    for i, data in enumerate(files):
        with rt.sessions() as s, s.begin():
            receive(s, rt, data, f"r{i}.pdf", "import", by="bench")
    log_path = root / "worker.log"
    exe = Path(sys.executable).with_name("bingan")
    busy0 = cpu_busy()
    t0 = time.monotonic()
    with log_path.open("w") as err:
        sup = subprocess.Popen([str(exe), "worker", "-n", str(procs), "--poll", "0.1"],
                               env=world.env, stdout=subprocess.DEVNULL, stderr=err)
    ready = None
    try:
        while True:
            if ready is None and "工作进程已启动" in log_path.read_text():
                ready = time.monotonic()
            with rt.sessions() as s:
                left = s.scalar(select(func.count()).select_from(Task).where(
                    Task.status.in_(["queued", "running"])))
                failed = s.scalar(select(func.count()).select_from(Task).where(
                    Task.status == "failed"))
            if not left:
                break
            if sup.poll() is not None:
                raise RuntimeError(f"workers exited: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        t1 = time.monotonic()
        busy1 = cpu_busy()
    finally:
        sup.send_signal(signal.SIGTERM)
        sup.wait(timeout=120)
    per_kind: dict[str, float] = {}
    for m in TASK_LINE.finditer(log_path.read_text()):
        per_kind[m.group(2)] = per_kind.get(m.group(2), 0.0) + float(m.group(3))
    with rt.sessions() as s:
        stored = s.scalar(select(func.count()).select_from(Page).where(
            Page.replaced_by_id.is_(None)))
    rt.close()
    world.drop()
    busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    return {"procs": procs, "pages": stored, "wall": t1 - t0,
            "work": t1 - (ready or t0), "busy": busy, "kinds": per_kind, "failed": failed}


def run_throughput(args) -> None:
    from bingan.core.records import record_barcode
    from bingan_capture.demo import DemoRecord, pdf_bytes, record_pages

    rng = random.Random(7)
    files = []
    print(f"drawing {args.records} records x (cover + {args.pages} pages), A4 300 DPI ...",
          flush=True)
    for i in range(args.records):
        mrn = f"{i + 1:08d}"
        rec = DemoRecord(record_barcode(mrn, 1), mrn, f"ZY2026{i + 1:08d}", 1, f"压测{i:03d}",
                         "男", "50岁", "心血管内科", "2026-04-01 08:00", "2026-04-09 10:00",
                         (("I10", "高血压病"),), (), "压测医院")
        files.append(pdf_bytes(record_pages(rec, rng, args.pages, cover=True)))
    pg = not args.sqlite and pg_reachable()
    rows = []
    for n in [int(x) for x in args.procs.split(",")]:
        root = Path(tempfile.mkdtemp(prefix=f"bench-workers-{n}-"))
        print(f"{n} worker process(es) ...", flush=True)
        rows.append(throughput(n, args.records, args.pages, pg, files, root))
        shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg()
    print(f"\ncapture -> imaging -> OCR -> PDF, {args.records} records, "
          f"{args.records * args.pages} pages + covers, {'PostgreSQL' if pg else 'SQLite'}; "
          f"{os.cpu_count()} CPUs, load average {load[0]:.1f} (shared machine)")
    base = rows[0]["pages"] / rows[0]["work"]
    print(f"{'processes':>9} {'pages':>6} {'wall s':>7} {'work s':>7} {'pages/s':>8} "
          f"{'x 1 proc':>8} {'CPU busy':>8}  worker time per task kind")
    for r in rows:
        rate = r["pages"] / r["work"]
        total = sum(r["kinds"].values()) or 1
        kinds = ", ".join(f"{k} {v / total:.0%}" for k, v in
                          sorted(r["kinds"].items(), key=lambda kv: -kv[1]))
        print(f"{r['procs']:>9} {r['pages']:>6} {r['wall']:>7.1f} {r['work']:>7.1f} "
              f"{rate:>8.2f} {rate / base:>8.2f} {r['busy']:>8.0%}  {kinds}"
              + (f"  FAILED TASKS {r['failed']}" if r["failed"] else ""))
    print("wall: from starting `bingan worker` (imports included) to the last task done; "
          "work: from the first worker ready.")


# ------------------------------------------------------------------------------------------
# The zygote: server and workers forked from one process that imported everything
# ------------------------------------------------------------------------------------------


def zygote_main() -> None:
    """Read "server PORT" / "worker" lines on stdin, fork that process, write its pid."""
    import uvicorn

    from bingan.core.config import load_config
    from bingan.core.plugins import build_plugin_manager
    from bingan.core.web import app as _app  # noqa: F401
    from bingan.core import worker as _worker  # noqa: F401

    build_plugin_manager(load_config())  # imports every enabled plugin once
    for name in ("bingan_imaging.pipeline", "bingan_pageindex.engine", "bingan_archive.pdf",
                 "bingan_capture.process", "bingan_capture.web"):
        try:
            __import__(name)
        except ImportError:
            pass
    from bingan.core.runtime import build_runtime
    from bingan.core.web.app import create_app

    # the runtime and the app are built once too; no connection is open when forking
    rt = build_runtime()
    app = create_app(rt, start_scheduler=False, workers=0)
    # uvicorn's protocol, loop and lifespan imports done once too (a forked server only binds)
    server_config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error",
                                   access_log=False)
    server_config.load()
    rt.engine.dispose()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print("ready", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        pid = os.fork()
        if pid:
            print(pid, flush=True)
            continue
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _die_with_parent()
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        try:
            _child(parts, rt, server_config)
        finally:
            os._exit(0)


def _child(parts: list[str], rt, server_config) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(process)d %(levelname)s %(message)s")
    rt.engine.dispose(close=False)  # the zygote's pool is not ours
    if parts[0] == "server":
        import uvicorn

        server_config.port = int(parts[1])
        uvicorn.Server(server_config).run()
    else:
        from bingan.core.worker import run_process

        run_process(rt, poll_seconds=0.1)


def _die_with_parent() -> None:
    """SIGKILL this process when its parent dies (Linux), so a bench that stops on an error
    leaves no zygote, server or worker behind."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Zygote:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log.open("a")
        self.p = subprocess.Popen([sys.executable, __file__, "zygote"], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.log, text=True, preexec_fn=_die_with_parent)
        line = self.p.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"zygote did not start: {line!r}, see {log}")
        self.lock = threading.Lock()

    def spawn(self, *what: str) -> int:
        with self.lock:
            self.p.stdin.write(" ".join(what) + "\n")
            self.p.stdin.flush()
            return int(self.p.stdout.readline())

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait(timeout=30)
        self.log.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def kill9(pid: int, wait: float = 10.0) -> None:
    """SIGKILL and wait until the process is gone (its listening socket closed with it)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    end = time.monotonic() + wait
    while alive(pid) and time.monotonic() < end:
        time.sleep(0.005)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------
# Uploads (a scanning station): every page retried until the server acknowledges it
# ------------------------------------------------------------------------------------------


def small_page(n: int, admission_no: str, lines: int = 24) -> bytes:
    """A distinct small scanned-looking page (A4 at 100 DPI) with a title, ``lines`` lines of
    text (at most 24) and its number (fewer lines: less for OCR to read)."""
    from PIL import Image, ImageDraw

    from bingan.core import fonts

    rng = random.Random(n)
    im = Image.new("RGB", (827, 1169), (246, 244, 238))
    d = ImageDraw.Draw(im)
    f = fonts.truetype(22)
    d.text((250, 60), f"病程记录 第 {n} 页", fill=(20, 20, 20), font=fonts.truetype(34))
    y = 140
    words = "患者主诉反复胸闷气短三年加重一周既往高血压病史十年规律服药查体血压心率律齐双肺呼吸音清"
    while y < min(1080, 140 + 40 * lines):
        k = rng.randint(10, 30)
        s0 = rng.randint(0, len(words) - 1)
        d.text((70, y), (words * 3)[s0:s0 + k], fill=(25, 25, 30), font=f)
        y += 40
    d.text((70, 1110), f"{admission_no} #{n}", fill=(25, 25, 30), font=f)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85, dpi=(100, 100))
    return buf.getvalue()


@dataclass
class Uploads:
    admissions: list[str]
    base: str
    acked: dict[str, tuple[str, int]] = field(default_factory=dict)  # sha -> (adm, capture)
    refused: dict[str, str] = field(default_factory=dict)  # sha -> last error (never acked)
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0
    lines: int = 24  # text lines per page

    def next_page(self) -> tuple[str, bytes]:
        with self.lock:
            self.counter += 1
            n = self.counter
        adm = self.admissions[n % len(self.admissions)]
        return adm, small_page(n, adm, self.lines)

    def _client(self):
        import httpx

        c = httpx.Client(base_url=self.base, timeout=20)
        c.get("/login")
        r = c.post("/login", data={"staff_no": "C0001", "password": PASSWORD,
                                   "_csrf_token": c.cookies["bingan_csrf"]})
        if r.status_code not in (302, 303):
            raise RuntimeError(f"sign-in failed: {r.status_code}")
        return c

    def send(self, c, adm: str, data: bytes) -> tuple[bool, str]:
        """One POST; (acknowledged, why not)."""
        import httpx

        sha = hashlib.sha256(data).hexdigest()
        try:
            r = c.post("/api/capture/upload",
                       files={"file": (f"{sha[:12]}.jpg", data, "image/jpeg")},
                       data={"admission": adm},
                       headers={"x-csrftoken": c.cookies.get("bingan_csrf", ""),
                                "accept": "application/json"})
        except httpx.HTTPError as exc:
            return False, type(exc).__name__
        if r.status_code in (200, 201):
            body = r.json()
            with self.lock:
                self.acked[sha] = (adm, int(body["capture_id"]))
                self.refused.pop(sha, None)
            return True, ""
        return False, f"{r.status_code} {r.text[:120]}"

    def station(self, stop: threading.Event, rate: float) -> None:
        """Upload pages one after the other at about ``rate`` per second, each until it is
        acknowledged (a server down: wait and send the same page again)."""
        import httpx

        c = None
        while not stop.is_set():
            adm, data = self.next_page()
            while not stop.is_set():
                try:
                    c = c or self._client()
                except (httpx.HTTPError, RuntimeError, KeyError):
                    c = None
                    stop.wait(0.1)
                    continue
                ok, why = self.send(c, adm, data)
                if ok:
                    break
                with self.lock:
                    key = why.split(" ", 1)[0]
                    self.errors[key] = self.errors.get(key, 0) + 1
                if why.startswith("401") or why.startswith("403"):
                    c = None  # session lost with the server: sign in again
                stop.wait(0.1)
            stop.wait(1 / rate)


# ------------------------------------------------------------------------------------------
# The checks after the crashes
# ------------------------------------------------------------------------------------------


def drain(rt, timeout: float) -> dict[str, int]:
    from bingan.core.models import Task
    from bingan.core.tasks import counts

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with rt.sessions() as s:
            c = counts(s)
        if not c.get("queued") and not c.get("running"):
            return c
        time.sleep(0.5)
    with rt.sessions() as s:
        from sqlalchemy import select

        stuck = [(t.id, t.kind, t.status, t.locked_by, t.last_error) for t in
                 s.scalars(select(Task).where(Task.status.in_(["queued", "running"])).limit(5))]
    raise AssertionError(f"queue not drained in {timeout:.0f} s: {counts_of(rt)} {stuck}")


def counts_of(rt) -> dict[str, int]:
    from bingan.core.tasks import counts

    with rt.sessions() as s:
        return counts(s)


def check_ingest(rt, up: Uploads, plugins: list[str]) -> dict:
    """Count what the crashes may have cost: acknowledged uploads lost, effects done twice
    (a capture, page, OCR text stored twice), and any other damage (``problems``: a capture
    not done, a failed task, a PDF not holding its record's pages, a blob missing or corrupt).
    Returns {acked, lost, twice, pages, blobs, problems}; the caller judges."""
    from sqlalchemy import func, select

    from bingan.core.models import Admission, Blob, Page, Task
    from bingan.core.storage import verify_store
    from bingan_capture.models import CaptureFile, CaptureFrame

    problems: list[str] = []
    twice = 0
    with rt.sessions() as s:
        caps: dict[str, list] = {}
        for c in s.scalars(select(CaptureFile)):
            caps.setdefault(c.sha256, []).append(c)
        lost = [sha for sha in up.acked if sha not in caps]
        if lost:
            problems.append(f"{len(lost)} acknowledged uploads lost: {lost[:3]}")
        dup_caps = sum(len(v) - 1 for v in caps.values())
        if dup_caps:
            problems.append(f"{dup_caps} uploads captured twice")
        twice += dup_caps
        for sha, (_, cid) in up.acked.items():
            for c in caps.get(sha, ()):
                if c.id != cid or c.status != "done":
                    problems.append(f"capture {c.id} ({sha[:12]}): {c.status} {c.error or ''}")
        frames = list(s.scalars(select(CaptureFrame)))
        page_ids = [f.page_id for f in frames if f.page_id]
        if len(page_ids) != len(set(page_ids)):
            problems.append("a page is linked to two frames")
            twice += len(page_ids) - len(set(page_ids))
        pages = s.scalar(select(func.count()).select_from(Page))
        if pages != len(frames):
            problems.append(f"{pages} pages for {len(frames)} frames (stored twice?)")
            twice += max(0, pages - len(frames))
        dup_orig = s.execute(select(Page.original_sha256, func.count()).group_by(
            Page.original_sha256).having(func.count() > 1)).all()
        if dup_orig:
            problems.append(f"{len(dup_orig)} originals stored as two pages")
            twice += sum(n - 1 for _, n in dup_orig)
        for adm_no, n in s.execute(select(Admission.admission_no, func.count(Page.id)).join(
                Page, Page.admission_id == Admission.id).group_by(Admission.admission_no)):
            want = sum(1 for a, _ in up.acked.values() if a == adm_no)
            if n != want:
                problems.append(f"{adm_no}: {n} pages for {want} acknowledged uploads")
        failed = s.scalar(select(func.count()).select_from(Task).where(Task.status == "failed"))
        if failed:
            problems.append(f"{failed} tasks failed")
        texts = None
        if "pageindex" in plugins:
            from bingan_pageindex.models import PageText

            dup = s.execute(select(PageText.page_id, func.count()).group_by(
                PageText.page_id).having(func.count() > 1)).all()
            texts = s.scalar(select(func.count(func.distinct(PageText.page_id))))
            if dup:
                problems.append(f"{len(dup)} pages with two OCR texts")
                twice += sum(n - 1 for _, n in dup)
            if texts != pages:
                problems.append(f"OCR text for {texts} of {pages} pages")
        pdfs = None
        if "archive" in plugins:
            from bingan_archive.models import ArchiveRecord

            pdfs = 0
            for ar in s.scalars(select(ArchiveRecord)):
                pdfs += 1
                n = s.scalar(select(func.count()).select_from(Page).where(
                    Page.admission_id == ar.admission_id, Page.replaced_by_id.is_(None)))
                if ar.page_count != n:
                    problems.append(f"admission {ar.admission_id}: PDF of {ar.page_count} "
                                    f"pages, {n} pages stored")
        blobs = s.scalar(select(func.count()).select_from(Blob))
    with rt.sessions() as s:
        report = verify_store(s, rt.store)
    if not report.ok:
        problems.append(f"storage verify: missing {report.missing[:3]}, corrupt "
                        f"{report.corrupt[:3]}")
    return {"acked": len(up.acked), "lost": len(lost), "twice": twice, "pages": pages,
            "ocr_texts": texts, "pdfs": pdfs, "blobs": blobs, "problems": problems}


# ------------------------------------------------------------------------------------------
# kill -9 cycles
# ------------------------------------------------------------------------------------------


@dataclass
class CrashStats:
    cycles: int = 0
    kills: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    result: dict[str, int] = field(default_factory=dict)
    upload_errors: dict[str, int] = field(default_factory=dict)
    server_restart: list[float] = field(default_factory=list)  # kill -> /healthz answers
    drain_seconds: float = 0.0
    undrained: str = ""  # the queue was not empty when the drain timed out


def warm_ocr(world: World) -> None:
    """Build the OCR engine once in a throwaway process, so that its 8-bit models (built once
    per machine, a minute or more) exist before workers start being killed every few
    seconds."""
    code = ("from bingan.core.config import load_config\n"
            "from bingan.core.runtime import build_runtime\n"
            "from bingan_pageindex.engine import get_engine\n"
            "from bingan_pageindex.settings import PageindexSettings\n"
            "rt = build_runtime(load_config())\n"
            "get_engine(rt.settings(PageindexSettings).ocr_params())\n"
            "rt.close()\n")
    subprocess.run([sys.executable, "-c", code], env=world.env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def crash_cycles(root: Path, *, cycles: int, seed: int, pg: bool, plugins: list[str],
                 records: int = 3, rate: float = 4.0, gap=(0.1, 0.8),
                 drain_timeout: float = 900.0, extra_toml: str = "",
                 max_seconds: float | None = None, page_lines: int = 24,
                 weights: tuple[float, float, float] = (4, 4, 2),
                 progress: bool = False) -> CrashStats:
    """``cycles`` kill -9 cycles (fewer if ``max_seconds`` of cycling run out first: the
    count done is in the result), then drain the queue and check (see the module doc).
    ``weights``: how often a cycle kills the server, one worker, or all of them."""
    rng = random.Random(seed)
    world = make_world(root, plugins, pg=pg, records=records, extra_toml=extra_toml)
    if "pageindex" in plugins:
        warm_ocr(world)
    zyg = Zygote(world.env, root / "processes.log")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stats = CrashStats()
    roles: dict[str, int] = {}

    def start(role: str) -> None:
        roles[role] = zyg.spawn("server", str(port)) if role == "server" else zyg.spawn("worker")

    import httpx

    def server_up(timeout: float = 180) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not alive(roles["server"]):  # it could not start (port still held): again
                time.sleep(0.2)
                start("server")
            try:  # the sign-in page: what a station needs (/healthz also lists migrations)
                if httpx.get(base + "/login", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError("server did not come back")

    up = Uploads([f"ZY2026{i + 1:08d}" for i in range(records)], base, lines=page_lines)
    stop = threading.Event()
    try:
        for role in ("server", "worker-1", "worker-2"):
            start(role)
        server_up()
        stations = [threading.Thread(target=up.station, args=(stop, rate / 2), daemon=True)
                    for _ in range(2)]
        for t in stations:
            t.start()
        t0 = time.monotonic()
        for i in range(cycles):
            if max_seconds is not None and time.monotonic() - t0 > max_seconds:
                break
            time.sleep(rng.uniform(*gap))
            what = rng.choices(["server", "worker", "all"], weights=weights)[0]
            victims = (["server", "worker-1", "worker-2"] if what == "all" else
                       ["server"] if what == "server" else [rng.choice(["worker-1", "worker-2"])])
            for v in victims:
                kill9(roles[v])
            for v in victims:
                start(v)
            stats.kills[what] = stats.kills.get(what, 0) + 1
            stats.cycles += 1
            if "server" in victims:
                t = time.monotonic()
                server_up()
                stats.server_restart.append(time.monotonic() - t)
            if progress and (i + 1) % 50 == 0:
                el = time.monotonic() - t0
                print(f"  {i + 1} cycles in {el:.0f} s ({(i + 1) / el * 60:.1f}/min), "
                      f"{len(up.acked)} uploads acknowledged, load "
                      f"{os.getloadavg()[0]:.1f}", flush=True)
        stop.set()
        for t in stations:
            t.join(timeout=60)
        stats.seconds = time.monotonic() - t0
        for role in ("worker-1", "worker-2"):  # survivors: make sure both live
            if not alive(roles[role]):
                start(role)
        rt = world.runtime()
        try:
            t1 = time.monotonic()
            try:
                drain(rt, drain_timeout)
            except AssertionError as exc:  # still check: lost and twice do not need a drain
                stats.undrained = str(exc)[:300]
            stats.drain_seconds = time.monotonic() - t1
            stats.result = check_ingest(rt, up, plugins)
        finally:
            rt.close()
        stats.upload_errors = dict(up.errors)
    finally:
        stop.set()
        for pid in roles.values():
            kill9(pid)
        zyg.close()
        world.drop()
    return stats


def run_crash(args) -> None:
    pg = not args.sqlite and pg_reachable()
    root = Path(tempfile.mkdtemp(prefix="bench-workers-crash-"))
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"{args.cycles} kill -9 cycles on {'PostgreSQL' if pg else 'SQLite'}, plugins "
          f"{'+'.join(args.plugins)}, OCR detection side {args.ocr_side} px, seed {seed} ...",
          flush=True)
    extra = f"[plugins.pageindex]\ndet_max_side = {args.ocr_side}\n" if "pageindex" in \
        args.plugins else ""
    stats = crash_cycles(root, cycles=args.cycles, seed=seed, pg=pg, plugins=args.plugins,
                         records=args.records,
                         rate=args.rate, gap=(args.gap_min, args.gap_max), extra_toml=extra,
                         max_seconds=args.max_minutes * 60 if args.max_minutes else None,
                         page_lines=args.page_lines,
                         weights=tuple(float(w) for w in args.weights.split(",")),
                         drain_timeout=args.drain_minutes * 60, progress=True)
    shutil.rmtree(root, ignore_errors=True)
    r = stats.result
    rows = [
        ("cycles (kill -9)", f"{stats.cycles}  ({', '.join(f'{k} {v}' for k, v in sorted(stats.kills.items()))})"),
        ("seconds (cycles, then drain)", f"{stats.seconds:.0f} + {stats.drain_seconds:.0f}"),
        ("cycles/min", f"{stats.cycles / max(stats.seconds, 1e-9) * 60:.1f}"),
        ("uploads acknowledged", r["acked"]),
        ("acknowledged uploads lost (must be 0)", r["lost"]),
        ("processed twice (must be 0)", r["twice"]),
        ("pages stored", r["pages"]),
        ("pages with OCR text", "-" if r["ocr_texts"] is None else r["ocr_texts"]),
        ("record PDFs (each holds its pages)", "-" if r["pdfs"] is None else r["pdfs"]),
        ("blobs verified (hash = key)", r["blobs"]),
        ("other problems (must be none)", "; ".join(r["problems"]) or "none"),
    ]
    if stats.undrained:
        rows.append(("queue NOT drained (raise --drain-minutes)", stats.undrained))
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(f"upload attempts that failed while a process was down (retried): "
          f"{stats.upload_errors}")
    if stats.server_restart:
        t = sorted(stats.server_restart)
        print(f"server back (fork from the zygote to /login answering): median "
              f"{t[len(t) // 2]:.2f} s, max {t[-1]:.2f} s")
    if r["lost"] or r["twice"] or r["problems"] or stats.undrained:
        sys.exit(1)


# ------------------------------------------------------------------------------------------
# Disk full
# ------------------------------------------------------------------------------------------


def mount_tmpfs(path: Path, size_mb: int) -> str | None:
    """Mount a tmpfs of ``size_mb`` at ``path``; None when done, else why not."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "not root"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs",
                        str(path)], capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr.strip() or f"mount: {r.returncode}")


def umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@dataclass
class DiskFullStats:
    acked_full: int = 0
    refused: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    acked_after: int = 0
    result: dict = field(default_factory=dict)
    # while the disk was full
    half_written: int = -1  # refused uploads that left a capture row anyway
    integrity: str = ""  # SQLite PRAGMA integrity_check
    missing: int = -1  # rows whose blob is missing or corrupt
    corrupt: int = -1
    orphans_full: int = -1  # blobs without a row (a write cut short; cleanup collects them)
    temp_left: int = -1  # temp files left in the blob store


def disk_full(root: Path, mnt: Path, *, size_mb: int = 64, plugins: list[str] | None = None,
              keep_free_mb: float = 3.0, uploads: int = 60) -> DiskFullStats:
    """See the module docstring. ``mnt`` must be a mounted, empty tmpfs."""
    plugins = plugins or ["imaging", "capture", "archive"]
    home = mnt / "home"
    world = make_world(root, plugins, pg=False, records=2, home=home)
    zyg = Zygote(world.env, root / "processes.log")
    port = free_port()
    up = Uploads(["ZY202600000001", "ZY202600000002"], f"http://127.0.0.1:{port}")
    st = DiskFullStats()
    pids = []
    try:
        pids = [zyg.spawn("server", str(port)), zyg.spawn("worker")]
        import httpx

        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                if httpx.get(up.base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        free = shutil.disk_usage(mnt).free
        filler = mnt / "filler"
        with filler.open("wb") as f:  # leave a few MB: the next uploads fill them
            f.write(b"\0" * max(0, free - int(keep_free_mb * 1024 * 1024)))
        c = up._client()
        pending: list[tuple[str, bytes]] = []
        for _ in range(uploads):
            adm, data = up.next_page()
            ok, why = up.send(c, adm, data)
            if ok:
                st.acked_full += 1
            else:
                st.refused += 1
                key = why.split(" ", 1)[0]
                st.refusals[key] = st.refusals.get(key, 0) + 1
                pending.append((adm, data))
                with up.lock:
                    up.refused[hashlib.sha256(data).hexdigest()] = why
        # every acknowledged upload is stored while the disk is still full
        rt = world.runtime()
        try:
            from sqlalchemy import select

            from bingan.core.storage import verify_store
            from bingan_capture.models import CaptureFile

            with rt.sessions() as s:
                have = set(s.scalars(select(CaptureFile.sha256)))
            lost = [sha for sha in up.acked if sha not in have]
            if lost:
                raise AssertionError(f"{len(lost)} uploads acknowledged on a full disk are lost")
            for sha in up.acked:
                if hashlib.sha256(rt.store.get(sha)).hexdigest() != sha:
                    raise AssertionError(f"acknowledged blob {sha[:12]} is damaged")
            # nothing half-written: a refused upload left no capture row, the database is
            # intact, every row's blob is there and whole, no temp file is left behind
            st.half_written = sum(1 for sha in up.refused if sha in have)
            with rt.sessions() as s:
                st.integrity = str(s.connection().exec_driver_sql(
                    "PRAGMA integrity_check").scalar())
                s.rollback()
            with rt.sessions() as s:
                report = verify_store(s, rt.store)
            st.missing, st.corrupt = len(report.missing), len(report.corrupt)
            st.orphans_full = len(report.orphans)
            tmp = Path(home) / "blobs" / "tmp"
            st.temp_left = sum(1 for _ in tmp.iterdir()) if tmp.is_dir() else 0
        finally:
            rt.close()
        filler.unlink()  # freed: send the refused ones again, everything gets processed
        for adm, data in pending:
            for _ in range(20):
                ok, why = up.send(c, adm, data)
                if ok:
                    st.acked_after += 1
                    break
                time.sleep(0.5)
            else:
                raise AssertionError(f"upload still refused after space was freed: {why}")
        rt = world.runtime()
        try:
            drain(rt, 600)
            st.result = check_ingest(rt, up, plugins)
            if st.result["problems"]:
                raise AssertionError("; ".join(st.result["problems"][:10]))
        finally:
            rt.close()
    finally:
        for pid in pids:
            kill9(pid)
        zyg.close()
    return st


def run_diskfull(args) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-workers-full-"))
    mnt = root / "mnt"
    why = mount_tmpfs(mnt, args.size_mb)
    if why:
        print(f"cannot mount a tmpfs ({why}); the disk-full run needs root")
        return
    try:
        st = disk_full(root, mnt, size_mb=args.size_mb, uploads=args.uploads)
    finally:
        umount(mnt)
        shutil.rmtree(root, ignore_errors=True)
    print(f"\ntmpfs of {args.size_mb} MB as BINGAN_HOME (SQLite + blobs), filled to ~3 MB free:")
    print(f"  while full: {st.acked_full} uploads acknowledged (all stored and hash-correct), "
          f"{st.refused} refused with {st.refusals}")
    print(f"  nothing half-written: {st.half_written} refused uploads with a row, database "
          f"integrity {st.integrity}, {st.missing} rows without their blob, {st.corrupt} "
          f"corrupt, {st.temp_left} temp files left, {st.orphans_full} orphan blobs")
    print(f"  after freeing: {st.acked_after} refused uploads sent again and acknowledged; "
          f"all {st.result['acked']} processed: {st.result['pages']} pages, "
          f"{st.result['blobs']} blobs verified")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "zygote":
        zygote_main()
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--procs", default="1,2,4")
    t.add_argument("--records", type=int, default=4)
    t.add_argument("--pages", type=int, default=5)
    t.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    c = sub.add_parser("crash")
    c.add_argument("--cycles", type=int, default=1000)
    c.add_argument("--seed", type=int)
    c.add_argument("--rate", type=float, default=4.0, help="uploads per second offered")
    c.add_argument("--sqlite", action="store_true")
    c.add_argument("--plugins", type=lambda v: v.split(","), default=CHAIN)
    c.add_argument("--page-lines", type=int, default=24, help="text lines per page")
    c.add_argument("--records", type=int, default=3, help="admissions the pages go to")
    c.add_argument("--weights", default="4,4,2",
                   help="how often a cycle kills the server, a worker, all: a new server's "
                        "first upload takes seconds on a loaded machine, so killing it less "
                        "often lets more uploads through")
    c.add_argument("--ocr-side", type=int, default=896,
                   help="pageindex det_max_side: smaller is the cheaper OCR path")
    c.add_argument("--max-minutes", type=float,
                   help="stop cycling after this long (then drain and check as usual)")
    c.add_argument("--drain-minutes", type=float, default=15)
    c.add_argument("--gap-min", type=float, default=0.1, help="seconds before a kill, min")
    c.add_argument("--gap-max", type=float, default=0.8, help="seconds before a kill, max")
    d = sub.add_parser("diskfull")
    d.add_argument("--size-mb", type=int, default=64)
    d.add_argument("--uploads", type=int, default=60)
    args = ap.parse_args()
    {"throughput": run_throughput, "crash": run_crash, "diskfull": run_diskfull}[args.cmd](args)


if __name__ == "__main__":
    main()
