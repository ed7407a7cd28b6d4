"""The capture plugin's own hooks and the types passed through them.

Registered by capture (``PluginInfo.hookspecs``): they exist only when capture is enabled. A
plugin that implements or calls them declares ``depends_on=("capture",)`` (the scanning
adapters, qc, archive); one that must also work without capture would implement them with
``@hookimpl(optionalhook=True)`` and call them only when ``rt.pm.hook`` has them.
docs/hooks.md lists them under capture.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal

from bingan.hooks import hookspec
from bingan.hooks.types import AdmissionRef

if TYPE_CHECKING:  # pragma: no cover - typing only
    from sqlalchemy.orm import Session

    from bingan.hooks.types import Runtime

# --------------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureSource:
    """A way pages arrive (hot folder, browser upload, phone camera, SANE scanner ...).

    ``device`` is what ``process_page`` is told the image came from. ``href`` is the web page
    that captures from this source, if any. A pull source (a scanner) has ``acquire(options)``
    returning ``[(filename, bytes), ...]`` scanned now; ``available()`` says whether the source
    can work on this machine (e.g. ``scanimage`` is installed).
    """

    name: str
    label: str
    device: Literal["scanner", "camera", "photocopy", "unknown"] = "unknown"
    href: str | None = None
    description: str = ""
    acquire: Callable[..., list[tuple[str, bytes]]] | None = None
    available: Callable[[], bool] | None = None


@dataclass(frozen=True)
class BatchInfo:
    """A capture batch: records planned together, with their expected and captured pages."""

    id: int
    name: str
    created_at: dt.datetime
    records: int
    expected_pages: int
    captured_pages: int
    digitized: int
    status: str = "open"


@dataclass(frozen=True)
class BatchRecord:
    """One record of a batch. ``digitized``: every expected page is present (count check),
    no current page failed QC and no rework is open for it."""

    admission: AdmissionRef
    expected_pages: int
    captured_pages: int
    failing_pages: int = 0
    open_rework: int = 0
    digitized: bool = False


# ============================================================================================
# Capture sources, batches and rework (capture answers; scanning adapters add sources; qc asks)
# ============================================================================================

@hookspec
def capture_sources(rt: Runtime) -> list[CaptureSource]:
    """Return the capture sources a plugin provides (hot folder, upload, phone, SANE ...).

    The capture plugin lists them on its home page, accepts files only from a registered
    source name, and tells ``process_page`` the source's ``device``. A vendor scanner SDK adds
    itself here the same way; a pull source implements ``acquire``."""


@hookspec
def capture_batches(session: Session, rt: Runtime) -> list[BatchInfo]:
    """Return the capture batches (newest first) with their page counts and how many records
    are digitized. ``session`` is the caller's database session (read in its transaction)."""


@hookspec(firstresult=True)
def batch_records(session: Session, batch_id: int, rt: Runtime) -> list[BatchRecord] | None:
    """Return the records of one capture batch with expected and captured page counts and
    whether each is digitized, or None if no such batch. *First result.* Acceptance sampling
    draws from the digitized ones."""


@hookspec
def request_rework(session: Session, admission: AdmissionRef, page_ids: list[int], reason: str,
                   by: str | None, rt: Runtime) -> list[int] | None:
    """Send pages of a record back to rework (e.g. failed in inspection); an empty
    ``page_ids`` means the record as a whole (missing pages). Runs in the caller's transaction
    (``session``); returns the ids of the rework items opened. When the pages are re-captured,
    ``pages_captured`` is called with the replacements."""


# ============================================================================================
# Digitization status (capture answers; archive asks, and is told when the answer changes)
# ============================================================================================


@hookspec(firstresult=True)
def expected_pages(session: Session, admission: AdmissionRef, rt: Runtime) -> int | None:
    """Return how many pages the paper record of ``admission`` has (the count a capture
    plan or cover sheet declared), or None if nobody knows. *First result.* The archive
    plugin marks a record digitized only when it has at least this many current pages (D1,
    D10); with no answer it checks nothing but the pages' QC. ``session`` is the caller's
    database session: read in its transaction (a second connection would wait on SQLite's
    write lock)."""


@hookspec
def digitization_blockers(session: Session, admission: AdmissionRef, rt: Runtime) -> list[str]:
    """Return why ``admission`` may not be marked digitized now, one reason in Chinese each
    (e.g. ``"第 3 页待返工：印章不清"`` for an open rework item); an empty list: nothing blocks.
    Every answer is collected. The archive plugin asks while it evaluates a record (D10) and
    reports the record as failing with these reasons. ``session`` is the caller's database
    session: read in its transaction. A plugin whose answer changes without pages being
    captured calls ``digitization_blockers_changed``."""


@hookspec
def digitization_blockers_changed(session: Session, admission: AdmissionRef,
                                  rt: Runtime) -> None:
    """Called by a plugin that answers ``digitization_blockers`` when its answer for
    ``admission`` changed without pages being captured (an inspector sent the record back to
    rework, a clerk closed a record-level rework item), in the caller's transaction
    (``session``). The archive plugin queues a re-evaluation in that transaction, so it runs
    once the change is committed. A re-capture announces itself through ``pages_captured``."""
