"""The durable task queue: retries, back-off, leases that outlive a dead worker, dedupe."""

from __future__ import annotations

import datetime as dt
import os
import threading
import types

import pytest
from sqlalchemy import select

from bingan.hooks import hookimpl
from bingan.core import tasks
from bingan.core.models import Task, utcnow

CALLS: list[dict] = []


def _plugin(fail_times: int = 0):
    state = {"left": fail_times}

    def work(payload):
        CALLS.append(payload)
        if state["left"] > 0:
            state["left"] -= 1
            raise RuntimeError("scanner share not mounted")
        return {"done": payload["n"]}

    m = types.ModuleType("task_plugin")
    m.register_task_handlers = hookimpl(lambda: {"test.work": work})
    return m


def test_hook_register_task_handlers(rt):
    CALLS.clear()
    rt.pm.register(_plugin())
    with rt.sessions() as s, s.begin():
        tasks.enqueue(s, rt, "test.work", {"n": 1})
        with pytest.raises(tasks.UnknownTaskKind):
            tasks.enqueue(s, rt, "test.nothing", {})
    assert tasks.run_until_idle(rt) == 1
    with rt.sessions() as s:
        t = s.scalar(select(Task))
        assert (t.status, t.result, t.attempts) == ("done", {"done": 1}, 1)
    assert CALLS == [{"n": 1}]


def test_retry_with_backoff_then_failed(rt):
    CALLS.clear()
    rt.pm.register(_plugin(fail_times=10))
    with rt.sessions() as s, s.begin():
        tasks.enqueue(s, rt, "test.work", {"n": 2}, max_attempts=3)
    assert tasks.run_until_idle(rt) == 1  # failed once, now waits for its back-off
    with rt.sessions() as s:
        t = s.scalar(select(Task))
        assert t.status == "queued" and "scanner share" in t.last_error
        assert t.run_after > utcnow()
    for _ in range(2):  # make it due again and run
        with rt.sessions() as s, s.begin():
            s.scalar(select(Task)).run_after = utcnow() - dt.timedelta(seconds=1)
        tasks.run_one(rt)
    with rt.sessions() as s:
        t = s.scalar(select(Task))
        assert (t.status, t.attempts) == ("failed", 3)


def test_dead_worker_lease_runs_out_and_task_runs_again(rt):
    CALLS.clear()
    rt.pm.register(_plugin())
    with rt.sessions() as s, s.begin():
        tasks.enqueue(s, rt, "test.work", {"n": 3})
    dead = tasks.claim(rt, "dead-worker")  # claimed, then the process "dies"
    assert dead is not None
    assert tasks.run_one(rt) is None  # leased: nobody else takes it
    with rt.sessions() as s, s.begin():
        s.scalar(select(Task)).lease_until = utcnow() - dt.timedelta(seconds=1)
    assert tasks.run_one(rt) is not None
    with rt.sessions() as s:
        t = s.scalar(select(Task))
        assert (t.status, t.attempts) == ("done", 2)
    # the dead worker finishing late changes nothing
    tasks._finish(rt, dead.id, "dead-worker", error="late")
    with rt.sessions() as s:
        assert s.scalar(select(Task)).status == "done"


def test_dedupe_key_makes_enqueue_idempotent(rt):
    rt.pm.register(_plugin())
    with rt.sessions() as s, s.begin():
        a = tasks.enqueue(s, rt, "test.work", {"n": 4}, dedupe_key="file:abc")
        b = tasks.enqueue(s, rt, "test.work", {"n": 4}, dedupe_key="file:abc")
        assert a.id == b.id
    with rt.sessions() as s:
        assert len(s.scalars(select(Task)).all()) == 1


