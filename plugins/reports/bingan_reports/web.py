"""Pages of the reports plugin.

  GET /reports                         统计报表: every report the user may run, by area
  GET /reports/view/{key}              one report: filters, a chart, the table with its totals
  GET /reports/view/{key}/xlsx         the same figures as an Excel workbook (audited)
  GET /api/reports/{key}               the same figures as JSON (the chart reads it)
  GET /reports/dashboard               我的工作台: the reports the user's roles watch
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from sqlalchemy import select

from bingan.core import audit
from bingan.core.config import CoreSettings
from bingan.core.exporting import content_disposition
from bingan.core.models import Department
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor
from bingan.hooks.types import GROUP_LABELS, ReportParams

from bingan_reports import registry
from bingan_reports.registry import ReportError

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# the built-in roles a dashboard is made for, in the order one person holding several sees them
DASHBOARD_ROLES = {"records": "病案室", "clerk": "病案室", "qc": "质控", "physician": "临床医师",
                   "auditor": "审计"}


def _spec(request: Request, key: str):
    rt = request.app.state.rt
    spec = registry.all_reports(rt).get(key)
    if spec is None:
        raise NotFoundException("没有这个报表")
    if not registry.may_run(spec, request.state.staff):
        raise PermissionDeniedException("无权查看此报表")
    return spec


def _departments(s) -> list[tuple[str, str]]:
    return [(c, n) for c, n in s.execute(select(Department.code, Department.name)
                                         .where(Department.active.is_(True))
                                         .order_by(Department.code))]


def _compute(request: Request, key: str, start, end, department, group):
    rt = request.app.state.rt
    spec = _spec(request, key)
    params = registry.parse_params(spec, rt.tz, request.state.staff, start=start, end=end,
                                   department=department, group=group)
    with rt.sessions() as s:
        result = registry.run(s, rt, spec, params)
        depts = _departments(s)
    return spec, result, depts


@get("/reports", opt={"permission": "reports.view"})
@in_thread
def index(request: Request) -> Any:
    rt = request.app.state.rt
    areas = registry.visible(rt, request.state.staff)
    return page(request, "reports/index.html", title="统计报表", areas=areas)


@get("/reports/view/{key:str}")
@in_thread
def report_page(request: Request, key: FromPath[str], start: FromQuery[str | None] = None,
                end: FromQuery[str | None] = None, department: FromQuery[str | None] = None,
                group: FromQuery[str | None] = None) -> Any:
    rt = request.app.state.rt
    spec = _spec(request, key)
    error = None
    try:
        spec, result, depts = _compute(request, key, start, end, department, group)
    except ReportError as exc:
        error = str(exc)
        params = registry.parse_params(spec, rt.tz, request.state.staff)
        with rt.sessions() as s:
            depts = _departments(s)
        result = registry.Result(spec, params, [], registry.totals(spec, []))
    p = result.params
    query = {"start": p.start.isoformat(), "end": p.end.isoformat(), "group": p.group,
             "department": p.department or ""}
    qs = "&".join(f"{k}={v}" for k, v in query.items() if v)
    return page(request, "reports/report.html", status_code=400 if error else 200,
                title=spec.title, spec=spec, result=result, params=p, depts=depts,
                groups=[(g, GROUP_LABELS.get(g, g)) for g in spec.groups], qs=qs,
                show=lambda v, kind: registry.show(v, kind, p), error=error)


@get("/api/reports/{key:str}")
@in_thread
def report_api(request: Request, key: FromPath[str], start: FromQuery[str | None] = None,
               end: FromQuery[str | None] = None, department: FromQuery[str | None] = None,
               group: FromQuery[str | None] = None) -> Any:
    try:
        spec, result, _ = _compute(request, key, start, end, department, group)
    except ReportError as exc:
        return Response({"error": str(exc)}, status_code=400)
    p = result.params

    def cell(v):
        return v.isoformat() if isinstance(v, dt.date) else v

    return {"key": spec.key, "title": spec.title, "start": p.start.isoformat(),
            "end": p.end.isoformat(), "group": p.group, "department": p.department,
            "columns": [{"key": c.key, "label": c.label, "kind": c.kind} for c in spec.columns],
            "rows": [{k: cell(v) for k, v in r.items()} for r in result.rows],
            "total": {k: cell(v) for k, v in result.total.items()},
            "chart": registry.chart_data(result)}


@get("/reports/view/{key:str}/xlsx")
@in_thread
def report_xlsx(request: Request, key: FromPath[str], start: FromQuery[str | None] = None,
                end: FromQuery[str | None] = None, department: FromQuery[str | None] = None,
                group: FromQuery[str | None] = None) -> Response:
    rt = request.app.state.rt
    try:
        spec, result, depts = _compute(request, key, start, end, department, group)
    except ReportError as exc:
        return Response(str(exc), status_code=400, media_type="text/plain; charset=utf-8")
    p = result.params
    dept_label = dict(depts).get(p.department or "", p.department or "全院")
    data = registry.workbook(result, rt.settings(CoreSettings).hospital_name, dept_label)
    with rt.sessions() as s, s.begin():
        audit.record(s, rt, "reports.export", actor=actor(request),
                     detail={"report": spec.key, "start": p.start.isoformat(),
                             "end": p.end.isoformat(), "group": p.group,
                             "department": p.department, "rows": len(result.rows)})
    name = f"{spec.title}_{p.start}_{p.end}.xlsx"
    return Response(data, media_type=XLSX, headers={
        "Content-Disposition": content_disposition(name), "Cache-Control": "no-store"})


def dashboard_reports(rt, staff) -> list[tuple[str, list]]:
    """(role label, reports) for each dashboard role ``staff`` holds, each report at most once
    (the first role that watches it)."""
    seen: set[str] = set()
    out: list[tuple[str, list]] = []
    specs = sorted(registry.all_reports(rt).values(), key=lambda s: (s.order, s.title))
    for role, label in DASHBOARD_ROLES.items():
        if role not in staff.roles:
            continue
        mine = [sp for sp in specs if role in sp.dashboards and sp.key not in seen
                and registry.may_run(sp, staff)]
        seen.update(sp.key for sp in mine)
        if mine:
            out.append((label, mine))
    return out


@get("/reports/dashboard")
@in_thread
def dashboard(request: Request) -> Any:
    rt = request.app.state.rt
    staff = request.state.staff
    today = dt.datetime.now(rt.tz).date()
    panels = []
    with rt.sessions() as s:
        for label, specs in dashboard_reports(rt, staff):
            items = []
            for spec in specs:
                params = ReportParams(
                    start=today - dt.timedelta(days=spec.dashboard_days - 1), end=today,
                    tz=rt.tz, group=spec.groups[0] if spec.groups else "", staff=staff)
                try:
                    result = registry.run(s, rt, spec, params)
                    err = None
                except ReportError as exc:
                    result, err = None, str(exc)
                qs = f"start={params.start}&end={params.end}" + (
                    f"&group={params.group}" if params.group else "")
                items.append({"spec": spec, "result": result, "error": err, "qs": qs,
                              "show": (lambda p: lambda v, k: registry.show(v, k, p))(params)})
            panels.append((label, items))
    return page(request, "reports/dashboard.html", title="我的工作台", panels=panels,
                may_reports="reports.view" in staff.permissions)


ROUTES = [index, report_page, report_api, report_xlsx, dashboard]
