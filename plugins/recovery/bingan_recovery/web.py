"""Pages of the recovery plugin.

  GET  /recovery                          待回收病案: due list per ward; overdue by ward,
                                          department or attending physician
  GET  /recovery/calendar?year=           节假日设置 (national data, hospital table, flagged years)
  POST /recovery/calendar                 add/change a day; POST /recovery/calendar/remove, /check
  GET  /recovery/stats, /recovery/stats.xlsx, /api/recovery/stats   2-working-day archiving rate
  GET  /recovery/room                     病案室签收: scan -> recovered -> label; live list
  POST /recovery/room/scan                one scan (htmx fragment)
  GET  /recovery/room/live                the live list (htmx polling)
  GET  /recovery/labels/{admission_id}/label.pdf, POST /recovery/labels/{admission_id}/print
  GET/POST /recovery/supplements          补单
  GET  /recovery/phone/app                the ward phone page (PWA), its manifest and service worker
  GET  /api/recovery/due                  the due list for the phone
  POST /api/recovery/upload               idempotent upload with per-item results
  GET  /recovery/receipts/{handover}      the receipt as a page; .../escpos: ESC/POS bytes
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from bingan.core import audit
from bingan.core.models import Admission, utcnow
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor

from bingan_recovery import calendar as wcal
from bingan_recovery import label as labels
from bingan_recovery import receipt as receipts
from bingan_recovery import service
from bingan_recovery.models import (
    DAY_KINDS, SOURCE_LABELS, SUPPLEMENT_STATUS, Handover, HospitalDay,
    Recovery, Supplement,
)
from bingan_recovery.service import RecoveryError, local_date
from bingan_recovery.settings import RecoverySettings
from bingan.core.config import CoreSettings

STATIC = Path(__file__).parent / "static"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
JOB_ID = re.compile(r"request id is (\S+)")


def _staff(request: Request):
    return request.state.staff


def _must(request: Request, perm: str) -> None:
    if perm not in _staff(request).permissions:
        raise PermissionDeniedException("无权使用此功能")


def _today(rt) -> dt.date:
    return local_date(rt, utcnow())


def _fmt(rt, t: dt.datetime | None) -> str:
    return t.astimezone(rt.tz).strftime("%Y-%m-%d %H:%M") if t else ""


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(form.get(k) or "")[:2000] for k in form}


def _fragment(text: str, status_code: int = 200) -> Response:
    return Response(text, status_code=status_code, media_type="text/html; charset=utf-8")


def _esc(s: Any) -> str:
    from markupsafe import escape

    return str(escape(str(s)))


# ============================================================================================
# Due list
# ============================================================================================


@get("/recovery", opt={"permission": "recovery.view"})
@in_thread
def due_page(request: Request, ward: FromQuery[str | None] = None,
             by: FromQuery[str | None] = None) -> Any:
    rt = request.app.state.rt
    by = by if by in ("ward", "department", "attending") else "ward"
    today = _today(rt)
    with rt.sessions() as s:
        cal = wcal.load(s)
        rows = service.due_rows(s, rt, today, cal=cal)
    wards = sorted({r.ward for r in rows})
    shown = [r for r in rows if not ward or r.ward == ward]
    return page(request, "recovery/due.html", title="待回收病案", rows=shown, wards=wards,
                ward=ward or "", by=by, summary=service.overdue_summary(rows, by), today=today,
                flagged=cal.unknown_years(today.year, today.year + 1),
                due_days=rt.settings(RecoverySettings).due_working_days)


@get("/api/recovery/due", opt={"permission": "recovery.ward"})
@in_thread
def due_api(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        rows = service.due_rows(s, rt)
    return {"downloaded_at": utcnow().isoformat(), "items": [
        {"barcode": r.barcode, "mrn": r.mrn, "admission_no": r.admission_no, "name": r.name,
         "ward": r.ward, "discharge_date": r.discharge_date.isoformat(),
         "due_date": r.due_date.isoformat(), "overdue": r.overdue_days > 0} for r in rows]}


# ============================================================================================
# 节假日设置
# ============================================================================================


def _calendar_page(request: Request, year: int, error: str | None = None, status: int = 200):
    rt = request.app.state.rt
    with rt.sessions() as s:
        cal = wcal.load(s)
        own = list(s.scalars(select(HospitalDay).order_by(HospitalDay.day.desc()).limit(500)))
    today = _today(rt)
    return page(request, "recovery/calendar.html", status_code=status, title="节假日设置",
                year=year, days=wcal.year_days(cal, year), own=own, kinds=DAY_KINDS,
                flagged=cal.unknown_years(min(year, today.year), max(year, today.year + 1)),
                known_until=max(wcal.chinese_calendar_years()), error=error,
                may_edit="recovery.calendar" in _staff(request).permissions)


@get("/recovery/calendar", opt={"permission": "recovery.view"})
@in_thread
def calendar_page(request: Request, year: FromQuery[int | None] = None) -> Any:
    y = year or _today(request.app.state.rt).year
    if not 2000 <= y <= 2100:
        y = _today(request.app.state.rt).year
    return _calendar_page(request, y)


def _calendar_write(request: Request, f: dict[str, str], what: str) -> Any:
    rt = request.app.state.rt
    staff = _staff(request)
    year = _today(rt).year
    try:
        if what == "check":
            year = int(f.get("year") or 0)
            with rt.sessions() as s, s.begin():
                service.check_year(s, rt, year, by=staff.staff_no, actor=actor(request))
        else:
            try:
                day = dt.date.fromisoformat(f.get("day", ""))
            except ValueError as exc:
                raise RecoveryError("日期格式应为 YYYY-MM-DD") from exc
            year = day.year
            with rt.sessions() as s, s.begin():
                if what == "remove":
                    service.remove_day(s, rt, day, by=staff.staff_no, actor=actor(request))
                else:
                    service.set_day(s, rt, day, f.get("kind", ""), f.get("note", ""),
                                    by=staff.staff_no, actor=actor(request))
    except (RecoveryError, ValueError) as exc:
        return _calendar_page(request, year if 2000 <= year <= 2100 else _today(rt).year,
                              str(exc), 400)
    from litestar.response import Redirect

    return Redirect(f"/recovery/calendar?year={year}", status_code=303)


@post("/recovery/calendar", opt={"permission": "recovery.calendar"}, status_code=200)
async def calendar_set(request: Request) -> Any:
    f = await _form(request)
    return await anyio.to_thread.run_sync(lambda: _calendar_write(request, f, "set"))


@post("/recovery/calendar/remove", opt={"permission": "recovery.calendar"}, status_code=200)
async def calendar_remove(request: Request) -> Any:
    f = await _form(request)
    return await anyio.to_thread.run_sync(lambda: _calendar_write(request, f, "remove"))


@post("/recovery/calendar/check", opt={"permission": "recovery.calendar"}, status_code=200)
async def calendar_check(request: Request) -> Any:
    f = await _form(request)
    return await anyio.to_thread.run_sync(lambda: _calendar_write(request, f, "check"))


# ============================================================================================
# 2-working-day archiving rate
# ============================================================================================


def _range(start: str | None, end: str | None, today: dt.date) -> tuple[dt.date, dt.date]:
    try:
        e = dt.date.fromisoformat(end) if end else today
        b = dt.date.fromisoformat(start) if start else (e.replace(day=1) - dt.timedelta(days=150)
                                                        ).replace(day=1)
    except ValueError as exc:
        raise RecoveryError("日期格式应为 YYYY-MM-DD") from exc
    return b, e


def _rates(request: Request, start, end):
    rt = request.app.state.rt
    b, e = _range(start, end, _today(rt))
    with rt.sessions() as s:
        rows = service.archiving_rate(s, rt, b, e)
    return b, e, rows


@get("/recovery/stats", opt={"permission": "recovery.view"})
@in_thread
def stats_page(request: Request, start: FromQuery[str | None] = None,
               end: FromQuery[str | None] = None) -> Any:
    rt = request.app.state.rt
    try:
        b, e, rows = _rates(request, start, end)
        error = None
    except RecoveryError as exc:
        (b, e), rows, error = _range(None, None, _today(rt)), [], str(exc)
    return page(request, "recovery/stats.html", status_code=400 if error else 200,
                title="归档率统计", rows=rows, totals=service.rate_totals(rows), start=b, end=e,
                error=error, due_days=rt.settings(RecoverySettings).due_working_days)


@get("/api/recovery/stats", opt={"permission": "recovery.view"})
@in_thread
def stats_api(request: Request, start: FromQuery[str | None] = None,
              end: FromQuery[str | None] = None) -> Any:
    try:
        b, e, rows = _rates(request, start, end)
    except RecoveryError as exc:
        return Response({"error": str(exc)}, status_code=400)
    totals = service.rate_totals(rows)
    depts = sorted({r.department for r in rows})
    months = [t.month for t in totals]
    cell = {(r.month, r.department): r.rate for r in rows}
    return {"start": b.isoformat(), "end": e.isoformat(), "months": months,
            "total": [t.rate for t in totals],
            "departments": [{"name": d, "rates": [cell.get((m, d)) for m in months]}
                            for d in depts]}


@get("/recovery/stats.xlsx", opt={"permission": "recovery.view"})
@in_thread
def stats_xlsx(request: Request, start: FromQuery[str | None] = None,
               end: FromQuery[str | None] = None) -> Response:
    rt = request.app.state.rt
    try:
        b, e, rows = _rates(request, start, end)
    except RecoveryError as exc:
        return Response(str(exc), status_code=400, media_type="text/plain; charset=utf-8")
    due = rt.settings(RecoverySettings).due_working_days
    data = service.rate_workbook(rows, b, e, rt.settings(CoreSettings).hospital_name, due)
    with rt.sessions() as s, s.begin():
        audit.record(s, rt, "recovery.export", actor=actor(request),
                     detail={"start": b.isoformat(), "end": e.isoformat()})
    name = f"病历{due}日归档率_{b}_{e}.xlsx"
    return Response(data, media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename=\"archiving_rate.xlsx\"; "
                               f"filename*=UTF-8''{quote(name)}"})


# ============================================================================================
# Record room: scan, label, live list
# ============================================================================================


def _live_rows(s, rt, limit: int = 30) -> list[dict]:
    rows = s.execute(select(Recovery, Admission)
                     .join(Admission, Admission.id == Recovery.admission_id)
                     .options(joinedload(Admission.patient))
                     .order_by(Recovery.recovered_at.desc(), Recovery.id.desc()).limit(limit)).all()
    return [{"at": _fmt(rt, r.recovered_at), "mrn": a.patient.mrn, "name": a.patient.name,
             "admission_id": a.id, "admission_no": a.admission_no, "ward": r.ward or "",
             "by": r.recovered_by, "source": SOURCE_LABELS.get(r.source, r.source),
             "discharged": local_date(rt, a.discharged_at) if a.discharged_at else None,
             "labelled": r.label_printed_at is not None} for r, a in rows]


@get("/recovery/room", opt={"permission": "recovery.room"})
@in_thread
def room_page(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        live = _live_rows(s, rt)
    st = rt.settings(RecoverySettings)
    return page(request, "recovery/room.html", title="病案室签收", live=live,
                poll=st.live_poll_seconds, printer=st.label_printer)


@get("/recovery/room/live", opt={"permission": "recovery.room"})
@in_thread
def room_live(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        live = _live_rows(s, rt)
    return page(request, "recovery/live.html", live=live)


def _label_data(s, rt, admission_id: int) -> tuple[labels.LabelData, Recovery]:
    adm = s.scalar(select(Admission).options(joinedload(Admission.patient))
                   .where(Admission.id == admission_id))
    rec = s.scalar(select(Recovery).where(Recovery.admission_id == admission_id))
    if adm is None or rec is None:
        raise NotFoundException("没有这份已回收的病案")
    return labels.LabelData(adm.barcode, adm.patient.mrn, adm.patient.name,
                            local_date(rt, adm.discharged_at) if adm.discharged_at else None,
                            adm.admission_no, rec.ward or ""), rec


def _print_label(rt, pdf: bytes, title: str) -> tuple[bool, str]:
    st = rt.settings(RecoverySettings)
    cmd = [st.lp_command, "-d", st.label_printer, "-t", title,
           "-o", f"media=Custom.{st.label_width_mm:g}x{st.label_height_mm:g}mm", "--", "-"]
    try:
        res = subprocess.run(cmd, input=pdf, capture_output=True, timeout=st.lp_timeout_seconds,
                             env={**os.environ, "LANG": "C.UTF-8"})
    except FileNotFoundError:
        return False, f"找不到打印命令 {st.lp_command}（安装 cups-client）"
    except subprocess.TimeoutExpired:
        return False, f"打印命令超过 {st.lp_timeout_seconds} 秒没有响应"
    out = (res.stdout + res.stderr).decode("utf-8", "replace").strip()
    m = JOB_ID.search(out)
    if res.returncode != 0 or not m:
        return False, out[:300] or f"lp 退出码 {res.returncode}"
    return True, m.group(1)


def _label_out(request: Request, admission_id: int, via: str) -> tuple[bytes, str, bool, str]:
    """Make the label, register it printed (audited); send it to CUPS when ``via`` is lp."""
    rt = request.app.state.rt
    st = rt.settings(RecoverySettings)
    with rt.sessions() as s:
        data, _ = _label_data(s, rt, admission_id)
    pdf = labels.label_pdf(data, st.label_width_mm, st.label_height_mm)
    ok, msg = True, ""
    if via == "lp":
        if not st.label_printer:
            ok, msg = False, "未设置标签打印机（[plugins.recovery] label_printer）"
        else:
            ok, msg = _print_label(rt, pdf, f"label-{data.barcode}")
    with rt.sessions() as s, s.begin():
        rec = s.scalar(select(Recovery).where(Recovery.admission_id == admission_id))
        if ok:
            rec.label_printed_at = utcnow()
        audit.record(s, rt, "recovery.label", actor=actor(request), mrn=data.mrn,
                     admission_no=data.admission_no, outcome="ok" if ok else "failed",
                     detail={"via": via, "printer": st.label_printer if via == "lp" else "",
                             "result": msg})
    return pdf, data.barcode, ok, msg


@get("/recovery/labels/{admission_id:int}/label.pdf", opt={"permission": "recovery.room"})
@in_thread
def label_download(request: Request, admission_id: FromPath[int]) -> Response:
    pdf, code, _, _ = _label_out(request, admission_id, "browser")
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f"inline; filename=\"label-{code}.pdf\""})


@post("/recovery/labels/{admission_id:int}/print", opt={"permission": "recovery.room"},
      status_code=200)
@in_thread
def label_print(request: Request, admission_id: FromPath[int]) -> Response:
    _, _, ok, msg = _label_out(request, admission_id, "lp")
    if ok:
        return _fragment(f'<div class="alert ok" role="status">标签已送打印机（作业 {_esc(msg)}）'
                         '</div>')
    return _fragment(f'<div class="alert error" role="alert">标签未打印：{_esc(msg)}</div>', 400)


def _room_scan(request: Request, code: str) -> Response:
    rt = request.app.state.rt
    staff = _staff(request)
    code = (code or "").strip()[:64]
    if not code:
        return _fragment('<div class="alert error" role="alert">请扫描病案首页条码</div>', 400)
    with rt.sessions() as s, s.begin():
        o = service.recover(s, rt, code, staff_no=staff.staff_no, source="room",
                            actor=actor(request))
        adm_id = o.admission.id if o.admission is not None else None
    st = rt.settings(RecoverySettings)
    if adm_id is None or o.outcome == "not_discharged":
        return _fragment(f'<div class="alert error" role="alert" id="rc-result" '
                         f'data-outcome="{o.outcome}">{_esc(o.message)}</div>', 400)
    kind = "ok" if o.outcome == "recovered" else "warn"
    head = {"recovered": "已签收", "duplicate": "已签收过", "taken": "已签收过"}[o.outcome]
    html = (f'<div class="alert {kind}" role="status" id="rc-result" data-outcome="{o.outcome}">'
            f'<strong>{head}</strong> {_esc(o.message)} '
            f'<a class="button" target="_blank" href="/recovery/labels/{adm_id}/label.pdf" '
            f'id="rc-label">打印标签（浏览器）</a>')
    if st.label_printer:
        html += (f' <button class="button" hx-post="/recovery/labels/{adm_id}/print" '
                 f'hx-target="#rc-print" hx-swap="innerHTML">送标签打印机 {_esc(st.label_printer)}'
                 f'</button><span id="rc-print"></span>')
    return _fragment(html + "</div>")


@post("/recovery/room/scan", opt={"permission": "recovery.room"}, status_code=200)
async def room_scan(request: Request) -> Response:
    f = await _form(request)
    return await anyio.to_thread.run_sync(lambda: _room_scan(request, f.get("barcode", "")))


# ============================================================================================
# 补单
# ============================================================================================


def _supplements_page(request: Request, error: str | None = None, form: dict | None = None,
                      status: int = 200, done: str | None = None):
    rt = request.app.state.rt
    with rt.sessions() as s:
        rows = s.execute(select(Supplement, Admission).join(Admission,
                                                            Admission.id == Supplement.admission_id)
                         .options(joinedload(Admission.patient))
                         .order_by(Supplement.created_at.desc(), Supplement.id.desc())
                         .limit(100)).all()
    return page(request, "recovery/supplements.html", status_code=status, title="补单登记",
                rows=rows, kinds=rt.settings(RecoverySettings).supplement_kinds,
                status_labels=SUPPLEMENT_STATUS,
                fmt=lambda t: _fmt(rt, t), error=error, form=form or {}, done=done)


@get("/recovery/supplements", opt={"permission": "recovery.room"})
@in_thread
def supplements_page(request: Request) -> Any:
    return _supplements_page(request)


def _register_supplement(request: Request, f: dict[str, str]) -> Any:
    rt = request.app.state.rt
    try:
        try:
            sheets = int(f.get("sheets") or "0")
        except ValueError as exc:
            raise RecoveryError("张数应为整数") from exc
        with rt.sessions() as s, s.begin():
            sup = service.register_supplement(
                s, rt, f.get("barcode", ""), f.get("kind", ""), sheets, f.get("from_ward", ""),
                f.get("description", ""), by=_staff(request).staff_no, actor=actor(request))
            adm = s.get(Admission, sup.admission_id)
            done = (f"已登记：{adm.patient.name}（{adm.admission_no}）{sup.kind} {sup.sheets} 张，"
                    "待采集")
    except RecoveryError as exc:
        return _supplements_page(request, str(exc), f, 400)
    return _supplements_page(request, done=done)


@post("/recovery/supplements", opt={"permission": "recovery.room"}, status_code=200)
async def supplements_add(request: Request) -> Any:
    f = await _form(request)
    return await anyio.to_thread.run_sync(lambda: _register_supplement(request, f))


# ============================================================================================
# The ward phone page (PWA), upload, receipts
# ============================================================================================


@get("/recovery/phone", opt={"permission": "recovery.ward"})
async def phone_redirect() -> Any:
    from litestar.response import Redirect

    return Redirect("/recovery/phone/app", status_code=302)


@get("/recovery/phone/app", opt={"permission": "recovery.ward"})
async def phone_page(request: Request) -> Any:
    rt = request.app.state.rt
    return page(request, "recovery/phone.html", title="病区回收",
                hospital_name=rt.settings(CoreSettings).hospital_name)


@get("/recovery/phone/manifest.webmanifest", opt={"public": True})
async def manifest() -> Response:
    return Response({
        "name": "病案回收", "short_name": "病案回收", "lang": "zh-CN",
        "start_url": "/recovery/phone/app", "scope": "/recovery/phone/", "display": "standalone",
        "background_color": "#ffffff", "theme_color": "#1f5f8b",
        "icons": [{"src": "/static/recovery/icon.svg", "sizes": "any", "type": "image/svg+xml"}],
    }, media_type="application/manifest+json")


@get("/recovery/phone/sw.js", opt={"public": True})
async def service_worker() -> Response:
    return Response((STATIC / "sw.js").read_bytes(), media_type="text/javascript",
                    headers={"Service-Worker-Allowed": "/recovery/phone/"})


def _upload(request: Request, data) -> Response:
    rt = request.app.state.rt
    st = rt.settings(RecoverySettings)
    try:
        up = service.parse_upload(data, st.max_upload_items)
    except RecoveryError as exc:
        return Response({"error": str(exc)}, status_code=400)
    for attempt in range(3):
        try:
            with rt.sessions() as s, s.begin():
                ho, results = service.upload(s, rt, up, _staff(request), actor=actor(request))
                hid = ho.client_id
            break
        except IntegrityError:
            if attempt == 2:  # the same items keep arriving at once from elsewhere
                return Response({"error": "同一批记录正在另一处上传，请稍后重试"}, status_code=409)
        except RecoveryError as exc:
            return Response({"error": str(exc)}, status_code=400)
    return Response({"handover_id": hid, "results": results,
                     "receipt": f"/recovery/receipts/{hid}",
                     "escpos": f"/recovery/receipts/{hid}/escpos"})


@post("/api/recovery/upload", opt={"permission": "recovery.ward"}, status_code=200)
async def upload_api(request: Request) -> Response:
    body = await request.body()
    if len(body) > 2_000_000:
        return Response({"error": "上传内容过大"}, status_code=413)
    import json

    try:
        data = json.loads(body or b"null")
    except ValueError:
        return Response({"error": "上传内容不是 JSON"}, status_code=400)
    return await anyio.to_thread.run_sync(lambda: _upload(request, data))


def _receipt(request: Request, handover: str) -> tuple[receipts.ReceiptData, Handover]:
    rt = request.app.state.rt
    staff = _staff(request)
    with rt.sessions() as s:
        ho = s.scalar(select(Handover).where(Handover.client_id == handover))
        if ho is None or (ho.staff_no != staff.staff_no
                          and "recovery.room" not in staff.permissions):
            raise NotFoundException("没有这张交接单")
        lines = tuple(receipts.ReceiptLine(a.patient.mrn, a.patient.name,
                                           local_date(rt, a.discharged_at)
                                           if a.discharged_at else None)
                      for a, _ in service.handover_lines(s, ho))
        s.expunge(ho)
    st = rt.settings(RecoverySettings)
    return receipts.ReceiptData(st.receipt_title, rt.settings(CoreSettings).hospital_name, ho.ward,
                                f"{ho.staff_name}（{ho.staff_no}）",
                                ho.uploaded_at.astimezone(rt.tz), ho.client_id[:12],
                                lines), ho


@get("/recovery/receipts/{handover:str}", opt={"permission": "recovery.ward"})
@in_thread
def receipt_page(request: Request, handover: FromPath[str]) -> Any:
    data, _ = _receipt(request, handover)
    return page(request, "recovery/receipt.html", title="病案回收交接单", r=data,
                body=receipts.text_lines(data), handover=handover)


@get("/recovery/receipts/{handover:str}/escpos", opt={"permission": "recovery.ward"})
@in_thread
def receipt_escpos(request: Request, handover: FromPath[str]) -> Response:
    rt = request.app.state.rt
    data, ho = _receipt(request, handover)
    st = rt.settings(RecoverySettings)
    raw = receipts.build(data, st.escpos_profile, st.receipt_columns)
    with rt.sessions() as s, s.begin():
        audit.record(s, rt, "recovery.receipt", actor=actor(request),
                     detail={"handover": ho.client_id, "ward": ho.ward, "records": len(data.lines)})
    return Response(raw, media_type="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename=\"receipt-{ho.client_id[:12]}.bin\""})


ROUTES = [due_page, due_api, calendar_page, calendar_set, calendar_remove, calendar_check,
          stats_page, stats_api, stats_xlsx, room_page, room_live, label_download, label_print,
          room_scan, supplements_page, supplements_add, phone_redirect, phone_page, manifest,
          service_worker, upload_api, receipt_page, receipt_escpos]
