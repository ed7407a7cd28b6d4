"""A small record store for the warehouse tests: staff (record-room manager, clerk,
physician, auditor), generated discharged records with Chinese names, one warehouse with
shelves and boxes; made through core's and the plugins' own APIs."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bingan.core import audit, records
from bingan.core.models import Staff
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles, staff_ref
from bingan.hooks.types import AdmissionIn, PatientIn, StaffRef

CN = dt.timezone(dt.timedelta(hours=8))
PASSWORD = "Correct-horse-9"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"
ACT = audit.Actor(staff_no="REC1", client_ip="10.0.0.5", computer_name="MRD-01")


@dataclass
class Rec:
    id: int
    barcode: str
    admission_no: str
    mrn: str
    name: str
    pinyin: str
    initials: str
    discharged: dt.datetime


@dataclass
class World:
    rt: object
    recs: list[Rec]

    def staff(self, staff_no: str) -> StaffRef:
        with self.rt.sessions() as s:
            st = s.scalar(select(Staff).options(selectinload(Staff.roles),
                                                selectinload(Staff.department))
                          .where(Staff.staff_no == staff_no))
            return staff_ref(st)


def make_records(rt, n: int, seed: int = 15, start: int = 1) -> list[Rec]:
    rnd = random.Random(seed)
    out = []
    for i in range(start, start + n):
        name = rnd.choice(SURNAMES) + "".join(rnd.choice(GIVEN) for _ in range(rnd.choice((1, 2))))
        dis = dt.datetime(2025, 1, 1, 9, tzinfo=CN) + dt.timedelta(days=rnd.randrange(600),
                                                                     hours=rnd.randrange(12))
        mrn, no = f"{900000 + i:08d}", f"ZY{dis:%Y%m%d}{i:04d}"
        with rt.sessions() as s, s.begin():
            adm, _ = records.upsert_admission(s, rt, AdmissionIn(
                patient=PatientIn(mrn=mrn, name=name, sex="F"), admission_no=no, visit_no=1,
                admitted_at=dis - dt.timedelta(days=7), discharged_at=dis,
                admit_department="1001", discharge_department="1001", discharge_way="1",
                signers={"attending": "PHY1"}))
            py, ini = records.name_pinyin(name)
            out.append(Rec(adm.id, adm.barcode, no, mrn, name, py, ini, dis))
    return out


def build_world(rt, n: int = 12) -> World:
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_department(s, "9001", "病案室")
        add_staff(s, "REC1", "周病案", PASSWORD, "9001", ["records"])
        add_staff(s, "CLK1", "郑文员", PASSWORD, "9001", ["clerk"])
        add_staff(s, "PHY1", "陈主治", PASSWORD, "1001", ["physician"])
        add_staff(s, "AUD1", "钱审计", PASSWORD, "9001", ["auditor"])
    return World(rt, make_records(rt, n))
