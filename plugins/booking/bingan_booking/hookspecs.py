"""The booking plugin's own hooks and the types passed through them.

Registered by booking (``PluginInfo.hookspecs``): they exist only when booking is enabled. The
providers (WeChat sign-in and Pay, SMS, courier) are chosen by name in the settings and come
from these hooks; booking registers its own (the real ones and the sandboxes) exactly as a
third party would, so an integrator adds another without patching the plugin. A plugin that
implements them without depending on booking marks its implementations
``@hookimpl(optionalhook=True)`` (copying does for ``booking_approved``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bingan.hooks import hookspec

if TYPE_CHECKING:  # pragma: no cover - typing only
    from sqlalchemy.orm import Session

    from bingan.hooks.types import Runtime

# --------------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingDocumentIn:
    """A photo of the booking in clear (decrypted for the receiving plugin only)."""

    kind: str       # holding_id, patient_id, relation, power_of_attorney
    label: str
    media_type: str
    data: bytes


@dataclass(frozen=True)
class ApprovedBooking:
    """A booking the record room approved, to become a copy request."""

    booking_no: str
    hospital: str
    mrn: str
    admission_nos: list[str]
    applicant_kind: str          # self / agent
    applicant_name: str
    phone: str
    purpose: str
    purpose_label: str
    copies: int
    fee_fen: int                 # paid online
    delivery: str                # courier / pickup
    reviewed_by: str             # staff number of the approver
    reviewed_by_name: str
    approved_at: dt.datetime
    documents: list[BookingDocumentIn] = field(default_factory=list)


@dataclass(frozen=True)
class SmsResult:
    ok: bool
    provider_ref: str = ""
    error: str = ""


class SmsGateway(Protocol):
    """Sends one templated SMS. ``params`` fill the provider's template."""

    name: str

    def send(self, phone: str, template: str, params: dict[str, str],
             text: str) -> SmsResult: ...


@dataclass(frozen=True)
class TrackEvent:
    at: str
    where: str
    text: str


@dataclass(frozen=True)
class Tracking:
    company: str
    number: str
    state: str           # the provider's state label in Chinese
    delivered: bool
    events: list[TrackEvent]


class CourierGateway(Protocol):
    name: str

    def track(self, company: str, number: str, phone: str = "") -> Tracking: ...


class PayGateway(Protocol):
    """WeChat Pay as the booking plugin uses it (see pay.py): JSAPI order, query, refund,
    and the verification of a callback (signature; the window and de-duplication are the
    plugin's own, in pay.py)."""

    name: str

    def jsapi_order(self, out_trade_no: str, total_fen: int, openid: str, description: str,
                    notify_url: str) -> str: ...

    def jsapi_params(self, prepay_id: str) -> dict[str, str]: ...

    def query(self, out_trade_no: str) -> dict[str, Any]: ...

    def refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int,
               reason: str) -> dict[str, Any]: ...

    def verify_callback(self, headers: dict[str, str], body: str) -> dict[str, Any] | None: ...


class OAuthGateway(Protocol):
    """WeChat web authorization (snsapi_base): the authorize URL and the code exchange."""

    name: str

    def authorize_url(self, redirect_uri: str, state: str) -> str: ...

    def openid(self, code: str) -> str: ...


# --------------------------------------------------------------------------------------------
# Hooks
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def booking_approved(session: Session, booking: ApprovedBooking, rt: Runtime) -> str | None:
    """Called in the approver's transaction (``session``) when the record room approves a
    paid booking; the copy counter turns it into a copy request and returns its number.
    *First result.* No answer: the booking stays approved and the counter registers it by
    hand (the back office says so)."""


@hookspec(firstresult=True)
def booking_sms_gateway(name: str, rt: Runtime) -> SmsGateway | None:
    """The SMS provider called ``name`` (settings ``sms.provider``: sandbox, aliyun, tencent
    ...), or None. *First result.*"""


@hookspec(firstresult=True)
def booking_pay_gateway(name: str, rt: Runtime) -> PayGateway | None:
    """The WeChat Pay provider called ``name`` (settings ``wechat.provider``), or None.
    *First result.*"""


@hookspec(firstresult=True)
def booking_oauth_gateway(name: str, rt: Runtime) -> OAuthGateway | None:
    """The WeChat web-authorization provider called ``name`` (settings ``wechat.provider``),
    or None. *First result.*"""


@hookspec(firstresult=True)
def booking_courier_gateway(name: str, rt: Runtime) -> CourierGateway | None:
    """The courier tracking provider called ``name`` (settings ``courier.provider``:
    sandbox, kuaidi100 ...), or None. *First result.*"""
