"""Bookings: find the patient's own records, price, check photos, create; the back office's
review (approve -> copy request through ``booking_approved``, reject -> refund), dispatch.

Nothing is written when a check fails: every input is checked (photos decoded and bounded,
records matched) before the first row is added.
"""

from __future__ import annotations

import datetime as dt
import io
import secrets
from dataclasses import dataclass, field

from cryptography.fernet import Fernet
from PIL import Image, ImageOps
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bingan.core import audit, identifiers
from bingan.core.models import Admission, Page, Patient, utcnow
from bingan.core.records import id_number_hash
from bingan.core.storage import store_blob

from bingan_booking import sms
from bingan_booking.hookspecs import ApprovedBooking, BookingDocumentIn
from bingan_booking.models import (
    DOCUMENT_LABELS, Booking, BookingDocument, BookingLookup,
)
from bingan_booking.settings import BookingSettings, Hospital

ID_NUMBER = r"\d{17}[\dXx]"
AGENT_DOCS = ("patient_id", "relation", "power_of_attorney")
FORMATS = {"JPEG", "PNG", "WEBP"}


class BookingRefused(ValueError):
    """The booking (or a step of it) cannot go on; the message is for the person."""


def hospitals(rt) -> list[Hospital]:
    return rt.settings(BookingSettings).hospital_list(rt.config.core.hospital_name)


def hospital(rt, code: str) -> Hospital:
    for h in hospitals(rt):
        if h.code == code:
            return h
    raise BookingRefused("请选择医院")


def yuan(fen: int | None) -> str:
    return f"{(fen or 0) / 100:.2f}"


def patient_actor(openid: str, ip: str | None = None) -> audit.Actor:
    # the audit names the WeChat user by a short digest of the openid, never the openid
    import hashlib

    return audit.Actor(staff_no="wx:" + hashlib.sha256(openid.encode()).hexdigest()[:10],
                       client_ip=ip)


# --------------------------------------------------------------------------------------------
# Finding the patient's own records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchIn:
    name: str = ""
    id_number: str = ""
    mrn: str = ""
    phone: str = ""


@dataclass(frozen=True)
class StayOut:
    admission_no: str
    discharged: str        # date, hospital clock
    department: str
    pages: int


def _match_patient(session: Session, rt, h: Hospital, m: MatchIn) -> Patient | None:
    import re

    name, idn = m.name.strip(), m.id_number.strip().upper()
    mrn, phone = m.mrn.strip(), m.phone.strip()
    tried = False
    if h.match_rule in ("name_id", "either") and name and idn:
        if not re.fullmatch(ID_NUMBER, idn):
            raise BookingRefused("身份证号格式不正确（18 位）")
        tried = True
        p = session.scalar(select(Patient).where(
            Patient.name == name, Patient.id_number_hash == id_number_hash(rt, idn),
            Patient.merged_into_id.is_(None)))
        if p is not None:
            return p
    if h.match_rule in ("mrn_phone", "either") and mrn and phone:
        tried = True
        cands = identifiers.mrn_candidates_rt(rt, mrn[:32])
        p = session.scalar(select(Patient).where(
            Patient.mrn.in_(cands), Patient.phone == phone[:32],
            Patient.merged_into_id.is_(None)))
        if p is not None:
            return p
    if not tried:
        from bingan_booking.settings import MATCH_RULES

        raise BookingRefused(f"请填写{MATCH_RULES[h.match_rule]}")
    return None


