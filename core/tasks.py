"""A durable task queue in the database: work survives restarts and crashes.

``enqueue`` adds a task in the caller's transaction (so work is queued only if the change that
needs it commits). Workers claim the oldest due task with a lease (PostgreSQL: ``FOR UPDATE SKIP
LOCKED``, so many worker hosts can pull; SQLite: ``BEGIN IMMEDIATE`` serializes claims), run the
handler that ``register_task_handlers`` names for its kind, and mark it done. A raising handler
is retried with exponential back-off until ``max_attempts``, then ``task_failed`` tells the
plugin why. A worker that died mid-task leaves a lease that runs out, and another worker claims
the task again; a process starting on the same host gives back at once the tasks of local
workers whose process is gone (``reclaim_dead_local``), instead of waiting out the lease.
Handlers must be idempotent.
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
LEASE = dt.timedelta(minutes=10)


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
        task.status, task.locked_by, task.lease_until = "running", worker_id, now + LEASE
        task.attempts += 1
        s.flush()
        s.expunge(task)
        return task


def _finish(rt, task_id: int, worker_id: str, *, result=None, error: str | None = None) -> None:
    failed = None
    with rt.sessions() as s, s.begin():
        task = s.get(Task, task_id, with_for_update=True)
        if task is None or task.locked_by != worker_id or task.status != "running":
            return  # the lease ran out and another worker took over
        now = utcnow()
        if error is None:
            task.status, task.result, task.finished_at = "done", result, now
            task.last_error = None
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
    process no longer exists: a killed ``bingan serve`` or ``tasks run``. Called when workers
    start; a worker on another host, or a live process, keeps its lease. Returns how many."""
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
            task.status, task.locked_by, task.lease_until = "queued", None, None
            task.run_after = utcnow()
            n += 1
    return n


def run_one(rt, worker_id: str | None = None, kinds: list[str] | None = None) -> Task | None:
    """Claim and run one task; returns it (or None when nothing is due)."""
    worker_id = worker_id or worker_name()
    task = claim(rt, worker_id, kinds)
    if task is None:
        return None
    handler = handlers(rt).get(task.kind)
    try:
        if handler is None:
            raise UnknownTaskKind(f"no handler for task kind {task.kind!r} (plugin disabled?)")
        result = call_with_rt(handler, rt, dict(task.payload))
        _finish(rt, task.id, worker_id, result=result if isinstance(result, dict) else None)
    except Exception as exc:  # the handler's failure is recorded, never lost
        log.warning("task %s (%s) failed: %s", task.id, task.kind, exc)
        _finish(rt, task.id, worker_id, error="".join(
            traceback.format_exception_only(type(exc), exc)).strip()[:2000])
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


class Worker(threading.Thread):
    """An in-process worker thread polling for due tasks."""

    def __init__(self, rt, poll_seconds: float = 1.0, name: str = "bingan-worker") -> None:
        super().__init__(name=name, daemon=True)
        self.rt, self.poll = rt, poll_seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        busy = False  # ran a task since the queue was last empty
        while not self.stopping.is_set():
            try:
                if run_one(self.rt) is None:
                    if busy:
                        busy = False
                        release_memory()
                    self.stopping.wait(self.poll)
                else:
                    busy = True
            except Exception:  # keep the worker alive across database hiccups
                log.exception("worker loop error")
                self.stopping.wait(self.poll * 5)

    def stop(self) -> None:
        self.stopping.set()


def counts(session: Session) -> dict[str, int]:
    from sqlalchemy import func

    return dict(session.execute(select(Task.status, func.count()).group_by(Task.status)).all())
