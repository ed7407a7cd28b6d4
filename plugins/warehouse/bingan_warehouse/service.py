"""The record store: warehouses, shelves and boxes; boxing by a scanned run; unboxing and
moving boxes; finding a paper record with its full path and tracking state; borrowing.

Every write runs in the caller's transaction, audits itself and reports the physical event to
the tracking plugin through core's ``paper_record_event`` hook; input that is refused raises
``WarehouseError`` (a Chinese message for the page) before anything is written.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, joinedload

from bingan.core import audit, records
from bingan.core.models import Admission, Patient, Staff, utcnow
from bingan.hooks.types import PaperRecordEvent, StaffRef

from bingan_tracking import service as tracking
from bingan_warehouse.models import Box, BoxedRecord, Loan, Movement, Shelf, Warehouse
from bingan_warehouse.settings import WarehouseSettings

WAREHOUSE_CODE = re.compile(r"^[A-Z0-9]{1,8}$")
SHELF_PREFIX = "SH"
MAX_GRID = 2000
MOVEMENT_KINDS = {"boxed": "装箱", "unboxed": "出箱", "shelved": "上架", "box_moved": "移箱",
                  "lent": "借出", "returned": "归还"}
LOAN_STATUS = {"requested": "待出借", "lent": "已借出", "returned": "已归还", "rejected": "未出借",
               "cancelled": "已撤回"}


class WarehouseError(ValueError):
    """Input the warehouse plugin refuses; the message is shown to the user."""


def _text(v: str | None, what: str, most: int, *, required: bool = True) -> str:
    v = (v or "").strip()
    if required and not v:
        raise WarehouseError(f"请填写{what}")
    if len(v) > most:
        raise WarehouseError(f"{what}最多 {most} 个字")
    return v


def _event(session: Session, rt, adm: Admission, kind: str, *, staff_no: str | None,
           actor: audit.Actor | None, location: str = "", note: str = "") -> None:
    act = actor or audit.Actor(staff_no=staff_no)
    rt.pm.hook.paper_record_event(
        session=session, admission=records.to_ref(adm), rt=rt,
        event=PaperRecordEvent(kind, staff_no=staff_no, client_ip=act.client_ip,
                               computer_name=act.computer_name, location=location[:128],
                               note=note[:500]))


# ============================================================================================
# Places: warehouses, shelves, boxes
# ============================================================================================


def shelf_code(wh: Warehouse, row: int, col: int, level: int) -> str:
    return f"{wh.code}-{row:02d}-{col:02d}-{level}"


def shelf_barcode(shelf: Shelf) -> str:
    return SHELF_PREFIX + shelf.code


def add_warehouse(session: Session, rt, code: str, name: str, building: str, floor: str, *,
                  actor: audit.Actor) -> Warehouse:
    code = (code or "").strip().upper()
    if not WAREHOUSE_CODE.fullmatch(code):
        raise WarehouseError("库房编号：1 到 8 位字母或数字")
    name = _text(name, "库房名称", 64)
    building = _text(building, "楼栋", 64)
    floor = _text(floor, "楼层", 16)
    if session.scalar(select(Warehouse.id).where(Warehouse.code == code)) is not None:
        raise WarehouseError(f"库房编号 {code} 已存在")
    wh = Warehouse(code=code, name=name, building=building, floor=floor)
    session.add(wh)
    session.flush()
    audit.record(session, rt, "warehouse.place", actor=actor,
                 detail={"warehouse": code, "name": name, "building": building, "floor": floor})
    return wh


def add_shelves(session: Session, rt, warehouse_id: int, rows: int, cols: int, levels: int,
                capacity: int | None, *, actor: audit.Actor, first_row: int = 1) -> list[Shelf]:
    """A block of shelf levels: rows x columns x levels, each holding ``capacity`` boxes."""
    wh = session.get(Warehouse, warehouse_id)
    if wh is None:
        raise WarehouseError("没有这个库房")
    cap = capacity or rt.settings(WarehouseSettings).shelf_capacity
    if not (1 <= rows <= 99 and 1 <= cols <= 99 and 1 <= levels <= 20 and 1 <= first_row <= 99):
        raise WarehouseError("排 1-99、列 1-99、层 1-20")
    if rows * cols * levels > MAX_GRID:
        raise WarehouseError(f"一次最多建 {MAX_GRID} 个货架层位")
    if not 1 <= cap <= 200:
        raise WarehouseError("每层可放箱数应在 1 到 200 之间")
    out = []
    for r in range(first_row, first_row + rows):
        if r > 99:
            raise WarehouseError("排号最大 99")
        for c in range(1, cols + 1):
            for lv in range(1, levels + 1):
                code = shelf_code(wh, r, c, lv)
                if session.scalar(select(Shelf.id).where(Shelf.code == code)) is not None:
                    raise WarehouseError(f"货架 {code} 已存在")
                out.append(Shelf(warehouse_id=wh.id, row=r, col=c, level=lv, code=code,
                                 capacity=cap))
    session.add_all(out)
    session.flush()
    audit.record(session, rt, "warehouse.place", actor=actor,
                 detail={"warehouse": wh.code, "shelves": len(out), "first": out[0].code,
                         "last": out[-1].code})
    return out


def box_pattern(st: WarehouseSettings) -> re.Pattern[str]:
    return re.compile(rf"^{st.box_prefix}\d{{{st.box_digits}}}$")


def new_boxes(session: Session, rt, count: int, capacity: int | None = None, *,
              actor: audit.Actor, shelf: Shelf | None = None) -> list[Box]:
    """``count`` new boxes with the next numbers (BX000001 ...), empty, on ``shelf`` if
    given (its capacity checked)."""
    st = rt.settings(WarehouseSettings)
    cap = capacity or st.box_capacity
    if not 1 <= count <= 500:
        raise WarehouseError("一次可新建 1 到 500 个箱")
    if not 1 <= cap <= 500:
        raise WarehouseError("每箱可装份数应在 1 到 500 之间")
    if shelf is not None:
        _shelf_room(session, shelf, count)
    pat = box_pattern(st)
    last = 0
    for no in session.scalars(select(Box.box_no).where(Box.box_no.like(f"{st.box_prefix}%"))
                              .order_by(Box.box_no.desc()).limit(50)):
        if pat.fullmatch(no):
            last = max(last, int(no[len(st.box_prefix):]))
    if last + count >= 10 ** st.box_digits:
        raise WarehouseError("箱号已用完：请加长箱号位数")
    out = [Box(box_no=f"{st.box_prefix}{last + i:0{st.box_digits}d}", capacity=cap,
               shelf_id=shelf.id if shelf else None) for i in range(1, count + 1)]
    session.add_all(out)
    session.flush()
    audit.record(session, rt, "warehouse.place", actor=actor,
                 detail={"boxes": count, "first": out[0].box_no, "last": out[-1].box_no,
                         "shelf": shelf.code if shelf else None})
    return out


def _shelf_room(session: Session, shelf: Shelf, more: int = 1) -> None:
    n = session.scalar(select(func.count()).select_from(Box).where(Box.shelf_id == shelf.id))
    if (n or 0) + more > shelf.capacity:
        raise WarehouseError(f"货架 {shelf.code} 已满（{n}/{shelf.capacity} 箱）")


def find_box(session: Session, code: str) -> Box | None:
    return session.scalar(select(Box).where(Box.box_no == (code or "").strip().upper()))


def find_shelf(session: Session, code: str) -> Shelf | None:
    code = (code or "").strip().upper()
    if code.startswith(SHELF_PREFIX):
        code = code[len(SHELF_PREFIX):]
    return session.scalar(select(Shelf).where(Shelf.code == code))


@dataclass
class Place:
    """Where a box is: the full path of the hierarchy."""

    box_no: str = ""
    shelf_code: str = ""
    warehouse_code: str = ""
    warehouse_name: str = ""
    building: str = ""
    floor: str = ""

    @property
    def path(self) -> str:
        if not self.box_no:
            return "未装箱"
        if not self.shelf_code:
            return f"箱 {self.box_no}（未上架）"
        return (f"{self.building} / {self.floor} / {self.warehouse_name}（{self.warehouse_code}）"
                f" / 货架 {self.shelf_code} / 箱 {self.box_no}")


def place_of_box(session: Session, box: Box) -> Place:
    if box.shelf_id is None:
        return Place(box.box_no)
    sh = session.get(Shelf, box.shelf_id)
    wh = session.get(Warehouse, sh.warehouse_id)
    return Place(box.box_no, sh.code, wh.code, wh.name, wh.building, wh.floor)


def move_box(session: Session, rt, box: Box, shelf: Shelf, *, staff_no: str,
             actor: audit.Actor | None = None) -> None:
    """Put a box on ``shelf`` (first shelving or a move); its records are 上架."""
    if box.shelf_id == shelf.id:
        raise WarehouseError(f"箱 {box.box_no} 已在货架 {shelf.code}")
    _shelf_room(session, shelf)
    src = box.shelf_id
    box.shelf_id = shelf.id
    session.add(Movement(kind="shelved" if src is None else "box_moved", box_id=box.id,
                         from_shelf_id=src, to_shelf_id=shelf.id, staff_no=staff_no))
    session.flush()
    where = place_of_box(session, box).path
    for adm in _box_admissions(session, box.id):
        _event(session, rt, adm, "shelved", staff_no=staff_no, actor=actor, location=where)
    audit.record(session, rt, "warehouse.box_move", actor=actor or audit.Actor(staff_no=staff_no),
                 detail={"box": box.box_no, "to": shelf.code,
                         "from": session.get(Shelf, src).code if src else None})


def _box_admissions(session: Session, box_id: int) -> list[Admission]:
    return list(session.scalars(
        select(Admission).options(joinedload(Admission.patient))
        .join(BoxedRecord, BoxedRecord.admission_id == Admission.id)
        .where(BoxedRecord.box_id == box_id).order_by(BoxedRecord.position)).unique())


def box_count(session: Session, box_id: int) -> int:
    return session.scalar(select(func.count()).select_from(BoxedRecord)
                          .where(BoxedRecord.box_id == box_id)) or 0


# ============================================================================================
# Boxing by scanning
# ============================================================================================

SCAN_OUTCOMES = {"box": "开始装箱", "boxed": "已装箱", "same": "已在本箱", "other_box": "在其他箱",
                 "full": "箱已满", "no_box": "未扫箱号", "lent": "已借出", "unknown": "无此病案",
                 "invalid": "条码无效", "unknown_box": "无此箱"}


@dataclass
class ScanResult:
    code: str
    outcome: str
    message: str
    box_no: str = ""
    admission_id: int | None = None

    @property
    def label(self) -> str:
        return SCAN_OUTCOMES[self.outcome]

    @property
    def ok(self) -> bool:
        return self.outcome in ("box", "boxed", "same")


def parse_scans(text: str, limit: int) -> list[str]:
    codes = [c.strip().upper() for c in (text or "").replace(",", "\n").replace("，", "\n")
             .split() if c.strip()]
    if not codes:
        raise WarehouseError("请先扫描箱号条码，再逐份扫描病案条码")
    if len(codes) > limit:
        raise WarehouseError(f"一次最多扫描 {limit} 个条码（本次 {len(codes)} 个）")
    for c in codes:
        if len(c) > 64:
            raise WarehouseError(f"条码过长：{c[:20]}…")
    return codes


def box_run(session: Session, rt, codes: list[str], *, staff: StaffRef,
            actor: audit.Actor | None = None) -> list[ScanResult]:
    """Box a scanned run: a box label starts (or switches) the box being filled, each record
    barcode after it goes into that box in the order scanned. Each scan gets its outcome;
    the refused ones (full box, record in another box or lent out ...) say why."""
    st = rt.settings(WarehouseSettings)
    if len(codes) > st.max_scans:
        raise WarehouseError(f"一次最多扫描 {st.max_scans} 个条码")
    pat = box_pattern(st)
    act = actor or audit.Actor(staff_no=staff.staff_no)
    out: list[ScanResult] = []
    box: Box | None = None
    filled = next_pos = 0
    where = ""
    boxed_ids: list[int] = []
    for code in codes:
        code = code.strip().upper()
        if pat.fullmatch(code):
            box = find_box(session, code)
            if box is None:
                out.append(ScanResult(code, "unknown_box", "系统中没有这个箱号"))
                continue
            filled = box_count(session, box.id)
            next_pos = (session.scalar(select(func.max(BoxedRecord.position))
                                       .where(BoxedRecord.box_id == box.id)) or 0) + 1
            where = place_of_box(session, box).path
            out.append(ScanResult(code, "box", f"箱 {box.box_no}：已装 {filled}/{box.capacity} 份",
                                  box.box_no))
            continue
        try:
            records.parse_barcode(code)
        except records.RecordError:
            out.append(ScanResult(code, "invalid", "不是病案条码或箱号（或校验位不符）"))
            continue
        adm = session.scalar(select(Admission).options(joinedload(Admission.patient))
                             .where(Admission.barcode == code))
        if adm is None:
            out.append(ScanResult(code, "unknown", "系统中没有这份病案"))
            continue
        if box is None:
            out.append(ScanResult(code, "no_box", "请先扫描箱号条码", "", adm.id))
            continue
        have = session.get(BoxedRecord, adm.id)
        if have is not None:
            if have.box_id == box.id:
                out.append(ScanResult(code, "same", f"已在箱 {box.box_no}", box.box_no, adm.id))
            else:
                other = session.get(Box, have.box_id)
                out.append(ScanResult(code, "other_box", f"已在箱 {other.box_no}，请先出箱",
                                      box.box_no, adm.id))
            continue
        if _open_loan(session, adm.id, ("lent",)) is not None:
            out.append(ScanResult(code, "lent", "纸质病案已借出，请先登记归还", box.box_no, adm.id))
            continue
        if filled >= box.capacity:
            out.append(ScanResult(code, "full", f"箱 {box.box_no} 已满（{box.capacity} 份）",
                                  box.box_no, adm.id))
            continue
        session.add(BoxedRecord(admission_id=adm.id, box_id=box.id, position=next_pos,
                                boxed_by=staff.staff_no))
        session.add(Movement(kind="boxed", admission_id=adm.id, box_id=box.id,
                             to_shelf_id=box.shelf_id, staff_no=staff.staff_no))
        session.flush()
        filled += 1
        next_pos += 1
        _event(session, rt, adm, "boxed", staff_no=staff.staff_no, actor=act, location=where)
        if box.shelf_id is not None:
            _event(session, rt, adm, "shelved", staff_no=staff.staff_no, actor=act,
                   location=where)
        boxed_ids.append(adm.id)
        out.append(ScanResult(code, "boxed", f"第 {filled} 份 → 箱 {box.box_no}", box.box_no,
                              adm.id))
    if boxed_ids:
        audit.record(session, rt, "warehouse.box", actor=act,
                     detail={"records": len(boxed_ids),
                             "boxes": sorted({r.box_no for r in out if r.outcome == "boxed"})})
    return out


def unbox(session: Session, rt, admission_id: int, *, staff_no: str,
          actor: audit.Actor | None = None, note: str = "") -> Box:
    note = _text(note, "出箱原因", 200, required=False)
    row = session.get(BoxedRecord, admission_id)
    if row is None:
        raise WarehouseError("这份病案不在任何箱中")
    box = session.get_one(Box, row.box_id)
    adm = session.scalar(select(Admission).options(joinedload(Admission.patient))
                         .where(Admission.id == admission_id))
    where = place_of_box(session, box).path
    session.delete(row)
    session.add(Movement(kind="unboxed", admission_id=admission_id, box_id=box.id,
                         from_shelf_id=box.shelf_id, staff_no=staff_no, note=note))
    session.flush()
    _event(session, rt, adm, "unboxed", staff_no=staff_no, actor=actor, location=where,
           note=note)
    audit.record(session, rt, "warehouse.unbox", actor=actor or audit.Actor(staff_no=staff_no),
                 mrn=adm.patient.mrn, admission_no=adm.admission_no,
                 detail={"box": box.box_no, "note": note})
    return box


# ============================================================================================
# Finding a paper record
# ============================================================================================


@dataclass
class Query:
    name: str = ""
    mrn: str = ""
    admission_no: str = ""
    discharged_from: dt.date | None = None
    discharged_to: dt.date | None = None
    box_no: str = ""
    warehouse: str = ""
    location: str = ""

    def empty(self) -> bool:
        return not any((self.name, self.mrn, self.admission_no, self.discharged_from,
                        self.discharged_to, self.box_no, self.warehouse, self.location))

    def detail(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, dt.date) else v)
                for k, v in self.__dict__.items() if v}


def parse_query(form: dict[str, str]) -> Query:
    def date(key: str, what: str) -> dt.date | None:
        v = (form.get(key) or "").strip()
        if not v:
            return None
        try:
            d = dt.date.fromisoformat(v)
        except ValueError as exc:
            raise WarehouseError(f"{what}格式应为 YYYY-MM-DD") from exc
        if not 1900 <= d.year <= 2100:
            raise WarehouseError(f"{what}超出范围")
        return d

    q = Query(
        name=_text(form.get("name"), "姓名", 32, required=False),
        mrn=_text(form.get("mrn"), "病案号", 32, required=False).upper(),
        admission_no=_text(form.get("admission_no"), "住院号", 32, required=False).upper(),
        discharged_from=date("discharged_from", "出院日期（起）"),
        discharged_to=date("discharged_to", "出院日期（止）"),
        box_no=_text(form.get("box_no"), "箱号", 32, required=False).upper(),
        warehouse=_text(form.get("warehouse"), "库房编号", 16, required=False).upper(),
        location=_text(form.get("location"), "位置", 64, required=False),
    )
    if q.discharged_from and q.discharged_to and q.discharged_to < q.discharged_from:
        raise WarehouseError("出院日期（止）早于（起）")
    return q


TOP = "\U0010ffff"  # sorts after every character (UTF-8 bytes F4 8F BF BF)


def _prefix(col, q: str):
    """``col`` starts with ``q``, as a range an ordinary index answers (SQLite's LIKE and
    PostgreSQL's outside the C collation cannot use one), checked again with LIKE."""
    return and_(col >= q, col < q + TOP, col.startswith(q, autoescape=True))


def name_matches(q: str):
    """Patient name condition: Chinese characters match the start of the name (surname
    first: 张 / 张三), Latin letters the start of the full pinyin or of the initials
    (zhang / zhangsan / zs)."""
    if re.fullmatch(r"[A-Za-z]+", q):
        low = q.lower()
        return or_(_prefix(Patient.name_pinyin, low), _prefix(Patient.name_initials, low))
    return _prefix(Patient.name, q)


@dataclass
class Found:
    admission_id: int
    barcode: str
    name: str
    mrn: str
    admission_no: str
    discharge_date: dt.date | None
    place: Place
    position: int | None
    state: str = ""
    loan: str = ""

    @property
    def path(self) -> str:
        return self.place.path


def lookup(session: Session, rt, q: Query, limit: int | None = None) -> tuple[list[Found], bool]:
    """Paper records matching every key given (newest discharge first), at most ``limit``,
    and whether more matched. Unboxed records are found too (path 未装箱) unless a box,
    warehouse or location key is given."""
    if q.empty():
        raise WarehouseError("请至少填写一个查找条件")
    limit = limit or rt.settings(WarehouseSettings).max_results
    # with a place key only boxed records can match: inner joins let the planner start from
    # the box or warehouse (an outer join fixes the order: every admission first)
    boxed = bool(q.box_no or q.warehouse or q.location)
    shelved = bool(q.warehouse or q.location)
    sel = (select(Admission, Patient, BoxedRecord.position, Box, Shelf, Warehouse)
           .join(Patient, Patient.id == Admission.patient_id)
           .join(BoxedRecord, BoxedRecord.admission_id == Admission.id, isouter=not boxed)
           .join(Box, Box.id == BoxedRecord.box_id, isouter=not boxed)
           .join(Shelf, Shelf.id == Box.shelf_id, isouter=not shelved)
           .join(Warehouse, Warehouse.id == Shelf.warehouse_id, isouter=not shelved)
           .where(Admission.cancelled_at.is_(None)))
    if q.name:
        sel = sel.where(name_matches(q.name))
    if q.mrn:
        sel = sel.where(Patient.mrn == q.mrn)
    if q.admission_no:
        sel = sel.where(Admission.admission_no == q.admission_no)
    if q.discharged_from:
        sel = sel.where(Admission.discharged_at >= dt.datetime.combine(
            q.discharged_from, dt.time(), tzinfo=rt.tz))
    if q.discharged_to:
        sel = sel.where(Admission.discharged_at < dt.datetime.combine(
            q.discharged_to + dt.timedelta(days=1), dt.time(), tzinfo=rt.tz))
    if q.box_no:
        sel = sel.where(Box.box_no == q.box_no)
    if q.warehouse:
        sel = sel.where(Warehouse.code == q.warehouse)
    if q.location:
        sel = sel.where(or_(Warehouse.name.contains(q.location, autoescape=True),
                            Warehouse.building.contains(q.location, autoescape=True),
                            Shelf.code.contains(q.location.upper(), autoescape=True)))
    sel = sel.order_by(Admission.discharged_at.desc(), Admission.id.desc()).limit(limit + 1)
    rows = session.execute(sel).all()
    more = len(rows) > limit
    out = []
    for adm, pat, pos, box, sh, wh in rows[:limit]:
        place = Place()
        if box is not None:
            place = Place(box.box_no, sh.code if sh else "", wh.code if wh else "",
                          wh.name if wh else "", wh.building if wh else "",
                          wh.floor if wh else "")
        out.append(Found(adm.id, adm.barcode, pat.name, pat.mrn, adm.admission_no,
                         adm.discharged_at.astimezone(rt.tz).date() if adm.discharged_at
                         else None, place, pos))
    states = tracking.states_of(session, tracking.machine(rt), [f.admission_id for f in out])
    loans = _loan_text(session, rt, [f.admission_id for f in out])
    for f in out:
        f.state, f.loan = states[f.admission_id], loans.get(f.admission_id, "")
    return out, more


def _loan_text(session: Session, rt, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Loan, Staff.name).outerjoin(
        Staff, Staff.staff_no == Loan.borrower_no).where(
        Loan.admission_id.in_(ids), Loan.status == "lent")).all()
    return {ln.admission_id: f"借给 {name or ln.borrower_no}，{ln.due_back} 前归还"
            for ln, name in rows}


