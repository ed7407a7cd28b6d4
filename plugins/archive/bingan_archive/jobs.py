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

    return exporting.run_export_task(rt, payload)


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