def find_stays(session: Session, rt, h: Hospital, account_id: int, m: MatchIn,
               actor: audit.Actor, now: dt.datetime | None = None
               ) -> tuple[Patient | None, list[StayOut]]:
    """The patient matching ``m`` by the hospital's rule and the discharged, digitized stays
    one can book; (None, []) when nothing matches, without saying which part did not.
    Counts against ``lookups_per_hour`` of the account."""
    now = now or utcnow()
    conf = rt.settings(BookingSettings)
    recent = session.scalar(select(func.count()).select_from(BookingLookup).where(
        BookingLookup.account_id == account_id,
        BookingLookup.at >= now - dt.timedelta(hours=1))) or 0
    if recent >= conf.lookups_per_hour:
        raise BookingRefused("查询次数过多，请一小时后再试")
    p = _match_patient(session, rt, h, m)
    stays: list[StayOut] = []
    if p is not None:
        pages: dict[int, int] = dict(session.execute(
            select(Page.admission_id, func.count()).join(Admission, Admission.id == Page.admission_id)
            .where(Admission.patient_id == p.id, Page.replaced_by_id.is_(None),
                   Page.image_sha256.is_not(None)).group_by(Page.admission_id)).all())
        q = select(Admission).where(Admission.patient_id == p.id,
                                    Admission.discharged_at.is_not(None),
                                    Admission.cancelled_at.is_(None))
        if h.admission_no_prefix:
            q = q.where(Admission.admission_no.startswith(h.admission_no_prefix))
        from bingan.core.staff import department_names

        depts = department_names(session)
        for a in session.scalars(q.order_by(Admission.discharged_at.desc())):
            if pages.get(a.id):
                assert a.discharged_at is not None
                stays.append(StayOut(a.admission_no, a.discharged_at.astimezone(rt.tz)
                                     .strftime("%Y-%m-%d"),
                                     depts.get(a.discharge_department or "",
                                               a.discharge_department or ""),
                                     int(pages[a.id])))
    session.add(BookingLookup(account_id=account_id, at=now, found=len(stays)))
    audit.record(session, rt, "booking.lookup", actor=actor,
                 outcome="ok" if p is not None else "denied", mrn=p.mrn if p else None,
                 detail={"hospital": h.code, "found": len(stays)})
    return p, stays


def fee(h: Hospital, pages: int, copies: int, delivery: str) -> tuple[int, int]:
    """(total fen, courier fen)."""
    courier = round(h.courier_fee * 100) if delivery == "courier" else 0
    return round((h.base_fee + h.per_page * pages * copies) * 100) + courier, courier


# --------------------------------------------------------------------------------------------
# Photos
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    kind: str
    data: bytes
    width: int
    height: int


def check_photo(settings: BookingSettings, kind: str, data: bytes) -> Photo:
    """Bound the upload before decoding, decode fully, refuse what is not a photo of a usable
    size; re-encode as JPEG (drops EXIF: location, device) with the orientation applied."""
    label = DOCUMENT_LABELS.get(kind, kind)
    if not data:
        raise BookingRefused(f"请上传{label}")
    if len(data) > settings.photo_max_bytes:
        raise BookingRefused(f"{label}过大（上限 {settings.photo_max_bytes // 1024 // 1024} MB）")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in FORMATS:
                raise BookingRefused(f"{label}只接受 JPEG 或 PNG 照片")
            w, h = img.size
            if w * h > settings.photo_max_pixels:
                raise BookingRefused(f"{label}像素过多（{w}×{h}）")
            if min(w, h) < settings.photo_min_side:
                raise BookingRefused(f"{label}太小（{w}×{h}），请上传清晰的照片"
                                     f"（短边至少 {settings.photo_min_side} 像素）")
            img.load()
            out = ImageOps.exif_transpose(img).convert("RGB")
    except BookingRefused:
        raise
    except Image.DecompressionBombError as exc:
        raise BookingRefused(f"{label}像素过多") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BookingRefused(f"{label}不是可识别的图片") from exc
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=88)
    return Photo(kind, buf.getvalue(), out.width, out.height)


def _fernet(rt) -> Fernet:
    return Fernet(rt.fernet_key())


def read_photo(rt, doc: BookingDocument) -> bytes:
    return _fernet(rt).decrypt(rt.store.get(doc.blob_sha256))


# --------------------------------------------------------------------------------------------
# Creating
# --------------------------------------------------------------------------------------------


@dataclass
class BookingIn:
    hospital: str
    match: MatchIn
    admission_nos: list[str]
    purpose: str
    copies: int
    applicant_kind: str
    applicant_name: str
    delivery: str
    photos: dict[str, bytes] = field(default_factory=dict)
    agent_relation: str = ""
    agent_id_number: str = ""
    recipient: str = ""
    recipient_phone: str = ""
    address: str = ""
    consent: bool = False


