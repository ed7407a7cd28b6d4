"""The paper-record state machine: moves by hand (one record or a scanned run of barcodes),
automatic moves from other plugins' events, timelines, counts per state, overdue states in
working days.

Every write runs in the caller's transaction and audits itself; input the rules refuse raises
``TrackingError`` with the rule named (a Chinese message for the page) before anything is
written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from bingan.core import audit, records
from bingan.core.models import Admission, Role, Staff, utcnow
from bingan.hooks.types import AdmissionRef, PaperRecordEvent, PAPER_EVENTS, StaffRef

from bingan_tracking.models import Move, PaperState
from bingan_tracking.settings import AutoDef, TrackingSettings, TransitionDef

MAX_NOTE = 500
MAX_LOCATION = 128


class TrackingError(ValueError):
    """A move the rules refuse, or bad input; the message is shown to the user."""


# ============================================================================================
# The machine (from settings)
# ============================================================================================


@dataclass
class Machine:
    settings: TrackingSettings

    @property
    def states(self) -> list[str]:
        return [s.name for s in self.settings.states]

    @property
    def initial(self) -> str:
        return self.settings.initial

    def limit(self, state: str) -> int:
        for s in self.settings.states:
            if s.name == state:
                return s.overdue_days
        return 0

    def transitions(self, src: str, dst: str) -> list[TransitionDef]:
        return [t for t in self.settings.transitions if src in t.from_ and t.to == dst]

    def targets(self, src: str, roles: frozenset[str]) -> list[str]:
        """States a staff member with ``roles`` may move a record in ``src`` to (in order)."""
        ok = {t.to for t in self.settings.transitions if src in t.from_ and roles & set(t.roles)}
        return [s for s in self.states if s in ok]

    def auto_rule(self, event: str, src: str) -> AutoDef | None:
        for a in self.settings.auto:
            if a.event == event and src in a.from_ and a.to != src:
                return a
        return None


def machine(rt) -> Machine:
    return Machine(rt.settings(TrackingSettings))


def role_labels(session: Session) -> dict[str, str]:
    return dict(session.execute(select(Role.name, Role.label)).all())


def rule_text(t: TransitionDef, labels: dict[str, str]) -> str:
    roles = "、".join(labels.get(r, r) for r in t.roles)
    what = f"（{t.label}）" if t.label else ""
    return f"{'/'.join(t.from_)} → {t.to}{what}：{roles}"


def check(m: Machine, src: str, dst: str, roles: frozenset[str],
          labels: dict[str, str]) -> TransitionDef:
    """The transition that lets ``roles`` move a record from ``src`` to ``dst``, or
    TrackingError naming the rule that refuses it."""
    if dst not in m.states:
        raise TrackingError(f"没有“{dst}”这个状态")
    if src == dst:
        raise TrackingError(f"病案已处于“{dst}”")
    rules = m.transitions(src, dst)
    if not rules:
        allowed = [t.to for t in m.settings.transitions if src in t.from_]
        nxt = "、".join(dict.fromkeys(allowed)) or "无"
        raise TrackingError(f"流转规则不允许“{src} → {dst}”（“{src}”可转到：{nxt}）")
    for t in rules:
        if roles & set(t.roles):
            return t
    raise TrackingError("无权执行此流转：规则“" + "；".join(rule_text(t, labels) for t in rules)
                        + "”")


# ============================================================================================
# Current state
# ============================================================================================


def state_of(session: Session, m: Machine, admission_id: int) -> tuple[str, PaperState | None]:
    row = session.get(PaperState, admission_id)
    return (row.state if row is not None else m.initial), row


def states_of(session: Session, m: Machine, ids: list[int]) -> dict[int, str]:
    """The state of each admission of ``ids`` (the initial state for those never moved)."""
    out = dict.fromkeys(ids, m.initial)
    for i in range(0, len(ids), 900):
        out.update(session.execute(select(PaperState.admission_id, PaperState.state).where(
            PaperState.admission_id.in_(ids[i:i + 900]))).all())
    return out


def _write(session: Session, rt, adm: Admission, src: str, dst: str, row: PaperState | None, *,
           staff_no: str | None, actor: audit.Actor | None, location: str, note: str,
           source: str, rule: str, at: dt.datetime | None = None) -> Move:
    at = at or utcnow()
    mv = Move(admission_id=adm.id, from_state=src, to_state=dst, at=at, staff_no=staff_no,
              client_ip=actor.client_ip if actor else None,
              computer_name=actor.computer_name if actor else None,
              location=location[:MAX_LOCATION], note=note[:MAX_NOTE], source=source,
              rule=rule[:128])
    session.add(mv)
    session.flush()
    if row is None:
        session.add(PaperState(admission_id=adm.id, state=dst, since=at, last_move_id=mv.id))
    else:
        row.state, row.since, row.last_move_id = dst, at, mv.id
    session.flush()
    audit.record(session, rt, "tracking.move", actor=actor or audit.Actor(staff_no=staff_no),
                 mrn=adm.patient.mrn, admission_no=adm.admission_no,
                 detail={"from": src, "to": dst, "source": source, "location": location,
                         "note": note})
    return mv


def _clean(location: str, note: str) -> tuple[str, str]:
    location, note = (location or "").strip(), (note or "").strip()
    if len(location) > MAX_LOCATION:
        raise TrackingError(f"地点最多 {MAX_LOCATION} 个字")
    if len(note) > MAX_NOTE:
        raise TrackingError(f"备注最多 {MAX_NOTE} 个字")
    return location, note


def _lock(session: Session, admission_id: int) -> None:
    """One mover at a time per record on PostgreSQL (SQLite writes are serialized)."""
    if session.bind.dialect.name == "postgresql":
        session.execute(select(Admission.id).where(Admission.id == admission_id)
                        .with_for_update())


def move(session: Session, rt, adm: Admission, dst: str, *, staff: StaffRef,
         actor: audit.Actor | None = None, location: str = "", note: str = "",
         source: str = "manual") -> Move:
    """Move one record to ``dst`` by hand; TrackingError (rule named) when not allowed."""
    m = machine(rt)
    location, note = _clean(location, note)
    _lock(session, adm.id)
    src, row = state_of(session, m, adm.id)
    t = check(m, src, dst, staff.roles, role_labels(session))
    return _write(session, rt, adm, src, dst, row, staff_no=staff.staff_no, actor=actor,
                  location=location, note=note, source=source,
                  rule=f"{src}→{dst}" + (f"（{t.label}）" if t.label else ""))


# ============================================================================================
# Bulk moves: a run of scanned barcodes
# ============================================================================================

BULK_OUTCOMES = {"moved": "已流转", "refused": "不允许", "same": "已处于该状态",
                 "unknown": "无此病案", "invalid": "条码无效", "repeat": "本次重复扫描"}


@dataclass
class BulkItem:
    barcode: str
    outcome: str
    message: str
    admission_id: int | None = None
    from_state: str = ""

    @property
    def label(self) -> str:
        return BULK_OUTCOMES[self.outcome]


def parse_codes(text: str, limit: int) -> list[str]:
    """The barcodes of a scanned run (one per line, or separated by spaces / commas), in
    order; TrackingError for an empty or oversized run (nothing is moved then)."""
    codes = [c.strip().upper() for c in (text or "").replace(",", "\n").replace("，", "\n")
             .split() if c.strip()]
    if not codes:
        raise TrackingError("请扫描或输入病案条码")
    if len(codes) > limit:
        raise TrackingError(f"一次最多 {limit} 个条码（本次 {len(codes)} 个）")
    for c in codes:
        if len(c) > 64:
            raise TrackingError(f"条码过长：{c[:20]}…")
    return codes


def bulk_move(session: Session, rt, codes: list[str], dst: str, *, staff: StaffRef,
              actor: audit.Actor | None = None, location: str = "",
              note: str = "") -> list[BulkItem]:
    """Move every record of ``codes`` to ``dst``; each barcode gets its outcome (a refused
    one names the rule), the allowed ones move. A bad target or input moves nothing."""
    m = machine(rt)
    if dst not in m.states:
        raise TrackingError(f"没有“{dst}”这个状态")
    if len(codes) > m.settings.max_bulk:
        raise TrackingError(f"一次最多 {m.settings.max_bulk} 个条码")
    location, note = _clean(location, note)
    labels = role_labels(session)
    valid: list[str] = []
    for c in codes:
        try:
            records.parse_barcode(c)
            valid.append(c)
        except records.RecordError:
            pass
    adms: dict[str, Admission] = {}
    for i in range(0, len(valid), 900):
        for a in session.scalars(select(Admission).options(joinedload(Admission.patient))
                                 .where(Admission.barcode.in_(valid[i:i + 900]))):
            adms[a.barcode] = a
    states = {r.admission_id: r for r in session.scalars(select(PaperState).where(
        PaperState.admission_id.in_([a.id for a in adms.values()])))} if adms else {}
    out: list[BulkItem] = []
    seen: set[str] = set()
    for c in codes:
        if c in seen:
            out.append(BulkItem(c, "repeat", "本次已扫描过"))
            continue
        seen.add(c)
        adm = adms.get(c)
        if adm is None:
            ok = c in valid
            out.append(BulkItem(c, "unknown" if ok else "invalid",
                                "系统中没有这份病案" if ok else "不是病案条码（或校验位不符）"))
            continue
        row = states.get(adm.id)
        src = row.state if row is not None else m.initial
        if src == dst:
            out.append(BulkItem(c, "same", f"已处于“{dst}”", adm.id, src))
            continue
        try:
            t = check(m, src, dst, staff.roles, labels)
        except TrackingError as exc:
            out.append(BulkItem(c, "refused", str(exc), adm.id, src))
            continue
        _lock(session, adm.id)
        _write(session, rt, adm, src, dst, row, staff_no=staff.staff_no, actor=actor,
               location=location, note=note, source="bulk",
               rule=f"{src}→{dst}" + (f"（{t.label}）" if t.label else ""))
        states[adm.id] = session.get(PaperState, adm.id)  # type: ignore[assignment]
        out.append(BulkItem(c, "moved", f"{src} → {dst}", adm.id, src))
    return out


# ============================================================================================
# Automatic moves (paper_record_event)
# ============================================================================================


def on_event(session: Session, rt, admission: AdmissionRef,
             event: PaperRecordEvent) -> Move | None:
    """The move the settings name for ``event`` on this record, if its state is one the rule
    moves from; None otherwise (the record stays where it is)."""
    if event.event not in PAPER_EVENTS:
        raise TrackingError(f"未知的病案事件 {event.event!r}")
    m = machine(rt)
    _lock(session, admission.id)
    src, row = state_of(session, m, admission.id)
    rule = m.auto_rule(event.event, src)
    if rule is None:
        return None
    adm = session.get(Admission, admission.id)
    if adm is None:
        return None
    location, note = _clean(event.location[:MAX_LOCATION], event.note[:MAX_NOTE])
    act = audit.Actor(staff_no=event.staff_no, client_ip=event.client_ip,
                      computer_name=event.computer_name)
    return _write(session, rt, adm, src, rule.to, row, staff_no=event.staff_no, actor=act,
                  location=location, note=note, source=f"event:{event.event}",
                  rule=f"自动：{PAPER_EVENTS[event.event]}")


# ============================================================================================
# Timeline, counts, overdue
# ============================================================================================


@dataclass
class TimelineRow:
    at: dt.datetime
    from_state: str
    to_state: str
    staff_no: str | None
    staff_name: str
    client_ip: str | None
    computer_name: str | None
    location: str
    note: str
    source: str
    rule: str


def timeline(session: Session, admission_id: int) -> list[TimelineRow]:
    """Every move of a record, oldest first, with the mover's name."""
    rows = session.execute(
        select(Move, Staff.name).outerjoin(Staff, Staff.staff_no == Move.staff_no)
        .where(Move.admission_id == admission_id).order_by(Move.id)).all()
    return [TimelineRow(mv.at, mv.from_state, mv.to_state, mv.staff_no,
                        name or audit.actor_label(mv.staff_no) or "系统", mv.client_ip, mv.computer_name,
                        mv.location, mv.note, mv.source, mv.rule) for mv, name in rows]


