"""A durable task queue in the database: work survives restarts and crashes.

``enqueue`` adds a task in the caller's transaction (so work is queued only if the change that
needs it commits). Workers claim the oldest due task with a lease (PostgreSQL: ``FOR UPDATE SKIP
LOCKED``, so many worker hosts can pull; SQLite: ``BEGIN IMMEDIATE`` serializes claims), run the
handler that ``register_task_handlers`` names for its kind, and mark it done. A raising handler
is retried with exponential back-off until ``max_attempts``, then ``task_failed`` tells the
plugin why.

Leases are short (``[core] task_lease_seconds``, default 60 s) and renewed by a heartbeat thread
of the process running the task (every third of the lease), so a task that takes an hour keeps
its lease while its worker lives, and a worker that died, hung or lost its network (any host)
loses the task within one lease: another worker claims it again. A worker on the same host
does not wait: it gives back at once the tasks of local workers whose process is gone
(``reclaim_dead_local``, at start and every few seconds while it polls). A worker whose lease
ran out and that finishes late changes nothing (``_finish`` checks the lease holder).
Handlers must therefore be idempotent: a task may run twice, its effect must be one.

Where tasks run: by default ``bingan serve`` runs ``[core] workers`` worker threads itself; a
hospital group sets ``workers = 0`` and runs ``bingan worker`` (``core.worker``) on any number
of hosts.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import os
import socket
import threading
import traceback
from typing import Any, Callable

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bingan.core.models import Task, utcnow
from bingan.core.plugins import call_with_rt
from bingan.hooks.types import TaskHandler

log = logging.getLogger("bingan.tasks")
DEFAULT_LEASE_SECONDS = 60


def lease_of(rt) -> dt.timedelta:
    """How long a claim (or a heartbeat) holds a task: ``[core] task_lease_seconds``."""
    core = getattr(getattr(rt, "config", None), "core", None)
    return dt.timedelta(seconds=getattr(core, "task_lease_seconds", DEFAULT_LEASE_SECONDS))


class UnknownTaskKind(ValueError):
    """No enabled plugin handles this task kind."""


def handlers(rt) -> dict[str, TaskHandler]:
    out: dict[str, TaskHandler] = {}
    for group in rt.pm.hook.register_task_handlers():
        out.update(group or {})
    return out


def enqueue(session: Session, rt, kind: str, payload: dict[str, Any], *,
            dedupe_key: str | None = None, max_attempts: int = 5,
            run_after: dt.datetime | None = None) -> Task:
    """Queue a task in the caller's transaction. With ``dedupe_key``, queuing the same work
    twice returns the existing task (idempotent re-sends)."""
    if kind not in handlers(rt):
        raise UnknownTaskKind(f"no handler for task kind {kind!r}")
    if dedupe_key:
        existing = session.scalar(select(Task).where(Task.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    task = Task(kind=kind, payload=payload, dedupe_key=dedupe_key, max_attempts=max_attempts,
                run_after=run_after or utcnow())
    try:
        with session.begin_nested():
            session.add(task)
            session.flush()
    except IntegrityError:  # a concurrent enqueue won the dedupe key
        return session.scalar(select(Task).where(Task.dedupe_key == dedupe_key))
    return task


def claim(rt, worker_id: str, kinds: list[str] | None = None,
          now: dt.datetime | None = None) -> Task | None:
    """Take the oldest due task (or one whose lease ran out) and lease it to ``worker_id``."""
    now = now or utcnow()
    with rt.sessions() as s, s.begin():
        q = select(Task).where(or_(
            (Task.status == "queued") & (Task.run_after <= now),
            (Task.status == "running") & (Task.lease_until < now),
        ))
        if kinds is not None:
            q = q.where(Task.kind.in_(kinds))
        q = q.order_by(Task.run_after, Task.id).limit(1)
        if s.bind.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        task = s.scalar(q)
        if task is None:
            return None
        task.status, task.locked_by, task.lease_until = "running", worker_id, now + lease_of(rt)
        task.attempts += 1
        s.flush()
        s.expunge(task)
        return task


def transient(exc: BaseException) -> bool:
    """A failure of the machine, not of the task: the disk (or quota) is full, the database
    went away. Such a task waits and runs again without using up its attempts, so work queued
    while a disk was full finishes once it is freed."""
    import errno

    from sqlalchemy.exc import OperationalError

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(e, OperationalError):
            text = str(e.orig).lower()
            if (e.connection_invalidated or "disk is full" in text or "no space left" in text
                    or getattr(e.orig, "sqlstate", None) == "53100"):  # PostgreSQL disk_full
                return True
        e = e.__cause__ or e.__context__
    return False


def _finish(rt, task_id: int, worker_id: str, *, result=None, error: str | None = None,
            retry_free: bool = False) -> None:
    failed = None
    with rt.sessions() as s, s.begin():
        task = s.get(Task, task_id, with_for_update=True)
        if task is None or task.locked_by != worker_id or task.status != "running":
            return  # the lease ran out and another worker took over
        now = utcnow()
        if error is None:
            task.status, task.result, task.finished_at = "done", result, now
            task.last_error = None
        elif retry_free:  # the machine failed, not the task: wait, keep the attempts
            task.status, task.last_error = "queued", error
            task.attempts = max(0, task.attempts - 1)
            task.run_after = now + dt.timedelta(seconds=30)
        elif task.attempts >= task.max_attempts:
            task.status, task.last_error, task.finished_at = "failed", error, now
            failed = (task.kind, dict(task.payload), error, task.attempts)
        else:
            task.status, task.last_error = "queued", error
            task.run_after = now + dt.timedelta(seconds=min(3600, 2 ** task.attempts))
        task.locked_by, task.lease_until = None, None
    if failed is not None:  # committed: tell the plugin that queued it
        kind, payload, error, attempts = failed
        try:
            rt.pm.hook.task_failed(kind=kind, payload=payload, error=error, attempts=attempts,
                                   rt=rt)
        except Exception:  # the failure is recorded; a broken listener must not hide it
            log.exception("task_failed listeners of task %s (%s)", task_id, kind)


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # the C library the process already uses
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS, Windows)
        return None


_malloc_trim = _load_malloc_trim()


def release_memory() -> bool:
    """Give the C heap's free memory back to the system (glibc ``malloc_trim``); False where
    there is none. Tasks free large page images (26 MB per A4 page at 300 DPI) that glibc's
    per-thread arenas would otherwise keep for the life of the process. Workers call it when
    the queue runs dry, not after every task: trimming between back-to-back tasks made the
    next ones fault the pages in again (+15 % CPU over the demo's tasks)."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


def worker_name() -> str:
    """``host:pid:thread``: who holds a lease (``reclaim_dead_local`` reads the host and pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def reclaim_dead_local(rt) -> int:
    """Give back (queue again, due now) the running tasks leased to workers of this host whose
    process no longer exists: a killed ``bingan serve``, ``bingan worker`` or ``tasks run``.
    Called when workers start and while they poll; a worker on another host, or a live
    process, keeps its lease (and loses it when its heartbeat stops). Returns how many."""
    host = socket.gethostname()
    n = 0
    with rt.sessions() as s, s.begin():
        q = select(Task).where(Task.status == "running", Task.locked_by.like(f"{host}:%"))
        if s.bind.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        for task in s.scalars(q):
            parts = (task.locked_by or "").split(":")
            if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
                continue
            pid = int(parts[1])
            if pid == os.getpid() or _process_alive(pid):
                continue
            log.warning("task %s (%s) was leased to %s, whose process is gone: queued again",
                        task.id, task.kind, task.locked_by)
            # it was due when claimed: it keeps its place in line
            task.status, task.locked_by, task.lease_until = "queued", None, None
            n += 1
    return n


class Heartbeat:
    """One daemon thread per process renewing the leases of the tasks this process runs
    (every third of the lease). It stops renewing what another worker has taken over (the
    lease ran out while this process was frozen or cut off): that run's ``_finish`` is then
    ignored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, tuple[Any, str]] = {}  # task id -> (rt, worker id)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, rt, task_id: int, worker_id: str) -> None:
        with self._lock:
            self._running[task_id] = (rt, worker_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="bingan-heartbeat",
                                                daemon=True)
                self._thread.start()

    def remove(self, task_id: int) -> None:
        with self._lock:
            self._running.pop(task_id, None)

    def beat(self) -> int:
        """Renew every lease this process holds now; returns how many were renewed."""
        from sqlalchemy import update

        with self._lock:
            items = list(self._running.items())
        renewed = 0
        for task_id, (rt, worker_id) in items:
            try:
                with rt.sessions() as s, s.begin():
                    n = s.execute(update(Task).where(
                        Task.id == task_id, Task.locked_by == worker_id,
                        Task.status == "running").values(
                        lease_until=utcnow() + lease_of(rt))).rowcount
            except Exception:  # the database is away: the lease may run out, which is safe
                log.warning("could not renew the lease of task %s", task_id, exc_info=True)
                continue
            if n:
                renewed += 1
            else:
                log.warning("task %s: lease lost to another worker; this run's result will "
                            "be ignored", task_id)
                self.remove(task_id)
        return renewed

    def _interval(self) -> float:
        with self._lock:
            leases = [lease_of(rt).total_seconds() for rt, _ in self._running.values()]
        return max(0.2, min(leases, default=DEFAULT_LEASE_SECONDS) / 3)

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._interval())
            self._wake.clear()
            self.beat()


