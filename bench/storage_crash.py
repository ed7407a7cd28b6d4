"""kill -9 cycles against the blob store, and put() throughput beside a no-fsync floor.

Each cycle starts a writer process that stores random blobs with ``store_blob`` and commits
them to a SQLite database (the database is the truth: a blob is committed once its row is),
kills it with SIGKILL after a random 20-300 ms, then checks in this process that

- every committed Blob row has its file, and the file hashes to its key with the row's size;
- ``cleanup_store(grace=0)`` leaves the temp folder empty and no orphan (file without a row).

The writer mixes fresh random blobs (512 B - 256 KB), re-puts of a small pool of fixed contents
(so old orphans and committed blobs are put again), 1-3 MB streamed blobs (so kills land
mid-write) and transactions it rolls back. Writers are forked from a "zygote" process started
once with everything imported, so a cycle costs its random delay and its checks, not an
interpreter start-up (0.3-0.6 s here, which would double the time of the test).

    .venv/bin/python bench/storage_crash.py [--cycles 1000] [--seed N] [--workdir DIR]

tests/test_storage_crash.py runs the same cycles (fewer) in the normal test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import select as _select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from bingan.core.db import make_engine, make_sessionmaker  # noqa: E402
from bingan.core.models import Blob  # noqa: E402
from bingan.core.storage import (  # noqa: E402
    BlobMissing, LocalBlobStore, cleanup_store, hash_blob, store_blob, verify_store,
)

POOL = 48  # fixed contents that writers put again and again


# --------------------------------------------------------------------------------------------
# The writer (child process)
# --------------------------------------------------------------------------------------------


def _pooled(i: int) -> bytes:
    """Fixed content number ``i`` (1-64 KB), the same in every process."""
    seed = hashlib.sha256(f"pool-{i}".encode()).digest()
    return random.Random(seed).randbytes(1024 * (1 + i % 64))


def _payload(rng: random.Random) -> bytes | io.BytesIO:
    r = rng.random()
    if r < 0.25:
        return _pooled(rng.randrange(POOL))
    if r < 0.28:  # big, streamed in 1 MiB chunks: a kill often lands mid-write
        return io.BytesIO(rng.randbytes(rng.randint(1, 3) << 20))
    return rng.randbytes(int(2 ** rng.uniform(9, 18)))


def writer_loop(db_url: str, store_root: str, seed: int) -> None:
    """Store and commit random blobs until killed."""
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    store = LocalBlobStore(store_root)
    rng = random.Random(seed)
    while True:
        with sessions() as session:
            for _ in range(rng.randint(1, 3)):
                store_blob(session, store, _payload(rng), "application/x-test")
            if rng.random() < 0.1:
                session.rollback()  # a writer that gives up: its files become orphans
            else:
                session.commit()


def zygote_main(db_url: str, store_root: str) -> None:
    """Fork writers on request, so none pays for interpreter start-up and imports.

    Commands on stdin, one reply line each on stdout: ``fork SEED`` -> ``pid N``;
    ``reap`` -> ``exit SIGNAL CODE`` (waits for the last writer). The writer is reaped only when
    asked, so the pid the parent kills cannot have been reused. Single-threaded and without a
    database connection before forking, so forking is safe."""
    _warm_up(db_url)
    print("ready", flush=True)
    pid = 0
    while line := sys.stdin.readline():
        cmd, *args = line.split()
        if cmd == "fork":
            pid = os.fork()
            if pid == 0:
                _run_forked_writer(db_url, store_root, int(args[0]))
            print(f"pid {pid}", flush=True)
        elif cmd == "reap":
            _, status = os.waitpid(pid, 0)
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
            print(f"exit {sig} {code}", flush=True)


def _warm_up(db_url: str) -> None:
    """Do once what every writer would do first (dialect imports, mapper configuration,
    statement compilation), without opening a connection."""
    from sqlalchemy.dialects.sqlite import insert
    from sqlalchemy.orm import configure_mappers

    engine = make_engine(db_url)
    configure_mappers()
    stmt = insert(Blob).values(sha256="0" * 64, size=0, media_type="", created_at=None)
    stmt.on_conflict_do_nothing().compile(dialect=engine.dialect)
    engine.dispose()


def _run_forked_writer(db_url: str, store_root: str, seed: int) -> None:
    try:
        writer_loop(db_url, store_root, seed)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
    os._exit(1)  # a writer only ends by being killed; never return into the zygote's loop


# --------------------------------------------------------------------------------------------
# The parent: kill, check, clean
# --------------------------------------------------------------------------------------------


@dataclass
class CrashStats:
    """Totals over all cycles; ``missing``/``corrupt``/``leftover_*`` must stay empty."""

    cycles: int = 0
    committed: int = 0  # Blob rows at the end
    orphans_cleaned: int = 0  # written but never committed (killed or rolled back)
    temp_cleaned: int = 0  # temp files of writes cut short
    missing: set[str] = field(default_factory=set)
    corrupt: set[str] = field(default_factory=set)
    leftover_temp: int = 0  # temp files still there after cleanup
    leftover_orphans: int = 0  # orphans still there after cleanup
    full_verifies: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.leftover_temp or self.leftover_orphans)


class _Zygote:
    """The process that forks the writers (see ``zygote_main``); its stderr goes to a log."""

    def __init__(self, db_url: str, store_root: Path, log_path: Path) -> None:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--zygote", db_url,
                 str(store_root)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=str(REPO),
            )
        self._expect("ready")

    def _send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()

    def _expect(self, word: str, timeout: float = 60.0) -> list[str]:
        assert self.proc.stdout is not None
        ready, _, _ = _select.select([self.proc.stdout], [], [], timeout)
        parts = (self.proc.stdout.readline() if ready else b"").decode().split()
        if not parts or parts[0] != word:
            raise RuntimeError(f"writer zygote: expected {word!r}, got {parts!r}; "
                               f"log: {self.log_tail()}")
        return parts[1:]

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def start_writer(self, seed: int) -> int:
        """Fork a writer that starts storing at once; its pid."""
        self._send(f"fork {seed}")
        return int(self._expect("pid")[0])

    def kill_writer(self, pid: int) -> None:
        """SIGKILL the writer; raise if it had already ended by itself (an error)."""
        os.kill(pid, signal.SIGKILL)
        self._send("reap")
        sig, code = (int(x) for x in self._expect("exit"))
        if sig != signal.SIGKILL:
            raise RuntimeError(f"writer ended by itself (exit {code}): {self.log_tail()}")

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def _temp_files(store: LocalBlobStore) -> int:
    return sum(1 for _ in store.tmp.iterdir())


def _check_cycle(sessions, store: LocalBlobStore, seen: dict[str, int], stats: CrashStats,
                 full: bool) -> None:
    """Check one cycle's aftermath, clean up with grace 0, check the clean state."""
    with sessions() as session:
        rows = dict(session.execute(select(Blob.sha256, Blob.size)).all())
        session.commit()
    keys = set(store.iter_keys())
    stats.missing.update(sha for sha in rows if sha not in keys)
    for sha, size in rows.items():  # hash each committed blob once, when it first shows up
        if sha in seen or sha not in keys:
            continue
        try:
            actual = hash_blob(store, sha)
        except BlobMissing:
            stats.missing.add(sha)
            continue
        if actual != (sha, size):
            stats.corrupt.add(sha)
        seen[sha] = size
    if full:
        with sessions() as session:
            report = verify_store(session, store)
        stats.missing.update(report.missing)
        stats.corrupt.update(report.corrupt)
        stats.full_verifies += 1
    with sessions() as session:
        temp, orphans = cleanup_store(session, store, orphan_grace_seconds=0)
    stats.temp_cleaned += temp
    stats.orphans_cleaned += orphans
    stats.leftover_temp += _temp_files(store)
    after = set(store.iter_keys())
    stats.leftover_orphans += len(after - set(rows))
    stats.missing.update(sha for sha in rows if sha not in after)  # cleanup took a real blob


