"""The back office of online bookings (staff, signed in).

  GET  /booking?phone=&status=&pay=       预约列表 filtered by phone and order state
  GET  /booking/b/{no}                    one booking: records, photos, payment, SMS, courier
  GET  /booking/b/{no}/photo/{id}         a photo (booking.identity; audited)
  POST /booking/b/{no}/approve            审核通过 -> copy request (hook) + SMS
  POST /booking/b/{no}/reject             审核不通过 (reason) -> refund + SMS
  POST /booking/b/{no}/ship               寄出 (tracking number) + SMS
  POST /booking/b/{no}/done               办结
  POST /booking/b/{no}/sync               补查支付结果 (order query)
  POST /booking/b/{no}/refund-sync        查询退款结果 (refund query)
  POST /booking/b/{no}/resend             重新发送短信 (within the phone's SMS limits)
  GET  /booking/sms                       短信记录
  GET  /booking/reports, /booking/reports.xlsx   日报/月报 and the Excel export
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy import select

from bingan.core import audit
from bingan.core.exporting import content_disposition
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor

from bingan_booking import courier, pay, reports, service
from bingan_booking.models import (
    APPLICANT_LABELS, DELIVERY_LABELS, DOCUMENT_LABELS, PAY_LABELS, REFUND_LABELS,
    STATUS_LABELS, Booking,
    BookingDocument, BookingSms,
)
from bingan_booking.service import ReviewError, yuan
from bingan_booking.settings import BookingSettings

REVIEW = {"permission": "booking.review"}


def _cn(rt, t: dt.datetime | None) -> str:
    return t.astimezone(rt.tz).strftime("%Y-%m-%d %H:%M") if t else ""


def _ctx(rt) -> dict[str, Any]:
    conf = rt.settings(BookingSettings)
    return {"status_labels": STATUS_LABELS, "pay_labels": PAY_LABELS,
            "delivery_labels": DELIVERY_LABELS, "applicant_labels": APPLICANT_LABELS,
            "doc_labels": DOCUMENT_LABELS, "refund_labels": REFUND_LABELS, "yuan": yuan, "cn": lambda t: _cn(rt, t),
            "purposes": conf.purposes,
            "hospital_names": {h.code: h.name for h in service.hospitals(rt)}}


def _row(b: Booking) -> dict[str, Any]:
    return {c: getattr(b, c) for c in (
        "booking_no", "hospital", "phone", "applicant_kind", "applicant_name", "patient_name",
        "mrn", "admissions", "pages", "copies", "purpose", "delivery", "recipient",
        "recipient_phone", "address", "fee_fen", "courier_fee_fen", "status", "pay_status",
        "paid_fen", "paid_at", "transaction_id", "refund_no", "refunded_at", "review_note",
        "reviewed_by", "reviewed_at", "copy_request_no", "courier_company", "tracking_no",
        "shipped_at", "done_at", "created_at", "agent_relation", "out_trade_no",
        "refund_status", "refund_checked_at", "photos_purged_at")}


@get("/booking", opt=REVIEW)
@in_thread
def booking_list(request: Request, phone: FromQuery[str | None] = None,
                 status: FromQuery[str | None] = None, pay: FromQuery[str | None] = None) -> Any:
    """预约列表 by phone number and order state."""
    rt = request.app.state.rt
    phone, status, pay_s = (phone or "").strip()[:16], (status or "").strip(), (pay or "").strip()
    if status and status not in STATUS_LABELS:
        status = ""
    if pay_s and pay_s not in PAY_LABELS:
        pay_s = ""
    with rt.sessions() as s:
        rows = [_row(b) for b in service.search(s, phone, status, pay_s)]
    return page(request, "booking/admin_list.html", title="预约列表", rows=rows, phone=phone,
                status=status, pay=pay_s, **_ctx(rt))


def _get(s, no: str) -> Booking:
    bk = s.scalar(select(Booking).where(Booking.booking_no == no[:32]))
    if bk is None:
        raise NotFoundException("预约不存在")
    return bk


@get("/booking/b/{no:str}", opt=REVIEW)
@in_thread
def booking_detail(request: Request, no: FromPath[str], msg: FromQuery[str | None] = None,
                   err: FromQuery[str | None] = None) -> Any:
    rt = request.app.state.rt
    conf = rt.settings(BookingSettings)
    staff = request.state.staff
    with rt.sessions() as s:
        bk = _get(s, no)
        row = _row(bk)
        docs = [{"id": d.id, "kind": d.kind, "w": d.width, "h": d.height} for d in bk.documents]
        smss = [{"at": _cn(rt, m.created_at), "kind": m.kind, "text": m.text, "ok": m.ok,
                 "error": m.error} for m in s.scalars(
            select(BookingSms).where(BookingSms.booking_id == bk.id).order_by(BookingSms.id))]
    track, track_err = None, None
    if row["tracking_no"]:
        try:
            track = courier.gateway(rt).track(row["courier_company"] or conf.courier.company,
                                              row["tracking_no"], row["recipient_phone"] or "")
        except courier.TrackingError as exc:
            track_err = str(exc)
    return page(request, "booking/admin_detail.html", title=f"预约 {row['booking_no']}", b=row,
                docs=docs, smss=smss, track=track, track_err=track_err, msg=msg, err=err,
                may_see_photos="booking.identity" in staff.permissions,
                sms_limits=(conf.sms.per_phone_seconds, conf.sms.per_phone_day),
                companies=courier.COMPANIES, default_company=conf.courier.company, **_ctx(rt))


@get("/booking/b/{no:str}/photo/{doc_id:int}", opt={"permission": "booking.identity"})
@in_thread
def booking_photo(request: Request, no: FromPath[str], doc_id: FromPath[int]) -> Response:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        bk = _get(s, no)
        doc = s.get(BookingDocument, doc_id)
        if doc is None or doc.booking_id != bk.id:
            raise NotFoundException("照片不存在")
        data = service.read_photo(rt, doc)
        audit.record(s, rt, "booking.identity_view", actor=actor(request), mrn=bk.mrn,
                     detail={"booking": bk.booking_no, "kind": doc.kind})
    return Response(data, media_type="image/jpeg",
                    headers={"Cache-Control": "no-store, private", "Pragma": "no-cache"})


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(form.get(k))[:500] for k in form.keys()}


def _back(no: str, msg: str = "", err: str = "") -> Redirect:
    from urllib.parse import urlencode

    q = urlencode({k: v for k, v in (("msg", msg), ("err", err)) if v})
    return Redirect(f"/booking/b/{no}" + (f"?{q}" if q else ""))


def _act(request: Request, no: str, fn) -> Redirect:
    rt = request.app.state.rt
    try:
        with rt.sessions() as s, s.begin():
            msg = fn(s, rt, _get(s, no))
        return _back(no, msg=msg or "已保存")
    except (ReviewError, pay.PayError) as exc:
        return _back(no, err=str(exc))


@post("/booking/b/{no:str}/approve", opt=REVIEW)
async def approve(request: Request, no: FromPath[str]) -> Redirect:
    import anyio

    await _form(request)
    staff, act = request.state.staff, actor(request)
    return await anyio.to_thread.run_sync(lambda: _act(
        request, no, lambda s, rt, bk: "审核通过；短信" + service.approve(s, rt, bk, staff, act)))


@post("/booking/b/{no:str}/reject", opt=REVIEW)
async def reject(request: Request, no: FromPath[str]) -> Redirect:
    import anyio

    f = await _form(request)
    staff, act = request.state.staff, actor(request)
    rt = request.app.state.rt

    def work() -> Redirect:
        try:
            msg = service.reject_and_refund(rt, no[:32], staff, act, f.get("reason", ""))
        except (ReviewError, pay.PayError) as exc:
            return _back(no, err=str(exc))
        return _back(no, msg="审核不通过；短信" + msg)

    return await anyio.to_thread.run_sync(work)


@post("/booking/b/{no:str}/ship", opt=REVIEW)
async def ship(request: Request, no: FromPath[str]) -> Redirect:
    import anyio

    f = await _form(request)
    act = actor(request)
    company = f.get("company", "")
    if company not in courier.COMPANIES:
        return _back(no, err="请选择快递公司")
    return await anyio.to_thread.run_sync(lambda: _act(
        request, no, lambda s, rt, bk: "已登记寄出；短信" + service.ship(
            s, rt, bk, act, company, f.get("tracking_no", ""))))


@post("/booking/b/{no:str}/done", opt=REVIEW)
async def done(request: Request, no: FromPath[str]) -> Redirect:
    import anyio

    await _form(request)
    act = actor(request)
    def finish(s, rt, bk) -> str:
        service.finish(s, rt, bk, act)
        return "已办结"

    return await anyio.to_thread.run_sync(lambda: _act(request, no, finish))


@post("/booking/b/{no:str}/sync", opt=REVIEW)
async def sync_pay(request: Request, no: FromPath[str]) -> Redirect:
    import anyio

    await _form(request)
    rt = request.app.state.rt

    def work() -> Redirect:
        with rt.sessions() as s:
            out_no = _get(s, no).out_trade_no
        try:
            res = pay.sync(rt, out_no)
        except pay.PayError as exc:
            return _back(no, err=str(exc))
        return _back(no, msg={"paid": "已确认支付", "already": "支付状态无变化"}.get(
            res, f"平台订单状态：{res}"))

    return await anyio.to_thread.run_sync(work)


@post("/booking/b/{no:str}/refund-sync", opt=REVIEW)
async def sync_refund(request: Request, no: FromPath[str]) -> Redirect:
    """查询退款结果: the refund query now, as the job does (one booking)."""
    import anyio

    await _form(request)
    rt = request.app.state.rt

    def work() -> Redirect:
        with rt.sessions() as s:
            bk = _get(s, no)
            if bk.pay_status != "refunding":
                return _back(no, err="该预约没有处理中的退款")
        try:
            res = pay.sync_refunds(rt, only=bk.id)
        except pay.PayError as exc:
            return _back(no, err=str(exc))
        if res.get("error"):
            return _back(no, err="微信支付暂时无法查询，稍后由系统自动再查")
        return _back(no, msg="退款仍在处理中" if res.get("processing") else "已更新退款结果")

    return await anyio.to_thread.run_sync(work)


@post("/booking/b/{no:str}/resend", opt=REVIEW)
async def resend_sms(request: Request, no: FromPath[str]) -> Redirect:
    """重新发送短信 (the notice of the booking's state), within the phone's limits."""
    import anyio

    await _form(request)
    act = actor(request)
    return await anyio.to_thread.run_sync(lambda: _act(
        request, no, lambda s, rt, bk: service.resend(s, rt, bk, act)))


@get("/booking/sms", opt=REVIEW)
@in_thread
def sms_log(request: Request, phone: FromQuery[str | None] = None) -> Any:
    rt = request.app.state.rt
    phone = (phone or "").strip()[:16]
    with rt.sessions() as s:
        q = select(BookingSms).order_by(BookingSms.id.desc()).limit(300)
        if phone:
            q = q.where(BookingSms.phone == phone)
        rows = [{"at": _cn(rt, m.created_at), "phone": m.phone, "kind": m.kind, "text": m.text,
                 "ok": m.ok, "error": m.error, "provider": m.provider} for m in s.scalars(q)]
    return page(request, "booking/admin_sms.html", title="短信记录", rows=rows, phone=phone)


@get("/booking/reports", opt={"permission": "booking.reports"})
@in_thread
def reports_page(request: Request, period: FromQuery[str | None] = None,
                 month: FromQuery[str | None] = None, year: FromQuery[str | None] = None) -> Any:
    rt = request.app.state.rt
    try:
        rep = reports.build(rt, period or "daily", month, year)
    except reports.ReportError as exc:
        return page(request, "booking/admin_reports.html", title="预约报表", rep=None,
                    error=str(exc), period=period or "daily", month=month or "",
                    year=year or "", status_code=400, **_ctx(rt))
    return page(request, "booking/admin_reports.html", title="预约报表", rep=rep, error=None,
                period=rep.period, month=rep.month, year=rep.year, **_ctx(rt))


@get("/booking/reports.xlsx", opt={"permission": "booking.reports"})
@in_thread
def reports_xlsx(request: Request, period: FromQuery[str | None] = None,
                 month: FromQuery[str | None] = None, year: FromQuery[str | None] = None
                 ) -> Response:
    rt = request.app.state.rt
    try:
        rep = reports.build(rt, period or "daily", month, year)
    except reports.ReportError as exc:
        return Response({"detail": str(exc)}, status_code=400)
    data = reports.to_xlsx(rt, rep)
    with rt.sessions() as s, s.begin():
        audit.record(s, rt, "booking.export", actor=actor(request),
                     detail={"period": rep.period, "range": rep.title})
    return Response(data, media_type="application/vnd.openxmlformats-officedocument."
                    "spreadsheetml.sheet",
                    headers={"Content-Disposition": content_disposition(f"{rep.title}.xlsx")})


ROUTES = [booking_list, booking_detail, booking_photo, approve, reject, ship, done, sync_pay,
          sync_refund, resend_sms, sms_log, reports_page, reports_xlsx]
