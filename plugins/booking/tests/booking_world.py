"""A small hospital for the booking tests: a record-room clerk who reviews, a physician who
may not; one patient (name, ID number, phone as the HIS registered them) with two digitized
stays and one not yet digitized; another patient the first must never see. The patient side
is driven as a browser would: sandbox WeChat sign-in, the SMS code read from the sandbox."""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass

from PIL import Image, ImageDraw

from bingan.core import pages, records
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles
from bingan.hooks.types import AdmissionIn, PatientIn

UTC = dt.timezone.utc
PASSWORD = "Correct-horse-9"
NAME, IDN, MRN, PHONE = "李秀英", "110101198003070028", "00900001", "13912345678"
OTHER_NAME, OTHER_IDN, OTHER_MRN = "赵建国", "110101197505051234", "00900002"
A1, A2, A3 = "ZY202605000201", "ZY202609000202", "ZY202611000203"
B1 = "ZY202606000301"
APPLICANT_PHONE = "13800138000"


def jpeg(size=(640, 480), color=(200, 210, 220), text="ID") -> bytes:
    im = Image.new("RGB", size, color)
    d = ImageDraw.Draw(im)
    d.rectangle((20, 20, size[0] // 3, size[1] - 20), fill=(120, 130, 150))
    d.text((size[0] // 2, 40), text, fill=(0, 0, 0))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _record(rt, mrn, name, idn, phone, no, visit, n_pages, discharged):
    with rt.sessions() as s, s.begin():
        adm, _ = records.upsert_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn=mrn, name=name, sex="F", birth_date=dt.date(1980, 3, 7),
                              id_number=idn, phone=phone),
            admission_no=no, visit_no=visit, admitted_at=discharged - dt.timedelta(days=6),
            discharged_at=discharged, admit_department="1001", discharge_department="1001",
            discharge_way="1"))
        for i in range(n_pages):
            data = jpeg((600, 840), text=f"{no}-{i}")
            pages.add_page(s, rt, adm, pages.NewPage(
                image=data, original=data, width=600, height=840, dpi=72.0,
                page_type="出院记录" if i == 0 else "病程记录", qc_status="pass"))


@dataclass
class World:
    rt: object


def build_world(rt) -> World:
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_department(s, "9001", "病案室")
        add_staff(s, "REC1", "周病案", PASSWORD, "9001", ["records"])
        add_staff(s, "PHY1", "陈医师", PASSWORD, "1001", ["physician"])
    _record(rt, MRN, NAME, IDN, PHONE, A1, 1, 3, dt.datetime(2026, 5, 20, 2, tzinfo=UTC))
    _record(rt, MRN, NAME, IDN, PHONE, A2, 2, 2, dt.datetime(2026, 9, 12, 2, tzinfo=UTC))
    _record(rt, MRN, NAME, IDN, PHONE, A3, 3, 0, dt.datetime(2026, 11, 30, 2, tzinfo=UTC))
    _record(rt, OTHER_MRN, OTHER_NAME, OTHER_IDN, "13700000000", B1, 1, 2,
            dt.datetime(2026, 6, 1, 2, tzinfo=UTC))
    return World(rt)


def csrf(c) -> str:
    """The form token of the client's patient session, as the pages carry it."""
    r = c.get("/h5/phone")
    m = re.search(r'name="_csrf_token" value="(\w+)"', r.text)
    assert m, r.text[:500]
    return m[1]


def sign_in(c, path: str = "/h5") -> None:
    """WeChat web authorization through the sandbox (three redirects), as the browser goes."""
    r = c.get(path, follow_redirects=True)
    assert r.status_code == 200, r.text
    assert c.cookies.get("bingan_booking"), "no patient session after the sandbox sign-in"


def last_code(rt, phone: str) -> str:
    """The code the sandbox's phone received last."""
    from bingan_booking.sms import sandbox_outbox

    msgs = sandbox_outbox(rt, {phone}, limit=1)
    text = msgs[0]["text"] if msgs else ""
    m = re.search(r"验证码为 (\d{6})", text)
    assert m, text
    return m[1]


def verify_phone(c, rt, phone: str = APPLICANT_PHONE) -> None:
    r = c.post("/h5/phone/code", data={"_csrf_token": csrf(c), "phone": phone})
    assert r.status_code == 200, r.text
    r = c.post("/h5/phone", data={"_csrf_token": csrf(c), "phone": phone,
                                  "code": last_code(rt, phone), "next": "/h5/book"},
               follow_redirects=False)
    assert r.status_code in (302, 303), r.text


def book(c, adms=(A1,), **over):
    data = {"_csrf_token": csrf(c), "h": "main", "name": NAME, "id_number": IDN,
            "purpose": "insurance", "copies": "1", "applicant_kind": "self",
            "applicant_name": NAME, "delivery": "pickup", "consent": "1",
            "adm": list(adms), **over}
    files = [("holding_id", ("me.jpg", jpeg(), "image/jpeg"))]
    return c.post("/h5/book", data=data, files=files, follow_redirects=False)