def run_crash_cycles(
    db_url: str,
    store_root: Path,
    cycles: int,
    *,
    seed: int = 0,
    min_ms: float = 20,
    max_ms: float = 300,
    full_verify_every: int = 100,
    log: Callable[[str], object] | None = None,
) -> CrashStats:
    """Run ``cycles`` kill -9 cycles against an already migrated database; return totals.

    Every cycle checks the new rows by hash and all rows for presence; ``verify_store`` (a full
    hash pass) runs every ``full_verify_every`` cycles and after the last."""
    rng = random.Random(seed)
    store = LocalBlobStore(store_root)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    stats = CrashStats()
    seen: dict[str, int] = {}
    started = time.perf_counter()
    zygote = _Zygote(db_url, store_root, Path(store_root).parent / "writers.log")
    try:
        for cycle in range(1, cycles + 1):
            pid = zygote.start_writer(rng.getrandbits(32))
            time.sleep(rng.uniform(min_ms, max_ms) / 1000)
            zygote.kill_writer(pid)
            full = cycle == cycles or cycle % full_verify_every == 0
            _check_cycle(sessions, store, seen, stats, full)
            stats.cycles = cycle
            if log and (cycle % 50 == 0 or cycle == cycles):
                log(f"cycle {cycle}: {len(seen)} committed, {stats.orphans_cleaned} orphans, "
                    f"{stats.temp_cleaned} temp cleaned, ok={stats.ok}")
    finally:
        zygote.close()
        engine.dispose()
    stats.committed = len(seen)
    stats.seconds = time.perf_counter() - started
    return stats


