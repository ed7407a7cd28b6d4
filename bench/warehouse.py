"""Warehouse benchmark (issue 15): find a paper record among N boxed records, and a bulk move
of 1,000 scanned barcodes; SQLite and PostgreSQL side by side.

Generates N admissions (default 3,000,000) with bench/search.py's generator and bulk loader
(core tables), then boxes every record (40 per box, 8 boxes per shelf level, 10 warehouses)
straight into the warehouse tables, refreshes planner statistics, and times the warehouse
plugin's real lookup (``service.lookup``: the SQL, the path, the tracking state, the loan)
for each key on records drawn at random: p50 / p95 / max next to the target (p95 <= 50 ms for
an interactive lookup) and next to a floor (one primary-key lookup through the same session
machinery). Then one bulk move of 1,000 scanned barcodes through ``tracking.bulk_move`` (every
move written, audited and its state updated), next to the time a person takes to scan them
(~1 s a barcode).

    .venv/bin/python bench/warehouse.py --n 200000
    .venv/bin/python bench/warehouse.py --reuse --backends sqlite

Databases: SQLite under --workdir (default var/bench-warehouse); PostgreSQL database
bingan_bench_warehouse_<n> at BINGAN_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/
postgres).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import sqlalchemy as sa  # noqa: E402

import search as sb  # noqa: E402  (bench/search.py: generator, loader)
from bingan.core.config import load_config  # noqa: E402

PG_DB = "bingan_bench_warehouse"
PER_BOX, PER_SHELF, WAREHOUSES = 40, 8, 10
TARGET_MS = 50.0


def make_runtime(home: Path, url: str):
    from bingan.core.runtime import build_runtime

    env = {"BINGAN_HOME": str(home), "BINGAN_DATABASE_URL": url}
    cfg = load_config(REPO / "plugins.toml", env=env).with_enabled(
        ["capture", "recovery", "tracking", "warehouse"])
    return build_runtime(cfg)


def prepare(backend: str, args):
    from bingan.core.db import normalize_url
    from bingan.core.migrate import upgrade

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        path = work / f"warehouse-{args.n}.sqlite3"
        fresh = not (args.reuse and path.exists())
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        admin = sa.create_engine(normalize_url(sb.PG_ADMIN), isolation_level="AUTOCOMMIT")
        db = f"{PG_DB}_{args.n}"
        with admin.connect() as c:
            exists = c.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s",
                                       (db,)).scalar()
            fresh = not (args.reuse and exists)
            if fresh:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                c.exec_driver_sql(f'CREATE DATABASE "{db}"')
            for setting in sb.PG_SETTINGS:
                c.exec_driver_sql(f'ALTER DATABASE "{db}" SET {setting}')
        admin.dispose()
        url = sb.pg_url(db)
    rt = make_runtime(work / f"home-{backend}", url)
    upgrade(rt)
    return rt, fresh


def _rows(dialect: str, rows: list[tuple]) -> list[tuple]:
    return [sb._sqlite_row(r) for r in rows] if dialect == "sqlite" else rows


def _insert(raw, dialect: str, table: str, cols: tuple[str, ...], rows: list[tuple]) -> None:
    cur = raw.cursor()
    if dialect == "sqlite":
        cur.execute("BEGIN")
        cur.executemany(f"INSERT INTO {table} ({','.join(cols)}) VALUES "
                        f"({','.join('?' * len(cols))})", _rows(dialect, rows))
    else:
        with cur.copy(f"COPY {table} ({','.join(cols)}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)
    raw.commit()


def load(rt, n: int) -> None:
    """Core tables by bench/search.py's loader, then every record boxed and shelved."""
    sb.departments(rt)
    loader = sb.Loader(rt)
    loader.start()
    for chunk in sb.Generator(n).chunks():
        loader.write(chunk)
    loader.finish()
    dialect = rt.engine.dialect.name
    now = dt.datetime(2026, 11, 1)
    raw = rt.engine.raw_connection()
    boxes = -(-n // PER_BOX)
    shelves = -(-boxes // PER_SHELF)
    per_wh = -(-shelves // WAREHOUSES)
    _insert(raw, dialect, "warehouse_warehouse", ("id", "code", "name", "building", "floor",
                                                  "created_at"),
            [(w, f"K{w:02d}", f"{w}号病案库", f"{(w - 1) // 3 + 1}号楼", f"{(w - 1) % 3 + 1}F",
              now) for w in range(1, WAREHOUSES + 1)])
    sh_rows = []
    for i in range(shelves):
        w, k = i // per_wh + 1, i % per_wh
        row, col, level = k // 50 + 1, (k // 5) % 10 + 1, k % 5 + 1
        sh_rows.append((i + 1, w, row, col, level, f"K{w:02d}-{row:02d}-{col:02d}-{level}",
                        PER_SHELF, now))
    _insert(raw, dialect, "warehouse_shelf", ("id", "warehouse_id", "row", "col", "level",
                                              "code", "capacity", "created_at"), sh_rows)
    _insert(raw, dialect, "warehouse_box", ("id", "box_no", "shelf_id", "capacity", "note",
                                            "created_at"),
            [(b + 1, f"BX{b + 1:07d}", b // PER_SHELF + 1, PER_BOX, "", now)
             for b in range(boxes)])
    for start in range(0, n, 200_000):
        _insert(raw, dialect, "warehouse_boxed", ("admission_id", "box_id", "position",
                                                  "boxed_at", "boxed_by"),
                [(a, (a - 1) // PER_BOX + 1, (a - 1) % PER_BOX + 1, now, "R0001")
                 for a in range(start + 1, min(n, start + 200_000) + 1)])
    raw.close()
    if dialect == "postgresql":
        with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM (ANALYZE)")
    else:
        with rt.engine.begin() as c:
            c.exec_driver_sql("ANALYZE")


def cases(rt, k: int, seed: int = 7) -> dict[str, list]:
    from bingan_warehouse.service import Query

    rng = random.Random(seed)
    with rt.engine.connect() as c:
        top = c.exec_driver_sql("SELECT max(id) FROM admission").scalar()
        ids = [rng.randint(1, top) for _ in range(k)]
        rows = c.execute(sa.text(
            "SELECT a.id, a.admission_no, a.discharged_at, p.mrn, p.name, p.name_pinyin, "
            "b.box_no, w.code, w.name FROM admission a JOIN patient p ON p.id = a.patient_id "
            "JOIN warehouse_boxed x ON x.admission_id = a.id JOIN warehouse_box b ON "
            "b.id = x.box_id JOIN warehouse_shelf s ON s.id = b.shelf_id JOIN "
            "warehouse_warehouse w ON w.id = s.warehouse_id WHERE a.id IN :ids")
            .bindparams(sa.bindparam("ids", expanding=True)), {"ids": ids}).all()
    tz = rt.tz
    out: dict[str, list] = {k: [] for k in ("mrn", "admission_no", "box_no", "discharge_day",
                                            "name", "pinyin", "name+day", "warehouse+box")}
    for _, no, dis, mrn, name, py, box, wh, _whname in rows:
        if isinstance(dis, str):
            dis = dt.datetime.fromisoformat(dis)
        day = dis.replace(tzinfo=dt.timezone.utc).astimezone(tz).date()
        out["mrn"].append(Query(mrn=mrn))
        out["admission_no"].append(Query(admission_no=no))
        out["box_no"].append(Query(box_no=box))
        out["discharge_day"].append(Query(discharged_from=day, discharged_to=day))
        out["name"].append(Query(name=name))
        out["pinyin"].append(Query(name=py))
        out["name+day"].append(Query(name=name, discharged_from=day, discharged_to=day))
        out["warehouse+box"].append(Query(warehouse=wh, box_no=box))
    return out


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def run_lookups(rt, queries: dict[str, list]) -> dict[str, tuple[float, float, float, float]]:
    from bingan.core.models import Admission
    from bingan_warehouse.service import lookup

    out = {}
    with rt.sessions() as s:  # warm the connection and the caches
        lookup(s, rt, queries["mrn"][0], limit=50)
    for key, qs in queries.items():
        times, hits = [], 0
        for q in qs:
            with rt.sessions() as s:
                t0 = time.perf_counter()
                found, _ = lookup(s, rt, q, limit=50)
                times.append((time.perf_counter() - t0) * 1000)
                hits += bool(found)
        out[key] = (pct(times, 50), pct(times, 95), max(times), hits / len(qs))
    floor = []
    for q in queries["mrn"][:50]:
        with rt.sessions() as s:
            t0 = time.perf_counter()
            s.get(Admission, 1)
            floor.append((time.perf_counter() - t0) * 1000)
    out["floor: primary-key get"] = (pct(floor, 50), pct(floor, 95), max(floor), 1.0)
    return out


def bulk_move(rt, k: int = 1000) -> float:
    """1,000 scanned barcodes moved 待回收 -> 已回收 through tracking's bulk move."""
    from bingan.core.staff import ensure_builtin_roles
    from bingan.hooks.types import StaffRef
    from bingan_tracking import service as tracking

    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
    with rt.engine.connect() as c:
        top = c.exec_driver_sql("SELECT max(id) FROM admission").scalar()
        lo = c.exec_driver_sql("SELECT coalesce(max(admission_id), 0) FROM tracking_state").scalar()
        codes = [r[0] for r in c.execute(sa.text(
            "SELECT barcode FROM admission WHERE id > :lo ORDER BY id LIMIT :k"),
            {"lo": max(lo, top // 2), "k": k})]
    staff = StaffRef(id=0, staff_no="R0001", name="bench", department_code=None,
                     roles=frozenset({"records"}), permissions=frozenset())
    t0 = time.perf_counter()
    with rt.sessions() as s, s.begin():
        out = tracking.bulk_move(s, rt, codes, "已回收", staff=staff)
    took = time.perf_counter() - t0
    assert sum(o.outcome == "moved" for o in out) == len(codes), "not every barcode moved"
    return took


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3_000_000)
    ap.add_argument("--k", type=int, default=200, help="lookups per key")
    ap.add_argument("--workdir", default=str(REPO / "var" / "bench-warehouse"))
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--reuse", action="store_true")
    args = ap.parse_args(argv)
    for backend in args.backends.split(","):
        rt, fresh = prepare(backend, args)
        if fresh:
            t0 = time.perf_counter()
            load(rt, args.n)
            print(f"[{backend}] loaded {args.n:,} boxed records in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        res = run_lookups(rt, cases(rt, args.k))
        print(f"\n[{backend}] find a paper record among {args.n:,} boxed records "
              f"(target p95 <= {TARGET_MS:.0f} ms)")
        print(f"  {'key':<24}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'found':>8}")
        for key, (p50, p95, mx, hit) in res.items():
            flag = "" if key.startswith("floor") or p95 <= TARGET_MS else "  over target"
            print(f"  {key:<24}{p50:9.2f}{p95:9.2f}{mx:9.2f}{hit:8.0%}{flag}")
        took = bulk_move(rt)
        print(f"  bulk move of 1,000 scanned barcodes: {took:.2f} s "
              f"(peer: a person scanning them, ~1,000 s)")
        rt.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