# ============================================================================================
# Borrowing the paper record
# ============================================================================================


def _open_loan(session: Session, admission_id: int,
               statuses: tuple[str, ...] = ("requested", "lent")) -> Loan | None:
    return session.scalar(select(Loan).where(Loan.admission_id == admission_id,
                                             Loan.status.in_(statuses)).limit(1))


def default_due(session: Session, rt, today: dt.date) -> dt.date:
    n = rt.settings(WarehouseSettings).loan_working_days
    return tracking.calendar(session, rt).add_working_days(today, n)


def _due(due_back: dt.date | None, today: dt.date) -> dt.date:
    if due_back is None:
        raise WarehouseError("请填写归还日期")
    if due_back < today:
        raise WarehouseError("归还日期不能早于今天")
    if (due_back - today).days > 366:
        raise WarehouseError("借阅期限最长一年")
    return due_back


def find_record(session: Session, code: str) -> Admission | None:
    code = (code or "").strip().upper()
    if not code or len(code) > 64:
        return None
    return session.scalar(select(Admission).options(joinedload(Admission.patient)).where(
        (Admission.barcode == code) | (Admission.admission_no == code)))


def request_loan(session: Session, rt, adm: Admission, borrower: StaffRef, reason: str,
                 due_back: dt.date | None, *, actor: audit.Actor | None = None) -> Loan:
    """A staff member asks the record room for the paper record (调阅纸质病案)."""
    today = utcnow().astimezone(rt.tz).date()
    reason = _text(reason, "借阅原因", 200)
    due = _due(due_back or default_due(session, rt, today), today)
    if adm.discharged_at is None:
        raise WarehouseError("患者尚未出院，纸质病案不在病案室")
    if _open_loan(session, adm.id) is not None:
        raise WarehouseError("这份纸质病案已有借阅申请或已借出")
    ln = Loan(admission_id=adm.id, status="requested", borrower_no=borrower.staff_no,
              reason=reason, due_back=due, requested_at=utcnow())
    session.add(ln)
    session.flush()
    audit.record(session, rt, "warehouse.loan_request",
                 actor=actor or audit.Actor(staff_no=borrower.staff_no),
                 mrn=adm.patient.mrn, admission_no=adm.admission_no,
                 detail={"reason": reason, "due_back": due.isoformat()})
    return ln