heartbeat = Heartbeat()


def run_one(rt, worker_id: str | None = None, kinds: list[str] | None = None) -> Task | None:
    """Claim and run one task (its lease renewed while it runs); returns it (or None when
    nothing is due)."""
    worker_id = worker_id or worker_name()
    task = claim(rt, worker_id, kinds)
    if task is None:
        return None
    handler = handlers(rt).get(task.kind)
    heartbeat.add(rt, task.id, worker_id)
    try:
        if handler is None:
            raise UnknownTaskKind(f"no handler for task kind {task.kind!r} (plugin disabled?)")
        result = call_with_rt(handler, rt, dict(task.payload))
        heartbeat.remove(task.id)
        _finish(rt, task.id, worker_id, result=result if isinstance(result, dict) else None)
    except Exception as exc:  # the handler's failure is recorded, never lost
        heartbeat.remove(task.id)
        machine = transient(exc)
        log.warning("task %s (%s) failed%s: %s", task.id, task.kind,
                    " (disk full or database away: runs again later)" if machine else "", exc)
        _finish(rt, task.id, worker_id, retry_free=machine, error="".join(
            traceback.format_exception_only(type(exc), exc)).strip()[:2000])
    finally:
        heartbeat.remove(task.id)
    return task


def run_until_idle(rt, max_tasks: int = 10_000, kinds: list[str] | None = None) -> int:
    """Run due tasks until none is left (tests, ``bingan tasks run``); returns how many ran."""
    reclaim_dead_local(rt)
    n = 0
    while n < max_tasks and run_one(rt, kinds=kinds) is not None:
        n += 1
    if n:
        release_memory()
    return n