class WeekdayCalendar:
    """Monday to Friday, when no plugin answers ``working_calendar`` (recovery off)."""

    def is_workday(self, day: dt.date) -> bool:
        return day.weekday() < 5

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        day = start
        while n:
            day += dt.timedelta(days=1)
            n -= day.weekday() < 5
        return day

    def unknown_years(self, first: int, last: int) -> list[int]:
        return []


def calendar(session: Session, rt):
    """The hospital's working-day calendar (the ``working_calendar`` hook), or weekdays."""
    cal = rt.pm.hook.working_calendar(session=session, rt=rt)
    return cal if cal is not None else WeekdayCalendar()


def overdue_cutoff(cal, today: dt.date, days: int) -> dt.date:
    """The last local date D such that a record in a state since D is overdue today (more
    than ``days`` working days after D, D itself not counted)."""
    d = today - dt.timedelta(days=1)
    for _ in range(800):
        if cal.add_working_days(d, days) < today:
            return d
        d -= dt.timedelta(days=1)
    return d


def _initial_since_col():
    return Admission.discharged_at


def _initial_query(m: Machine):
    """Discharged, not cancelled admissions nobody moved yet: the initial state."""
    return (select(Admission.id).outerjoin(PaperState, PaperState.admission_id == Admission.id)
            .where(PaperState.admission_id.is_(None), Admission.discharged_at.is_not(None),
                   Admission.cancelled_at.is_(None)))


