"""Demo material: two store rooms with shelves and labelled boxes; the demo records that
passed QC boxed by scanning (through the same path as the boxing page, so tracking moves them
to 已装箱 / 已上架), the last box not shelved yet, and paper records asked for, lent (one
overdue) and returned. Idempotent: does nothing once a warehouse exists."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from bingan.core import audit
from bingan.core.models import Admission, Staff, utcnow
from bingan.core.staff import staff_ref

from bingan_tracking import demo as tracking_demo
from bingan_tracking.models import PaperState
from bingan_warehouse import service
from bingan_warehouse.models import Box, Warehouse

PER_BOX = 30


def _staff(s, no: str):
    st = s.scalar(select(Staff).options(selectinload(Staff.roles),
                                        selectinload(Staff.department))
                  .where(Staff.staff_no == no))
    return staff_ref(st) if st is not None else None


def load_demo(rt, admissions) -> int:
    tracking_demo.load_demo(rt, admissions)  # the flow first: boxing takes the QC'd records
    act = audit.Actor(staff_no="demo")
    with rt.sessions() as s, s.begin():
        if s.scalar(select(func.count()).select_from(Warehouse)):
            return 0
        clerk = _staff(s, "R0001")
        if clerk is None:
            return 0
        k1 = service.add_warehouse(s, rt, "K01", "一号病案库", "门诊医技楼", "B1", actor=act)
        k2 = service.add_warehouse(s, rt, "K02", "二号病案库", "行政综合楼", "3F", actor=act)
        shelves = service.add_shelves(s, rt, k1.id, 2, 3, 4, 6, actor=act)
        service.add_shelves(s, rt, k2.id, 1, 2, 5, 8, actor=act)
        ids = list(s.scalars(select(PaperState.admission_id).join(
            Admission, Admission.id == PaperState.admission_id).where(
            PaperState.state == "已质检").order_by(Admission.discharged_at, Admission.id)))
        codes = dict(s.execute(select(Admission.id, Admission.barcode)
                               .where(Admission.id.in_(ids))).all()) if ids else {}
        chunks = [ids[i:i + PER_BOX] for i in range(0, len(ids), PER_BOX)]
        boxes = service.new_boxes(s, rt, len(chunks) + 2, 40, actor=act)
        for i, (box, chunk) in enumerate(zip(boxes, chunks)):
            if i < len(chunks) - 1:  # the last filled box waits on the table to be shelved
                service.move_box(s, rt, box, shelves[i % len(shelves)], staff_no="R0001",
                                 actor=act)
            service.box_run(s, rt, [box.box_no] + [codes[a] for a in chunk], staff=clerk,
                            actor=act)
        today = utcnow().astimezone(rt.tz).date()
        shelved = [a for chunk in chunks[:-1] for a in chunk]
        doctors = [d for d in ("D0001", "D0002", "D0003") if _staff(s, d) is not None]
        if len(shelved) >= 4 and doctors:
            adm = s.get(Admission, shelved[0])
            service.request_loan(s, rt, adm, _staff(s, doctors[0]), "科研病例收集",
                                 service.default_due(s, rt, today))
            late = service.lend_direct(s, rt, codes[shelved[1]], doctors[-1], "医疗质量讨论",
                                       today, staff_no="R0001", actor=act)
            late.due_back = today - dt.timedelta(days=4)
            late.lent_at = utcnow() - dt.timedelta(days=9)
            service.lend_direct(s, rt, codes[shelved[2]], doctors[0], "会诊参考", today,
                                staff_no="R0002", actor=act)
            service.return_record(s, rt, codes[shelved[2]], staff_no="R0002", actor=act)
        s.flush()
        return s.scalar(select(func.count()).select_from(Box)) or 0
