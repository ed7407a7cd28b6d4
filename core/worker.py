"""``bingan worker``: dedicated processes running the durable task queue (``core.tasks``).

A hospital group runs the web server with ``[core] workers = 0`` (it then only queues work)
and as many ``bingan worker`` processes as its hosts have cores, on any number of hosts that
reach the same PostgreSQL database and storage: claims use ``FOR UPDATE SKIP LOCKED``, so
workers never wait on each other nor take the same task. On SQLite (one host) it works too,
claims are serialized by ``BEGIN IMMEDIATE``; the in-process default is enough there.

``--processes N`` starts a supervisor and N worker processes (each a fresh interpreter running
``bingan worker --processes 1``): a worker that dies is started again (after a pause that grows
while it keeps dying), its tasks given back at once by the survivors of this host.

Stopping: SIGTERM or SIGINT (Ctrl+C) lets each worker finish the task it is running and exit;
the supervisor forwards the signal and waits. A second signal stops a worker at once: its task
is then given back by the next worker of the host to look (a few seconds) or, from another
host, when its lease runs out. A worker killed with SIGKILL, or a host that goes away, is the
same case: handlers are idempotent, the task runs again and has one effect.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable

from bingan.core import tasks

log = logging.getLogger("bingan.worker")


def describe(rt) -> str:
    """Where this worker pulls from, for its first log line."""
    url = rt.engine.url
    db = f"{url.get_backend_name()}://{url.host or ''}/{url.database or ''}"
    return f"{tasks.worker_name().rsplit(':', 1)[0]} 数据库 {db}"


def run_process(rt, *, kinds: list[str] | None = None, poll_seconds: float = 1.0,
                on_task: Callable[[Any, float], None] | None = None,
                install_signals: bool = True, stopping: threading.Event | None = None) -> int:
    """One worker process: run due tasks until SIGTERM/SIGINT (the current task is finished
    first; a second signal exits at once). Returns how many tasks ran."""
    stopping = stopping or threading.Event()
    if install_signals:
        def on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
            if stopping.is_set():  # second signal: leave now, the lease is given back later
                log.warning("再次收到停止信号，立即退出（正在运行的任务稍后由其他工作进程接手）")
                os._exit(1)
            log.info("收到停止信号：完成当前任务后退出")
            stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    known = sorted(tasks.handlers(rt))
    unknown = sorted(set(kinds or ()) - set(known))
    if unknown:
        raise ValueError(f"没有插件处理这些任务类型：{', '.join(unknown)}（可用：{', '.join(known)}）")
    log.info("工作进程已启动：%s，任务类型：%s", describe(rt), ", ".join(kinds or known))
    n = tasks.work_loop(rt, stopping, poll_seconds=poll_seconds, kinds=kinds, on_task=on_task)
    log.info("工作进程已停止（本次运行 %d 个任务）", n)
    return n


class Supervisor:
    """N worker processes; restarts the ones that die; forwards stop signals."""

    def __init__(self, argv: list[str], processes: int, env: dict[str, str] | None = None,
                 restart_pause: float = 1.0, max_pause: float = 60.0) -> None:
        self.argv, self.n, self.env = argv, processes, env
        self.restart_pause, self.max_pause = restart_pause, max_pause
        self.children: list[subprocess.Popen | None] = [None] * processes
        self.pauses = [restart_pause] * processes
        self.started = [0.0] * processes
        self.next_start = [0.0] * processes
        self.stopping = threading.Event()
        self.restarts = 0

    def _start(self, i: int) -> None:
        # own process group: a terminal's Ctrl+C reaches the supervisor only, which tells each
        # worker once (a worker takes a second signal as "exit now")
        self.children[i] = subprocess.Popen(self.argv, env=self.env, process_group=0,
                                            preexec_fn=_stop_with_parent)
        self.started[i] = time.monotonic()
        log.info("工作进程 %d 已启动（pid %d）", i + 1, self.children[i].pid)

    def _forward(self, signum: int) -> None:
        for p in self.children:
            if p is not None and p.poll() is None:
                try:
                    p.send_signal(signum)
                except ProcessLookupError:
                    pass

    def run(self) -> int:
        def on_signal(signum, frame):  # noqa: ARG001
            if not self.stopping.is_set():
                log.info("收到停止信号：各工作进程完成当前任务后退出")
            self.stopping.set()
            self._forward(signal.SIGTERM)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        for i in range(self.n):
            self._start(i)
        while not self.stopping.is_set():
            now = time.monotonic()
            for i, p in enumerate(self.children):
                if p is None:
                    if now >= self.next_start[i] and not self.stopping.is_set():
                        self._start(i)
                    continue
                code = p.poll()
                if code is None:
                    continue
                lived = now - self.started[i]
                # a worker that keeps dying at once (bad configuration, database away) is
                # started again less and less often; one that ran a while, at once
                self.pauses[i] = (self.restart_pause if lived > 60
                                  else min(self.max_pause, self.pauses[i] * 2))
                log.warning("工作进程 %d（pid %d）退出，代码 %s；%.0f 秒后重新启动",
                            i + 1, p.pid, code, self.pauses[i])
                self.children[i] = None
                self.next_start[i] = now + self.pauses[i]
                self.restarts += 1
            self.stopping.wait(0.2)
        codes = []
        for p in self.children:
            if p is not None:
                codes.append(p.wait())
        return 0 if all(c in (0, -signal.SIGTERM) for c in codes) else 1


def _stop_with_parent() -> None:
    """In a worker process of a supervisor (before exec): SIGTERM it when the supervisor dies,
    so a killed supervisor leaves no worker behind (Linux; elsewhere nothing)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def child_argv(kinds: list[str] | None, poll_seconds: float) -> list[str]:
    """The command line of one worker process of a supervisor."""
    argv = [sys.executable, "-m", "bingan.core.cli", "worker", "--processes", "1",
            "--poll", str(poll_seconds)]
    for k in kinds or ():
        argv += ["--kind", k]
    return argv