@dataclass
class StateCount:
    state: str
    count: int
    limit: int
    overdue: int
    cutoff: dt.date | None


def counts(session: Session, rt, today: dt.date | None = None) -> list[StateCount]:
    """Records per state (in the settings' order, then any state no longer configured) with
    how many are overdue, for the dashboard."""
    m = machine(rt)
    today = today or utcnow().astimezone(rt.tz).date()
    cal = calendar(session, rt)
    got = dict(session.execute(select(PaperState.state, func.count())
                               .group_by(PaperState.state)).all())
    initial = session.scalar(select(func.count()).select_from(_initial_query(m).subquery())) or 0
    got[m.initial] = got.get(m.initial, 0) + initial
    out = []
    for name in m.states + sorted(set(got) - set(m.states)):
        limit = m.limit(name)
        over, cutoff = 0, None
        if limit and got.get(name):
            cutoff = overdue_cutoff(cal, today, limit)
            over = session.scalar(select(func.count()).select_from(
                _in_state(m, name, rt, cutoff).subquery())) or 0
        out.append(StateCount(name, got.get(name, 0), limit, over, cutoff))
    return out


def _in_state(m: Machine, state: str, rt, cutoff: dt.date | None):
    """Admission ids in ``state`` (since before the day after ``cutoff`` when given)."""
    end = (dt.datetime.combine(cutoff + dt.timedelta(days=1), dt.time(), tzinfo=rt.tz)
           if cutoff else None)
    q = select(PaperState.admission_id.label("id")).where(PaperState.state == state)
    if end is not None:
        q = q.where(PaperState.since < end)
    if state != m.initial:
        return q
    init = _initial_query(m)
    if end is not None:
        init = init.where(Admission.discharged_at < end)
    return q.union_all(init)


