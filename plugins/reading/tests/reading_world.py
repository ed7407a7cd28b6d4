"""A small hospital for the reading plugin's tests: records, page images rendered with Pillow,
and staff in every role with every relation to one record.

Record relations of the permission matrix (all about the earlier record ``E1`` of patient P1,
who is in hospital again with the open stay ``C``):

    signer        signed E1's front page
    stay          admitting/treating physician of the current stay C (Signer row or front page)
    grant_live    application approved, deadline in the future
    grant_expired application approved, deadline passed
    rejected      application rejected
    none          nothing

The duty roles (admin, auditor: 三员分立) cannot apply, so their grant_* and rejected staff
have no application and nothing to read through one.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import os
from dataclasses import dataclass, field

from PIL import Image, ImageDraw
from sqlalchemy import select, update

from bingan.hooks.types import AdmissionIn, DiagnosisIn, PatientIn
from bingan.core import fonts, pages, records
from bingan.core.models import Admission, Grant, utcnow
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles
from bingan_reading.settings import ReadingSettings

UTC = dt.timezone.utc
PASSWORD = "Correct-horse-9"  # tests/webutil.PASSWORD
ADMIN_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # tests/webutil.ADMIN_SECRET

ROLES = ["physician", "nurse", "records", "admin", "auditor"]
DUTY = ("admin", "auditor")  # roles of the three duties (三员分立): no applications, no grants
RELATIONS = ["signer", "stay", "grant_live", "grant_expired", "rejected", "none"]
PREFIX = {"physician": "PHY", "nurse": "NUR", "records": "REC", "admin": "ADM", "auditor": "AUD"}
# E1's front-page role for each matrix role's signer (one signer per role and record)
SIGNER_ROLE = {"physician": "attending", "nurse": "nurse", "records": "coder",
               "admin": "qc_doctor", "auditor": "qc_nurse"}
E1, C, E2, E3 = "ZY202601000101", "ZY202609000102", "ZY202601000201", "ZY202602000103"
MRN1, MRN2 = "00700001", "00700002"
PAGE_TYPES = ["病案首页", "入院记录", "病程记录", "病程记录", "检验报告"]


READING_ONLY = bool(os.environ.get("BINGAN_READING_ONLY"))


def make_runtime(home, url: str):
    """A runtime with every installed plugin enabled (the project's rule), or only this one
    with BINGAN_READING_ONLY=1 (a development aid while other plugins are half-built)."""
    from support import build_test_runtime

    return build_test_runtime(home, url, ["reading"] if READING_ONLY else None)


def staff_no(role: str, rel: str) -> str:
    return f"{PREFIX[role]}{RELATIONS.index(rel)}"


@functools.lru_cache(maxsize=64)
def page_jpeg(title: str, size: tuple[int, int] = (620, 877), seed: int = 0) -> bytes:
    """A page image: a title, lines of dark text and a red seal, as a JPEG."""
    w, h = size
    im = Image.new("RGB", size, (250, 250, 247))
    d = ImageDraw.Draw(im)
    big, small = fonts.truetype(max(12, w // 24)), fonts.truetype(max(9, w // 48))
    d.text((w * 0.3, h * 0.04), title, fill=(10, 10, 10), font=big)
    y = int(h * 0.12)
    n = seed
    while y < h * 0.9:
        n += 1
        d.text((w * 0.08, y), f"第{n}行 患者主诉反复胸闷气短三年 血压 {120 + n % 30}/80 mmHg",
               fill=(15, 15, 15), font=small)
        y += int(h * 0.035)
    d.ellipse((w * 0.65, h * 0.75, w * 0.9, h * 0.75 + w * 0.25), outline=(200, 20, 20),
              width=max(2, w // 120))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=88)
    return buf.getvalue()


@dataclass
class World:
    rt: object
    now: dt.datetime
    page_ids: dict[str, list[int]] = field(default_factory=dict)
    stored: dict[int, bytes] = field(default_factory=dict)

    def user(self, s, no: str):
        from bingan.core.staff import get_staff, staff_ref

        return staff_ref(get_staff(s, no))


def _admission(mrn, name, adm_no, visit, admitted, discharged, dept, signers, extra=None):
    return AdmissionIn(
        patient=PatientIn(mrn=mrn, name=name, sex="M", birth_date=dt.date(1960, 5, 1)),
        admission_no=adm_no, visit_no=visit, admitted_at=admitted, discharged_at=discharged,
        admit_department=dept, discharge_department=dept, discharge_way="1" if discharged else None,
        payment_method="1",
        diagnoses=(DiagnosisIn("I20.000", "不稳定型心绞痛", "main", "1"),),
        signers=signers, extra=extra or {})


def build_world(rt, now: dt.datetime | None = None, relations: bool = True) -> World:
    """Departments, staff of every role x relation, records with pages, applications."""
    now = now or utcnow()
    w = World(rt, now)
    # one approver keeps the world small (role-based approvers: test_applications)
    rt.settings(ReadingSettings).approvers = {"*": ["staff:APPR"]}
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)  # with the plugins' default capabilities
        for code, name in [("1001", "心血管内科"), ("1005", "普通外科"), ("9001", "病案室")]:
            add_department(s, code, name)
        for role in ROLES:
            for rel in RELATIONS:
                dept = "9001" if role in ("records", "admin", "auditor") else "1001"
                st = add_staff(s, staff_no(role, rel), f"{role}{rel}", PASSWORD, dept, [role])
                if role == "admin":
                    st.totp_secret = ADMIN_SECRET
        add_staff(s, "APPR", "审批人", PASSWORD, "9001", ["records"])
        add_staff(s, "SURG", "外科医生", PASSWORD, "1005", ["physician"])
        e1_signers = {SIGNER_ROLE[r]: staff_no(r, "signer") for r in ROLES} if relations else {}
        stay_signers, treating = {}, []
        if relations:
            stay_signers = {"attending": staff_no("physician", "stay")}
            treating = [staff_no(r, "stay") for r in ROLES if r != "physician"]
        records.upsert_admission(s, rt, _admission(
            MRN1, "张三", E1, 1, now - dt.timedelta(days=400), now - dt.timedelta(days=390),
            "1001", e1_signers))
        records.upsert_admission(s, rt, _admission(
            MRN1, "张三", E3, 2, now - dt.timedelta(days=200), now - dt.timedelta(days=190),
            "1005", {"attending": "SURG"}))
        records.upsert_admission(s, rt, _admission(
            MRN1, "张三", C, 3, now - dt.timedelta(days=3), None, "1001", stay_signers,
            {"treating_physicians": treating}))
        records.upsert_admission(s, rt, _admission(
            MRN2, "李四", E2, 1, now - dt.timedelta(days=100), now - dt.timedelta(days=90),
            "1005", {"attending": "SURG"}))
        for adm_no in (E1, E2, E3):
            adm = records.get_admission(s, adm_no)
            ids = []
            for i, ptype in enumerate(PAGE_TYPES if adm_no == E1 else PAGE_TYPES[:2]):
                data = page_jpeg(f"{ptype} {adm_no}", seed=i * 50)
                p = pages.add_page(s, rt, adm, pages.NewPage(image=data, width=620, height=877,
                                                             dpi=75.0, page_type=ptype))
                ids.append(p.id)
                w.stored[p.id] = data
            w.page_ids[adm_no] = ids
    if relations:
        from bingan_reading import applications as apps

        for role in ROLES:
            if role in DUTY:
                continue  # 三员分立: they cannot apply (test_applications checks the refusal)
            for rel, decide in (("grant_live", "approve"), ("grant_expired", "approve"),
                                ("rejected", "reject")):
                no = staff_no(role, rel)
                with rt.sessions() as s, s.begin():
                    app = apps.apply(s, rt, no, admission_nos=[E1], reason="科研课题查阅",
                                     days=10, now=now - dt.timedelta(hours=1))
                    approver = "APPR"
                    if decide == "approve":
                        apps.approve(s, rt, app.id, approver, days=5,
                                     now=now - dt.timedelta(hours=1))
                    else:
                        apps.reject(s, rt, app.id, approver, note="理由不充分",
                                    now=now - dt.timedelta(hours=1))
                if rel == "grant_expired":
                    expire_grants_of(rt, no, utcnow() - dt.timedelta(seconds=1))
    return w


def expire_grants_of(rt, no: str, when: dt.datetime) -> None:
    """Move a staff member's grant deadlines to ``when`` (the clock cannot be moved for a
    running server, so the deadline moves into the past instead)."""
    from bingan.core.models import Staff

    with rt.sessions() as s, s.begin():
        sid = s.scalar(select(Staff.id).where(Staff.staff_no == no))
        s.execute(update(Grant).where(Grant.staff_id == sid).values(deadline=when))


def expected_view(role: str, rel: str, record: str) -> bool:
    """The whole policy for ``view``, written out: roles from [core.role_actions] (only the
    record room: no administrator reads records), then the relations of the reading plugin
    (signers read by default only when they signed as a physician: the physician's signer
    is the attending, the others' are nurse, coder, QC doctor and QC nurse); E2 (another
    patient) has no relation to anyone here."""
    if role == "records":
        return True
    relations = ("signer", "stay", "grant_live") if role == "physician" else ("stay",
                                                                               "grant_live")
    if role in DUTY:
        relations = ("stay",)  # no application, so no grant
    return record == E1 and rel in relations


def admission_id(rt, adm_no: str) -> int:
    with rt.sessions() as s:
        return s.scalar(select(Admission.id).where(Admission.admission_no == adm_no))


def rgb(data: bytes):
    """A JPEG as a signed int16 RGB array (for pixel differences)."""
    import numpy as np

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def watermark_ink(served, stored):
    """Watermark ink: paper in the stored page (all channels light) that the served image
    darkened clearly (JPEG re-encoding moves paper by a few levels, the watermark by ~40)."""
    paper = (stored > 225).all(axis=2)
    darker = (stored - served).min(axis=2) > 18
    return paper & darker


def ink_cells(ink, n: int = 4) -> list[int]:
    """Ink pixels in each cell of an n x n grid over the page (a tiled mark fills them all)."""
    h, w = ink.shape
    return [int(ink[y * h // n:(y + 1) * h // n, x * w // n:(x + 1) * w // n].sum())
            for y in range(n) for x in range(n)]
