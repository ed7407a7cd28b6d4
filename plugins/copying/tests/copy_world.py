"""A small hospital for the copying tests: staff at the counter, a physician, a ward nurse who
registers remote requests, an approver; one patient with two discharged stays whose pages are
real JPEGs of typed pages (page index types, so the objective record can be preselected)."""

from __future__ import annotations

import datetime as dt
import functools
import io
from dataclasses import dataclass, field

from PIL import Image, ImageDraw
from sqlalchemy import select

from bingan.core import pages, records
from bingan.core.models import Admission, Role
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles, get_staff, staff_ref
from bingan.hooks.types import AdmissionIn, PatientIn

UTC = dt.timezone.utc
PASSWORD = "Correct-horse-9"
MRN = "00800001"
A1, A2 = "ZY202603000101", "ZY202608000102"
TYPES_A1 = ["病案首页", "出院记录", "入院记录", "病程记录", "病程记录", "医嘱单", "检验报告", "体温单"]
TYPES_A2 = ["病案首页", "出院记录", "入院记录", "手术同意书", "手术记录", "护理记录"]


@functools.lru_cache(maxsize=64)
def page_jpeg(title: str, seed: int = 0, size: tuple[int, int] = (827, 1169)) -> bytes:
    """A 100-DPI A4 page: a title bar, lines of dark strokes, as a JPEG."""
    w, h = size
    im = Image.new("RGB", size, (252, 252, 250))
    d = ImageDraw.Draw(im)
    d.rectangle((w * 0.25, h * 0.03, w * 0.75, h * 0.06), fill=(30, 30, 30))
    y = int(h * 0.1)
    n = seed
    while y < h * 0.92:
        n += 1
        d.line((w * 0.08, y, w * (0.5 + (n % 7) / 16), y), fill=(25, 25, 25), width=3)
        y += int(h * 0.03)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=80, dpi=(100, 100))
    return buf.getvalue()


def id_card_jpeg(text: str = "ID", size: tuple[int, int] = (640, 400)) -> bytes:
    im = Image.new("RGB", size, (225, 235, 245))
    d = ImageDraw.Draw(im)
    d.rectangle((20, 20, 180, 220), fill=(120, 140, 160))
    d.text((220, 60), text, fill=(0, 0, 0))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


@dataclass
class World:
    rt: object
    pages: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # adm -> (id, type)

    def staff(self, no: str):
        with self.rt.sessions() as s:
            return staff_ref(get_staff(s, no))

    def page_ids(self, adm: str, types: set[str] | None = None) -> list[int]:
        return [pid for pid, t in self.pages[adm] if types is None or t in types]


def add_record(rt, admission_no: str, visit: int, types: list[str], *, mrn: str = MRN,
               name: str = "王小明", dept: str = "1001",
               discharged: dt.datetime | None = None) -> list[tuple[int, str]]:
    admitted = (discharged or dt.datetime(2026, 3, 10, 2, tzinfo=UTC)) - dt.timedelta(days=9)
    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn=mrn, name=name, sex="M", birth_date=dt.date(1970, 1, 2)),
            admission_no=admission_no, visit_no=visit, admitted_at=admitted,
            discharged_at=discharged or dt.datetime(2026, 3, 10, 2, tzinfo=UTC),
            admit_department=dept, discharge_department=dept, discharge_way="1"))
        out = []
        for i, t in enumerate(types):
            data = page_jpeg(t, seed=visit * 100 + i)
            p = pages.add_page(s, rt, adm, pages.NewPage(
                image=data, original=data, width=827, height=1169, dpi=100.0, page_type=t,
                qc_status="pass"))
            out.append((p.id, t))
    return out


def build_world(rt) -> World:
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_department(s, "9001", "病案室")
        add_department(s, "3001", "东院区内科病区")
        add_staff(s, "REC1", "周病案", PASSWORD, "9001", ["records"])
        add_staff(s, "REC2", "吴窗口", PASSWORD, "9001", ["records"])
        add_staff(s, "CLK1", "郑文员", PASSWORD, "9001", ["clerk"])
        add_staff(s, "PHY1", "陈医师", PASSWORD, "1001", ["physician"])
        add_staff(s, "NUR1", "林护士", PASSWORD, "3001", ["nurse"])
        # the hospital gives its ward nurses the remote-request capability on the role page
        nurse = s.scalar(select(Role).where(Role.name == "nurse"))
        nurse.permissions = sorted(set(nurse.permissions or []) | {"copying.remote"})
        # a clerk at the counter who may register but not see identity images
        clerk = s.scalar(select(Role).where(Role.name == "clerk"))
        clerk.permissions = sorted(set(clerk.permissions or []) | {"copying.counter"})
    w = World(rt)
    w.pages[A1] = add_record(rt, A1, 1, TYPES_A1)
    w.pages[A2] = add_record(rt, A2, 2, TYPES_A2,
                             discharged=dt.datetime(2026, 8, 20, 2, tzinfo=UTC))
    return w


def admission_id(rt, no: str) -> int:
    with rt.sessions() as s:
        return s.scalar(select(Admission.id).where(Admission.admission_no == no))
