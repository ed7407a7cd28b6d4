"""Small typed objects passed through hooks.

Hook arguments are these dataclasses, never ORM rows, so core tables can change without
breaking plugins. Adding a field with a default is safe; removing or renaming one is breaking.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import (
    TYPE_CHECKING, Any, BinaryIO, Callable, Iterator, Literal, Protocol, TypeVar,
    runtime_checkable,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    import numpy.typing as npt
    import pluggy
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

S = TypeVar("S")

# --------------------------------------------------------------------------------------------
# Plugin metadata
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PluginInfo:
    """What a plugin declares about itself (module attribute ``PLUGIN`` of its package).

    ``hooks_api`` is the major.minor of the hook contract the plugin was written for; core
    refuses a plugin that needs a newer minor or another major. ``settings`` is a msgspec Struct
    type (or None) that validates the plugin's table in plugins.toml. ``templates`` and
    ``static`` are folders inside the plugin package; ``migrations`` its alembic version folder.
    ``hookspecs`` is a module of the plugin's own hooks (marked with ``bingan.hooks.hookspec``):
    other plugins implement or call them, and declare ``depends_on`` the plugin.
    """

    name: str
    version: str
    hooks_api: str = "1.0"
    depends_on: tuple[str, ...] = ()
    settings: type | None = None
    templates: Path | None = None
    static: Path | None = None
    migrations: Path | None = None
    title: str = ""
    hookspecs: ModuleType | None = None


# --------------------------------------------------------------------------------------------
# The runtime and the blob store (what hooks, task handlers and jobs are given)
# --------------------------------------------------------------------------------------------

Data = bytes | bytearray | memoryview | BinaryIO


class BlobMissing(KeyError):
    """No blob is stored under this key (raised by every ``BlobStore`` read)."""


@runtime_checkable
class BlobStore(Protocol):
    """A content-addressed store of immutable blobs, keyed by lowercase hex SHA-256. The
    ``storage_backend`` hook returns one; core's local-disk store is
    ``bingan.core.storage.LocalBlobStore``."""

    url: str

    def put(self, data: Data) -> str:
        """Store ``data`` (bytes, or a binary stream read in chunks); return its SHA-256.

        Atomic (readers see the whole blob or nothing) and durable when it returns. Putting
        content that is already stored leaves it unchanged but refreshes its ``key_mtime``, so a
        concurrent ``cleanup_store`` does not take it for an old orphan."""
        ...

    def get(self, sha: str) -> bytes:
        """The whole blob; raises ``BlobMissing``."""
        ...

    def open(self, sha: str) -> BinaryIO:
        """A binary file object to read the blob from; raises ``BlobMissing``."""
        ...

    def exists(self, sha: str) -> bool:
        """Whether a blob is stored under ``sha``."""
        ...

    def size(self, sha: str) -> int:
        """Stored size in bytes; raises ``BlobMissing``."""
        ...

    def delete(self, sha: str) -> None:
        """Remove the blob; nothing happens if it is not there."""
        ...

    def delete_stale(self, sha: str, older_than_seconds: float) -> bool:
        """Remove the blob only if nobody put it in the last ``older_than_seconds``; True if it
        was removed. Optional: ``cleanup_store`` falls back to ``key_mtime`` + ``delete``
        without it. Set ``delete_stale_is_atomic = True`` on the store only if a concurrent
        ``put`` of the same content can never be lost by it (the local store renames first);
        otherwise ``store_blob`` checks the blob after inserting its row (cleanup deletes
        under a claim on that row) and puts it again if needed."""
        ...

    def iter_keys(self) -> Iterator[str]:
        """Every stored key (temp files excluded)."""
        ...

    def cleanup_temp(self, older_than_seconds: float = 3600) -> int:
        """Remove temp files left by interrupted writes older than this; return how many."""
        ...

    def key_mtime(self, sha: str) -> float:
        """When the blob was last put (POSIX seconds); raises ``BlobMissing``."""
        ...


class Runtime(Protocol):
    """The assembled bingan a hook, task handler or job is given as ``rt`` (core's
    ``bingan.core.runtime.Runtime``). Plugins never look it up themselves.

    ``settings(Schema)`` returns the validated settings whose type is ``Schema``: a plugin's
    own ``PluginInfo.settings`` struct, or ``bingan.core.config.CoreSettings`` for ``[core]``.
    ``tz`` is the hospital's time zone (``[core] timezone``): dates shown to people, dates
    people type and "today" are in it; stored times are UTC."""

    engine: Engine
    sessions: sessionmaker[Session]
    pm: pluggy.PluginManager

    @property
    def home(self) -> Path: ...

    @property
    def store(self) -> BlobStore: ...

    @property
    def tz(self) -> dt.tzinfo: ...

    def settings(self, schema: type[S]) -> S: ...


# A durable task's handler: ``handler(payload, rt)``; its dict result is kept with the task.
TaskHandler = Callable[[dict[str, Any], Runtime], "dict[str, Any] | None"]


# --------------------------------------------------------------------------------------------
# People and records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffRef:
    """A signed-in staff member as plugins see them."""

    id: int
    staff_no: str
    name: str
    department_code: str | None
    roles: frozenset[str] = frozenset()
    permissions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DiagnosisIn:
    """One diagnosis of a front page. ``kind``: main / other / outpatient / pathology / injury."""

    code: str
    name: str
    kind: str = "other"
    admission_condition: str | None = None  # 入院病情 1有 2临床未确定 3情况不明 4无


@dataclass(frozen=True)
class OperationIn:
    """One operation of a front page (ICD-9-CM-3)."""

    code: str
    name: str
    date: dt.date | None = None
    level: str | None = None
    surgeon_no: str | None = None
    assistant1_no: str | None = None
    assistant2_no: str | None = None
    incision_healing: str | None = None
    anaesthesia: str | None = None
    anaesthetist_no: str | None = None


@dataclass(frozen=True)
class PatientIn:
    """Patient identity as a connector or the demo delivers it."""

    mrn: str
    name: str
    sex: Literal["M", "F", "U"] = "U"
    birth_date: dt.date | None = None
    id_number: str | None = None
    phone: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class AdmissionIn:
    """One stay with its front page, as delivered to ``core.records.upsert_admission``.

    ``signers`` maps a signing role (see ``core.records.SIGNER_ROLES``) to a staff number.
    ``extra`` holds the front-page fields core does not model as columns.
    """

    patient: PatientIn
    admission_no: str
    visit_no: int
    admitted_at: dt.datetime
    discharged_at: dt.datetime | None = None
    admit_department: str | None = None
    discharge_department: str | None = None
    ward: str | None = None
    discharge_way: str | None = None  # CV06.00.226: 1 2 3 4 5 9
    payment_method: str | None = None
    diagnoses: tuple[DiagnosisIn, ...] = ()
    operations: tuple[OperationIn, ...] = ()
    signers: dict[str, str] = field(default_factory=dict)
    readmission_31d: bool = False
    total_cost: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AdmissionRef:
    """A record (one admission) as plugins see it."""

    id: int
    mrn: str
    admission_no: str
    visit_no: int
    patient_id: int
    patient_name: str
    admitted_at: dt.datetime
    discharged_at: dt.datetime | None
    discharge_department: str | None
    discharge_way: str | None
    signer_staff_nos: frozenset[str] = frozenset()
    barcode: str = ""


@dataclass(frozen=True)
class PageRef:
    """One page of a record."""

    id: int
    admission_id: int
    seq: int
    page_type: str | None
    image_sha256: str | None
    original_sha256: str | None


# --------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NavItem:
    """A menu entry. Shown only when the user holds ``permission`` (None: any signed-in user)."""

    label: str
    href: str
    permission: str | None = None
    group: str = ""
    order: int = 100


@dataclass(frozen=True)
class HomeItem:
    """One line of a home panel: a figure (``value``: a count, or text such as a date; None
    for a plain link), what it counts (``label``) and where the work is done (``href``, a
    page the reader may open). ``tone`` marks what needs attention: ``"warn"`` (waiting,
    due soon) or ``"alert"`` (overdue, failed); ``""`` for a plain figure."""

    label: str
    value: int | str | None = None
    href: str | None = None
    tone: Literal["", "warn", "alert"] = ""


@dataclass(frozen=True)
class HomePanel:
    """A panel of the home page (``home_panels`` hook): what waits for the signed-in person
    in one plugin. Shown only to staff holding ``permission`` (None: everyone signed in),
    in ``order``; ``href`` is the plugin page the title links to; ``note`` a short line under
    the figures (text between backquotes is a command, shown as code). Figures and links
    only: never record content (patients, diagnoses)."""

    key: str
    title: str
    items: tuple[HomeItem, ...] = ()
    permission: str | None = None
    order: int = 100
    href: str | None = None
    note: str = ""


@dataclass(frozen=True)
class RecordView:
    """The record page (``/records/{admission_no}``, owned by core) as the ``record_links`` and
    ``record_panels`` hooks see it: who looks at which admission, after core's access decision
    allowed ``view``. ``query`` holds the page's query parameters (a search hit's ``page`` and
    ``hl`` ...); ``until`` is when the reader's access ends (None: no deadline)."""

    admission: AdmissionRef
    staff: StaffRef
    query: dict[str, str] = field(default_factory=dict)
    until: dt.datetime | None = None