@dataclass
class StateRow:
    admission_id: int
    barcode: str
    admission_no: str
    mrn: str
    name: str
    since: dt.datetime | None
    working_days: int | None


def in_state(session: Session, rt, state: str, *, overdue_only: bool = False,
             page: int = 1, today: dt.date | None = None) -> tuple[list[StateRow], int]:
    """Records in ``state`` (longest there first), one page, and the total count."""
    m = machine(rt)
    if state not in m.states:
        raise TrackingError(f"没有“{state}”这个状态")
    today = today or utcnow().astimezone(rt.tz).date()
    cal = calendar(session, rt)
    limit = m.limit(state)
    cutoff = overdue_cutoff(cal, today, limit) if overdue_only and limit else None
    if overdue_only and not limit:
        return [], 0
    sub = _in_state(m, state, rt, cutoff).subquery()
    total = session.scalar(select(func.count()).select_from(sub)) or 0
    size = m.settings.page_size
    since = func.coalesce(PaperState.since, Admission.discharged_at)
    q = (select(Admission, PaperState.since).options(joinedload(Admission.patient))
         .join(sub, sub.c.id == Admission.id)
         .outerjoin(PaperState, PaperState.admission_id == Admission.id)
         .order_by(since, Admission.id).offset((max(page, 1) - 1) * size).limit(size))
    out = []
    for adm, st_since in session.execute(q).all():
        when = st_since or adm.discharged_at
        days = None
        if when is not None:
            d0 = when.astimezone(rt.tz).date()
            days = _working_days_between(cal, d0, today)
        out.append(StateRow(adm.id, adm.barcode, adm.admission_no, adm.patient.mrn,
                            adm.patient.name, when, days))
    return out, total


def _working_days_between(cal, start: dt.date, end: dt.date) -> int:
    n, day = 0, start
    if (end - start).days > 3700:
        return (end - start).days * 5 // 7
    while day < end:
        day += dt.timedelta(days=1)
        n += bool(cal.is_workday(day))
    return n


def find_admission(session: Session, code: str) -> Admission | None:
    """A record by its barcode or admission number."""
    code = (code or "").strip().upper()
    if not code or len(code) > 64:
        return None
    return session.scalar(select(Admission).options(joinedload(Admission.patient)).where(
        (Admission.barcode == code) | (Admission.admission_no == code)))