def create(session: Session, rt, account_id: int, phone: str, b: BookingIn,
           actor: audit.Actor, now: dt.datetime | None = None) -> Booking:
    """Check everything, then write the booking (unpaid) and its encrypted photos."""
    import re

    now = now or utcnow()
    conf = rt.settings(BookingSettings)
    h = hospital(rt, b.hospital)
    if not phone:
        raise BookingRefused("请先验证手机号")
    if b.purpose not in conf.purposes:
        raise BookingRefused("请选择复印用途")
    if not 1 <= b.copies <= h.max_copies:
        raise BookingRefused(f"份数须在 1 到 {h.max_copies} 之间")
    if b.applicant_kind not in ("self", "agent"):
        raise BookingRefused("请选择本人申请或代理申请")
    name = b.applicant_name.strip()
    if not 2 <= len(name) <= 32:
        raise BookingRefused("请填写申请人姓名")
    if b.delivery not in ("courier", "pickup"):
        raise BookingRefused("请选择快递或自取")
    if b.delivery == "courier":
        if not b.recipient.strip() or not b.address.strip() or len(b.address) > 200:
            raise BookingRefused("请填写收件人与详细地址（不超过 200 字）")
        sms.check_phone(b.recipient_phone)
    if not b.consent:
        raise BookingRefused("请阅读并同意《个人信息处理说明》（采集身份证照片用于核验申请人身份）")
    if b.applicant_kind == "agent":
        if not b.agent_relation.strip():
            raise BookingRefused("请填写代理人与患者的关系")
        if not re.fullmatch(ID_NUMBER, b.agent_id_number.strip()):
            raise BookingRefused("请填写代理人 18 位身份证号")
    need = ["holding_id", *(AGENT_DOCS if b.applicant_kind == "agent" else ())]
    extra = [k for k in b.photos if k not in need]
    if extra:
        raise BookingRefused("上传内容有误")
    photos = [check_photo(conf, k, b.photos.get(k, b"")) for k in need]
    if not b.admission_nos or len(b.admission_nos) > 20:
        raise BookingRefused("请勾选要复印的住院记录")
    patient, stays = find_stays(session, rt, h, account_id, b.match, actor, now)
    by_no = {s.admission_no: s for s in stays}
    if patient is None or any(n not in by_no for n in b.admission_nos):
        raise BookingRefused("未找到可预约的住院记录，请核对填写的信息")
    pages = sum(by_no[n].pages for n in set(b.admission_nos))
    total, courier = fee(h, pages, b.copies, b.delivery)
    bk = Booking(
        public_id=secrets.token_urlsafe(18), booking_no=f"new-{secrets.token_hex(8)}",
        hospital=h.code, account_id=account_id, phone=phone, applicant_kind=b.applicant_kind,
        applicant_name=name, agent_relation=b.agent_relation.strip()[:32] or None,
        agent_id_enc=(_fernet(rt).encrypt(b.agent_id_number.strip().upper().encode())
                      if b.applicant_kind == "agent" else None),
        patient_id=patient.id, patient_name=patient.name, mrn=patient.mrn,
        admissions=list(dict.fromkeys(b.admission_nos)), pages=pages, purpose=b.purpose,
        copies=b.copies, delivery=b.delivery,
        recipient=b.recipient.strip()[:64] or None if b.delivery == "courier" else None,
        recipient_phone=b.recipient_phone.strip() if b.delivery == "courier" else None,
        address=b.address.strip()[:256] if b.delivery == "courier" else None,
        fee_fen=total, courier_fee_fen=courier, status="unpaid", pay_status="unpaid",
        out_trade_no=f"new{secrets.token_hex(8)}", created_at=now)
    for ph in photos:
        sha = store_blob(session, rt.store, _fernet(rt).encrypt(ph.data),
                         "application/octet-stream")
        bk.documents.append(BookingDocument(kind=ph.kind, media_type="image/jpeg",
                                            size=len(ph.data), width=ph.width,
                                            height=ph.height, blob_sha256=sha, created_at=now))
    session.add(bk)
    session.flush()
    bk.booking_no = f"{conf.booking_prefix}{now.astimezone(rt.tz):%Y%m%d}{bk.id:06d}"
    # the merchant order number: the booking number and a random tail (not guessable)
    bk.out_trade_no = f"{bk.booking_no}{secrets.token_hex(4).upper()}"
    session.flush()
    audit.record(session, rt, "booking.create", actor=actor, mrn=patient.mrn,
                 admission_no=bk.admissions[0], ts=now,
                 detail={"booking": bk.booking_no, "hospital": h.code,
                         "admissions": bk.admissions, "fee": yuan(total),
                         "applicant": b.applicant_kind, "delivery": b.delivery})
    return bk


