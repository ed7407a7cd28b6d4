"""Durable tasks of the archive plugin and the sweep that queues forgotten builds.

- ``archive.build`` ``{"admission_id": n}``: build the PDF if the pages changed, evaluate,
  record the status, and call ``record_digitized`` after the commit. Idempotent.
- ``archive.export`` ``{"layout": "folders"|"offline"|"bag", "target": dir, ...}``: an export
  started from the web page; writes under the export folder and audits it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from typing import Any

from sqlalchemy import select

from bingan.core import tasks
from bingan.core.models import Page, utcnow
from bingan.hooks.types import Runtime
from bingan_archive.settings import ArchiveSettings

log = logging.getLogger("bingan.archive")
BUILD = "archive.build"
EXPORT = "archive.export"


def build_key(admission_id: int, signature: list[Any]) -> str:
    """Dedupe key of a build: the admission and the page set that asked for it."""
    digest = hashlib.sha1(repr(signature).encode()).hexdigest()
    return f"{BUILD}:{admission_id}:{digest}"


def enqueue_build(session, rt, admission_id: int, signature: list[Any],
                  delay_seconds: float = 0) -> Any:
    run_after = utcnow() + dt.timedelta(seconds=delay_seconds) if delay_seconds else None
    return tasks.enqueue(session, rt, BUILD, {"admission_id": admission_id},
                         dedupe_key=build_key(admission_id, signature), run_after=run_after)


def handle_build(payload: dict, rt: Runtime) -> dict:
    from bingan_archive import service

    o = service.build_one(rt, int(payload["admission_id"]), created_by="system")
    return {"admission_no": o.admission.admission_no, "status": o.status,
            "document_version": o.document_version, "built": o.built, "reason": o.reason}


def handle_export(payload: dict, rt: Runtime) -> dict:
    from bingan_archive import exporting

    return exporting.run_export_task(
        rt, payload, progress_factory=lambda total, _label: ExportProgress(
            rt, str(payload.get("task_tag") or ""), total))


class ExportProgress:
    """How far a running export is, kept in its task's ``result`` until the worker writes the
    final result there (the jobs table polls it and shows a percentage). Written at most once
    a second and only while the task runs, so a late write never replaces the final result."""

    def __init__(self, rt: Runtime, tag: str, total: int, every_s: float = 1.0) -> None:
        self.rt, self.tag, self.total, self.every_s = rt, tag, total, every_s
        self.done, self.task_id, self.last = 0, None, 0.0

    def __enter__(self) -> ExportProgress:
        from bingan.core.models import Task

        with self.rt.sessions() as s:
            for t in s.scalars(select(Task).where(Task.kind == EXPORT,
                                                  Task.status == "running")):
                if self.tag and (t.payload or {}).get("task_tag") == self.tag:
                    self.task_id = t.id
        self._write()
        return self

    def update(self, n: int) -> None:
        self.done += n
        if time.monotonic() - self.last >= self.every_s or self.done >= self.total:
            self._write()

    def _write(self) -> None:
        from sqlalchemy import update

        from bingan.core.models import Task

        if self.task_id is None:
            return
        self.last = time.monotonic()
        with self.rt.sessions() as s, s.begin():
            s.execute(update(Task).where(Task.id == self.task_id, Task.status == "running")
                      .values(result={"progress": min(self.done, self.total),
                                      "total": self.total}))

    def __exit__(self, *exc: Any) -> None:
        return None  # exceptions pass on


def sweep(rt: Runtime) -> int:
    """Queue builds for admissions whose pages changed since their last PDF (pages older than
    the sweep interval, so a page index still working on fresh pages is not raced)."""
    from bingan_archive import service

    minutes = rt.settings(ArchiveSettings).sweep_minutes
    if not minutes:
        return 0
    cutoff = utcnow() - dt.timedelta(minutes=minutes)
    n = 0
    with rt.sessions() as s, s.begin():
        for aid in service.stale_admissions(s):
            ids = list(s.scalars(select(Page.id).where(Page.admission_id == aid,
                                                       Page.replaced_by_id.is_(None))
                                 .order_by(Page.id)))
            newest = s.scalar(select(Page.created_at).where(Page.admission_id == aid)
                              .order_by(Page.created_at.desc()).limit(1))
            if newest is not None and newest > cutoff:
                continue
            enqueue_build(s, rt, aid, ["sweep", ids])
            n += 1
    return n
