"""Database engines and sessions (SQLAlchemy 2).

SQLite runs in WAL mode with a busy timeout, and every transaction starts with
``BEGIN IMMEDIATE``: with pysqlite's deferred BEGIN, concurrent writers that read first fail to
upgrade their lock and lose writes (DESIGN.md, lessons). PostgreSQL uses psycopg 3.

Read-only sessions (``make_read_sessionmaker``, ``Runtime.read_sessions``) start SQLite's
transaction with a plain (deferred) ``BEGIN`` instead: they take no write lock, so they never
wait for a writer nor hold one up (BEGIN IMMEDIATE serializes every transaction, reads
included, across all processes). Flushing a change in one raises ``ReadOnlySession`` before
anything is sent, so the lock upgrade the lesson warns about cannot happen.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


SQLITE_MMAP_BYTES = 1 << 30  # address space, not memory: pages are shared with the OS cache
SQLITE_CACHE_KIB = 32 * 1024
READ_ONLY = "bingan_read_only"  # execution option of read-only sessions' connections


class ReadOnlySession(RuntimeError):
    """A change was flushed in a read-only session (``make_read_sessionmaker``)."""


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL, busy timeout, foreign keys and BEGIN IMMEDIATE."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, connect_args={"timeout": 60, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # pragma: no branch
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            # reads of a large database (millions of admissions) go through the OS page cache
            # by memory map instead of copies into SQLite's 2 MB default cache; a 32 MB cache
            # per connection keeps hot index pages (measured in bench/search.py)
            cur.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _refuse_flush(session: Session, _flush_context, _instances) -> None:
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        raise ReadOnlySession("a read-only session cannot write (use rt.sessions for writes)")


def make_read_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reading only: on SQLite their transaction takes no write lock (a plain
    ``BEGIN``); a flush of any change raises ``ReadOnlySession``."""
    factory = sessionmaker(engine.execution_options(**{READ_ONLY: True}),
                           expire_on_commit=False)
    event.listen(factory, "before_flush", _refuse_flush)
    return factory


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error."""
    with factory() as session:
        with session.begin():
            yield session