def my_bookings(session: Session, account_id: int) -> list[Booking]:
    return list(session.scalars(select(Booking).where(Booking.account_id == account_id)
                                .order_by(Booking.created_at.desc(), Booking.id.desc())))


def my_booking(session: Session, account_id: int, public_id: str) -> Booking | None:
    """A booking of this account only (another account's id answers like a missing one)."""
    if not public_id or len(public_id) > 40:
        return None
    return session.scalar(select(Booking).where(Booking.public_id == public_id,
                                                Booking.account_id == account_id))


# --------------------------------------------------------------------------------------------
# Back office
# --------------------------------------------------------------------------------------------


class ReviewError(ValueError):
    """A review step that cannot be taken now (wrong state, no reason ...)."""


def _notify(session: Session, rt, bk: Booking, kind: str, params: dict[str, str],
            text: str) -> str:
    """Text the applicant; a refused or failed SMS does not undo the review (the back
    office shows the log)."""
    try:
        row = sms.send(session, rt, bk.phone, kind, params, text, booking_id=bk.id)
        return "已发送" if row.ok else f"发送失败：{row.error}"
    except sms.SmsRefused as exc:
        return f"未发送：{exc}"


def approve(session: Session, rt, bk: Booking, staff, act: audit.Actor,
            now: dt.datetime | None = None) -> str:
    """Approve a paid booking: the copy request (hook), the SMS with fee and address.
    Returns what happened to the SMS."""
    now = now or utcnow()
    if bk.status != "pending" or bk.pay_status != "paid":
        raise ReviewError(f"预约 {bk.booking_no} 不在待审核状态，不能审核")
    conf = rt.settings(BookingSettings)
    hospital(rt, bk.hospital)  # still configured (its texts go into the SMS)
    bk.status, bk.reviewed_by, bk.reviewed_at = "approved", staff.staff_no, now
    docs = [BookingDocumentIn(d.kind, DOCUMENT_LABELS.get(d.kind, d.kind), d.media_type,
                              read_photo(rt, d)) for d in bk.documents]
    approved = ApprovedBooking(
        booking_no=bk.booking_no, hospital=bk.hospital, mrn=bk.mrn,
        admission_nos=list(bk.admissions), applicant_kind=bk.applicant_kind,
        applicant_name=bk.applicant_name, phone=bk.phone, purpose=bk.purpose,
        purpose_label=conf.purposes.get(bk.purpose, bk.purpose), copies=bk.copies,
        fee_fen=bk.paid_fen or bk.fee_fen, delivery=bk.delivery, reviewed_by=staff.staff_no,
        reviewed_by_name=staff.name, approved_at=now, documents=docs)
    try:
        bk.copy_request_no = rt.pm.hook.booking_approved(session=session, rt=rt,
                                                         booking=approved)
    except Exception as exc:  # noqa: BLE001 - the caller rolls back: nothing is approved
        raise ReviewError(f"复印申请未能登记，预约保持待审核：{exc}") from exc
    audit.record(session, rt, "booking.approve", actor=act, mrn=bk.mrn, ts=now,
                 detail={"booking": bk.booking_no, "copy_request": bk.copy_request_no})
    return _notify(session, rt, bk, "approved", *message(rt, bk, "approved"))


