"""Concurrent writers on SQLite: pysqlite's deferred BEGIN vs core's BEGIN IMMEDIATE.

Each writer thread runs transactions that read first, then insert (the shape of most bingan
writes: look the record up, then add an audit event or a page). With a deferred BEGIN the read
takes a shared lock that cannot be upgraded while another writer holds the reserved lock, and
SQLite answers "database is locked" at once (the busy handler is not used for that deadlock).

    .venv/bin/python bench/sqlite_writers.py [--threads 8] [--per-thread 300]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from bingan.core.db import make_engine


def deferred_engine(path: Path):
    """The same set-up as core.db.make_engine (WAL, busy timeout, our own BEGIN) except that
    the transaction starts with a plain (deferred) BEGIN."""
    eng = create_engine(f"sqlite:///{path}", connect_args={"timeout": 60,
                                                          "check_same_thread": False})
    from sqlalchemy import event

    @event.listens_for(eng, "connect")
    def _wal(dbapi_conn, _rec):
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA busy_timeout=60000")

    @event.listens_for(eng, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN")

    return eng


def run(engine, threads: int, per_thread: int) -> tuple[int, int, float]:
    with engine.begin() as c:
        c.execute(text("CREATE TABLE IF NOT EXISTS ev (id INTEGER PRIMARY KEY, k INT, n INT)"))
    errors = [0]
    lock = threading.Lock()

    def writer(k: int) -> None:
        for i in range(per_thread):
            try:
                with engine.begin() as c:
                    n = c.execute(text("SELECT count(*) FROM ev WHERE k = :k"), {"k": k}).scalar()
                    c.execute(text("INSERT INTO ev (k, n) VALUES (:k, :n)"), {"k": k, "n": n})
            except Exception as exc:  # counted: a lost write
                if "locked" not in str(exc) and not isinstance(exc.__cause__, sqlite3.OperationalError):
                    raise
                with lock:
                    errors[0] += 1

    t0 = time.perf_counter()
    ts = [threading.Thread(target=writer, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - t0
    with engine.connect() as c:
        committed = c.execute(text("SELECT count(*) FROM ev")).scalar()
    engine.dispose()
    return committed, errors[0], elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--per-thread", type=int, default=300)
    a = ap.parse_args()
    want = a.threads * a.per_thread
    print(f"{a.threads} writers x {a.per_thread} read-then-insert transactions = {want} writes")
    print(f"{'BEGIN':<12}{'committed':>10}{'lost':>8}{'seconds':>10}{'writes/s':>10}")
    with tempfile.TemporaryDirectory() as d:
        for name, eng in (("deferred", deferred_engine(Path(d) / "a.db")),
                          ("IMMEDIATE", make_engine(f"sqlite:///{Path(d) / 'b.db'}"))):
            committed, lost, secs = run(eng, a.threads, a.per_thread)
            print(f"{name:<12}{committed:>10}{want - committed:>8}{secs:>10.2f}{committed / secs:>10.0f}")


if __name__ == "__main__":
    main()