def _lend(session: Session, rt, ln: Loan, adm: Admission, staff_no: str,
          actor: audit.Actor | None) -> None:
    ln.status, ln.lent_at, ln.lent_by = "lent", utcnow(), staff_no
    box = session.get(BoxedRecord, adm.id)
    where = place_of_box(session, session.get_one(Box, box.box_id)).path if box else ""
    session.add(Movement(kind="lent", admission_id=adm.id, box_id=box.box_id if box else None,
                         staff_no=staff_no, note=ln.borrower_no))
    session.flush()
    _event(session, rt, adm, "lent", staff_no=staff_no, actor=actor, location=where,
           note=f"借给 {ln.borrower_no}：{ln.reason}")
    audit.record(session, rt, "warehouse.lend", actor=actor or audit.Actor(staff_no=staff_no),
                 mrn=adm.patient.mrn, admission_no=adm.admission_no,
                 detail={"borrower": ln.borrower_no, "due_back": ln.due_back.isoformat()})


def fulfil(session: Session, rt, loan_id: int, *, staff_no: str,
           actor: audit.Actor | None = None) -> Loan:
    """The record room hands the requested paper record out."""
    ln = session.get(Loan, loan_id, with_for_update=True)
    if ln is None or ln.status != "requested":
        raise WarehouseError("没有这条待出借的申请")
    adm = session.scalar(select(Admission).options(joinedload(Admission.patient))
                         .where(Admission.id == ln.admission_id))
    _lend(session, rt, ln, adm, staff_no, actor)
    return ln


