"""A small hospital for the recovery tests: record-room staff, two recovery clerks, an
attending physician; discharged records on two wards (and one still in hospital), made through
core's admission upsert as a connector would."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from bingan.core import records
from bingan.core.models import Admission
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles
from bingan.hooks.types import AdmissionIn, PatientIn

CN = dt.timezone(dt.timedelta(hours=8))
PASSWORD = "Correct-horse-9"


@dataclass
class Rec:
    admission_no: str
    mrn: str
    name: str
    ward: str
    dept: str
    discharged: dt.datetime | None
    barcode: str = ""
    id: int = 0


RECORDS = [
    Rec("ZY202602130001", "00700001", "李春华", "心内一病区", "1001",
        dt.datetime(2026, 2, 13, 10, tzinfo=CN)),   # Friday before the Spring Festival
    Rec("ZY202609300002", "00700002", "赵国庆", "心内一病区", "1001",
        dt.datetime(2026, 9, 30, 16, tzinfo=CN)),   # the eve of National Day
    Rec("ZY202611300003", "00700003", "孙平安", "普外二病区", "2001",
        dt.datetime(2026, 11, 30, 9, tzinfo=CN)),
    Rec("ZY202612010004", "00700004", "周冬梅", "普外二病区", "2001",
        dt.datetime(2026, 12, 1, 9, tzinfo=CN)),
    Rec("ZY202612020005", "00700005", "吴在院", "普外二病区", "2001", None),  # still in hospital
]


@dataclass
class World:
    rt: object
    recs: dict[str, Rec]

    def rec(self, no: str) -> Rec:
        return self.recs[no]


def add_admission(rt, r: Rec) -> Rec:
    admitted = (r.discharged or dt.datetime(2026, 12, 2, 8, tzinfo=CN)) - dt.timedelta(days=6)
    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn=r.mrn, name=r.name, sex="F", birth_date=dt.date(1960, 5, 6)),
            admission_no=r.admission_no, visit_no=1, admitted_at=admitted,
            discharged_at=r.discharged, admit_department=r.dept, discharge_department=r.dept,
            ward=r.ward, discharge_way="1" if r.discharged else None,
            signers={"attending": "PHY1"}))
        r.barcode, r.id = adm.barcode, adm.id
    return r


def build_world(rt) -> World:
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_department(s, "2001", "普通外科")
        add_department(s, "9001", "病案室")
        add_staff(s, "REC1", "周病案", PASSWORD, "9001", ["records"])
        add_staff(s, "CLK1", "郑回收", PASSWORD, "9001", ["clerk"])
        add_staff(s, "CLK2", "王回收", PASSWORD, "9001", ["clerk"])
        add_staff(s, "PHY1", "陈主治", PASSWORD, "1001", ["physician"])
    recs = {r.admission_no: add_admission(rt, Rec(**r.__dict__)) for r in RECORDS}
    return World(rt, recs)


def admission_id(rt, no: str) -> int:
    with rt.sessions() as s:
        return s.scalar(select(Admission.id).where(Admission.admission_no == no))
