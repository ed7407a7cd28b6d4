"""Pages of the warehouse plugin.

  GET  /warehouse/find?name=&mrn=&admission_no=&discharged_from=&discharged_to=&box_no=
       &warehouse=&location=          纸质病案查找: full path and tracking state (records the
                                      user may read only; audited)
  GET/POST /warehouse/boxing          扫码装箱: a box label, then record barcodes
  GET  /warehouse/places              warehouses; POST .../warehouses, .../shelves, .../boxes
  GET  /warehouse/places/{code}       the shelves of a warehouse with their boxes
  GET  /warehouse/boxes/{box_no}      one box: its records, move it, unbox a record
  POST /warehouse/boxes/{box_no}/move, /warehouse/boxes/{box_no}/unbox
  GET  /warehouse/labels/boxes.pdf?box=..., /warehouse/labels/shelves.pdf?warehouse=|shelf=
  GET  /warehouse/boxes/{box_no}/records.pdf    the recovery plugin's record labels
  GET  /warehouse/loans               requests to fulfil, records lent (overdue first)
  POST /warehouse/loans/{id}/lend, /warehouse/loans/{id}/reject, /warehouse/loans/lend,
       /warehouse/loans/return
  GET/POST /warehouse/loans/request?barcode=    ask for the paper record
  GET  /warehouse/loans/mine          my requests and loans
  GET  /warehouse/stats, /api/warehouse/stats, /warehouse/stats.xlsx
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

import anyio
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from bingan.core import audit, permissions
from bingan.core.config import CoreSettings
from bingan.core.exporting import content_disposition
from bingan.core.models import Admission, utcnow
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor

from bingan_recovery import label as record_label
from bingan_recovery.settings import RecoverySettings
from bingan_warehouse import labels, service
from bingan_warehouse.models import Box, BoxedRecord, Shelf, Warehouse
from bingan_warehouse.service import WarehouseError
from bingan_warehouse.settings import WarehouseSettings

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FIND_KEYS = ("name", "mrn", "admission_no", "discharged_from", "discharged_to", "box_no",
             "warehouse", "location")


def _staff(request: Request):
    return request.state.staff


def _must(request: Request, perm: str) -> None:
    if perm not in _staff(request).permissions:
        raise PermissionDeniedException("无权使用此功能")


def _today(rt) -> dt.date:
    return utcnow().astimezone(rt.tz).date()


def _fmt(rt, t: dt.datetime | None) -> str:
    return t.astimezone(rt.tz).strftime("%Y-%m-%d %H:%M") if t else ""


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(form.get(k) or "")[:100_000] for k in form}


def readable(s, rt, staff, adm_ids: list[int]) -> set[int]:
    """The admissions of ``adm_ids`` whose record ``staff`` may read (core's decision, not
    audited here: the page that shows them is)."""
    if not adm_ids:
        return set()
    flt = permissions.readable(s, rt, staff, "view")
    if flt is not None:
        return {i for i in adm_ids if (i in flt.ids) != flt.exclude}
    out = set()
    for a in s.scalars(select(Admission).options(joinedload(Admission.patient))
                       .where(Admission.id.in_(adm_ids))).unique():
        if permissions.decide(s, rt, staff, a, "view", record=False).allowed:
            out.add(a.id)
    return out


def _pdf(data: bytes, name: str) -> Response:
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": content_disposition(name).replace(
                        "attachment", "inline", 1)})


# ============================================================================================
# Finding a paper record
# ============================================================================================


@get("/warehouse/find", opt={"permission": "warehouse.find"})
@in_thread
def find_page(request: Request) -> Any:
    rt = request.app.state.rt
    staff = _staff(request)
    form = {k: str(request.query_params.get(k) or "")[:64] for k in FIND_KEYS}
    rows, more, hidden, error, status = [], False, 0, None, 200
    asked = any(form.values())
    if asked:
        try:
            q = service.parse_query(form)
            with rt.sessions() as s, s.begin():
                found, more = service.lookup(s, rt, q)
                ok = readable(s, rt, staff, [f.admission_id for f in found])
                rows = [f for f in found if f.admission_id in ok]
                hidden = len(found) - len(rows)
                audit.record(s, rt, "warehouse.lookup", actor=actor(request),
                             detail={"query": q.detail(), "found": len(found),
                                     "shown": len(rows)})
        except WarehouseError as exc:
            error, status = str(exc), 400
    return page(request, "warehouse/find.html", status_code=status, title="纸质病案查找",
                form=form, rows=rows, more=more, hidden=hidden, error=error, asked=asked,
                may_lend="warehouse.lend" in staff.permissions)


# ============================================================================================
# Boxing by scanning
# ============================================================================================


def _boxing_page(request: Request, *, results=None, error=None, codes="", status=200):
    rt = request.app.state.rt
    st = rt.settings(WarehouseSettings)
    summary: dict[str, int] = {}
    for r in results or []:
        summary[r.label] = summary.get(r.label, 0) + 1
    return page(request, "warehouse/boxing.html", status_code=status, title="扫码装箱",
                results=results, summary=summary, error=error, codes=codes,
                max_scans=st.max_scans, prefix=st.box_prefix)


@get("/warehouse/boxing", opt={"permission": "warehouse.box"})
@in_thread
def boxing_page(request: Request) -> Any:
    return _boxing_page(request)


@post("/warehouse/boxing", opt={"permission": "warehouse.box"}, status_code=200)
async def boxing_post(request: Request) -> Any:
    f = await _form(request)

    def work():
        rt = request.app.state.rt
        try:
            codes = service.parse_scans(f.get("codes", ""),
                                        rt.settings(WarehouseSettings).max_scans)
            with rt.sessions() as s, s.begin():
                results = service.box_run(s, rt, codes, staff=_staff(request),
                                          actor=actor(request))
        except WarehouseError as exc:
            return _boxing_page(request, error=str(exc), codes=f.get("codes", ""), status=400)
        return _boxing_page(request, results=results)

    return await anyio.to_thread.run_sync(work)


# ============================================================================================
# Warehouses, shelves, boxes
# ============================================================================================


def _places_page(request: Request, error: str | None = None, status: int = 200):
    rt = request.app.state.rt
    st = rt.settings(WarehouseSettings)
    with rt.sessions() as s:
        whs = service.per_warehouse(s)
        loose = list(s.scalars(select(Box).where(Box.shelf_id.is_(None))
                               .order_by(Box.box_no).limit(200)))
        counts = dict(s.execute(select(BoxedRecord.box_id, func.count()).where(
            BoxedRecord.box_id.in_([b.id for b in loose])).group_by(BoxedRecord.box_id)).all())
        loose_rows = [(b.box_no, counts.get(b.id, 0), b.capacity) for b in loose]
    return page(request, "warehouse/places.html", status_code=status, title="库房与货架",
                whs=whs, loose=loose_rows, error=error, st=st,
                may_manage="warehouse.manage" in _staff(request).permissions)


@get("/warehouse/places", opt={"permission": "warehouse.view"})
@in_thread
def places_page(request: Request) -> Any:
    return _places_page(request)


def _int(v: str, what: str, default: int | None = None) -> int:
    v = (v or "").strip()
    if not v and default is not None:
        return default
    try:
        return int(v)
    except ValueError as exc:
        raise WarehouseError(f"{what}应为整数") from exc


def _places_write(request: Request, f: dict[str, str], what: str) -> Any:
    rt = request.app.state.rt
    try:
        with rt.sessions() as s, s.begin():
            if what == "warehouse":
                service.add_warehouse(s, rt, f.get("code", ""), f.get("name", ""),
                                      f.get("building", ""), f.get("floor", ""),
                                      actor=actor(request))
            elif what == "shelves":
                wh = s.scalar(select(Warehouse).where(
                    Warehouse.code == f.get("warehouse", "").strip().upper()))
                if wh is None:
                    raise WarehouseError("请选择库房")
                service.add_shelves(s, rt, wh.id, _int(f.get("rows", ""), "排数"),
                                    _int(f.get("cols", ""), "列数"),
                                    _int(f.get("levels", ""), "层数"),
                                    _int(f.get("capacity", ""), "每层箱数", 0) or None,
                                    first_row=_int(f.get("first_row", ""), "起始排号", 1),
                                    actor=actor(request))
            else:
                shelf = None
                if f.get("shelf", "").strip():
                    shelf = service.find_shelf(s, f["shelf"])
                    if shelf is None:
                        raise WarehouseError("没有这个货架")
                service.new_boxes(s, rt, _int(f.get("count", ""), "箱数"),
                                  _int(f.get("capacity", ""), "每箱份数", 0) or None,
                                  actor=actor(request), shelf=shelf)
    except WarehouseError as exc:
        return _places_page(request, str(exc), 400)
    return Redirect("/warehouse/places", status_code=303)


@post("/warehouse/places/warehouses", opt={"permission": "warehouse.manage"}, status_code=200)
async def add_warehouse(request: Request) -> Any:
    f = await _form(request)
    return await anyio.to_thread.run_sync(lambda: _places_write(request, f, "warehouse"))


@post("/warehouse/places/shelves", opt={"permission": "warehouse.manage"}, status_code=200)
async def add_shelves(request: Request) -> Any:
    f = await _form(request)
    return await anyio.to_thread.run_sync(lambda: _places_write(request, f, "shelves"))


@post("/warehouse/places/boxes", opt={"permission": "warehouse.manage"}, status_code=200)
async def add_boxes(request: Request) -> Any:
    f = await _form(request)
    return await anyio.to_thread.run_sync(lambda: _places_write(request, f, "boxes"))


@get("/warehouse/places/{code:str}", opt={"permission": "warehouse.view"})
@in_thread
def warehouse_page(request: Request, code: FromPath[str]) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        wh = s.scalar(select(Warehouse).where(Warehouse.code == code.upper()[:16]))
        if wh is None:
            raise NotFoundException("没有这个库房")
        shelves = service.per_shelf(s, wh.code)
        boxes: dict[str, list] = {}
        for sh_code, box_no, n in s.execute(
                select(Shelf.code, Box.box_no, func.count(BoxedRecord.admission_id))
                .join(Box, Box.shelf_id == Shelf.id)
                .outerjoin(BoxedRecord, BoxedRecord.box_id == Box.id)
                .where(Shelf.warehouse_id == wh.id).group_by(Shelf.code, Box.box_no)
                .order_by(Shelf.code, Box.box_no)).all():
            boxes.setdefault(sh_code, []).append((box_no, n))
        info = {"code": wh.code, "name": wh.name, "building": wh.building, "floor": wh.floor}
    return page(request, "warehouse/warehouse.html", title=f"库房 {info['name']}", wh=info,
                shelves=shelves, boxes=boxes)


def _box_page(request: Request, box_no: str, error: str | None = None, status: int = 200):
    rt = request.app.state.rt
    staff = _staff(request)
    with rt.sessions() as s, s.begin():
        box = service.find_box(s, box_no[:32])
        if box is None:
            raise NotFoundException("没有这个病案箱")
        place = service.place_of_box(s, box)
        rows = s.execute(select(BoxedRecord, Admission).join(
            Admission, Admission.id == BoxedRecord.admission_id).options(
            joinedload(Admission.patient)).where(BoxedRecord.box_id == box.id)
            .order_by(BoxedRecord.position)).all()
        ok = readable(s, rt, staff, [a.id for _, a in rows])
        from bingan_tracking import service as tracking

        states = tracking.states_of(s, tracking.machine(rt), [a.id for _, a in rows])
        items = [{"position": b.position, "barcode": a.barcode, "admission_id": a.id,
                  "admission_no": a.admission_no if a.id in ok else "",
                  "name": a.patient.name if a.id in ok else "",
                  "mrn": a.patient.mrn if a.id in ok else "", "readable": a.id in ok,
                  "discharged": a.discharged_at.astimezone(rt.tz).date()
                  if a.discharged_at and a.id in ok else "",
                  "boxed_at": _fmt(rt, b.boxed_at), "state": states[a.id]} for b, a in rows]
        info = {"box_no": box.box_no, "capacity": box.capacity, "path": place.path,
                "shelf": place.shelf_code}
        if any(i["readable"] for i in items):
            audit.record(s, rt, "warehouse.lookup", actor=actor(request),
                         detail={"box": box.box_no, "shown": sum(i["readable"] for i in items)})
    return page(request, "warehouse/box.html", status_code=status, title=f"病案箱 {box_no}",
                box=info, items=items, error=error,
                may_box="warehouse.box" in staff.permissions)


@get("/warehouse/boxes/{box_no:str}", opt={"permission": "warehouse.view"})
@in_thread
def box_page(request: Request, box_no: FromPath[str]) -> Any:
    return _box_page(request, box_no.upper())


@post("/warehouse/boxes/{box_no:str}/move", opt={"permission": "warehouse.box"},
      status_code=200)
async def box_move(request: Request, box_no: FromPath[str]) -> Any:
    f = await _form(request)

    def work():
        rt = request.app.state.rt
        try:
            with rt.sessions() as s, s.begin():
                box = service.find_box(s, box_no)
                if box is None:
                    raise NotFoundException("没有这个病案箱")
                shelf = service.find_shelf(s, f.get("shelf", ""))
                if shelf is None:
                    raise WarehouseError("没有这个货架（请扫描货架标签）")
                service.move_box(s, rt, box, shelf, staff_no=_staff(request).staff_no,
                                 actor=actor(request))
        except WarehouseError as exc:
            return _box_page(request, box_no.upper(), str(exc), 400)
        return Redirect(f"/warehouse/boxes/{quote(box_no.upper())}", status_code=303)

    return await anyio.to_thread.run_sync(work)


@post("/warehouse/boxes/{box_no:str}/unbox", opt={"permission": "warehouse.box"},
      status_code=200)
async def box_unbox(request: Request, box_no: FromPath[str]) -> Any:
    f = await _form(request)

    def work():
        rt = request.app.state.rt
        try:
            aid = _int(f.get("admission_id", ""), "病案")
            with rt.sessions() as s, s.begin():
                box = service.find_box(s, box_no)
                row = s.get(BoxedRecord, aid)
                if box is None or row is None or row.box_id != box.id:
                    raise WarehouseError("这份病案不在本箱")
                service.unbox(s, rt, aid, staff_no=_staff(request).staff_no,
                              actor=actor(request), note=f.get("note", ""))
        except WarehouseError as exc:
            return _box_page(request, box_no.upper(), str(exc), 400)
        return Redirect(f"/warehouse/boxes/{quote(box_no.upper())}", status_code=303)

    return await anyio.to_thread.run_sync(work)


# ============================================================================================
# Labels
# ============================================================================================


def box_labels(s, rt, boxes: list[Box]) -> list[labels.BoxLabel]:
    out = []
    for box in boxes:
        adms = s.execute(select(Admission.admission_no, Admission.discharged_at).join(
            BoxedRecord, BoxedRecord.admission_id == Admission.id).where(
            BoxedRecord.box_id == box.id).order_by(BoxedRecord.position)).all()

        def one(row) -> str:
            no, dis = row
            return f"{no}（{dis.astimezone(rt.tz):%Y-%m-%d}）" if dis else no

        out.append(labels.BoxLabel(box.box_no, len(adms), box.capacity,
                                   one(adms[0]) if adms else "", one(adms[-1]) if adms else "",
                                   service.place_of_box(s, box).path))
    return out


@get("/warehouse/labels/boxes.pdf", opt={"permission": "warehouse.box"})
@in_thread
def box_labels_pdf(request: Request, box: FromQuery[list[str]]) -> Response:
    rt = request.app.state.rt
    wanted = [b.strip().upper() for b in box if b.strip()][:200]
    with rt.sessions() as s, s.begin():
        boxes = list(s.scalars(select(Box).where(Box.box_no.in_(wanted)).order_by(Box.box_no)))
        if not boxes:
            raise NotFoundException("没有这些病案箱")
        data = labels.box_label_pdf(box_labels(s, rt, boxes),
                                    rt.settings(WarehouseSettings).box_label_mm)
        audit.record(s, rt, "warehouse.label", actor=actor(request),
                     detail={"boxes": [b.box_no for b in boxes]})
    return _pdf(data, f"病案箱标签_{boxes[0].box_no}.pdf")


@get("/warehouse/labels/shelves.pdf", opt={"permission": "warehouse.box"})
@in_thread
def shelf_labels_pdf(request: Request, warehouse: FromQuery[str] = "",
                     shelf: FromQuery[str] = "") -> Response:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        q = select(Shelf, Warehouse).join(Warehouse, Warehouse.id == Shelf.warehouse_id)
        if shelf:
            q = q.where(Shelf.code == shelf.strip().upper()[:40])
        elif warehouse:
            q = q.where(Warehouse.code == warehouse.strip().upper()[:16])
        else:
            raise NotFoundException("请指定库房或货架")
        rows = s.execute(q.order_by(Shelf.code).limit(2000)).all()
        if not rows:
            raise NotFoundException("没有这些货架")
        data = labels.shelf_label_pdf(
            [labels.ShelfLabel(service.shelf_barcode(sh), sh.code,
                               f"{wh.name}（{wh.building} {wh.floor}）",
                               f"第 {sh.row} 排 第 {sh.col} 列 第 {sh.level} 层")
             for sh, wh in rows], rt.settings(WarehouseSettings).shelf_label_mm)
        audit.record(s, rt, "warehouse.label", actor=actor(request),
                     detail={"shelves": len(rows), "first": rows[0][0].code})
    return _pdf(data, f"货架标签_{rows[0][0].code}.pdf")


@get("/warehouse/boxes/{box_no:str}/records.pdf", opt={"permission": "warehouse.box"})
@in_thread
def record_labels_pdf(request: Request, box_no: FromPath[str]) -> Response:
    """The recovery plugin's record label of every record in the box the user may read."""
    rt = request.app.state.rt
    rc = rt.settings(RecoverySettings)
    with rt.sessions() as s, s.begin():
        box = service.find_box(s, box_no)
        if box is None:
            raise NotFoundException("没有这个病案箱")
        adms = list(s.scalars(select(Admission).options(joinedload(Admission.patient)).join(
            BoxedRecord, BoxedRecord.admission_id == Admission.id).where(
            BoxedRecord.box_id == box.id).order_by(BoxedRecord.position)).unique())
        ok = readable(s, rt, _staff(request), [a.id for a in adms])
        items = [record_label.LabelData(
            a.barcode, a.patient.mrn, a.patient.name,
            a.discharged_at.astimezone(rt.tz).date() if a.discharged_at else None,
            a.admission_no, a.ward or "") for a in adms if a.id in ok]
        if not items:
            raise NotFoundException("本箱没有您有权查阅的病案")
        for a in adms:
            if a.id in ok:
                audit.record(s, rt, "recovery.label", actor=actor(request), mrn=a.patient.mrn,
                             admission_no=a.admission_no, detail={"box": box.box_no})
        data = labels.record_labels_pdf(items, rc.label_width_mm, rc.label_height_mm)
    return _pdf(data, f"病案标签_{box.box_no}.pdf")


