"""Demo bookings (``demo_loaded``): a few patients booked online, in every state the back
office meets, driven through the real paths: the sandbox platform takes the JSAPI orders and
signs the notifications, the callback code applies them, the review approves (a copy request
through the hook), rejects (a refund), dispatches (courier tracking in the sandbox)."""

from __future__ import annotations

import datetime as dt
import io
import logging
import secrets

from PIL import Image, ImageDraw
from sqlalchemy import func, select

from bingan.core import audit
from bingan.core.models import Admission, Page, Staff, utcnow
from bingan.core.staff import staff_ref
from bingan.core.storage import store_blob

from bingan_booking import pay, sandbox_pay, service
from bingan_booking.models import Booking, BookingAccount, BookingDocument
from bingan_booking.settings import BookingSettings

log = logging.getLogger("bingan.booking.demo")
PHONES = ["13800000101", "13800000102", "13800000103", "13800000104", "13800000105"]
# what becomes of each demo booking
PLAN = ["approved_courier", "pending", "rejected", "unpaid", "approved_pickup"]


def _photo(text: str) -> bytes:
    im = Image.new("RGB", (800, 600), (214, 224, 236))
    d = ImageDraw.Draw(im)
    d.ellipse((80, 80, 300, 330), fill=(170, 140, 120))
    d.rectangle((360, 260, 740, 500), fill=(240, 244, 250), outline=(60, 80, 120), width=4)
    d.text((380, 280), text, fill=(20, 20, 20))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def load(rt, admissions) -> int:
    """Add the demo bookings once (a second demo load adds none)."""
    conf = rt.settings(BookingSettings)
    with rt.sessions() as s:
        if s.scalar(select(func.count()).select_from(Booking)):
            return 0
        staff = [st for st in s.scalars(select(Staff).where(Staff.active.is_(True))
                                        .order_by(Staff.staff_no))
                 if any("booking.review" in (r.permissions or []) for r in st.roles)]
        reviewer = staff_ref(staff[0]) if staff else None
    discharged = [a for a in admissions if a.discharged_at is not None][:len(PLAN)]
    if not discharged or reviewer is None:
        return 0
    hospitals = service.hospitals(rt)
    act = audit.Actor(staff_no=reviewer.staff_no)
    made = 0
    base = utcnow() - dt.timedelta(days=len(discharged))
    for i, (ref, plan) in enumerate(zip(discharged, PLAN)):
        h = hospitals[i % len(hospitals)]
        delivery = "pickup" if plan in ("approved_pickup", "pending") else "courier"
        now = base + dt.timedelta(days=i, hours=9)
        with rt.sessions() as s, s.begin():
            adm = s.get(Admission, ref.id)
            assert adm is not None
            pages = s.scalar(select(func.count()).select_from(Page).where(
                Page.admission_id == adm.id, Page.replaced_by_id.is_(None))) or 24
            acc = BookingAccount(openid=f"osbxdemo{i:04d}{secrets.token_hex(6)}",
                                 phone=PHONES[i], phone_verified_at=now, created_at=now)
            s.add(acc)
            s.flush()
            total, courier = service.fee(h, pages, 1, delivery)
            bk = Booking(
                public_id=secrets.token_urlsafe(18), booking_no=f"new-{secrets.token_hex(8)}",
                hospital=h.code, account_id=acc.id, phone=PHONES[i], applicant_kind="self",
                applicant_name=adm.patient.name, patient_id=adm.patient_id,
                patient_name=adm.patient.name, mrn=adm.patient.mrn,
                admissions=[adm.admission_no], pages=pages, purpose=list(conf.purposes)[i % 3],
                copies=1, delivery=delivery,
                recipient=adm.patient.name if delivery == "courier" else None,
                recipient_phone=PHONES[i] if delivery == "courier" else None,
                address="浙江省杭州市上城区解放路 88 号 2 幢 301 室" if delivery == "courier" else None,
                fee_fen=total, courier_fee_fen=courier, status="unpaid", pay_status="unpaid",
                out_trade_no=f"new{secrets.token_hex(8)}", created_at=now)
            data = service.check_photo(conf, "holding_id", _photo("ID")).data
            sha = store_blob(s, rt.store, service._fernet(rt).encrypt(data),
                             "application/octet-stream")
            bk.documents.append(BookingDocument(kind="holding_id", media_type="image/jpeg",
                                                size=len(data), width=800, height=600,
                                                blob_sha256=sha, created_at=now))
            s.add(bk)
            s.flush()
            bk.booking_no = f"{conf.booking_prefix}{now.astimezone(rt.tz):%Y%m%d}{bk.id:06d}"
            bk.out_trade_no = f"{bk.booking_no}{secrets.token_hex(4).upper()}"
            audit.record(s, rt, "booking.create", actor=service.patient_actor(acc.openid),
                         mrn=bk.mrn, admission_no=adm.admission_no, ts=now,
                         detail={"booking": bk.booking_no, "hospital": h.code, "demo": True})
            pid, openid, booking_no = bk.public_id, acc.openid, bk.booking_no
            out_no = bk.out_trade_no
            acc_id = acc.id
        made += 1
        if plan == "unpaid":
            continue
        try:
            params = pay.order(rt, acc_id, pid, openid, "http://127.0.0.1:9/h5/pay/notify")
            assert params is not None
            paid = sandbox_pay.platform(rt).pay(params["package"][10:], deliver=False)
            assert paid is not None
            headers, body = paid
            pay.take_notification(rt, headers, body)
            if plan == "pending":
                continue
            if plan == "rejected":
                service.reject_and_refund(rt, booking_no, reviewer, act, "手持身份证照片模糊，请重新提交")
                # the sandbox's bank finishes the refund; the refund query (the job's) applies it
                sandbox_pay.platform(rt).settle_refund(f"R{out_no}"[:64], deliver=False)
                pay.sync_refunds(rt)
                continue
            with rt.sessions() as s, s.begin():
                bk = s.scalar(select(Booking).where(Booking.booking_no == booking_no))
                assert bk is not None
                service.approve(s, rt, bk, reviewer, act)
                if plan == "approved_courier":
                    service.ship(s, rt, bk, act, conf.courier.company,
                                 f"SF{secrets.randbelow(10**12):012d}",
                                 now=utcnow() - dt.timedelta(hours=16))
        except Exception:  # noqa: BLE001 - a demo booking that cannot go on stays as it is
            log.exception("demo booking %s stopped", booking_no)
    return made