def reject(session: Session, rt, loan_id: int, answer: str, *, staff_no: str,
           actor: audit.Actor | None = None) -> Loan:
    ln = session.get(Loan, loan_id, with_for_update=True)
    if ln is None or ln.status != "requested":
        raise WarehouseError("没有这条待出借的申请")
    ln.status, ln.answer = "rejected", _text(answer, "不出借的原因", 200)
    adm = session.scalar(select(Admission).options(joinedload(Admission.patient))
                         .where(Admission.id == ln.admission_id))
    session.flush()
    audit.record(session, rt, "warehouse.loan_reject",
                 actor=actor or audit.Actor(staff_no=staff_no), mrn=adm.patient.mrn,
                 admission_no=adm.admission_no, detail={"answer": ln.answer})
    from bingan.core import notify

    notify.send(session, rt, ln.borrower_no, "纸质病案借阅申请未获出借",
                f"住院号 {adm.admission_no}：{ln.answer}", href="/warehouse/loans/mine")
    return ln


def lend_direct(session: Session, rt, code: str, borrower_no: str, reason: str,
                due_back: dt.date | None, *, staff_no: str,
                actor: audit.Actor | None = None) -> Loan:
    """The record room lends a paper record to a staff member at the counter."""
    today = utcnow().astimezone(rt.tz).date()
    adm = find_record(session, code)
    if adm is None:
        raise WarehouseError("没有这份病案（请扫描病案条码或输入住院号）")
    borrower_no = _text(borrower_no, "借阅人工号", 32).upper()
    if session.scalar(select(Staff.id).where(Staff.staff_no == borrower_no)) is None:
        raise WarehouseError(f"没有工号为 {borrower_no} 的职工")
    reason = _text(reason, "借阅原因", 200)
    due = _due(due_back or default_due(session, rt, today), today)
    if _open_loan(session, adm.id) is not None:
        raise WarehouseError("这份纸质病案已有借阅申请或已借出")
    ln = Loan(admission_id=adm.id, status="requested", borrower_no=borrower_no, reason=reason,
              due_back=due)
    session.add(ln)
    session.flush()
    _lend(session, rt, ln, adm, staff_no, actor)
    return ln


