"""Monthly production report benchmark (M13, issue 17): SQLite and PostgreSQL side by side.

Generates N admissions (default 30,000; the issue's archive is 3,000,000 with 90,000,000
pages: ``--n 3000000 --pages 30``) with ``--pages`` pages each, spread over ``--months``
months of capture, straight into the core tables with bulk inserts, then times capture's
production report (``capture.production`` through the registry: pages, records, plan and
rework per day of one month) for random months, and the same month grouped by week: p50 /
p95 / max, next to a floor (``SELECT count(*)`` of the month's pages, the least any report
of those pages must do) and the target (p95 <= 2 s for a month).

    .venv/bin/python bench/reports.py
    .venv/bin/python bench/reports.py --n 300000 --pages 30 --backends postgresql
    .venv/bin/python bench/reports.py --reuse

Databases: SQLite under --workdir (default var/bench-reports); PostgreSQL database
bingan_bench_reports at BINGAN_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import sqlalchemy as sa  # noqa: E402

CN = dt.timezone(dt.timedelta(hours=8))
PG = os.environ.get("BINGAN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _runtime(home: Path, url: str):
    from support import build_test_runtime

    return build_test_runtime(home, url)


def _pg_url(name: str) -> str:
    return PG.rsplit("/", 1)[0] + "/" + name


def _prepare(backend: str, args) -> str:
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        path = work / "bench.sqlite3"
        if path.exists() and args.reuse:
            return f"sqlite:///{path}"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    name = "bingan_bench_reports"
    eng = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        exists = c.scalar(sa.text("select 1 from pg_database where datname = :n"), {"n": name})
        if exists and not args.reuse:
            c.execute(sa.text(f'drop database "{name}"'))
            exists = False
        if not exists:
            c.execute(sa.text(f'create database "{name}"'))
    eng.dispose()
    return _pg_url(name)


def _load(rt, args) -> None:
    from bingan.core.migrate import upgrade

    upgrade(rt)
    eng = rt.engine
    with eng.connect() as c:
        if c.scalar(sa.text("select count(*) from admission")):
            return
    rng = random.Random(1)
    depts = [f"{1000 + i}" for i in range(30)]
    span = args.months * 30 * 86400
    t = time.perf_counter()
    chunk = 5000
    with eng.begin() as c:
        c.execute(sa.text("insert into blob (sha256, size, media_type, created_at) values "
                          "(:s, 1, 'image/jpeg', :t)"), {"s": "0" * 64, "t": T0.replace(tzinfo=None)})
    page_id = 0
    for lo in range(0, args.n, chunk):
        pats, adms, pages = [], [], []
        for i in range(lo, min(args.n, lo + chunk)):
            at = T0 + dt.timedelta(seconds=rng.randint(0, span))
            naive = at.replace(tzinfo=None)
            pats.append({"id": i + 1, "mrn": f"{i + 1:010d}", "name": "患者", "p": "", "ini": "",
                         "sex": "U", "c": naive, "u": naive})
            adms.append({"id": i + 1, "pid": i + 1, "no": f"ZY{i + 1:012d}", "v": 1,
                         "bc": f"B{i + 1:012d}", "a": naive, "d": naive,
                         "dept": rng.choice(depts), "fp": "{}", "c": naive, "u": naive,
                         "r": False})
            for k in range(args.pages):
                page_id += 1
                ts = (at + dt.timedelta(seconds=rng.randint(0, 40 * 86400))).replace(tzinfo=None)
                pages.append({"id": page_id, "a": i + 1, "s": k + 1, "sha": "0" * 64,
                              "c": ts, "qm": "{}", "st": "{}"})
        with eng.begin() as c:
            c.execute(sa.text("insert into patient (id, mrn, name, name_pinyin, name_initials, "
                              "sex, created_at, updated_at) values (:id, :mrn, :name, :p, :ini, "
                              ":sex, :c, :u)"), pats)
            c.execute(sa.text("insert into admission (id, patient_id, admission_no, visit_no, "
                              "barcode, admitted_at, discharged_at, discharge_department, "
                              "front_page, created_at, updated_at, readmission_31d) values "
                              "(:id, :pid, :no, :v, :bc, :a, :d, :dept, :fp, :c, :u, :r)"), adms)
            c.execute(sa.text("insert into page (id, admission_id, seq, image_sha256, "
                              "created_at, qc_metrics, steps) values (:id, :a, :s, :sha, :c, "
                              ":qm, :st)"), pages)
        print(f"  loaded {min(args.n, lo + chunk):,} admissions, {page_id:,} pages "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
    with eng.begin() as c:
        if eng.dialect.name == "postgresql":
            c.execute(sa.text("select setval('page_id_seq', :n)"), {"n": page_id})
            c.execute(sa.text("analyze"))
        else:
            c.execute(sa.text("analyze"))


def _time(fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _fmt(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return (f"p50 {statistics.median(xs) * 1000:8.0f} ms  p95 {p95 * 1000:8.0f} ms  "
            f"max {xs[-1] * 1000:8.0f} ms")


def run(backend: str, args) -> None:
    from bingan.hooks.types import ReportParams

    from bingan_reports import registry

    url = _prepare(backend, args)
    home = Path(args.workdir) / f"home-{backend}"
    rt = _runtime(home, url)
    print(f"{backend}: loading {args.n:,} admissions x {args.pages} pages ...", flush=True)
    _load(rt, args)
    spec = registry.all_reports(rt)["capture.production"]
    rng = random.Random(7)
    months = [(T0 + dt.timedelta(days=30 * rng.randint(0, args.months - 2))).date()
              .replace(day=1) for _ in range(args.reps)]

    def month_end(m: dt.date) -> dt.date:
        return (m.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)

    it = iter(months * 3)

    def report(group: str):
        m = next(it)
        with rt.sessions() as s:
            return registry.run(s, rt, spec, ReportParams(m, month_end(m), CN, group=group))

    def floor():
        m = next(it)
        lo = dt.datetime.combine(m, dt.time(), CN)
        hi = dt.datetime.combine(month_end(m) + dt.timedelta(days=1), dt.time(), CN)
        from bingan.core.models import Page

        with rt.sessions() as s:
            return s.scalar(sa.select(sa.func.count()).select_from(Page).where(
                Page.created_at >= lo, Page.created_at < hi))

    per_month = args.n * args.pages / args.months
    print(f"{backend}: ~{per_month:,.0f} pages per month, {args.reps} random months each")
    print(f"  floor  count(*) of the month's pages   {_fmt(_time(floor, args.reps))}")
    print(f"  report by day (31 rows)               {_fmt(_time(lambda: report('day'), args.reps))}")
    print(f"  report by week                        {_fmt(_time(lambda: report('week'), args.reps))}")
    print("  target p95 <= 2000 ms per monthly report")
    rt.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=30000, help="admissions")
    ap.add_argument("--pages", type=int, default=30, help="pages per admission")
    ap.add_argument("--months", type=int, default=36, help="months of capture they spread over")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--workdir", default=str(REPO / "var" / "bench-reports"))
    ap.add_argument("--reuse", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("BINGAN_STRICT_AUDIT", "1")
    for b in args.backends.split(","):
        run(b.strip(), args)


if __name__ == "__main__":
    main()