def test_concurrent_workers_run_each_task_once(rt):
    CALLS.clear()
    rt.pm.register(_plugin())
    with rt.sessions() as s, s.begin():
        for n in range(40):
            tasks.enqueue(s, rt, "test.work", {"n": n})
    threads = [threading.Thread(target=tasks.run_until_idle, args=(rt,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(c["n"] for c in CALLS) == list(range(40))
    with rt.sessions() as s:
        assert tasks.counts(s) == {"done": 40}


def test_hook_task_failed(rt):
    """Once the last attempt failed (not before), ``task_failed`` hears the kind, payload,
    error and attempts, after the failure is committed."""
    CALLS.clear()
    heard = []

    class Listener:
        @hookimpl
        def task_failed(self, kind, payload, error, attempts):
            with rt.sessions() as s:  # committed: another session sees it
                status = s.scalar(select(Task)).status
            heard.append((kind, payload, error, attempts, status))

    rt.pm.register(_plugin(fail_times=10))
    rt.pm.register(Listener())
    with rt.sessions() as s, s.begin():
        tasks.enqueue(s, rt, "test.work", {"n": 5}, max_attempts=2)
    tasks.run_until_idle(rt)
    assert heard == []  # a retry follows
    with rt.sessions() as s, s.begin():
        s.scalar(select(Task)).run_after = utcnow() - dt.timedelta(seconds=1)
    tasks.run_until_idle(rt)
    assert heard == [("test.work", {"n": 5}, "RuntimeError: scanner share not mounted", 2,
                      "failed")]


def test_tasks_of_a_killed_local_worker_are_reclaimed_at_start(rt):
    """A task leased to a worker of this host whose process was killed runs again as soon as
    workers start, not after the 10-minute lease; a live process keeps its lease."""
    import signal
    import socket
    import subprocess
    import sys

    CALLS.clear()
    rt.pm.register(_plugin())
    with rt.sessions() as s, s.begin():
        tasks.enqueue(s, rt, "test.work", {"n": 6})
        tasks.enqueue(s, rt, "test.work", {"n": 7})
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = socket.gethostname()
    dead = tasks.claim(rt, f"{host}:{proc.pid}:1")
    alive = tasks.claim(rt, f"{host}:{os.getppid()}:1")  # our parent: alive
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert tasks.run_one(rt) is None  # both leased for 10 minutes
    assert tasks.reclaim_dead_local(rt) == 1
    with rt.sessions() as s:
        assert s.get(Task, dead.id).status == "queued"
        assert s.get(Task, alive.id).status == "running"
    assert tasks.run_until_idle(rt) == 1
    assert CALLS == [{"n": dead.payload["n"]}]
    from bingan.core.web.app import create_app
    from webutil import web_client

    with rt.sessions() as s, s.begin():  # a server starting reclaims too
        t = s.get(Task, alive.id)
        t.locked_by = f"{host}:{proc.pid}:2"
    with web_client(rt, app=create_app(rt, workers=1)):
        for _ in range(100):
            with rt.sessions() as s:
                if s.get(Task, alive.id).status == "done":
                    break
            threading.Event().wait(0.1)
    with rt.sessions() as s:
        assert s.get(Task, alive.id).status == "done"


def test_disk_full_does_not_use_up_attempts(rt):
    """A handler failing because the disk is full is queued again without counting the
    attempt (the task finishes once space is freed); a real failure counts."""
    import errno

    state = {"full": True}

    def work(payload):
        if state["full"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return {"ok": payload["n"]}

    m = types.ModuleType("full_plugin")
    m.register_task_handlers = hookimpl(lambda: {"test.full": work})
    rt.pm.register(m)
    with rt.sessions() as s, s.begin():
        tasks.enqueue(s, rt, "test.full", {"n": 1}, max_attempts=2)
    for _ in range(4):  # more failures than max_attempts: still queued
        with rt.sessions() as s, s.begin():
            s.scalar(select(Task)).run_after = utcnow() - dt.timedelta(seconds=1)
        assert tasks.run_one(rt) is not None
    with rt.sessions() as s:
        t = s.scalar(select(Task))
        assert (t.status, t.attempts) == ("queued", 0) and "No space left" in t.last_error
        assert t.run_after > utcnow()
    state["full"] = False
    with rt.sessions() as s, s.begin():
        s.scalar(select(Task)).run_after = utcnow() - dt.timedelta(seconds=1)
    tasks.run_one(rt)
    with rt.sessions() as s:
        assert (s.scalar(select(Task)).status, s.scalar(select(Task)).result) == ("done", {"ok": 1})
    assert not tasks.transient(ValueError("bad page")) and not tasks.transient(
        OSError(errno.EACCES, "denied"))
