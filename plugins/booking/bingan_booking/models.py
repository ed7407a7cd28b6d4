"""Tables of the booking plugin.

A WeChat user (``BookingAccount``, by openid) signs in with a random cookie (``BookingSession``,
only its hash stored), verifies a phone by SMS code, and books copies (``Booking``) with
encrypted photos (``BookingDocument``). Payment notifications are kept by their id
(``BookingPayNotice``: the de-duplication). Every SMS is logged (``BookingSms``: the rate
limits count it). ``SandboxOrder`` is the sandbox payment platform's own state.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bingan.core.models import Base, UTCDateTime, utcnow

STATUS_LABELS = {
    "unpaid": "待支付", "pending": "待审核", "approved": "审核通过", "rejected": "审核未通过",
    "shipped": "已寄出", "ready": "待自取", "done": "已完成", "closed": "已关闭",
}
PAY_LABELS = {
    "unpaid": "未支付", "paid": "已支付", "refunding": "退款中", "refunded": "已退款",
    "refund_abnormal": "退款异常", "refund_closed": "退款关闭", "closed": "已关闭",
}
# the refund's state at WeChat Pay (PROCESSING is re-queried until one of the others)
REFUND_LABELS = {
    "PROCESSING": "退款处理中", "SUCCESS": "退款成功",
    "ABNORMAL": "退款异常（如银行卡作废，需人工处理）", "CLOSED": "退款关闭",
}
DELIVERY_LABELS = {"courier": "快递", "pickup": "自取"}
APPLICANT_LABELS = {"self": "本人申请", "agent": "代理申请"}
DOCUMENT_LABELS = {
    "holding_id": "申请人手持身份证照片", "patient_id": "患者身份证", "relation": "代理关系证明",
    "power_of_attorney": "授权委托书",
}


class BookingAccount(Base):
    """A WeChat user of the official account (openid), with the phone verified by SMS."""

    __tablename__ = "booking_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    phone: Mapped[str | None] = mapped_column(String(16), index=True)
    phone_verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BookingSession(Base):
    __tablename__ = "booking_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("booking_account.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class BookingSmsCode(Base):
    """A verification code sent to a phone (its keyed hash only)."""

    __tablename__ = "booking_sms_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("booking_account.id"), index=True)
    phone: Mapped[str] = mapped_column(String(16), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class BookingLookup(Base):
    """A record lookup by a WeChat user (the hourly limit counts them; nothing identifying)."""

    __tablename__ = "booking_lookup"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("booking_account.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    found: Mapped[int] = mapped_column(Integer, default=0)


class Booking(Base):
    """One online copy booking. ``public_id`` (random) is the only id a patient's browser
    sees; ``booking_no`` is the number staff and SMS use."""

    __tablename__ = "booking"
    __table_args__ = (Index("ix_booking_created_at", "created_at"),
                      Index("ix_booking_status", "status"),
                      Index("ix_booking_phone", "phone"))

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    booking_no: Mapped[str] = mapped_column(String(32), unique=True)
    hospital: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int] = mapped_column(ForeignKey("booking_account.id"), index=True)
    phone: Mapped[str] = mapped_column(String(16))
    applicant_kind: Mapped[str] = mapped_column(String(8))  # self / agent
    applicant_name: Mapped[str] = mapped_column(String(64))
    agent_relation: Mapped[str | None] = mapped_column(String(32))
    agent_id_enc: Mapped[bytes | None] = mapped_column(LargeBinary)  # the agent's ID number
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    patient_name: Mapped[str] = mapped_column(String(64))
    mrn: Mapped[str] = mapped_column(String(32))
    admissions: Mapped[list[str]] = mapped_column(JSON, default=list)  # admission numbers
    pages: Mapped[int] = mapped_column(Integer, default=0)  # of one copy
    purpose: Mapped[str] = mapped_column(String(32))
    copies: Mapped[int] = mapped_column(Integer, default=1)
    delivery: Mapped[str] = mapped_column(String(8))  # courier / pickup
    recipient: Mapped[str | None] = mapped_column(String(64))
    recipient_phone: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(256))
    fee_fen: Mapped[int] = mapped_column(Integer)  # what the patient pays, courier included
    courier_fee_fen: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="unpaid")
    pay_status: Mapped[str] = mapped_column(String(16), default="unpaid")
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    prepay_id: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    paid_fen: Mapped[int | None] = mapped_column(Integer)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    refund_no: Mapped[str | None] = mapped_column(String(64))
    refunded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    refund_status: Mapped[str | None] = mapped_column(String(16))  # REFUND_LABELS
    refund_id: Mapped[str | None] = mapped_column(String(64))      # the platform's
    refund_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(32))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    copy_request_no: Mapped[str | None] = mapped_column(String(32))
    courier_company: Mapped[str | None] = mapped_column(String(32))
    tracking_no: Mapped[str | None] = mapped_column(String(32))
    shipped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # the photos were deleted after the retention (settings photo_retention_days)
    photos_purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    documents: Mapped[list["BookingDocument"]] = relationship(
        back_populates="booking", cascade="all, delete-orphan", order_by="BookingDocument.id")


class BookingDocument(Base):
    """A photo of the booking (applicant holding the ID card, the agent's papers), stored
    encrypted (the blob store holds only ciphertext)."""

    __tablename__ = "booking_document"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id", ondelete="CASCADE"),
                                            index=True)
    kind: Mapped[str] = mapped_column(String(32))
    media_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    blob_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    booking: Mapped[Booking] = relationship(back_populates="documents")


class BookingPayNotice(Base):
    """A payment notification taken (unique by its id: a replay is recognised)."""

    __tablename__ = "booking_pay_notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[str] = mapped_column(String(64), unique=True)
    out_trade_no: Mapped[str] = mapped_column(String(32), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BookingSms(Base):
    """Every SMS sent or refused (verification codes are not kept in clear)."""

    __tablename__ = "booking_sms"
    __table_args__ = (Index("ix_booking_sms_phone_at", "phone", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    ok: Mapped[bool] = mapped_column(default=False)
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SandboxOrder(Base):
    """The sandbox WeChat Pay platform's orders (what the real platform keeps on its side)."""

    __tablename__ = "booking_sandbox_order"

    id: Mapped[int] = mapped_column(primary_key=True)
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    prepay_id: Mapped[str] = mapped_column(String(64), unique=True)
    appid: Mapped[str] = mapped_column(String(32))
    mchid: Mapped[str] = mapped_column(String(32))
    openid: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(128))
    total: Mapped[int] = mapped_column(Integer)
    notify_url: Mapped[str] = mapped_column(String(512))
    trade_state: Mapped[str] = mapped_column(String(16), default="NOTPAY")
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    refunds: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