def return_record(session: Session, rt, code: str, *, staff_no: str,
                  actor: audit.Actor | None = None) -> Loan:
    adm = find_record(session, code)
    if adm is None:
        raise WarehouseError("没有这份病案（请扫描病案条码或输入住院号）")
    ln = _open_loan(session, adm.id, ("lent",))
    if ln is None:
        raise WarehouseError(f"住院号 {adm.admission_no} 的纸质病案没有借出记录")
    ln.status, ln.returned_at, ln.returned_to = "returned", utcnow(), staff_no
    box = session.get(BoxedRecord, adm.id)
    where = place_of_box(session, session.get_one(Box, box.box_id)).path if box else ""
    session.add(Movement(kind="returned", admission_id=adm.id,
                         box_id=box.box_id if box else None, staff_no=staff_no,
                         note=ln.borrower_no))
    session.flush()
    _event(session, rt, adm, "returned", staff_no=staff_no, actor=actor, location=where,
           note=f"{ln.borrower_no} 归还")
    audit.record(session, rt, "warehouse.return", actor=actor or audit.Actor(staff_no=staff_no),
                 mrn=adm.patient.mrn, admission_no=adm.admission_no,
                 detail={"borrower": ln.borrower_no, "late": utcnow().astimezone(rt.tz).date()
                         > ln.due_back})
    return ln