RECLAIM_EVERY = 10.0  # seconds between looks for this host's dead workers' tasks


def work_loop(rt, stopping: threading.Event, *, poll_seconds: float = 1.0,
              kinds: list[str] | None = None,
              on_task: Callable[[Task, float], None] | None = None) -> int:
    """Run due tasks until ``stopping`` is set, waiting ``poll_seconds`` when none is due; the
    task running when it is set is finished first (graceful stop). Gives back the tasks of
    this host's dead workers at start and every ``RECLAIM_EVERY`` seconds. Returns how many
    tasks ran. Used by the server's worker threads and by ``bingan worker``."""
    import time

    ran = 0
    busy = False  # ran a task since the queue was last empty
    next_reclaim = 0.0
    while not stopping.is_set():
        try:
            if time.monotonic() >= next_reclaim:
                reclaim_dead_local(rt)
                next_reclaim = time.monotonic() + RECLAIM_EVERY
            t0 = time.perf_counter()
            task = run_one(rt, kinds=kinds)
            if task is None:
                if busy:
                    busy = False
                    release_memory()
                stopping.wait(poll_seconds)
            else:
                busy = True
                ran += 1
                if on_task is not None:
                    on_task(task, time.perf_counter() - t0)
        except Exception:  # keep the worker alive across database hiccups
            log.exception("worker loop error")
            stopping.wait(poll_seconds * 5)
    return ran


class Worker(threading.Thread):
    """An in-process worker thread polling for due tasks (``bingan serve``)."""

    def __init__(self, rt, poll_seconds: float = 1.0, name: str = "bingan-worker") -> None:
        super().__init__(name=name, daemon=True)
        self.rt, self.poll = rt, poll_seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        work_loop(self.rt, self.stopping, poll_seconds=self.poll)

    def stop(self) -> None:
        self.stopping.set()


def counts(session: Session) -> dict[str, int]:
    from sqlalchemy import func

    return dict(session.execute(select(Task.status, func.count()).group_by(Task.status)).all())
