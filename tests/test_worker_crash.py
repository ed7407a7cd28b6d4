"""kill -9 through the whole ingest, and a full disk (issue 18; bench/workers.py has the
machinery and runs 1,000 cycles).

A real web server and two ``bingan worker`` processes take uploads from two scanning stations
(each page retried until acknowledged) while the test SIGKILLs the server, a worker or all of
them a few times; afterwards every acknowledged upload is stored, every page once, each
record's PDF holds its pages, no task failed and every blob hashes to its key. On a small
tmpfs as BINGAN_HOME, no upload is acknowledged that was not stored, the refused ones get a
507, and after space is freed they are accepted and processed.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "workers.py"
PLUGINS = ["imaging", "capture", "archive"]  # OCR left out for time; the bench runs it

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs SIGKILL and /proc")


def _bench():
    spec = importlib.util.spec_from_file_location("bingan_bench_workers", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_of_server_and_workers_loses_nothing_and_does_nothing_twice(tmp_path, backend):
    from fixtures_db import require_pg

    bench = _bench()
    if backend == "postgresql":
        require_pg("postgres" if bench.pg_reachable() else None)
    seed = random.randrange(1 << 30)
    stats = bench.crash_cycles(tmp_path, cycles=5, seed=seed, pg=backend == "postgresql",
                               plugins=PLUGINS, records=2, rate=6.0, gap=(0.3, 0.8),
                               drain_timeout=300)
    context = f"seed {seed}: {stats}"
    assert stats.cycles == 5, context
    assert stats.result["acked"] >= 1, context  # uploads got through between the kills
    assert stats.undrained == "", context
    assert stats.result["lost"] == 0, context
    assert stats.result["twice"] == 0, context
    assert stats.result["problems"] == [], context
    assert stats.result["pages"] == stats.result["acked"], context


def test_disk_full_reports_no_success_for_unstored_uploads_and_recovers(tmp_path):
    bench = _bench()
    mnt = tmp_path / "mnt"
    why = bench.mount_tmpfs(mnt, 48)
    if why:
        pytest.skip(f"cannot mount a tmpfs as a small disk: {why}")
    try:
        st = bench.disk_full(tmp_path, mnt, size_mb=48, uploads=30, plugins=PLUGINS)
    finally:
        bench.umount(mnt)
    assert st.refused > 0, st  # the disk did fill up
    assert set(st.refusals) == {"507"}, st  # refused with "storage full", never a success
    # nothing half-written while full: DB intact, DB and blobs agree, no temp file left
    assert st.half_written == 0 and st.integrity == "ok", st
    assert st.missing == 0 and st.corrupt == 0 and st.temp_left == 0, st
    assert st.acked_after == st.refused and st.result["acked"] == 30, st
    assert st.result["lost"] == 0 and st.result["twice"] == 0, st
