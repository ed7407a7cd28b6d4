"""A small record room for the tracking tests: a record-room manager (records), a clerk, a QC
doctor and a physician; four discharged records and one patient still in hospital, made
through core's admission upsert as a connector would."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bingan.core import records
from bingan.core.models import Admission, Staff
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles, staff_ref
from bingan.hooks.types import AdmissionIn, PatientIn, StaffRef

CN = dt.timezone(dt.timedelta(hours=8))
PASSWORD = "Correct-horse-9"

RECORDS = [  # admission no, MRN, name, discharged
    ("ZY202611230001", "00800001", "钱示踪", dt.datetime(2026, 11, 23, 10, tzinfo=CN)),
    ("ZY202611240002", "00800002", "冯流转", dt.datetime(2026, 11, 24, 10, tzinfo=CN)),
    ("ZY202611250003", "00800003", "陈编码", dt.datetime(2026, 11, 25, 10, tzinfo=CN)),
    ("ZY202611260004", "00800004", "褚装箱", dt.datetime(2026, 11, 26, 10, tzinfo=CN)),
    ("ZY202612050005", "00800005", "卫在院", None),
]


@dataclass
class World:
    rt: object
    barcodes: dict[str, str]  # admission no -> barcode
    ids: dict[str, int]

    def staff(self, staff_no: str) -> StaffRef:
        with self.rt.sessions() as s:
            st = s.scalar(select(Staff).options(selectinload(Staff.roles),
                                                selectinload(Staff.department))
                          .where(Staff.staff_no == staff_no))
            return staff_ref(st)

    def admission(self, s, no: str) -> Admission:
        return records.get_admission(s, no)


def build_world(rt) -> World:
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_department(s, "9001", "病案室")
        add_staff(s, "REC1", "周病案", PASSWORD, "9001", ["records"])
        add_staff(s, "CLK1", "郑文员", PASSWORD, "9001", ["clerk"])
        add_staff(s, "QC1", "冯质控", PASSWORD, "9001", ["qc"])
        add_staff(s, "PHY1", "陈主治", PASSWORD, "1001", ["physician"])
    barcodes, ids = {}, {}
    for no, mrn, name, dis in RECORDS:
        admitted = (dis or dt.datetime(2026, 12, 5, 8, tzinfo=CN)) - dt.timedelta(days=5)
        with rt.sessions() as s, s.begin():
            adm, _ = records.upsert_admission(s, rt, AdmissionIn(
                patient=PatientIn(mrn=mrn, name=name, sex="M"), admission_no=no, visit_no=1,
                admitted_at=admitted, discharged_at=dis, admit_department="1001",
                discharge_department="1001", discharge_way="1" if dis else None,
                signers={"attending": "PHY1"}))
            barcodes[no], ids[no] = adm.barcode, adm.id
    return World(rt, barcodes, ids)