@dataclass
class LoanRow:
    id: int
    admission_id: int
    barcode: str
    admission_no: str
    borrower_no: str
    borrower: str
    reason: str
    due_back: dt.date
    status: str
    requested_at: dt.datetime | None
    lent_at: dt.datetime | None
    returned_at: dt.datetime | None
    answer: str
    overdue_days: int = 0
    place: str = ""

    @property
    def status_label(self) -> str:
        return LOAN_STATUS.get(self.status, self.status)


def loans(session: Session, rt, *, statuses: tuple[str, ...], borrower_no: str | None = None,
          today: dt.date | None = None, limit: int = 500) -> list[LoanRow]:
    today = today or utcnow().astimezone(rt.tz).date()
    sel = (select(Loan, Admission.barcode, Admission.admission_no, Staff.name)
           .join(Admission, Admission.id == Loan.admission_id)
           .outerjoin(Staff, Staff.staff_no == Loan.borrower_no)
           .where(Loan.status.in_(statuses)))
    if borrower_no:
        sel = sel.where(Loan.borrower_no == borrower_no)
    sel = sel.order_by(Loan.due_back, Loan.id).limit(limit)
    out = []
    for ln, code, no, name in session.execute(sel).all():
        late = (today - ln.due_back).days if ln.status == "lent" and today > ln.due_back else 0
        out.append(LoanRow(ln.id, ln.admission_id, code, no, ln.borrower_no,
                           name or ln.borrower_no, ln.reason, ln.due_back, ln.status,
                           ln.requested_at, ln.lent_at, ln.returned_at, ln.answer, late))
    places = {}
    ids = [r.admission_id for r in out if r.status == "requested"]
    for i in range(0, len(ids), 900):
        for aid, box in session.execute(select(BoxedRecord.admission_id, Box).join(
                Box, Box.id == BoxedRecord.box_id).where(
                BoxedRecord.admission_id.in_(ids[i:i + 900]))).all():
            places[aid] = place_of_box(session, box).path
    for r in out:
        r.place = places.get(r.admission_id, "")
    return out