def message(rt, bk: Booking, kind: str) -> tuple[dict[str, str], str]:
    """The template parameters and the text of the notice ``kind`` (approved, rejected,
    shipped) of the booking as it stands."""
    h = hospital(rt, bk.hospital)
    if kind == "approved":
        where = ("复印件将快递至您填写的地址" if bk.delivery == "courier"
                 else f"请于{h.pickup_hours}到{h.name}{h.pickup_address}领取")
        return ({"no": bk.booking_no, "fee": yuan(bk.paid_fen),
                 "address": f"{h.name}{h.pickup_address}" if bk.delivery == "pickup"
                 else "快递到家"},
                f"您的病历复印预约 {bk.booking_no} 已审核通过，费用 {yuan(bk.paid_fen)} 元（已支付），"
                f"{where}。")
    if kind == "rejected":
        reason = bk.review_note or ""
        note = f"已支付的 {yuan(bk.paid_fen)} 元将原路退回。" if bk.refund_no else ""
        return ({"no": bk.booking_no, "reason": reason[:20]},
                f"您的病历复印预约 {bk.booking_no} 未通过审核，原因：{reason[:60]}。{note}")
    if kind == "shipped":
        return ({"no": bk.booking_no, "tracking": bk.tracking_no or ""},
                f"您的病历复印件（预约 {bk.booking_no}）已寄出，快递单号 {bk.tracking_no}，"
                "可在“我的申请”查看物流。")
    raise ValueError(kind)


def reject(session: Session, rt, bk: Booking, staff, act: audit.Actor, reason: str,
           refund: dict | None = None, now: dt.datetime | None = None) -> str:
    """Reject with a reason; ``refund`` is the platform's answer to the refund the caller
    asked for beforehand (pay.request_refund, outside the transaction) when it was paid."""
    from bingan_booking import pay

    now = now or utcnow()
    reason = (reason or "").strip()
    if len(reason) < 2:
        raise ReviewError("请填写不通过的原因")
    if bk.status != "pending":
        raise ReviewError(f"预约 {bk.booking_no} 不在待审核状态，不能审核")
    if bk.pay_status == "paid" and refund is None:
        raise ReviewError("已支付的预约须先退款")
    bk.status, bk.reviewed_by, bk.reviewed_at = "rejected", staff.staff_no, now
    bk.review_note = reason[:500]
    if refund is not None:
        pay.record_refund(session, rt, bk, refund, act, now)
    audit.record(session, rt, "booking.reject", actor=act, mrn=bk.mrn, ts=now,
                 detail={"booking": bk.booking_no, "reason": bk.review_note})
    return _notify(session, rt, bk, "rejected", *message(rt, bk, "rejected"))


def reject_and_refund(rt, booking_no: str, staff, act: audit.Actor, reason: str) -> str:
    """The back office's rejection: check, refund at the platform (no transaction held while
    asking), then record the rejection; a refund the platform refuses leaves the booking as
    it was (PayError)."""
    from bingan_booking import pay

    if len((reason or "").strip()) < 2:
        raise ReviewError("请填写不通过的原因")
    with rt.sessions() as s:
        bk = s.scalar(select(Booking).where(Booking.booking_no == booking_no))
        if bk is None or bk.status != "pending":
            raise ReviewError(f"预约 {booking_no} 不在待审核状态，不能审核")
        s.expunge(bk)
    res = pay.request_refund(rt, bk, reason) if bk.pay_status == "paid" else None
    with rt.sessions() as s, s.begin():
        bk = s.scalar(select(Booking).where(Booking.booking_no == booking_no).with_for_update())
        assert bk is not None
        return reject(s, rt, bk, staff, act, reason, res)


def ship(session: Session, rt, bk: Booking, act: audit.Actor, company: str,
         number: str, now: dt.datetime | None = None) -> str:
    import re

    now = now or utcnow()
    if bk.status != "approved" or bk.delivery != "courier":
        raise ReviewError("只有审核通过、选择快递的预约可以登记寄出")
    number = (number or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9]{6,32}", number):
        raise ReviewError("请填写正确的快递单号")
    bk.status, bk.courier_company, bk.tracking_no, bk.shipped_at = (
        "shipped", company, number, now)
    audit.record(session, rt, "booking.ship", actor=act, mrn=bk.mrn, ts=now,
                 detail={"booking": bk.booking_no, "company": company, "number": number})
    return _notify(session, rt, bk, "shipped", *message(rt, bk, "shipped"))


