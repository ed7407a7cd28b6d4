"""Pages of the tracking plugin.

  GET  /tracking                     示踪看板: records per state, overdue per state, the rules
  GET  /tracking/state?name=&overdue=1&page_no=   records in one state (those the user may read)
  GET  /tracking/move                扫码流转: a run of scanned barcodes -> a target state
  POST /tracking/move                the run, with an outcome per barcode
  GET  /tracking/record?code=        one record's timeline (barcode or admission number), and
                                     the moves the user may make on it
  POST /tracking/record/{admission_id}/move   one move by hand
  GET  /api/tracking/counts          records per state (JSON)
"""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from bingan.core import audit, permissions
from bingan.core.models import Admission, utcnow
from bingan.core.records import to_ref
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor

from bingan_tracking import service
from bingan_tracking.service import TrackingError
from bingan_tracking.settings import TrackingSettings

SOURCES = {"manual": "手工流转", "bulk": "扫码批量流转", "demo": "演示数据"}


def source_label(source: str) -> str:
    from bingan.hooks.types import PAPER_EVENTS

    if source.startswith("event:"):
        return "自动（" + PAPER_EVENTS.get(source[6:], source[6:]) + "）"
    return SOURCES.get(source, source)


def _staff(request: Request):
    return request.state.staff


def _fmt(rt, t) -> str:
    return t.astimezone(rt.tz).strftime("%Y-%m-%d %H:%M") if t else ""


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(form.get(k) or "")[:100_000] for k in form}


@get("/tracking", opt={"permission": "tracking.view"})
@in_thread
def dashboard(request: Request) -> Any:
    rt = request.app.state.rt
    m = service.machine(rt)
    with rt.sessions() as s:
        counts = service.counts(s, rt)
        labels = service.role_labels(s)
        cal = service.calendar(s, rt)
    today = utcnow().astimezone(rt.tz).date()
    top = max([c.count for c in counts] + [1])
    rules = [(t, "、".join(labels.get(r, r) for r in t.roles)) for t in m.settings.transitions]
    autos = [(a, source_label("event:" + a.event)) for a in m.settings.auto]
    return page(request, "tracking/dashboard.html", title="示踪看板", counts=counts, top=top,
                total=sum(c.count for c in counts), rules=rules, autos=autos,
                flagged=cal.unknown_years(today.year, today.year),
                weekdays=isinstance(cal, service.WeekdayCalendar))


