"""``bingan worker``: the durable queue run by worker processes outside the web server.

Workers are real subprocesses (tests/worker_child.py runs the worker loop of ``core.worker``
with a test task whose effects are counted) on the test's database, SQLite and PostgreSQL:
a worker killed with SIGKILL mid-task has its task taken over by another worker at once (same
host); a frozen worker (SIGSTOP: alive, silent, like a host cut off) loses its task when its
lease runs out while a live one keeps it for as long as it runs (heartbeat), and its late
finish changes nothing; SIGTERM finishes the current task and exits. Each task has one effect
however often it ran.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bingan.core import tasks
from bingan.core.models import Task

HERE = Path(__file__).parent
LEASE = 2  # seconds: short, so a lease running out takes a test seconds


@pytest.fixture
def work(rt, tmp_path):
    """Enqueue ``test.slow`` tasks and start worker processes on ``rt``'s database."""
    import worker_child

    rt.pm.register(worker_child.plugin)
    out = tmp_path / "out"
    out.mkdir()
    procs: list[subprocess.Popen] = []

    class Work:
        dir = out

        def enqueue(self, n: int, seconds: float = 0.0) -> int:
            with rt.sessions() as s, s.begin():
                return tasks.enqueue(s, rt, "test.slow", {"n": n, "seconds": seconds}).id

        def start(self) -> subprocess.Popen:
            env = dict(os.environ, WORKER_TEST_DIR=str(out), WORKER_TEST_DB=str(rt.engine.url
                       .render_as_string(hide_password=False)),
                       WORKER_TEST_HOME=str(rt.config.home), WORKER_TEST_LEASE=str(LEASE))
            p = subprocess.Popen([sys.executable, str(HERE / "worker_child.py")], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
            procs.append(p)
            return p

        def lines(self, name: str) -> list[tuple[int, int]]:
            f = out / name
            if not f.exists():
                return []
            return [tuple(map(int, ln.split())) for ln in f.read_text().splitlines()]

        def wait_for(self, what, timeout: float = 30.0):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                got = what()
                if got:
                    return got
                time.sleep(0.05)
            raise AssertionError(f"timed out waiting for {what}")

        def task(self, task_id: int) -> Task:
            with rt.sessions() as s:
                t = s.get(Task, task_id)
                s.expunge(t)
                return t

    yield Work()
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
        if p.stdout:
            p.stdout.close()
        if p.stderr:
            p.stderr.close()


def test_killed_worker_task_taken_over_and_sigterm_finishes_current(work):
    first = work.enqueue(0, seconds=1.0)
    a = work.start()
    work.wait_for(lambda: work.lines("starts.log"))  # a is inside the task
    a.send_signal(signal.SIGKILL)
    a.wait()
    assert work.task(first).status == "running"  # leased to a dead process
    others = [work.enqueue(n) for n in (1, 2, 3)]
    b = work.start()  # gives back the dead worker's task at once (same host), runs all
    work.wait_for(lambda: all(work.task(i).status == "done" for i in [first, *others]))
    t = work.task(first)
    assert t.attempts == 2 and t.result == {"n": 0, "pid": b.pid}
    assert work.lines("starts.log")[:2] == [(0, a.pid), (0, b.pid)]
    assert sorted(work.lines("effects.log")) == [(n, b.pid) for n in range(4)]  # once each

    # SIGTERM mid-task: the task is finished, the next one is left for others
    current, later = work.enqueue(4, seconds=1.5), work.enqueue(5)
    work.wait_for(lambda: (4, b.pid) in work.lines("starts.log"))
    b.send_signal(signal.SIGTERM)
    assert b.wait(timeout=30) == 0
    assert work.task(current).status == "done"
    assert work.task(later).status == "queued"
    assert (4, b.pid) in work.lines("effects.log")


def test_heartbeat_keeps_a_long_task_and_a_frozen_worker_loses_it(work):
    both = {p.pid: p for p in (work.start(), work.start())}
    long = work.enqueue(10, seconds=3 * LEASE)  # runs longer than a lease
    holder = work.wait_for(lambda: work.lines("starts.log"))[0][1]
    a, b = both.pop(holder), next(iter(both.values()))
    time.sleep(LEASE * 1.5)  # past the first lease: a's heartbeat renewed it, b keeps off
    t = work.task(long)
    assert (t.status, t.locked_by.split(":")[1]) == ("running", str(a.pid))
    assert work.lines("starts.log") == [(10, a.pid)]

    a.send_signal(signal.SIGSTOP)  # alive but silent (a host cut off): its lease runs out
    work.wait_for(lambda: (10, b.pid) in work.lines("starts.log"), timeout=LEASE * 5)
    work.wait_for(lambda: work.task(long).status == "done", timeout=LEASE * 10)
    assert work.task(long).result == {"n": 10, "pid": b.pid}
    a.send_signal(signal.SIGCONT)  # finishes late: its result is ignored, no second effect
    work.enqueue(11)
    work.wait_for(lambda: len(work.lines("effects.log")) == 2)
    time.sleep(0.5)
    t = work.task(long)
    assert (t.status, t.result, t.attempts) == ("done", {"n": 10, "pid": b.pid}, 2)
    assert [n for n, _ in work.lines("effects.log")] .count(10) == 1
    for p in (a, b):
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0


def test_reclaim_skips_tasks_of_live_or_foreign_workers(rt):
    """Only this host's dead processes are reclaimed; a lease of another host waits."""
    import worker_child

    rt.pm.register(worker_child.plugin)
    with rt.sessions() as s, s.begin():
        for n in range(2):
            tasks.enqueue(s, rt, "test.slow", {"n": n})
    foreign = tasks.claim(rt, "another-host:12345:1")
    mine = tasks.claim(rt, tasks.worker_name())
    assert foreign and mine
    assert tasks.reclaim_dead_local(rt) == 0
    with rt.sessions() as s:
        assert {t.status for t in s.scalars(select(Task))} == {"running"}


def _children(pid: int) -> set[int]:
    try:
        return set(map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split()))
    except FileNotFoundError:
        return set()