# --------------------------------------------------------------------------------------------
# Throughput
# --------------------------------------------------------------------------------------------


def _floor_write(path: Path, data: bytes, fsync: bool) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())


def throughput(workdir: Path, plan: tuple[tuple[int, int], ...] = (
    (64 << 10, 400), (1 << 20, 100), (16 << 20, 8),
)) -> list[tuple[str, float, float, float]]:
    """(size label, floor MB/s, write+fsync MB/s, put MB/s) per blob size, same data."""
    out = []
    for size, count in plan:
        blobs = [os.urandom(size) for _ in range(count)]
        total_mb = size * count / 1e6
        rates = []
        for kind in ("floor", "fsync", "put"):
            target = workdir / f"tp-{kind}-{size}"
            target.mkdir(parents=True)
            store = LocalBlobStore(target) if kind == "put" else None
            t0 = time.perf_counter()
            for i, data in enumerate(blobs):
                if store is not None:
                    store.put(data)
                else:
                    _floor_write(target / str(i), data, fsync=kind == "fsync")
            rates.append(total_mb / (time.perf_counter() - t0))
            shutil.rmtree(target, ignore_errors=True)
        label = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"
        out.append((f"{label} x {count}", *rates))
    return out


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def migrated_sqlite(workdir: Path) -> str:
    """A SQLite database under ``workdir`` migrated with core's migrations; its URL."""
    from bingan.core.config import load_config
    from bingan.core.migrate import upgrade
    from bingan.core.runtime import build_runtime, set_current

    home = workdir / "home"
    url = f"sqlite:///{workdir / 'crash.sqlite3'}"
    cfg = load_config(REPO / "plugins.toml", env={"BINGAN_HOME": str(home),
                                                  "BINGAN_DATABASE_URL": url})
    rt = build_runtime(cfg.with_enabled([]))
    upgrade(rt)
    rt.close()
    set_current(None)
    return url


def _print_report(stats: CrashStats, rates) -> None:
    rows = [
        ("cycles (kill -9)", stats.cycles),
        ("blobs committed", stats.committed),
        ("written, uncommitted: killed or rolled back (orphans cleaned)", stats.orphans_cleaned),
        ("temp files cleaned", stats.temp_cleaned),
        ("missing (must be 0)", len(stats.missing)),
        ("corrupt (must be 0)", len(stats.corrupt)),
        ("temp left after cleanup (must be 0)", stats.leftover_temp),
        ("orphans left after cleanup (must be 0)", stats.leftover_orphans),
        ("full verify_store passes", stats.full_verifies),
        ("seconds", f"{stats.seconds:.1f}"),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value:>10}")
    if rates:
        print()
        print(f"{'put() throughput, MB/s':<18}  {'floor (no fsync)':>16}  {'write+fsync':>11}"
              f"  {'put()':>8}  {'put/floor':>9}")
        for label, floor, fsync, put in rates:
            print(f"{label:<22}  {floor:>16.0f}  {fsync:>11.0f}  {put:>8.0f}  "
                  f"{put / floor:>9.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--workdir", type=Path, help="default: a temp folder, removed after")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--zygote", nargs=2, metavar=("DB_URL", "STORE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.zygote:
        zygote_main(*args.zygote)
        return 0
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bingan-crash-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        print(f"seed {args.seed}, workdir {workdir}")
        stats = run_crash_cycles(migrated_sqlite(workdir), workdir / "blobs", args.cycles,
                                 seed=args.seed, log=print)
        rates = [] if args.no_throughput else throughput(workdir)
        _print_report(stats, rates)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if stats.ok else 1


if __name__ == "__main__":
    sys.exit(main())