RESEND = {"approved": "approved", "done": "approved", "rejected": "rejected",
          "shipped": "shipped"}


def resend(session: Session, rt, bk: Booking, act: audit.Actor,
           now: dt.datetime | None = None) -> str:
    """重新发送短信: the notice of the booking's state again, within both limits of the phone
    (one message per ``per_phone_seconds``, ``per_phone_day`` a day): a limit answers with
    its reason (ReviewError) and nothing is sent."""
    now = now or utcnow()
    kind = RESEND.get(bk.status)
    if bk.status == "done" and bk.tracking_no:
        kind = "shipped"
    if kind is None:
        raise ReviewError("该预约尚未审核，没有可重新发送的短信")
    params, text = message(rt, bk, kind)
    try:
        row = sms.send(session, rt, bk.phone, kind, params, text, booking_id=bk.id, now=now,
                       interval=True)
    except sms.SmsRefused as exc:
        raise ReviewError(f"未重新发送：{exc}") from exc
    audit.record(session, rt, "booking.sms_resend", actor=act, mrn=bk.mrn, ts=now,
                 outcome="ok" if row.ok else "failed",
                 detail={"booking": bk.booking_no, "kind": kind})
    if not row.ok:
        raise ReviewError(f"短信发送失败：{row.error}")
    return "短信已重新发送"


def finish(session: Session, rt, bk: Booking, act: audit.Actor,
           now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    if bk.status not in ("approved", "shipped"):
        raise ReviewError("只有审核通过或已寄出的预约可以办结")
    bk.status, bk.done_at = "done", now
    audit.record(session, rt, "booking.done", actor=act, mrn=bk.mrn, ts=now,
                 detail={"booking": bk.booking_no})


def search(session: Session, phone: str = "", status: str = "", pay_status: str = "",
           limit: int = 200) -> list[Booking]:
    q = select(Booking)
    if phone:
        q = q.where(Booking.phone.contains(phone.strip()[:16], autoescape=True))
    if status:
        q = q.where(Booking.status == status)
    if pay_status:
        q = q.where(Booking.pay_status == pay_status)
    return list(session.scalars(q.order_by(Booking.created_at.desc(), Booking.id.desc())
                                .limit(limit)))


# --------------------------------------------------------------------------------------------
# Retention of the photos
# --------------------------------------------------------------------------------------------


def purge_due(session: Session, rt, now: dt.datetime | None = None) -> list[str]:
    """Forget the photos of bookings finished (done), rejected or closed more than
    ``photo_retention_days`` ago, in the caller's transaction: the document rows go, the
    booking keeps ``photos_purged_at``; each booking is audited. Returns the blob keys;
    ``purge_photos`` hands them to core's purge_blobs, which drops their rows and files."""
    from sqlalchemy import and_, or_

    now = now or utcnow()
    cut = now - dt.timedelta(days=rt.settings(BookingSettings).photo_retention_days)
    due = session.scalars(select(Booking).where(
        Booking.photos_purged_at.is_(None),
        or_(and_(Booking.status == "done", Booking.done_at <= cut),
            and_(Booking.status == "rejected", Booking.reviewed_at <= cut),
            and_(Booking.status == "closed", Booking.created_at <= cut)))
        .order_by(Booking.id).with_for_update()).all()
    doomed: list[str] = []
    for bk in due:
        kinds = [d.kind for d in bk.documents]
        doomed += [d.blob_sha256 for d in bk.documents]
        bk.documents.clear()
        bk.photos_purged_at = now
        audit.record(session, rt, "booking.photos_purge", actor=audit.Actor(staff_no="system"),
                     mrn=bk.mrn, ts=now, detail={"booking": bk.booking_no, "status": bk.status,
                                                 "documents": kinds})
    # (Fernet ciphertexts carry a random IV: no other row shares the blob)
    return doomed


def purge_photos(rt, now: dt.datetime | None = None) -> int:
    """The purge job: forget the photos (blob rows included) in one transaction, then delete
    the files (core's storage.purge_blobs). Returns the files."""
    from bingan.core.storage import purge_blobs

    return purge_blobs(rt.sessions, rt.store, lambda s: purge_due(s, rt, now))
