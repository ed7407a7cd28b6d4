"""A small hospital for the deathcase tests: a record-room manager (exports every record by
the default policy), a physician (no export right), and discharges of every 离院方式 around a
period, two of them (a death, an against-advice discharge) with typed page images."""

from __future__ import annotations

import datetime as dt
import functools
import io
from dataclasses import dataclass, field

from PIL import Image
from sqlalchemy import select, update

from bingan.core import pages, records
from bingan.core.models import Admission
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles, get_staff, staff_ref
from bingan.hooks.types import AdmissionIn, PatientIn

CN = dt.timezone(dt.timedelta(hours=8))
PASSWORD = "Correct-horse-9"
# captured order (deliberately not the export order); None: a page without a type
DEATH_TYPES = ["入院记录", "病案首页", "收费清单", "病程记录", None, "死亡记录", "门诊病历",
               "病程记录", "体温单", "死亡病例讨论"]
AAMA_TYPES = ["护理记录", "病案首页", "出院记录"]


@functools.lru_cache(maxsize=64)
def jpeg(n: int) -> bytes:
    """A small page image, a different colour per page (so each page's bytes are unique)."""
    im = Image.new("RGB", (124, 175), ((n * 37) % 256, (n * 91) % 256, (n * 53) % 256))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=70, dpi=(30, 30))
    return buf.getvalue()


@dataclass
class World:
    rt: object
    pages: dict[str, list[tuple[int, str | None, bytes]]] = field(default_factory=dict)

    def staff(self, no: str):
        with self.rt.sessions() as s:
            return staff_ref(get_staff(s, no))


def add(rt, mrn: str, adm_no: str, way: str, discharged: dt.datetime, dept: str = "1001",
        types: list[str | None] | None = None, name: str = "李四", visit: int = 1,
        cancelled: bool = False) -> list[tuple[int, str | None, bytes]]:
    out = []
    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn=mrn, name=name, sex="M", birth_date=dt.date(1950, 1, 2)),
            admission_no=adm_no, visit_no=visit, admitted_at=discharged - dt.timedelta(days=6),
            discharged_at=discharged, admit_department=dept, discharge_department=dept,
            discharge_way=way))
        for i, t in enumerate(types or []):
            data = jpeg(int(adm_no[-4:]) * 20 + i)
            p = pages.add_page(s, rt, adm, pages.NewPage(image=data, width=124, height=175,
                                                         dpi=30.0, page_type=t))
            out.append((p.id, t, data))
        if cancelled:
            s.execute(update(Admission).where(Admission.id == adm.id)
                      .values(cancelled_at=discharged + dt.timedelta(days=1)))
    return out


def build_world(rt) -> World:
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_department(s, "2001", "重症医学科")
        add_department(s, "9001", "病案室")
        add_staff(s, "REC1", "周病案", PASSWORD, "9001", ["records"])
        add_staff(s, "PHY1", "陈医师", PASSWORD, "1001", ["physician"])
    w = World(rt)
    d = dt.datetime
    w.pages["ZY2026110001"] = add(rt, "00900001", "ZY2026110001", "5", d(2026, 11, 10, 15, tzinfo=CN),
                                  types=DEATH_TYPES, name="王死亡")
    w.pages["ZY2026110002"] = add(rt, "00900002", "ZY2026110002", "4", d(2026, 11, 20, 9, tzinfo=CN),
                                  dept="2001", types=AAMA_TYPES, name="赵自动")
    add(rt, "00900003", "ZY2026110003", "1", d(2026, 11, 12, 9, tzinfo=CN))      # 医嘱离院
    add(rt, "00900004", "ZY2026110004", "9", d(2026, 11, 13, 9, tzinfo=CN))      # 其他
    add(rt, "00900005", "ZY2026110005", "5", d(2026, 11, 14, 9, tzinfo=CN), cancelled=True)
    add(rt, "00900006", "ZY2026100006", "5", d(2026, 10, 31, 23, 30, tzinfo=CN))  # before
    add(rt, "00900007", "ZY2026110007", "5", d(2026, 11, 30, 23, 30, tzinfo=CN))  # last minute
    add(rt, "00900008", "ZY2026120008", "4", d(2026, 12, 1, 0, 10, tzinfo=CN))    # after
    add(rt, "00900009", "ZY2026110009", "2", d(2026, 11, 15, 9, tzinfo=CN))      # 转院
    return w


def admission(rt, no: str) -> Admission:
    with rt.sessions() as s:
        from sqlalchemy.orm import joinedload

        return s.scalar(select(Admission).options(joinedload(Admission.patient))
                        .where(Admission.admission_no == no))
