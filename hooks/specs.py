"""Core's hook contract: the hooks core calls or owns, in sections, one docstring each. A
plugin's own hooks (capture's sources, batches, rework ...) are declared by that plugin
(``PluginInfo.hookspecs``).

Plugins implement these with ``@hooks.hookimpl``. Rules (pluggy's): an implementation may take
fewer arguments than the spec, so adding an argument is safe; removing or renaming one is breaking
and goes through a deprecation. Hooks marked *first result* stop at the first non-None answer;
all others collect every implementation's answer into a list.

docs/hooks.md is generated from this module and the plugins' own (``python -m
bingan.hooks.docgen``); a test fails when they differ, when a spec lacks a docstring, or when a
spec has no test of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover - typing only
    import click
    from litestar.types import ControllerRouterHandler
    from sqlalchemy.orm import Session

    from bingan.hooks.types import (
        AccessContext,
        AccessScope,
        ActionInfo,
        AdmissionFilter,
        AdmissionIn,
        AdmissionRef,
        AuditEventRef,
        BlobStore,
        JobSpec,
        NavItem,
        FulltextHit,
        HomePanel,
        Notification,
        PageClass,
        PageImage,
        PageQuality,
        PageRef,
        PageStep,
        PaperRecordEvent,
        ProcessedPage,
        PermissionInfo,
        RecordDenied,
        RecordLink,
        RecordPanel,
        RecordView,
        ReportSpec,
        Runtime,
        StaffRef,
        TaskHandler,
        ScopeContext,
        TextBlock,
        Vote,
    )

HOOKS_API = "1.1"

hookspec = pluggy.HookspecMarker("bingan")

# ============================================================================================
# Assembly: called once while the app, CLI and scheduler are built
# ============================================================================================


@hookspec
def register_routes() -> list[ControllerRouterHandler]:
    """Return Litestar route handlers or controllers to mount on the app.

    Called once when the app is assembled (``core.web.app.create_app``). Paths are absolute;
    pages live at ``/<plugin>/...`` and JSON APIs at ``/api/<plugin>/...``. Handlers declare the
    staff permission they need with ``opt={"permission": "..."}``; core's guard enforces it.
    A handler reaches the runtime as ``request.app.state.rt``.
    """


@hookspec
def register_nav(rt: Runtime) -> list[NavItem]:
    """Return menu entries for the page frame.

    Called per rendered page; each item is shown only to users holding its ``permission``.
    A disabled plugin contributes nothing, so it leaves no menu trace. ``rt`` (passed since
    1.1; implementations without it keep working) lets an entry depend on what else is
    enabled: reading's paper-request queue gives way to the warehouse's borrowing queue.
    """


@hookspec
def register_actions() -> list[ActionInfo]:
    """Return the record actions (``view``, ``print``, ``export`` ...) this plugin asks
    ``core.permissions.decide`` about. Deciding on an unregistered action is an error."""


@hookspec
def register_permissions() -> list[PermissionInfo]:
    """Return staff capabilities (not tied to one record) that roles can be given, such as
    ``audit.read`` or ``admin.users``. The role admin page lists them."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``bingan`` command line.

    Called once at CLI start with the root group; add with ``cli.add_command(...)``. A command
    gets the runtime (built on first use) through ``@bingan.core.cli.pass_rt``.
    """


@hookspec
def register_jobs(rt: Runtime) -> list[JobSpec]:
    """Return scheduled jobs for the in-process APScheduler (grant expiry, checkpoints, ...).

    A job function is called as ``func(rt)`` with the runtime (``hooks.types.Runtime``) and
    opens its own database sessions from ``rt.sessions``. Times in ``trigger_args`` are in the
    hospital's time zone (``rt.tz``).
    """


@hookspec
def register_reports() -> list[ReportSpec]:
    """Return the reports (M13) this plugin computes from its own tables
    (``hooks.types.ReportSpec``: title, area, parameters, query, columns, chart). Called by the
    reports plugin, which lists every registered report by area on one page with the period and
    department filters, a table, a chart and an Excel export, and builds each role's home
    dashboard from the reports that name the role in ``dashboards``. Keys must be unique
    across plugins; a report is shown only to staff holding its ``permission``."""


# ============================================================================================
# Storage
# ============================================================================================


@hookspec(firstresult=True)
def storage_backend(url: str, home: str) -> BlobStore | None:
    """Return a blob store for ``url`` (``BINGAN_STORAGE_URL``) or None if the scheme is not
    yours. *First result.* Core's local-disk store answers ``file:`` URLs and the empty URL
    (blobs under ``BINGAN_HOME/blobs``). The store implements ``hooks.types.BlobStore``,
    including ``delete_stale(sha, older_than_seconds)`` (check age and delete). A store whose
    ``delete_stale`` cannot lose a concurrent put of the same content sets
    ``delete_stale_is_atomic = True``; for any other store ``store_blob`` checks the blob after
    inserting its row and puts it again if a cleanup removed it."""


# ============================================================================================
# Record lifecycle
# ============================================================================================


@hookspec
def admission_upserted(session: Session, admission: AdmissionRef, created: bool,
                       rt: Runtime) -> None:
    """Called by ``core.records.upsert_admission`` for a new or changed admission (from a
    connector, the demo or a clerk), after the flush and *before* the commit: ``session`` is
    the caller's SQLAlchemy session, inside its transaction. Write what must stay consistent
    with the admission through it (it commits or rolls back with the admission; on SQLite a
    second connection would wait on the caller's write lock). Work that must only happen once
    the admission is durable (messages to other systems) belongs in a task queued through
    ``session`` (core.tasks). ``created`` is True for a new admission."""


@hookspec(firstresult=True)
def demo_admissions(session: Session, admissions: list[AdmissionIn],
                    rt: Runtime) -> int | None:
    """Feed the demo hospital's admissions through an intake path of your own (a front-page
    file import, HL7 ...), as a hospital's would arrive, inside the caller's transaction
    (``session``); return how many went in. *First result.* Called by ``bingan demo load``
    after the departments and staff exist. Without an answer core records them through
    ``core.intake.record_admission`` directly."""


@hookspec
def demo_loaded(admissions: list[AdmissionRef], rt: Runtime) -> None:
    """Called by ``bingan demo load`` after the demo hospital's records were committed, so a
    plugin can add demo material of its own (page images through the real capture path ...)."""


# ============================================================================================
# Permissions
# ============================================================================================


@hookspec
def access_vote(context: AccessContext, rt: Runtime) -> Vote | None:
    """Vote on whether ``context.user`` may do ``context.action`` on ``context.admission``.

    Called by every ``core.permissions.decide``. Return ``Vote(allow=True, ...)``,
    ``Vote(allow=False, ...)`` or None (no opinion). A deny beats any allow; no allow at all is
    a deny. An allow valid only until a time says so with ``until`` (a grant's deadline).
    """


@hookspec
def access_scope(context: ScopeContext, rt: Runtime) -> AccessScope | None:
    """Describe, as sets, what this plugin's ``access_vote`` would answer for
    ``context.user`` and ``context.action`` on every admission at ``context.now``.

    Called by ``core.permissions.readable`` when a search must return only records the user
    may read (full text: the filter goes into the backend's query). A plugin that implements
    ``access_vote`` implements this too, and the two must agree admission by admission (a
    test compares them); return None when your vote would be None everywhere. When a voting
    plugin has no ``access_scope``, no filter can be built and callers decide hit by hit.
    """


@hookspec
def record_work(session: Session, admission: AdmissionRef, rt: Runtime) -> list[str]:
    """Return the production work ``admission`` is in now, by this plugin's account:
    ``"capture"`` (being captured: in an open batch, pages still processing), ``"rework"`` (an
    open rework item), ``"qc_sample"`` (in a QC sample not yet accepted), ``"pageindex"`` (its
    page index awaits correction); an empty list or None: none. Every answer is collected
    (``core.work.record_work``). Production pages (capture, QC, page-index correction) show a
    record's unwatermarked pages and OCR text only while it is in their work; otherwise the
    reader goes through the viewer (reading policy, watermark). ``session`` is the caller's
    database session."""


# ============================================================================================
# The record page (core owns ``/records/{admission_no}``; plugins add to it)
# ============================================================================================


@hookspec
def record_links(record: RecordView, session: Session, rt: Runtime) -> list[RecordLink]:
    """Return links to show on the record page of ``record.admission`` for ``record.staff``
    (the archived PDF, a copy request for this record ...). Called only after core's access
    decision allowed ``view``; offer only what the reader's permissions let them open.
    ``session`` is the page's database session (read-only use)."""


@hookspec
def record_panels(record: RecordView, session: Session, rt: Runtime) -> list[RecordPanel]:
    """Return sections of the record page (``hooks.types.RecordPanel``): the reading plugin's
    page viewer, a plugin's status of this record ... Called only after core's access decision
    allowed ``view``; panels are shown in ``order``. ``session`` is the page's database
    session (read-only use)."""


@hookspec
def record_denied(record: RecordDenied, session: Session, rt: Runtime) -> list[RecordPanel]:
    """Return sections for the 403 page of a reader core's access decision refused: how to
    obtain access (the reading plugin's application form, a pending application). They must
    show nothing of the record (no patient, no diagnoses): the reader may not see it. The
    admission number the reader asked for is on the page already."""


# ============================================================================================
# The home page (core owns ``/``; plugins say what waits for the person signing in)
# ============================================================================================


@hookspec
def home_panels(staff: StaffRef, session: Session, rt: Runtime) -> list[HomePanel]:
    """Return panels for the home page of ``staff`` (``hooks.types.HomePanel``): what waits
    for this person in your plugin, as figures with links to the pages where the work is
    done (a clerk's open rework, an inspector's records to inspect, a physician's pending
    applications, the record room's loans overdue ...). Called on every visit of ``/``;
    ``session`` is the page's database session (read-only use). Core shows a panel only to
    staff holding its ``permission``; an item's link must obey the same permission as the
    page it opens. Figures and links only, never record content (no patient, no diagnosis):
    the home page does not ask core's access decision. Keep it to a few counting queries,
    and return [] when the person has nothing to do with your plugin."""


# ============================================================================================
# Audit and notification
# ============================================================================================


@hookspec
def audit_recorded(event: AuditEventRef, rt: Runtime) -> None:
    """Called after an audit event joined the chain (e.g. to forward it to a SIEM), once the
    transaction that wrote it committed: an event that was rolled back (or written in a
    savepoint that rolled back) is never announced. A failure here is logged; the event
    stays."""


@hookspec
def audit_action_labels() -> dict[str, str]:
    """Declare the audit actions this plugin writes: ``{action: Chinese label}``. The audit
    pages read ``导出病案`` instead of ``archive.export`` (the code stays as a tooltip).
    Recording an action nobody declared is an error under ``Runtime.strict_audit`` (every
    test runtime) and a logged warning in production (the event is recorded all the same).
    ``access.<action>`` is declared for every action of ``register_actions``."""


@hookspec
def notify(notification: Notification, rt: Runtime) -> None:
    """Deliver a message to a staff member beyond the in-app inbox (SMS, WeChat Work, mail).

    Core stores every notification in the inbox before calling this hook.
    """


# ============================================================================================
# Background tasks
# ============================================================================================


@hookspec
def register_task_handlers() -> dict[str, TaskHandler]:
    """Return ``{kind: handler}`` for durable background tasks (``core.tasks``).

    A handler is called as ``handler(payload, rt) -> dict | None`` in a worker thread, after
    the task was claimed, with the runtime; it opens its own database sessions from
    ``rt.sessions``.
    Raising retries the task with back-off up to its ``max_attempts``; a task whose worker died
    is claimed again when its lease runs out. Handlers must be idempotent.
    """


@hookspec
def task_failed(kind: str, payload: dict[str, Any], error: str, attempts: int,
                rt: Runtime) -> None:
    """A task of ``kind`` failed for good (its last attempt raised ``error``; no retry
    follows). Called once, after the failure is committed, so the plugin that queued it can
    show why where its users look (e.g. capture marks the received file failed with the
    reason on the capture page). Work done here uses its own transaction."""


# ============================================================================================
# Capture and processing
# ============================================================================================


@hookspec
def page_steps(rt: Runtime) -> list[PageStep]:
    """Return page-cleanup steps (orientation, deskew, crop ...). The order they run in comes
    from plugins.toml (the imaging plugin's ``steps`` setting); unknown names there are an
    error at start. Each step's ``run(image, notes) -> image`` works on a decoded page
    (``PageImage``, BGR)."""


@hookspec
def assess_page(image: PageImage, dpi: float | None, notes: dict[str, Any],
                rt: Runtime) -> PageQuality | None:
    """Measure a processed page (``PageImage``, BGR) and return metrics with a verdict.

    All answers are merged: metrics are combined and the worst status wins.
    """


@hookspec(firstresult=True)
def process_page(data: bytes, source: str, dpi: float | None,
                 rt: Runtime, paper: str | None) -> ProcessedPage | None:
    """Clean one captured page image (encoded bytes) and return the processed JPEG with the
    applied steps and its quality. *First result*: the imaging plugin runs every ``page_steps``
    step in its configured order, then ``assess_page``. ``source`` is scanner, camera,
    photocopy or unknown; ``dpi`` is what the source declared, if anything. ``paper`` (added in
    1.1; callers pass None when nobody said): the paper photographed, a name of
    ``types.PAPER_SIZES_MM`` (A4, A5, B5, 16K) as the photographer chose it; a camera page's
    DPI is computed from it. Implementations written without it keep working."""


@hookspec(firstresult=True)
def identify_admission(image: PageImage, hint: dict[str, Any], rt: Runtime) -> str | None:
    """Return the record barcode (``core.records.record_barcode``) found on a captured page
    (``PageImage``: capture passes it gray, as it decoded it for its own barcode reading),
    or None. *First result.* ``hint`` carries what the capture source knows (file name ...)."""


@hookspec
def pages_captured(admission: AdmissionRef, page_ids: list[int], rt: Runtime) -> None:
    """Called after pages were stored for an admission (new capture or a re-capture)."""


@hookspec
def record_digitized(admission: AdmissionRef, document_version: int, rt: Runtime) -> None:
    """Called after an admission was marked digitized with a complete, passing PDF."""


# ============================================================================================
# Page index and search
# ============================================================================================


@hookspec(firstresult=True)
def extract_text(image: PageImage, page: PageRef, rt: Runtime) -> list[TextBlock] | None:
    """Return the text of a page (``PageImage``, BGR, decoded once by the caller) with
    positions in its pixels (OCR). *First result.*"""


@hookspec(firstresult=True)
def classify_page(blocks: list[TextBlock], page: PageRef, page_types: list[str],
                  rt: Runtime) -> PageClass | None:
    """Return the page type of a page from its text (title band first). *First result.*"""


@hookspec
def index_record(admission: AdmissionRef, pages: list[tuple[PageRef, str]],
                 rt: Runtime) -> None:
    """(Re)index the full text of one admission: ``pages`` is (page, text) in record order.
    Called by the page index after OCR or correction; a backend replaces what it had."""


@hookspec(firstresult=True)
def search_fulltext(query: str, limit: int, offset: int, admissions: AdmissionFilter | None,
                    rt: Runtime) -> list[FulltextHit] | None:
    """Search the full text; phrases in Chinese match exactly. *First result*: the enabled
    full-text backend answers. ``admissions`` (None: no restriction) says which admissions'
    pages may be returned: the backend applies it inside its query, so ``limit`` and
    ``offset`` count permitted hits only. (The caller still checks each hit it shows.)"""


@hookspec(firstresult=True)
def find_text(page: PageRef, query: str, rt: Runtime) -> list[tuple[int, int, int, int]] | None:
    """Where the parts of a full-text ``query`` are on a page's image: boxes ``(x1, y1, x2,
    y2)`` in pixels of the stored image (``page.image_sha256``), one per matched piece of a
    line; [] when the page's text has no match. None when you keep no positioned text for
    that image. *First result.* The viewer marks them over the page a full-text hit opened
    (the caller has checked the reader's access)."""


# ============================================================================================
# Working days (the recovery plugin answers; capture's batch plan and others ask)
# ============================================================================================

if TYPE_CHECKING:  # pragma: no cover - typing only
    from bingan.hooks.types import WorkingCalendar


@hookspec(firstresult=True)
def working_calendar(session: Session, rt: Runtime) -> WorkingCalendar | None:
    """Return the hospital's working-day calendar (``hooks.types.WorkingCalendar``), or None
    if you keep none. *First result.* The recovery plugin answers with the national holidays
    and make-up workdays (调休) plus the hospital's own table (节假日设置); capture's batch plan
    spreads pages over its working days, and falls back to ``plan_weekdays`` with no answer.
    ``session`` is the caller's database session: the hospital's table is read in its
    transaction."""


# ============================================================================================
# Paper records: where the paper record is and how it got there (tracking, warehouse)
# ============================================================================================


@hookspec
def paper_record_event(session: Session, admission: AdmissionRef, event: PaperRecordEvent,
                       rt: Runtime) -> None:
    """Something happened to the paper record of ``admission``: ``event.event`` is one of
    ``hooks.types.PAPER_EVENTS`` (recovered, captured, digitized, boxed, unboxed, shelved,
    lent, returned). Called by the plugin where it happened, inside its transaction
    (``session``), so what the tracking plugin writes (the automatic move of the record's
    state that its settings name for the event, with who / when / where) commits or rolls
    back with the event itself. Nobody needs to listen: with tracking off nothing happens."""


@hookspec(firstresult=True)
def paper_record_request(admission: AdmissionRef, user: StaffRef,
                         rt: Runtime) -> RecordLink | None:
    """Where ``user`` asks the record room for the paper record of ``admission`` (a borrowing
    request the record room fulfils), or None when that is not possible for this user.
    *First result.* The warehouse plugin answers; search results and the record page show the
    link (e.g. for records not digitized yet). Cheap: no database work."""
