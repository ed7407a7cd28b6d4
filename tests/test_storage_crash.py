"""kill -9 test of the blob store (DESIGN.md, lessons: atomic files and the cleanup pass).

60 cycles: a writer process stores and commits random blobs to SQLite and is killed with SIGKILL
after a random 20-300 ms; after each kill every committed row's file must exist and hash to its
key, and ``cleanup_store(grace=0)`` must leave no temp file and no orphan. The cycle machinery
is bench/storage_crash.py (which runs 1,000 cycles and measures put() throughput).
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "storage_crash.py"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


def _bench_module():
    spec = importlib.util.spec_from_file_location("bingan_bench_storage_crash", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_kill_9_never_loses_a_committed_blob(tmp_path):
    bench = _bench_module()
    db_url = bench.migrated_sqlite(tmp_path)  # core's migrations, as in production
    seed = random.randrange(1 << 30)
    stats = bench.run_crash_cycles(
        db_url, tmp_path / "blobs", cycles=60, seed=seed, full_verify_every=15
    )
    context = f"seed {seed}: {stats}"
    assert stats.cycles == 60, context
    assert stats.committed > 60, context  # the writers got work done between kills
    assert stats.missing == set(), context
    assert stats.corrupt == set(), context
    assert stats.leftover_temp == 0, context
    assert stats.leftover_orphans == 0, context
    assert stats.full_verifies == 4, context
    # kills landed after a put and before its commit (or writers rolled back)
    assert stats.orphans_cleaned > 0, context