@dataclass(frozen=True)
class RecordDenied:
    """The record page after core's access decision refused ``view`` (the ``record_denied``
    hook): ``reason`` is the decision's reason in words; ``votes`` say which plugin voted what
    (``(plugin, Vote)``), so a plugin can tell whether its own deny is in force."""

    admission: AdmissionRef
    staff: StaffRef
    reason: str
    votes: tuple[tuple[str, Vote], ...] = ()


@dataclass(frozen=True)
class RecordLink:
    """A link on the record page (an action on this record another page offers: its archived
    PDF, a copy request ...). ``title`` is the tooltip."""

    label: str
    href: str
    order: int = 100
    title: str = ""


@dataclass(frozen=True)
class RecordPanel:
    """A section of the record page rendered from the plugin's ``template`` (a name in its
    templates folder); the template sees the page's variables (``record``: the front-page
    summary, ``staff`` ...) and this panel as ``panel`` (its own values in ``panel.data``).
    ``styles``/``scripts`` are URLs the page adds to its head (scripts deferred);
    ``body_class`` is added to the page's body (e.g. the reading plugin's copy protection)."""

    key: str
    title: str
    template: str
    data: dict[str, Any] = field(default_factory=dict)
    order: int = 100
    styles: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()
    body_class: str = ""


