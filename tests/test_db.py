"""Database behaviour: SQLite WAL + BEGIN IMMEDIATE, concurrent writers lose nothing, UTC."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select, text

from bingan.core.db import ReadOnlySession, make_engine, make_read_sessionmaker, make_sessionmaker
from bingan.core.models import Department


def test_sqlite_runs_in_wal_with_immediate_transactions(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path}/w.db")
    with eng.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 60000
        assert c.exec_driver_sql("PRAGMA cache_size").scalar() == -32 * 1024
        # the memory map is capped by the build's SQLITE_MAX_MMAP_SIZE; 0 would mean off
        assert c.exec_driver_sql("PRAGMA mmap_size").scalar() > 0
    seen = []
    from sqlalchemy import event

    event.listen(eng, "before_cursor_execute",
                 lambda conn, cur, stmt, *a: seen.append(stmt.split()[0:2]))
    with eng.begin() as c:
        c.exec_driver_sql("select 1")
    assert ["BEGIN", "IMMEDIATE"] in seen


def test_read_sessions_take_no_write_lock_and_refuse_writes(tmp_path):
    """A read-only session reads while a writer holds SQLite's write lock (a plain BEGIN,
    not BEGIN IMMEDIATE, which would wait for it), and flushing a change in one raises."""
    eng = make_engine(f"sqlite:///{tmp_path}/r.db")
    Department.__table__.create(eng)
    writes, reads = make_sessionmaker(eng), make_read_sessionmaker(eng)
    with writes() as s, s.begin():
        s.add(Department(code="D1", name="内科"))
    seen: list[list[str]] = []

    def read() -> None:
        with reads() as r, r.begin():
            seen.append(list(r.scalars(select(Department.code))))

    with writes() as w, w.begin():
        w.add(Department(code="D2", name="外科"))
        w.flush()  # the write lock is held from here to the commit
        t = threading.Thread(target=read)
        t.start()
        t.join(timeout=10)  # BEGIN IMMEDIATE would wait here for the commit (busy timeout)
        assert seen == [["D1"]]  # the last committed state, at once
    with reads() as r, r.begin():
        r.add(Department(code="D3", name="儿科"))
        with pytest.raises(ReadOnlySession):
            r.flush()
        r.rollback()
    with reads() as r, r.begin():
        d = r.scalar(select(Department).where(Department.code == "D1"))
        d.name = "改名"
        with pytest.raises(ReadOnlySession):
            r.flush()
        r.rollback()
    with writes() as s:
        assert sorted((d.code, d.name) for d in s.scalars(select(Department))) == [
            ("D1", "内科"), ("D2", "外科")]
    eng.dispose()


def test_concurrent_writers_lose_nothing(db_url):
    """8 threads x 40 transactions that read, then write: all 320 rows are committed."""
    eng = make_engine(db_url)
    factory = make_sessionmaker(eng)
    errors: list[Exception] = []

    def writer(k: int) -> None:
        try:
            for i in range(40):
                with factory() as s, s.begin():
                    s.scalar(select(func.count()).select_from(Department))  # read first
                    s.add(Department(code=f"W{k}-{i}", name=f"写入{k}-{i}"))
        except Exception as exc:  # pragma: no cover - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Department)) == 320
    eng.dispose()


def test_utc_timestamps_round_trip_and_naive_refused(db_url):
    from bingan.core.models import Patient

    eng = make_engine(db_url)
    factory = make_sessionmaker(eng)
    t = dt.datetime(2026, 5, 1, 8, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with factory() as s, s.begin():
        s.add(Patient(mrn="00000001", name="甲", created_at=t, updated_at=t))
    with factory() as s:
        got = s.scalar(select(Patient.created_at))
        assert got == t and got.tzinfo is not None
    with pytest.raises(Exception, match="naive"):
        with factory() as s, s.begin():
            s.add(Patient(mrn="00000002", name="乙", created_at=dt.datetime(2026, 1, 1),
                          updated_at=dt.datetime(2026, 1, 1)))
    with eng.connect() as c:
        assert c.execute(text("select count(*) from patient")).scalar() == 1
    eng.dispose()