# ============================================================================================
# Borrowing
# ============================================================================================


def _loans_page(request: Request, error: str | None = None, done: str | None = None,
                status: int = 200):
    rt = request.app.state.rt
    today = _today(rt)
    with rt.sessions() as s:
        waiting = service.loans(s, rt, statuses=("requested",), today=today)
        lent = service.loans(s, rt, statuses=("lent",), today=today)
        due = service.default_due(s, rt, today)
    lent.sort(key=lambda r: (-r.overdue_days, r.due_back))
    return page(request, "warehouse/loans.html", status_code=status, title="纸质病案借阅",
                waiting=waiting, lent=lent, error=error, done=done, due=due, today=today,
                fmt=lambda t: _fmt(rt, t))


@get("/warehouse/loans", opt={"permission": "warehouse.lend"})
@in_thread
def loans_page(request: Request) -> Any:
    return _loans_page(request)


def _date(v: str) -> dt.date | None:
    v = (v or "").strip()
    if not v:
        return None
    try:
        return dt.date.fromisoformat(v)
    except ValueError as exc:
        raise WarehouseError("日期格式应为 YYYY-MM-DD") from exc


def _loan_write(request: Request, f: dict[str, str], what: str, loan_id: int = 0) -> Any:
    rt = request.app.state.rt
    staff = _staff(request)
    try:
        with rt.sessions() as s, s.begin():
            if what == "lend":
                service.fulfil(s, rt, loan_id, staff_no=staff.staff_no, actor=actor(request))
                done = "已出借"
            elif what == "reject":
                service.reject(s, rt, loan_id, f.get("answer", ""), staff_no=staff.staff_no,
                               actor=actor(request))
                done = "已回复申请人"
            elif what == "direct":
                service.lend_direct(s, rt, f.get("code", ""), f.get("borrower", ""),
                                    f.get("reason", ""), _date(f.get("due_back", "")),
                                    staff_no=staff.staff_no, actor=actor(request))
                done = "已出借"
            else:
                ln = service.return_record(s, rt, f.get("code", ""), staff_no=staff.staff_no,
                                           actor=actor(request))
                done = "已归还" + ("（超期）" if _today(rt) > ln.due_back else "")
    except WarehouseError as exc:
        return _loans_page(request, error=str(exc), status=400)
    return _loans_page(request, done=done)