@dataclass(frozen=True)
class ActionInfo:
    """An action on a record that ``core.permissions.decide`` can be asked about."""

    name: str
    label: str
    description: str = ""


@dataclass(frozen=True)
class PermissionInfo:
    """A staff capability (not tied to a record) that roles can hold, e.g. ``audit.read``.

    ``default_roles`` get it when the built-in roles are created (a new installation or the
    demo); afterwards administrators decide in the role page."""

    name: str
    label: str
    default_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobSpec:
    """A scheduled job, run as ``func(rt)``. ``trigger`` is an APScheduler trigger name with
    ``trigger_args`` (cron times in the hospital's time zone)."""

    id: str
    func: Callable[[Runtime], object]
    trigger: Literal["interval", "cron", "date"]
    trigger_args: dict[str, Any] = field(default_factory=dict)
    description: str = ""


# --------------------------------------------------------------------------------------------
# Permissions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vote:
    """One voice in an access decision. ``allow`` False is a deny, which beats any allow."""

    allow: bool
    rule: str
    reason: str = ""
    until: dt.datetime | None = None
    grant_id: int | None = None


@dataclass(frozen=True)
class AccessContext:
    """Everything an ``access_vote`` implementation gets to decide on."""

    user: StaffRef
    admission: AdmissionRef
    action: str
    now: dt.datetime
    settings: dict[str, Any] = field(default_factory=dict)
    # The caller's database session, so a vote reads in the same transaction (a second
    # connection would wait on SQLite's write lock held by the caller).
    session: Session | None = None


