"""Workers give freed C-heap memory back to the system when the queue runs dry."""

from __future__ import annotations

import sys
import time
import types

import pytest

from bingan.hooks import hookimpl
from bingan.core import tasks


def _plugin(ran: list):
    m = types.ModuleType("trim_plugin")
    m.register_task_handlers = hookimpl(lambda: {"test.trim": lambda p: ran.append(p["n"])})
    return m


@pytest.fixture
def trims(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(tasks, "_malloc_trim", lambda pad: calls.append(pad) or 1)
    return calls


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_release_memory_calls_glibc_malloc_trim():
    assert tasks._malloc_trim is not None
    assert tasks.release_memory() is True


def test_release_memory_without_malloc_trim(monkeypatch):
    monkeypatch.setattr(tasks, "_malloc_trim", None)
    assert tasks.release_memory() is False


def test_run_until_idle_trims_once_after_the_queue_runs_dry(rt, trims):
    ran: list[int] = []
    rt.pm.register(_plugin(ran))
    assert tasks.run_until_idle(rt) == 0
    assert trims == []  # nothing ran, nothing to give back
    with rt.sessions() as s, s.begin():
        for n in range(3):
            tasks.enqueue(s, rt, "test.trim", {"n": n})
    assert tasks.run_until_idle(rt) == 3
    assert ran == [0, 1, 2] and trims == [0]  # not once per task


def test_worker_trims_when_idle_after_work(rt, trims):
    ran: list[int] = []
    rt.pm.register(_plugin(ran))
    with rt.sessions() as s, s.begin():
        for n in range(2):
            tasks.enqueue(s, rt, "test.trim", {"n": n})
    w = tasks.Worker(rt, poll_seconds=0.02)
    w.start()
    try:
        deadline = time.monotonic() + 30
        while not trims and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(ran) == [0, 1] and trims == [0]
        time.sleep(0.2)  # idle polls without new work do not trim again
        assert trims == [0]
        with rt.sessions() as s, s.begin():
            tasks.enqueue(s, rt, "test.trim", {"n": 2})
        while len(trims) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ran[-1] == 2 and trims == [0, 0]
    finally:
        w.stop()
        w.join(5)