def remind_overdue(rt, today: dt.date | None = None) -> int:
    """Remind every borrower of a paper record past its due date (once a day per loan)."""
    from bingan.core import notify

    today = today or utcnow().astimezone(rt.tz).date()
    n = 0
    with rt.sessions() as s, s.begin():
        for ln in s.scalars(select(Loan).where(Loan.status == "lent", Loan.due_back < today)
                            .order_by(Loan.id).with_for_update()):
            if ln.reminded_on is not None and ln.reminded_on >= today:
                continue
            adm = s.get(Admission, ln.admission_id)
            days = (today - ln.due_back).days
            try:
                notify.send(s, rt, ln.borrower_no, "纸质病案借阅已超期",
                            f"住院号 {adm.admission_no} 的纸质病案应于 {ln.due_back} 归还，"
                            f"已超期 {days} 天，请尽快归还病案室。", href="/warehouse/loans/mine")
            except ValueError:  # the borrower left: the record room sees it on its list
                pass
            ln.reminded_on = today
            n += 1
    return n


def reminder_job(rt) -> None:
    remind_overdue(rt)


# ============================================================================================
# Statistics
# ============================================================================================


@dataclass
class Occupancy:
    key: str
    label: str
    records: int = 0
    capacity: int = 0
    boxes: int = 0
    box_capacity: int = 0
    shelves: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def occupancy(self) -> float | None:
        return round(100.0 * self.records / self.capacity, 1) if self.capacity else None

    @property
    def box_occupancy(self) -> float | None:
        return round(100.0 * self.boxes / self.box_capacity, 1) if self.box_capacity else None


def per_warehouse(session: Session) -> list[Occupancy]:
    """Records, boxes and capacity per warehouse (records capacity: its boxes' capacity;
    box capacity: its shelves')."""
    out = {w.id: Occupancy(w.code, f"{w.name}（{w.building} {w.floor}）")
           for w in session.scalars(select(Warehouse).order_by(Warehouse.code))}
    for wid, n, cap in session.execute(select(Shelf.warehouse_id, func.count(), func.sum(
            Shelf.capacity)).group_by(Shelf.warehouse_id)).all():
        out[wid].shelves, out[wid].box_capacity = n, int(cap or 0)
    for wid, n, cap in session.execute(select(Shelf.warehouse_id, func.count(Box.id), func.sum(
            Box.capacity)).join(Box, Box.shelf_id == Shelf.id)
            .group_by(Shelf.warehouse_id)).all():
        out[wid].boxes, out[wid].capacity = n, int(cap or 0)
    for wid, n in session.execute(select(Shelf.warehouse_id, func.count()).select_from(
            BoxedRecord).join(Box, Box.id == BoxedRecord.box_id).join(
            Shelf, Shelf.id == Box.shelf_id).group_by(Shelf.warehouse_id)).all():
        out[wid].records = n
    return list(out.values())


def per_shelf(session: Session, warehouse_code: str) -> list[Occupancy]:
    wh = session.scalar(select(Warehouse).where(Warehouse.code == warehouse_code))
    if wh is None:
        raise WarehouseError(f"没有库房 {warehouse_code}")
    out = {s.id: Occupancy(s.code, f"第 {s.row} 排 第 {s.col} 列 第 {s.level} 层",
                           box_capacity=s.capacity, shelves=1)
           for s in session.scalars(select(Shelf).where(Shelf.warehouse_id == wh.id)
                                    .order_by(Shelf.code))}
    for sid, n, cap in session.execute(select(Box.shelf_id, func.count(), func.sum(Box.capacity))
                                       .where(Box.shelf_id.in_(list(out)))
                                       .group_by(Box.shelf_id)).all():
        assert sid is not None  # only shelved boxes are counted (shelf_id in out)
        out[sid].boxes, out[sid].capacity = n, int(cap or 0)
    for sid, n in session.execute(select(Box.shelf_id, func.count()).select_from(BoxedRecord)
                                  .join(Box, Box.id == BoxedRecord.box_id)
                                  .where(Box.shelf_id.in_(list(out)))
                                  .group_by(Box.shelf_id)).all():
        assert sid is not None
        out[sid].records = n
    return list(out.values())


def per_box(session: Session, shelf_code: str) -> list[Occupancy]:
    sh = session.scalar(select(Shelf).where(Shelf.code == shelf_code))
    if sh is None:
        raise WarehouseError(f"没有货架 {shelf_code}")
    out = {b.id: Occupancy(b.box_no, b.note or "", capacity=b.capacity, boxes=1)
           for b in session.scalars(select(Box).where(Box.shelf_id == sh.id)
                                    .order_by(Box.box_no))}
    for bid, n in session.execute(select(BoxedRecord.box_id, func.count())
                                  .where(BoxedRecord.box_id.in_(list(out)))
                                  .group_by(BoxedRecord.box_id)).all():
        out[bid].records = n
    return list(out.values())


def movements_per_month(session: Session, rt, months: int = 12,
                        today: dt.date | None = None) -> list[tuple[str, dict[str, int]]]:
    """(YYYY-MM, {kind: count}) for the last ``months`` months in hospital time."""
    today = today or utcnow().astimezone(rt.tz).date()
    first = today.replace(day=1)
    starts = []
    y, m = first.year, first.month
    for _ in range(months):
        starts.append(dt.date(y, m, 1))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    starts.reverse()
    out = []
    for i, d in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else (
            dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1))
        lo = dt.datetime.combine(d, dt.time(), tzinfo=rt.tz)
        hi = dt.datetime.combine(end, dt.time(), tzinfo=rt.tz)
        got = dict(session.execute(select(Movement.kind, func.count()).where(
            Movement.at >= lo, Movement.at < hi).group_by(Movement.kind)).all())
        out.append((f"{d:%Y-%m}", {k: got.get(k, 0) for k in MOVEMENT_KINDS}))
    return out