@dataclass(frozen=True)
class ScopeContext:
    """Everything an ``access_scope`` implementation gets: one user and action, no record."""

    user: StaffRef
    action: str
    now: dt.datetime
    session: Session | None = None  # the caller's database session (read in its transaction)


@dataclass(frozen=True)
class AccessScope:
    """What one plugin's ``access_vote`` would answer for one user and action, for every
    admission at once, as sets: the admissions it allows (every one, by id, by patient id or by
    discharge department code) and the ones it denies. Only live votes count: an allow or a
    deny that has run out at ``ScopeContext.now`` is left out, as ``decide`` leaves it out."""

    allow_all: bool = False
    allow_admissions: frozenset[int] = frozenset()
    allow_patients: frozenset[int] = frozenset()
    allow_departments: frozenset[str] = frozenset()
    deny_all: bool = False
    deny_admissions: frozenset[int] = frozenset()
    deny_patients: frozenset[int] = frozenset()
    deny_departments: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AdmissionFilter:
    """The admissions a search may return: only ``ids`` (``exclude`` False), or every
    admission but ``ids`` (``exclude`` True; ``AdmissionFilter(frozenset(), True)`` is every
    admission). A full-text backend applies it inside its query, so refused records never
    take a place in a page of hits nor in a count."""

    ids: frozenset[int]
    exclude: bool = False

    def allows(self, admission_id: int) -> bool:
        return (admission_id in self.ids) != self.exclude

    @property
    def everything(self) -> bool:
        return self.exclude and not self.ids


# --------------------------------------------------------------------------------------------
# Storage, processing, search, audit, integration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEventRef:
    """An audit event just committed to the chain."""

    seq: int
    ts: dt.datetime
    staff_no: str | None
    action: str
    outcome: str
    mrn: str | None
    admission_no: str | None
    client_ip: str | None
    computer_name: str | None


# A decoded page image, the one type the page hooks (``page_steps``' steps, ``assess_page``,
# ``identify_admission``, ``extract_text``) pass: a C-ordered numpy ``uint8`` array, rows x
# columns, either gray (``H x W``) or colour in OpenCV's channel order (``H x W x 3``, BGR).
# Decode encoded bytes once (``cv2.imdecode`` / Pillow + EXIF orientation) and hand the array
# on; an implementation that needs gray converts (BGR to luma), never re-decodes. numpy is a
# dependency of the plugins that work on pixels, not of core: at run time the name is only a
# marker.
if TYPE_CHECKING:  # pragma: no cover - typing only
    PageImage = npt.NDArray[np.uint8]
else:
    PageImage = Any


@dataclass(frozen=True)
class PageStep:
    """A named page-cleanup step: ``run(image, notes) -> image`` takes a decoded page
    (``PageImage``, BGR) and a dict of notes to fill, and returns the new image."""

    name: str
    run: Callable[[PageImage, dict[str, Any]], PageImage]
    description: str = ""


@dataclass(frozen=True)
class PageQuality:
    """QC metrics of one page and a verdict."""

    status: Literal["pass", "warn", "fail"]
    metrics: dict[str, float]
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextBlock:
    """OCR text with its box on the page (pixels)."""

    text: str
    box: tuple[int, int, int, int]
    confidence: float = 1.0


@dataclass(frozen=True)
class PageClass:
    """A page-type guess with confidence 0..1."""

    page_type: str
    confidence: float


@dataclass(frozen=True)
class FulltextHit:
    """A full-text hit on one page."""

    admission_id: int
    page_id: int | None
    score: float
    snippet: str = ""


@dataclass(frozen=True)
class Notification:
    """A message to one staff member (in-app; plugins may also send it elsewhere)."""

    staff_no: str
    title: str
    body: str = ""
    href: str | None = None