@post("/warehouse/loans/{loan_id:int}/lend", opt={"permission": "warehouse.lend"},
      status_code=200)
async def loan_lend(request: Request, loan_id: FromPath[int]) -> Any:
    f = await _form(request)
    return await anyio.to_thread.run_sync(lambda: _loan_write(request, f, "lend", loan_id))


@post("/warehouse/loans/{loan_id:int}/reject", opt={"permission": "warehouse.lend"},
      status_code=200)
async def loan_reject(request: Request, loan_id: FromPath[int]) -> Any:
    f = await _form(request)
    return await anyio.to_thread.run_sync(lambda: _loan_write(request, f, "reject", loan_id))


@post("/warehouse/loans/lend", opt={"permission": "warehouse.lend"}, status_code=200)
async def loan_direct(request: Request) -> Any:
    f = await _form(request)
    return await anyio.to_thread.run_sync(lambda: _loan_write(request, f, "direct"))


@post("/warehouse/loans/return", opt={"permission": "warehouse.lend"}, status_code=200)
async def loan_return(request: Request) -> Any:
    f = await _form(request)
    return await anyio.to_thread.run_sync(lambda: _loan_write(request, f, "return"))


def _request_page(request: Request, barcode: str, *, error: str | None = None,
                  status: int = 200, form: dict | None = None):
    rt = request.app.state.rt
    staff = _staff(request)
    info = None
    with rt.sessions() as s:
        adm = service.find_record(s, barcode) if barcode else None
        if barcode and adm is None:
            error, status = error or "没有这份病案", 404 if status == 200 else status
        if adm is not None:
            # the requester sees the patient's name only when allowed to read the record
            may = permissions.decide(s, rt, staff, adm, "view", record=False).allowed
            info = {"barcode": adm.barcode, "admission_no": adm.admission_no,
                    "name": adm.patient.name if may else "",
                    "discharged": adm.discharged_at.astimezone(rt.tz).date()
                    if adm.discharged_at else None}
        due = service.default_due(s, rt, _today(rt))
    return page(request, "warehouse/request.html", status_code=status, title="申请调阅纸质病案",
                info=info, barcode=barcode, error=error, due=due, form=form or {})