def test_bingan_worker_processes_run_real_captures_and_restart_a_dead_one(rt, tmp_path):
    """``bingan worker -n 2``: two worker processes process uploads (capture.process, the real
    handler); one killed with SIGKILL is started again; SIGTERM stops them all, cleanly."""
    from bingan_capture.ingest import receive
    from bingan_capture.models import CaptureFile
    from bingan_capture.testing import encode, make_admission, page_image

    from bingan.core.pages import current_pages

    adm = make_admission(rt, "10000001", "ZY202600000001")
    cfg = tmp_path / "worker.toml"  # the database's plugins; OCR and PDFs off (not tested here)
    cfg.write_text('[core]\nhospital_name = "测试医院"\n[plugins]\nenabled = ['
                   + ", ".join(f'"{n}"' for n in rt.config.enabled) + ']\n'
                   '[plugins.pageindex]\nauto_ocr = false\n[plugins.archive]\nauto_build = false\n',
                   encoding="utf-8")
    env = dict(os.environ, BINGAN_CONFIG=str(cfg), BINGAN_HOME=str(rt.config.home),
               BINGAN_DATABASE_URL=rt.engine.url.render_as_string(hide_password=False),
               BINGAN_KEY_DIR=str(Path(rt.config.core.key_dir)))
    exe = Path(sys.executable).with_name("bingan")
    log_file = tmp_path / "worker.log"  # a file, not a pipe nobody reads while they run
    with log_file.open("w") as err:
        sup = subprocess.Popen([str(exe), "worker", "-n", "2", "--poll", "0.2"], env=env,
                               stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while len(_children(sup.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        first = _children(sup.pid)
        assert len(first) == 2, log_file.read_text()
        with rt.sessions() as s, s.begin():
            for i in range(3):
                receive(s, rt, encode(page_image(f"第{i}页", seed=i), "JPEG"), f"p{i}.jpg",
                        "upload", admission_no=adm.admission_no, by="R0001")

        def processed():
            with rt.sessions() as s:
                return s.scalar(select(Task).where(Task.status != "done")) is None

        deadline = time.monotonic() + 90
        while not processed() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processed()
        with rt.sessions() as s:
            assert len(current_pages(s, adm.id)) == 3
            assert {c.status for c in s.scalars(select(CaptureFile))} == {"done"}

        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = _children(sup.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.1)
        assert len(_children(sup.pid)) == 2 and victim not in _children(sup.pid)
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=60) == 0
        log = log_file.read_text()
        assert "重新启动" in log and "工作进程已停止" in log
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