# Paper sizes a page may be captured on (width, height in mm), by the names ``process_page``'s
# ``paper`` argument takes: a photo's effective DPI follows from the sheet found in it and the
# paper it is (all four are ~1:1.414, so the picture alone cannot tell them apart).
# 16K: 正16开 (184 x 260).
PAPER_SIZES_MM: dict[str, tuple[float, float]] = {
    "A4": (210.0, 297.0), "A5": (148.0, 210.0), "B5": (176.0, 250.0), "16K": (184.0, 260.0)}


@dataclass(frozen=True)
class ProcessedPage:
    """A captured image after the page steps: the JPEG to store, what was done, its quality."""

    image: bytes
    width: int
    height: int
    dpi: float | None
    steps: dict[str, Any]
    quality: PageQuality
    blank: bool = False
    media_type: str = "image/jpeg"


# --------------------------------------------------------------------------------------------
# Working days (the recovery plugin answers ``working_calendar``)
# --------------------------------------------------------------------------------------------


@runtime_checkable
class WorkingCalendar(Protocol):
    """The hospital's working days: national holidays and make-up workdays (调休) plus the
    hospital's own closures and make-up days. Dates are local calendar dates."""

    def is_workday(self, day: dt.date) -> bool:
        """True when ``day`` is a working day of the hospital."""
        ...

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after ``start`` (``start`` itself not counted)."""
        ...

    def unknown_years(self, first: int, last: int) -> list[int]:
        """Years in [first, last] without make-up-day data (weekdays only: not to be trusted)."""
        ...


# --------------------------------------------------------------------------------------------
# Paper records (the tracking plugin owns the states; the warehouse plugin the shelves)
# --------------------------------------------------------------------------------------------

PAPER_EVENTS = {
    "recovered": "病案回收", "captured": "页面采集", "digitized": "数字化完成",
    "boxed": "装箱", "unboxed": "出箱", "shelved": "上架", "lent": "借出", "returned": "归还",
}


@dataclass(frozen=True)
class PaperRecordEvent:
    """Something that happened to the paper record of an admission (``paper_record_event``).

    ``event`` is one of ``PAPER_EVENTS`` (recovered by the recovery plugin, captured by
    capture, digitized by archive, boxed / unboxed / shelved / lent / returned by warehouse);
    who did it and from where (``staff_no`` None: the system), the physical place
    (``location``, e.g. a box and shelf) and a free note."""

    event: str
    staff_no: str | None = None
    client_ip: str | None = None
    computer_name: str | None = None
    location: str = ""
    note: str = ""


# --------------------------------------------------------------------------------------------
# Reports (M13): the registry every plugin contributes to (``register_reports``)
# --------------------------------------------------------------------------------------------

ReportKind = Literal["text", "int", "float", "percent", "money", "date", "period"]


@dataclass(frozen=True)
class ReportColumn:
    """One column of a report. ``kind`` says how the value is shown and written to Excel
    (``int``/``float``/``money`` as numbers, ``percent`` as a number 0-100, ``date`` as an
    Excel date, ``period`` a date that starts a day / week / month bucket (``ReportParams.
    bucket``), shown and written as that bucket, ``text`` as text). ``total`` is how the totals row gets its value: ``sum``,
    ``none`` (left empty; the first column reads 合计), or ``ratio`` of two other columns'
    sums (``ratio=("passed", "inspected")``: 100 * sum(passed) / sum(inspected))."""

    key: str
    label: str
    kind: ReportKind = "int"
    total: Literal["sum", "none", "ratio"] = "sum"
    ratio: tuple[str, str] | None = None


@dataclass(frozen=True)
class ReportChart:
    """How the report page draws the rows (ECharts): ``kind`` bar / line / pie; categories
    from column ``x``; one series per key of ``series``; keys in ``right`` go on a second
    axis (rates beside counts)."""

    kind: Literal["bar", "line", "pie"]
    x: str
    series: tuple[str, ...]
    right: tuple[str, ...] = ()


GROUP_LABELS = {"day": "按日", "week": "按周", "month": "按月", "department": "按科室",
                "staff": "按人员", "warehouse": "按库房", "shelf": "按货架"}


@dataclass(frozen=True)
class ReportParams:
    """What the reader chose: the period ``start``..``end`` (both included, dates in the
    hospital's time zone ``tz``), a discharge/owning department code (None: all), the
    grouping (one of the report's ``groups``), and who asks (``staff``; dashboards pass the
    signed-in user, so a report may narrow to "mine")."""

    start: dt.date
    end: dt.date
    tz: dt.tzinfo
    department: str | None = None
    group: str = "day"
    staff: StaffRef | None = None

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """The period as [lo, hi) aware datetimes (midnight to midnight, hospital time)."""
        lo = dt.datetime.combine(self.start, dt.time(), self.tz)
        hi = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), self.tz)
        return lo, hi

    def bucket(self, value: dt.datetime | dt.date) -> dt.date:
        """The time bucket of a stored time (or a date) for ``group`` day / week / month, as
        the date it starts on (the day, the ISO week's Monday, the month's first day)."""
        d = value.astimezone(self.tz).date() if isinstance(value, dt.datetime) else value
        if self.group == "week":
            return d - dt.timedelta(days=d.weekday())
        if self.group == "month":
            return d.replace(day=1)
        return d

    def buckets(self) -> list[dt.date]:
        """Every bucket of the period in order, so a day without activity shows as 0."""
        out: list[dt.date] = []
        d = self.start
        while d <= self.end:
            b = self.bucket(d)
            if not out or out[-1] != b:
                out.append(b)
            d += dt.timedelta(days=1)
        return out

    def bucket_label(self, start: dt.date) -> str:
        """How a bucket is shown: ``2026-12-07``, ``2026年第50周``, ``2026-12``."""
        if self.group == "week":
            y, w, _ = start.isocalendar()
            return f"{y}年第{w}周"
        if self.group == "month":
            return f"{start:%Y-%m}"
        return start.isoformat()


@dataclass(frozen=True)
class ReportSpec:
    """One report a plugin registers. ``query(session, rt, params) -> list[dict]`` returns
    the rows (keys of ``columns``), computed from the plugin's own tables in the caller's
    read-only session; it raises ``ValueError`` with a Chinese message for a request it
    cannot answer. ``key`` is unique (``<plugin>.<name>``); ``area`` groups reports on the
    reports page (生产, 质控, 阅览, 复印, 回收, 库房, 审计 ...). ``permission`` is the staff
    capability needed to run it (None: any signed-in staff member; such a report narrows its
    figures to ``params.staff``). ``groups`` are the groupings offered (the first is the
    default; empty: none). ``dashboards`` lists the built-in roles whose home dashboard shows
    this report (``records``, ``qc``, ``physician``, ``auditor`` ...), with ``dashboard_days``
    of history. Figures are aggregates: a report never lists record content."""

    key: str
    area: str
    title: str
    query: Callable[..., list[dict[str, Any]]]
    columns: tuple[ReportColumn, ...]
    permission: str | None
    chart: ReportChart | None = None
    groups: tuple[str, ...] = ("day", "week", "month")
    department_filter: bool = True
    description: str = ""
    dashboards: tuple[str, ...] = ()
    dashboard_days: int = 30
    order: int = 100


# --------------------------------------------------------------------------------------------
# Charge lists (the deathcase plugin's ``charge_list`` hook; HIS connectors build them)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeItem:
    """One line of an itemised inpatient charge list (收费清单)."""

    name: str
    amount: float
    quantity: float | None = None
    unit: str = ""
    price: float | None = None
    spec: str = ""
    category: str = ""
    code: str = ""
    day: dt.date | None = None


@dataclass(frozen=True)
class ChargeList:
    """A record's charge list; ``total`` is the sum of the items' amounts; ``source`` names
    where it came from (shown on the rendered pages)."""

    items: tuple[ChargeItem, ...]
    source: str = "HIS"

    @property
    def total(self) -> float:
        return round(sum(i.amount for i in self.items), 2)
