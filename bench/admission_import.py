"""Front-page import: a 10,000-row xlsx with 50 bad rows (one of each kind in turn: bad date,
unknown department, bad ICD-10, unknown signer, no name, bad ICD-9-CM-3, bad 离院方式, bad MRN).

Prints rows/s of the whole import (read, map, validate, write, audit) on SQLite and, when
reachable, PostgreSQL, beside the floor of only reading and mapping the file, and checks the
outcome: 9,950 rows in, 50 reported with their row and column.

    .venv/bin/python bench/admission_import.py [--rows 10000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import datetime as dt
import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "integrations" / "admission_import" / "tests"))


def floor(path: Path) -> tuple[int, float]:
    from bingan.core.frontpage import row_to_admission
    from bingan_admission_import.reader import read_file

    t = time.perf_counter()
    n = 0
    for _row, values, _cells in read_file(path).rows:
        row_to_admission(values, tz=dt.timezone.utc)
        n += 1
    return n, time.perf_counter() - t


def one(label: str, db: str, path: Path, broken: dict[int, str], home: Path) -> None:
    from bingan.core import audit
    from bingan.core.migrate import upgrade
    from bingan_admission_import.service import import_file
    from import_world import hospital
    from support import build_test_runtime

    rt = build_test_runtime(home, db, enabled=["admission_import"])
    upgrade(rt)
    hospital(rt)
    t = time.perf_counter()
    rep = import_file(rt, path, actor=audit.Actor(staff_no="bench"))
    secs = time.perf_counter() - t
    rt.close()
    reported = {i.row for i in rep.issues}
    ok = rep.accepted == rep.total - len(broken) and reported == set(broken) and all(
        any(i.row == r and i.column == col for i in rep.issues) for r, col in broken.items())
    print(f"{label:<30} {rep.total:>6} rows  {rep.total / secs:>7.1f} rows/s  "
          f"({secs:.1f} s)  in {rep.accepted}, reported {rep.rejected_rows}  "
          f"{'OK' if ok else 'MISMATCH'}")
    if not ok:
        sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--pg", default=os.environ.get(
        "BINGAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = ap.parse_args()
    from import_world import rows, write_xlsx

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        data, broken = rows(args.rows, bad_every=args.rows // 50)
        path = write_xlsx(tmpd / "首页.xlsx", data)
        print(f"file: {args.rows} rows, {len(broken)} bad, {path.stat().st_size / 1e6:.1f} MB")
        n, secs = floor(path)
        print(f"{'floor: read + map only':<30} {n:>6} rows  {n / secs:>7.1f} rows/s  ({secs:.1f} s)")
        one("import, SQLite", f"sqlite:///{tmpd / 'bench.sqlite3'}", path, broken,
            tmpd / "home1")
        try:
            import sqlalchemy as sa
            from bingan.core.db import normalize_url

            name = f"bench_import_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(normalize_url(args.pg), isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except (sa.exc.SQLAlchemyError, OSError) as exc:  # no server: say so
            print(f"PostgreSQL not reachable ({type(exc).__name__}); skipped")
        else:
            try:
                one("import, PostgreSQL", args.pg.rsplit("/", 1)[0] + f"/{name}", path, broken,
                    tmpd / "home2")
            finally:
                with admin.connect() as c:
                    c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