def stats_workbook(whs: list[Occupancy], shelves: dict[str, list[Occupancy]],
                   months: list[tuple[str, dict[str, int]]], hospital: str) -> bytes:
    import io

    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                   "strings_to_urls": False})
    bold = wb.add_format({"bold": True, "bg_color": "#E8EEF7", "border": 1})
    ws = wb.add_worksheet("库房")
    ws.write(0, 0, f"{hospital} 病案库房统计", wb.add_format({"bold": True}))
    heads = ["库房编号", "库房", "货架层位", "可放箱数", "在架箱数", "箱位占用率（%）", "病案份数",
             "箱容量（份）", "病案占用率（%）"]
    ws.write_row(2, 0, heads, bold)
    for i, o in enumerate(whs, 3):
        ws.write_row(i, 0, [o.key, o.label, o.shelves, o.box_capacity, o.boxes,
                            o.box_occupancy if o.box_occupancy is not None else "",
                            o.records, o.capacity,
                            o.occupancy if o.occupancy is not None else ""])
    ws.set_column(0, 0, 10)
    ws.set_column(1, 1, 30)
    ws.set_column(2, 8, 14)
    ws = wb.add_worksheet("货架")
    ws.write_row(0, 0, ["库房编号", "货架", "位置", "可放箱数", "在架箱数", "病案份数", "箱容量（份）",
                        "病案占用率（%）"], bold)
    line = 1
    for code, rows in shelves.items():
        for o in rows:
            ws.write_row(line, 0, [code, o.key, o.label, o.box_capacity, o.boxes, o.records,
                                   o.capacity, o.occupancy if o.occupancy is not None else ""])
            line += 1
    ws.set_column(0, 7, 14)
    ws = wb.add_worksheet("每月出入库")
    ws.write_row(0, 0, ["月份"] + list(MOVEMENT_KINDS.values()), bold)
    for i, (mon, kinds) in enumerate(months, 1):
        ws.write_row(i, 0, [mon] + [kinds[k] for k in MOVEMENT_KINDS])
    ws.set_column(0, 6, 12)
    wb.close()
    return buf.getvalue()


def occupancy_rows(session: Session, rt, params) -> list[dict]:
    """The occupancy report of the reports page (``register_reports``): per warehouse (group
    ``warehouse``) or per shelf (``shelf``), box places and boxes on them, records in those
    boxes against the boxes' capacity, both as fill rates (now: the stock has no history),
    and the records boxed into / taken out of them within the period (scans). Boxes on no
    shelf yet are one row of their own."""
    lo, hi = params.bounds()
    by_shelf = params.group == "shelf"
    moved: dict[tuple[str, int | None], int] = {}
    for kind, shelf_id, n in session.execute(
            select(Movement.kind, func.coalesce(Movement.to_shelf_id, Movement.from_shelf_id),
                   func.count()).where(Movement.kind.in_(("boxed", "unboxed")),
                                       Movement.at >= lo, Movement.at < hi)
            .group_by(Movement.kind, func.coalesce(Movement.to_shelf_id,
                                                   Movement.from_shelf_id))).all():
        moved[(kind, shelf_id)] = int(n)
    shelf_wh = dict(session.execute(select(Shelf.id, Shelf.warehouse_id)).all())

    def row(label: str, o: Occupancy | None, shelf_ids: list[int | None]) -> dict:
        return {"place": label, "shelves": o.shelves if o else 0,
                "box_capacity": o.box_capacity if o else 0, "boxes": o.boxes if o else 0,
                "box_rate": o.box_occupancy if o else None, "records": o.records if o else 0,
                "capacity": o.capacity if o else 0, "rate": o.occupancy if o else None,
                "boxed": sum(moved.get(("boxed", s), 0) for s in shelf_ids),
                "unboxed": sum(moved.get(("unboxed", s), 0) for s in shelf_ids)}

    out = []
    whs = session.scalars(select(Warehouse).order_by(Warehouse.code)).all()
    if by_shelf:
        for wh in whs:
            ids = {s.code: s.id for s in session.scalars(
                select(Shelf).where(Shelf.warehouse_id == wh.id))}
            for o in per_shelf(session, wh.code):
                out.append(row(f"{wh.name} {o.key}", o, [ids[o.key]]))
    else:
        occ = {o.key: o for o in per_warehouse(session)}
        for wh in whs:
            out.append(row(wh.name, occ.get(wh.code),
                           [sid for sid, w in shelf_wh.items() if w == wh.id]))
    loose = session.execute(select(func.count(Box.id.distinct()), func.count(
        BoxedRecord.admission_id)).select_from(Box).outerjoin(
        BoxedRecord, BoxedRecord.box_id == Box.id).where(Box.shelf_id.is_(None))).one()
    loose_cap = int(session.scalar(select(func.sum(Box.capacity)).where(
        Box.shelf_id.is_(None))) or 0)
    if loose[0] or moved.get(("boxed", None)) or moved.get(("unboxed", None)):
        # on no shelf: no box place is taken (在架箱数 0), the boxes are counted in the label
        o = Occupancy("", "", records=int(loose[1]), capacity=loose_cap)
        out.append(row(f"未上架的病案箱（{int(loose[0])} 箱）", o, [None]))
    return out