@get("/api/tracking/counts", opt={"permission": "tracking.view"})
@in_thread
def counts_api(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        counts = service.counts(s, rt)
    return {"states": [{"state": c.state, "count": c.count, "overdue": c.overdue,
                        "overdue_days": c.limit} for c in counts]}


def _readable(s, rt, staff, adm_ids: list[int]) -> set[int]:
    """The admissions of ``adm_ids`` whose record ``staff`` may read (core's decision)."""
    flt = permissions.readable(s, rt, staff, "view")
    if flt is not None:
        return {i for i in adm_ids if (i in flt.ids) != flt.exclude}
    out = set()
    for a in s.scalars(select(Admission).options(joinedload(Admission.patient))
                       .where(Admission.id.in_(adm_ids))).unique():
        if permissions.decide(s, rt, staff, a, "view", record=False).allowed:
            out.add(a.id)
    return out


@get("/tracking/state", opt={"permission": "tracking.view"})
@in_thread
def state_page(request: Request, name: FromQuery[str] = "", overdue: FromQuery[int] = 0,
               page_no: FromQuery[int] = 1) -> Any:
    rt = request.app.state.rt
    state = name[:16]
    staff = _staff(request)
    page_no = max(1, min(page_no, 100_000))
    with rt.sessions() as s, s.begin():
        try:
            rows, total = service.in_state(s, rt, state, overdue_only=bool(overdue),
                                           page=page_no)
        except TrackingError as exc:
            raise NotFoundException(str(exc)) from exc
        ok = _readable(s, rt, staff, [r.admission_id for r in rows])
        audit.record(s, rt, "tracking.list", actor=actor(request),
                     detail={"state": state, "overdue": bool(overdue), "page": page_no,
                             "shown": len(ok)})
    shown = [dict(r.__dict__, since=_fmt(rt, r.since)) for r in rows if r.admission_id in ok]
    size = rt.settings(TrackingSettings).page_size
    m = service.machine(rt)
    return page(request, "tracking/state.html", title=f"{state}的病案", state=state,
                overdue=bool(overdue), rows=shown, hidden=len(rows) - len(shown), total=total,
                page_no=page_no, pages=max(1, -(-total // size)), limit=m.limit(state))


def _move_page(request: Request, *, results=None, error: str | None = None, form=None,
               status: int = 200):
    rt = request.app.state.rt
    st = rt.settings(TrackingSettings)
    staff = _staff(request)
    m = service.machine(rt)
    mine = [t for t in m.states
            if any(t == r.to and staff.roles & set(r.roles) for r in st.transitions)]
    summary: dict[str, int] = {}
    for it in results or []:
        summary[it.label] = summary.get(it.label, 0) + 1
    return page(request, "tracking/move.html", status_code=status, title="扫码流转",
                targets=mine, locations=st.locations, results=results, summary=summary,
                error=error, form=form or {}, max_bulk=st.max_bulk)


@get("/tracking/move", opt={"permission": "tracking.move"})
@in_thread
def move_form(request: Request) -> Any:
    return _move_page(request)


@post("/tracking/move", opt={"permission": "tracking.move"}, status_code=200)
async def move_post(request: Request) -> Any:
    f = await _form(request)

    def work():
        rt = request.app.state.rt
        st = rt.settings(TrackingSettings)
        try:
            codes = service.parse_codes(f.get("codes", ""), st.max_bulk)
            with rt.sessions() as s, s.begin():
                results = service.bulk_move(s, rt, codes, f.get("to", ""), staff=_staff(request),
                                            actor=actor(request), location=f.get("location", ""),
                                            note=f.get("note", ""))
        except TrackingError as exc:
            return _move_page(request, error=str(exc), form=f, status=400)
        keep = {k: f.get(k, "") for k in ("to", "location", "note")}
        return _move_page(request, results=results, form=keep)

    return await anyio.to_thread.run_sync(work)


def _record_page(request: Request, code: str, *, error: str | None = None, status: int = 200):
    rt = request.app.state.rt
    staff = _staff(request)
    code = (code or "").strip()
    info = None
    if code:
        with rt.sessions() as s, s.begin():
            adm = service.find_admission(s, code)
            if adm is None:
                error, status = error or f"没有条码或住院号为“{code[:64]}”的病案", 404
            else:
                d = permissions.decide(s, rt, staff, adm, "view", actor=actor(request))
                if not d.allowed:
                    error, status = f"无权查阅这份病案：{d.reason}", 403
                else:
                    m = service.machine(rt)
                    state, row = service.state_of(s, m, adm.id)
                    tl = service.timeline(s, adm.id)
                    audit.record(s, rt, "tracking.timeline", actor=actor(request),
                                 mrn=adm.patient.mrn, admission_no=adm.admission_no)
                    # where this user may ask the record room for the paper record, if anywhere
                    ask = rt.pm.hook.paper_record_request(admission=to_ref(adm), user=staff,
                                                          rt=rt)
                    info = {
                        "id": adm.id, "barcode": adm.barcode, "admission_no": adm.admission_no,
                        "mrn": adm.patient.mrn, "name": adm.patient.name,
                        "discharged": _fmt(rt, adm.discharged_at), "state": state,
                        "since": _fmt(rt, row.since if row else adm.discharged_at),
                        "targets": (m.targets(state, staff.roles)
                                    if "tracking.move" in staff.permissions else []),
                        "ask": ask,
                        "timeline": [dict(t.__dict__, at=_fmt(rt, t.at),
                                          source=source_label(t.source)) for t in tl],
                    }
    st = rt.settings(TrackingSettings)
    return page(request, "tracking/record.html", status_code=status, title="病案流转记录",
                code=code, info=info, error=error, locations=st.locations)


@get("/tracking/record", opt={"permission": "tracking.view"})
@in_thread
def record_page(request: Request, code: FromQuery[str] = "") -> Any:
    return _record_page(request, code[:64])


@post("/tracking/record/{admission_id:int}/move", opt={"permission": "tracking.move"},
      status_code=200)
async def record_move(request: Request, admission_id: FromPath[int]) -> Any:
    f = await _form(request)

    def work():
        rt = request.app.state.rt
        staff = _staff(request)
        with rt.sessions() as s:
            adm = s.scalar(select(Admission).options(joinedload(Admission.patient))
                           .where(Admission.id == admission_id))
            if adm is None:
                raise NotFoundException("没有这份病案")
            code = adm.barcode
        try:
            with rt.sessions() as s, s.begin():
                adm = s.scalar(select(Admission).options(joinedload(Admission.patient))
                               .where(Admission.id == admission_id))
                service.move(s, rt, adm, f.get("to", ""), staff=staff, actor=actor(request),
                             location=f.get("location", ""), note=f.get("note", ""))
        except TrackingError as exc:
            return _record_page(request, code, error=str(exc), status=400)
        return Redirect(f"/tracking/record?code={code}", status_code=303)

    return await anyio.to_thread.run_sync(work)


@get("/tracking/settings", opt={"permission": "admin.plugins"})
@in_thread
def settings_page(request: Request) -> Any:
    """The state machine as configured (read-only) for the administrator who keeps
    plugins.toml: states with their overdue limits and how many records are in each and
    passed through it, the rules, the automatic moves, and the states the records and their
    history still hold that the configuration no longer has (left behind by a rename or a
    removal: history keeps the old name, such records must be moved on by hand)."""
    from sqlalchemy import func

    from bingan_tracking.models import Move, PaperState

    rt = request.app.state.rt
    m = service.machine(rt)
    with rt.sessions() as s:
        now_in = {c.state: c.count for c in service.counts(s, rt)}
        stored = dict(s.execute(select(PaperState.state, func.count())
                                .group_by(PaperState.state)).all())
        moved_to = dict(s.execute(select(Move.to_state, func.count())
                                  .group_by(Move.to_state)).all())
        moved_from = dict(s.execute(select(Move.from_state, func.count())
                                    .group_by(Move.from_state)).all())
        labels = service.role_labels(s)
    states = [{"name": st.name, "limit": st.overdue_days, "initial": st.name == m.initial,
               "now": now_in.get(st.name, 0), "moves": moved_to.get(st.name, 0),
               "rules": sum(st.name in t.from_ or st.name == t.to
                            for t in m.settings.transitions)}
              for st in m.settings.states]
    known = set(m.states)
    orphans = [{"name": n, "now": stored.get(n, 0),
                "moves": moved_to.get(n, 0) + moved_from.get(n, 0)}
               for n in sorted((set(stored) | set(moved_to) | set(moved_from)) - known)]
    rules = [(t, "、".join(labels.get(r, r) for r in t.roles)) for t in m.settings.transitions]
    autos = [(a, source_label("event:" + a.event)) for a in m.settings.auto]
    return page(request, "tracking/settings.html", title="示踪状态配置", states=states,
                orphans=orphans, rules=rules, autos=autos)


ROUTES = [dashboard, counts_api, state_page, move_form, move_post, record_page, record_move,
          settings_page]