@get("/warehouse/loans/request", opt={"permission": "warehouse.request"})
@in_thread
def request_form(request: Request, barcode: FromQuery[str] = "") -> Any:
    return _request_page(request, barcode.strip().upper()[:64])


@post("/warehouse/loans/request", opt={"permission": "warehouse.request"}, status_code=200)
async def request_post(request: Request) -> Any:
    f = await _form(request)

    def work():
        rt = request.app.state.rt
        code = f.get("barcode", "").strip().upper()[:64]
        try:
            with rt.sessions() as s, s.begin():
                adm = service.find_record(s, code)
                if adm is None:
                    raise WarehouseError("没有这份病案")
                service.request_loan(s, rt, adm, _staff(request), f.get("reason", ""),
                                     _date(f.get("due_back", "")), actor=actor(request))
        except WarehouseError as exc:
            return _request_page(request, code, error=str(exc), status=400, form=f)
        return Redirect("/warehouse/loans/mine", status_code=303)

    return await anyio.to_thread.run_sync(work)


@get("/warehouse/loans/mine", opt={"permission": "warehouse.request"})
@in_thread
def my_loans(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        rows = service.loans(s, rt, statuses=tuple(service.LOAN_STATUS),
                             borrower_no=_staff(request).staff_no, limit=200)
    rows.sort(key=lambda r: r.id, reverse=True)
    return page(request, "warehouse/mine.html", title="我的纸质病案借阅", rows=rows,
                fmt=lambda t: _fmt(rt, t))


# ============================================================================================
# Statistics
# ============================================================================================


def _stats(rt, warehouse: str, shelf: str):
    with rt.sessions() as s:
        whs = service.per_warehouse(s)
        shelves = service.per_shelf(s, warehouse) if warehouse else []
        boxes = service.per_box(s, shelf) if shelf else []
        months = service.movements_per_month(s, rt)
    return whs, shelves, boxes, months


@get("/warehouse/stats", opt={"permission": "warehouse.view"})
@in_thread
def stats_page(request: Request, warehouse: FromQuery[str] = "", shelf: FromQuery[str] = "") -> Any:
    rt = request.app.state.rt
    warehouse, shelf = warehouse.strip().upper()[:16], shelf.strip().upper()[:40]
    try:
        whs, shelves, boxes, months = _stats(rt, warehouse, shelf)
        error = None
    except WarehouseError as exc:
        (whs, shelves, boxes, months), error = _stats(rt, "", ""), str(exc)
    return page(request, "warehouse/stats.html", status_code=400 if error else 200,
                title="库房统计", whs=whs, shelves=shelves, boxes=boxes, months=months,
                kinds=service.MOVEMENT_KINDS, warehouse=warehouse, shelf=shelf, error=error)


@get("/api/warehouse/stats", opt={"permission": "warehouse.view"})
@in_thread
def stats_api(request: Request) -> Any:
    rt = request.app.state.rt
    whs, _, _, months = _stats(rt, "", "")
    return {"warehouses": [{"code": o.key, "name": o.label, "records": o.records,
                            "capacity": o.capacity, "occupancy": o.occupancy,
                            "boxes": o.boxes, "box_capacity": o.box_capacity} for o in whs],
            "months": [m for m, _ in months],
            "movements": [{"kind": k, "name": label, "counts": [c[k] for _, c in months]}
                          for k, label in service.MOVEMENT_KINDS.items()]}


@get("/warehouse/stats.xlsx", opt={"permission": "warehouse.view"})
@in_thread
def stats_xlsx(request: Request) -> Response:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        whs = service.per_warehouse(s)
        shelves = {o.key: service.per_shelf(s, o.key) for o in whs}
        months = service.movements_per_month(s, rt)
        audit.record(s, rt, "warehouse.export", actor=actor(request),
                     detail={"warehouses": len(whs)})
    data = service.stats_workbook(whs, shelves, months, rt.settings(CoreSettings).hospital_name)
    return Response(data, media_type=XLSX, headers={
        "Content-Disposition": content_disposition(f"库房统计_{_today(rt)}.xlsx")})


ROUTES = [find_page, boxing_page, boxing_post, places_page, add_warehouse, add_shelves,
          add_boxes, warehouse_page, box_page, box_move, box_unbox, box_labels_pdf,
          shelf_labels_pdf, record_labels_pdf, loans_page, loan_lend, loan_reject, loan_direct,
          loan_return, request_form, request_post, my_loans, stats_page, stats_api, stats_xlsx]
