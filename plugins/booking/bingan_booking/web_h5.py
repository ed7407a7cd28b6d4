"""The patients' H5 site, opened from the hospital's WeChat official account (all under /h5).

  GET  /h5                       首页: hospital, the four menus (预约 预约问题 预约帮助 我的申请)
  GET  /h5/signin                start WeChat web authorization (snsapi_base)
  GET  /h5/oauth                 authorization callback: code -> openid -> session cookie
  GET  /h5/phone, POST /h5/phone/code, POST /h5/phone     verify the phone by SMS code
  GET  /h5/book, POST /h5/book/lookup, POST /h5/book       预约: find own records, book
  GET  /h5/mine, GET /h5/b/{id}  我的申请 and one booking (pay state, review, courier)
  GET  /h5/b/{id}/pay, POST /h5/b/{id}/check               WeChat Pay (JSAPI), query fallback
  GET  /h5/faq, GET /h5/help     预约问题, 预约帮助 (the hospital's texts)
  POST /h5/pay/notify            WeChat Pay notifications (signature, window, de-duplication)
  GET  /h5/sandbox/...           the sandbox's WeChat consent, cashier and phone (sandbox only)

No staff session is involved: the patient's own cookie (patients.COOKIE) is the identity and
every booking read is scoped to it. Each response carries a strict CSP (no inline script,
no eval, nothing from elsewhere); POSTs are rate-limited per client address and carry the
CSRF token (the payment callback, signed by the platform, is the one exception).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import deque
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio
from litestar import MediaType, Request, Response, Router, get, post
from litestar.datastructures import Cookie, UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from markupsafe import Markup

from bingan_booking import courier, pay, patients, service, sms
from bingan_booking.models import (
    APPLICANT_LABELS, DELIVERY_LABELS, DOCUMENT_LABELS, PAY_LABELS, STATUS_LABELS,
)
from bingan_booking.service import BookingIn, BookingRefused, MatchIn, yuan
from bingan_booking.settings import MATCH_RULES, BookingSettings

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "object-src 'none'")
MAX_FIELD = 500


# --------------------------------------------------------------------------------------------
# Plumbing: rate limit, CSP, the patient
# --------------------------------------------------------------------------------------------


class _Window:
    """Requests per client address in the last minute (in this process)."""

    def __init__(self) -> None:
        self.hits: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def allow(self, key: str, limit: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self.lock:
            q = self.hits.setdefault(key, deque())
            while q and q[0] < now - 60:
                q.popleft()
            if len(q) >= limit:
                return False
            q.append(now)
            if len(self.hits) > 50_000:  # forget idle addresses
                for k in [k for k, v in self.hits.items() if not v or v[-1] < now - 60]:
                    del self.hits[k]
            return True


def _window(request: Request) -> _Window:
    """The app's window (one per app, so two apps in one process count apart)."""
    state = request.app.state
    w = state.get("booking_window")
    if w is None:
        w = state["booking_window"] = _Window()
    return w


def _before(request: Request) -> Response | None:
    if request.method == "POST" and not request.url.path.endswith("/pay/notify"):
        limit = _rt(request).settings(BookingSettings).posts_per_minute
        if not _window(request).allow(str(request.state.get("client_ip") or "?"), limit):
            return _h5(request, "booking/h5_message.html", status_code=429, title="操作太频繁",
                       message="操作太频繁，请稍后再试。")
    return None


def _after(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    # browsers take HSTS only over HTTPS, where the site is served; over HTTP it is ignored
    response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


def _rt(request: Request):
    return request.app.state.rt


class CsrfRefused(Exception):
    """A form without this session's token."""


def csrf_token(request: Request) -> str:
    """The form token of this patient session (an HMAC of its cookie): the site keeps its
    own synchroniser token instead of the double-submit cookie, so every cookie it sets is
    HttpOnly and a token never outlives or leaves its session."""
    session = request.cookies.get(patients.COOKIE) or ""
    if not session:
        return ""
    return hmac.new(_rt(request).secret_key, b"booking-csrf:" + session.encode(),
                    hashlib.sha256).hexdigest()[:40]


def _csrf_refused(request: Request, exc: Exception) -> Response:
    return _h5(request, "booking/h5_message.html", status_code=403, title="页面已过期",
               message="页面已过期或来自其他会话，请返回后重试。", retry="/h5")


def _h5(request: Request, template: str, *, status_code: int = 200, **ctx: Any) -> Template:
    rt = _rt(request)
    tok = csrf_token(request)
    field = Markup(f'<input type="hidden" name="_csrf_token" value="{tok}">') if tok else ""
    return Template(template_name=template, status_code=status_code, media_type=MediaType.HTML,
                    context={"hospitals": service.hospitals(rt), "path": request.url.path,
                             "csrf_field": field,
                             "yuan": yuan, "status_labels": STATUS_LABELS,
                             "pay_labels": PAY_LABELS, "delivery_labels": DELIVERY_LABELS,
                             "applicant_labels": APPLICANT_LABELS, **ctx})


def _patient(request: Request) -> patients.Patient | None:
    rt = _rt(request)
    with rt.sessions() as s, s.begin():
        return patients.load(s, rt, request.cookies.get(patients.COOKIE))


def _signin(request: Request) -> Redirect:
    nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect("/h5/signin?" + urlencode({"next": nxt}))


def _base_url(request: Request) -> str:
    conf = _rt(request).settings(BookingSettings)
    return conf.public_url.rstrip("/") or str(request.base_url).rstrip("/")


def _secure(request: Request) -> bool:
    from bingan.core.web.security import cookie_secure

    return cookie_secure(_rt(request), request.url.scheme)


def _actor(request: Request, p: patients.Patient):
    return service.patient_actor(p.openid, request.state.get("client_ip"))


def _hospital_code(request: Request, h: str | None) -> str:
    rt = _rt(request)
    codes = [x.code for x in service.hospitals(rt)]
    return h if h in codes else codes[0]


# --------------------------------------------------------------------------------------------
# Sign-in
# --------------------------------------------------------------------------------------------


@get("/", opt={"public": True})
async def home(request: Request, h: FromQuery[str | None] = None) -> Any:
    """首页: the hospital and the four menus."""
    p = await anyio.to_thread.run_sync(_patient, request)
    if p is None:
        return _signin(request)
    code = _hospital_code(request, h)
    hosp = service.hospital(_rt(request), code)
    return _h5(request, "booking/h5_home.html", title="病历复印预约", h=hosp, patient=p)


@get("/signin", opt={"public": True})
async def signin(request: Request, next: FromQuery[str | None] = None) -> Any:
    rt = _rt(request)
    state, cookie = patients.new_state(rt, next or "/h5")
    gw = patients.oauth_gateway(rt)
    url = gw.authorize_url(_base_url(request) + "/h5/oauth", state)
    return Redirect(url, cookies=[Cookie(key=patients.STATE_COOKIE, value=cookie, max_age=600,
                                         httponly=True, samesite="lax", path="/h5",
                                         secure=_secure(request))])


@get("/oauth", opt={"public": True})
async def oauth_callback(request: Request, code: FromQuery[str | None] = None,
                         oauth_state: Annotated[str | None, QueryParameter(name="state")] = None
                         ) -> Any:
    rt = _rt(request)

    def work() -> tuple[str, str]:
        nxt = patients.check_state(rt, (oauth_state or "")[:64],
                                   request.cookies.get(patients.STATE_COOKIE))
        if not code or len(code) > 512:
            raise patients.SignInError("未获得微信授权")
        openid = patients.oauth_gateway(rt).openid(code)
        with rt.sessions() as s, s.begin():
            return nxt, patients.open_session(s, openid)

    try:
        nxt, token = await anyio.to_thread.run_sync(work)
    except patients.SignInError as exc:
        return _h5(request, "booking/h5_message.html", status_code=400, title="授权失败",
                   message=str(exc), retry="/h5")
    resp = Redirect(nxt)
    resp.set_cookie(patients.COOKIE, token, httponly=True, samesite="lax", path="/",
                    secure=_secure(request), max_age=12 * 3600)
    # spent (cleared with the same flags it was set with)
    resp.set_cookie(patients.STATE_COOKIE, "", max_age=0, httponly=True, samesite="lax",
                    path="/h5", secure=_secure(request))
    return resp


@get("/sandbox/authorize", opt={"public": True})
async def sandbox_authorize(request: Request, redirect_uri: FromQuery[str] = "",
                            oauth_state: Annotated[str, QueryParameter(name="state")] = "") -> Any:
    """The sandbox official account's consent step (WeChat's own page in production)."""
    rt = _rt(request)
    gw = patients.oauth_gateway(rt)
    if not isinstance(gw, patients.SandboxOAuth):
        raise NotFoundException()
    if not redirect_uri.startswith(_base_url(request) + "/h5/oauth"):
        return _h5(request, "booking/h5_message.html", status_code=400, title="授权失败",
                   message="回调地址不属于本站")
    device = request.cookies.get("bingan_booking_sandbox_device") or \
        __import__("secrets").token_urlsafe(16)
    code = gw.issue_code(device)
    resp = Redirect(redirect_uri + "?" + urlencode({"code": code, "state": oauth_state[:64]}))
    resp.set_cookie("bingan_booking_sandbox_device", device, httponly=True, samesite="lax",
                    path="/h5", max_age=365 * 86400, secure=_secure(request))
    return resp


@get("/signout", opt={"public": True})
async def signout(request: Request) -> Any:
    rt = _rt(request)

    def work() -> None:
        with rt.sessions() as s, s.begin():
            patients.close_session(s, request.cookies.get(patients.COOKIE))

    await anyio.to_thread.run_sync(work)
    resp = _h5(request, "booking/h5_message.html", title="已退出", message="您已退出。",
               retry="/h5")
    return resp


# --------------------------------------------------------------------------------------------
# Phone
# --------------------------------------------------------------------------------------------


@get("/phone", opt={"public": True})
async def phone_page(request: Request, next: FromQuery[str | None] = None) -> Any:
    p = await anyio.to_thread.run_sync(_patient, request)
    if p is None:
        return _signin(request)
    return _h5(request, "booking/h5_phone.html", title="验证手机号", patient=p, phone="",
               error=None, sent=False, next=_safe_next(next), sandbox=_sandbox_sms(request))


def _safe_next(nxt: str | None) -> str:
    return nxt if nxt and nxt.startswith("/h5") and "//" not in nxt else "/h5/book"


def _sandbox_sms(request: Request) -> bool:
    return _rt(request).settings(BookingSettings).sms.provider == "sandbox"


async def _fields(request: Request, limit: int = 0) -> tuple[dict[str, str], dict[str, bytes],
                                                               dict[str, list[str]]]:
    """The form, once its token is this session's (else CsrfRefused: a 403 page)."""
    form = await request.form()
    want = csrf_token(request)
    got = str(form.get("_csrf_token") or "")
    if not want or not hmac.compare_digest(want.encode(), got.encode()):
        raise CsrfRefused()
    fields: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    files: dict[str, bytes] = {}
    for k in form.keys():
        for v in form.getall(k):
            if isinstance(v, UploadFile):
                if v.filename and limit:
                    data = await v.read(limit + 1)
                    if data:
                        files[k] = data
            else:
                fields[k] = str(v)[:MAX_FIELD]
                multi.setdefault(k, []).append(str(v)[:MAX_FIELD])
    return fields, files, multi


@post("/phone/code", opt={"public": True})
async def phone_code(request: Request) -> Any:
    rt = _rt(request)
    p = await anyio.to_thread.run_sync(_patient, request)
    if p is None:
        return _signin(request)
    f, _, _ = await _fields(request)
    phone = f.get("phone", "").strip()

    def work() -> str | None:
        try:
            with rt.sessions() as s, s.begin():
                patients.send_code(s, rt, p, phone)
            return None
        except sms.SmsRefused as exc:
            return str(exc)

    err = await anyio.to_thread.run_sync(work)
    return _h5(request, "booking/h5_phone.html", title="验证手机号", patient=p, phone=phone,
               error=err, sent=err is None, next=_safe_next(f.get("next")),
               sandbox=_sandbox_sms(request), status_code=400 if err else 200)


@post("/phone", opt={"public": True})
async def phone_verify(request: Request) -> Any:
    rt = _rt(request)
    p = await anyio.to_thread.run_sync(_patient, request)
    if p is None:
        return _signin(request)
    f, _, _ = await _fields(request)
    phone, code = f.get("phone", "").strip(), f.get("code", "").strip()

    def work() -> str | None:
        with rt.sessions() as s, s.begin():  # a wrong code's attempt is counted (committed)
            try:
                patients.verify_code(s, rt, p, phone, code)
                return None
            except (patients.SignInError, sms.SmsRefused) as exc:
                return str(exc)

    err = await anyio.to_thread.run_sync(work)
    if err:
        return _h5(request, "booking/h5_phone.html", title="验证手机号", patient=p, phone=phone,
                   error=err, sent=True, next=_safe_next(f.get("next")),
                   sandbox=_sandbox_sms(request), status_code=400)
    return Redirect(_safe_next(f.get("next")))


@get("/sandbox/sms", opt={"public": True})
async def sandbox_phone(request: Request) -> Any:
    """The sandbox's phone: messages sent to the numbers this WeChat user asked codes for."""
    rt = _rt(request)
    if not _sandbox_sms(request):
        raise NotFoundException()
    p = await anyio.to_thread.run_sync(_patient, request)
    if p is None:
        return _signin(request)

    def work():
        from sqlalchemy import select

        from bingan_booking.models import BookingSmsCode

        with rt.sessions() as s:
            phones = set(s.scalars(select(BookingSmsCode.phone).where(
                BookingSmsCode.account_id == p.account_id)))
        if p.phone:
            phones.add(p.phone)
        return [(m["phone"], m["text"], m["at"][5:16].replace("T", " "))
                for m in sms.sandbox_outbox(rt, phones)]

    msgs = await anyio.to_thread.run_sync(work)
    return _h5(request, "booking/h5_sandbox_sms.html", title="模拟手机短信", msgs=msgs)


# --------------------------------------------------------------------------------------------
# 预约
# --------------------------------------------------------------------------------------------


def _book_ctx(request: Request, code: str, **extra: Any) -> dict[str, Any]:
    rt = _rt(request)
    conf = rt.settings(BookingSettings)
    h = service.hospital(rt, code)
    return {"title": "预约复印", "h": h, "purposes": conf.purposes,
            "rule": h.match_rule, "rule_label": MATCH_RULES[h.match_rule], "stays": None,
            "f": {}, "error": None, "chosen": [], "doc_labels": DOCUMENT_LABELS,
            "max_mb": conf.photo_max_bytes // 1024 // 1024, **extra}


def _need_phone(p: patients.Patient, request: Request) -> Redirect | None:
    if not p.phone:
        return Redirect("/h5/phone?" + urlencode({"next": request.url.path + (
            f"?{request.url.query}" if request.url.query else "")}))
    return None


@get("/book", opt={"public": True})
async def book_page(request: Request, h: FromQuery[str | None] = None) -> Any:
    p = await anyio.to_thread.run_sync(_patient, request)
    if p is None:
        return _signin(request)
    if (r := _need_phone(p, request)) is not None:
        return r
    return _h5(request, "booking/h5_book.html", patient=p,
               **_book_ctx(request, _hospital_code(request, h)))


def _match(f: dict[str, str]) -> MatchIn:
    return MatchIn(name=f.get("name", ""), id_number=f.get("id_number", ""),
                   mrn=f.get("mrn", ""), phone=f.get("patient_phone", ""))


@post("/book/lookup", opt={"public": True})
async def book_lookup(request: Request) -> Any:
    rt = _rt(request)
    p = await anyio.to_thread.run_sync(_patient, request)
    if p is None:
        return _signin(request)
    if (r := _need_phone(p, request)) is not None:
        return r
    f, _, _ = await _fields(request)
    code = _hospital_code(request, f.get("h"))

    def work():
        with rt.sessions() as s, s.begin():
            try:
                _pt, stays = service.find_stays(s, rt, service.hospital(rt, code),
                                                p.account_id, _match(f), _actor(request, p))
                return stays, None
            except BookingRefused as exc:
                return None, str(exc)

    stays, err = await anyio.to_thread.run_sync(work)
    if err is None and not stays:
        err = "未找到可预约的出院记录。请核对填写的信息；出院不久的病案可能尚未归档。"
    return _h5(request, "booking/h5_book.html", patient=p, status_code=400 if err else 200,
               **_book_ctx(request, code, stays=stays or None, f=f, error=err))


@post("/book", opt={"public": True})
async def book_submit(request: Request) -> Any:
    rt = _rt(request)
    conf = rt.settings(BookingSettings)
    p = await anyio.to_thread.run_sync(_patient, request)
    if p is None:
        return _signin(request)
    if (r := _need_phone(p, request)) is not None:
        return r
    f, files, multi = await _fields(request, conf.photo_max_bytes)
    code = _hospital_code(request, f.get("h"))
    try:
        copies = int(f.get("copies") or "1")
    except ValueError:
        copies = 0
    b = BookingIn(hospital=code, match=_match(f), admission_nos=multi.get("adm", [])[:20],
                  purpose=f.get("purpose", ""), copies=copies,
                  applicant_kind=f.get("applicant_kind", ""),
                  applicant_name=f.get("applicant_name", ""), delivery=f.get("delivery", ""),
                  photos=files, agent_relation=f.get("agent_relation", ""),
                  agent_id_number=f.get("agent_id_number", ""), recipient=f.get("recipient", ""),
                  recipient_phone=f.get("recipient_phone", ""), address=f.get("address", ""),
                  consent=f.get("consent") == "1")

    def work():
        try:
            with rt.sessions() as s, s.begin():
                bk = service.create(s, rt, p.account_id, p.phone or "", b, _actor(request, p))
                return bk.public_id, None, []
        except BookingRefused as exc:
            with rt.sessions() as s, s.begin():  # the stays again, for the form
                try:
                    _pt, stays = service.find_stays(s, rt, service.hospital(rt, code),
                                                    p.account_id, _match(f), _actor(request, p))
                except BookingRefused:
                    stays = []
            return None, str(exc), stays

    pid, err, stays = await anyio.to_thread.run_sync(work)
    if err:
        return _h5(request, "booking/h5_book.html", patient=p, status_code=400,
                   **_book_ctx(request, code, stays=stays or None, f=f, error=err,
                               chosen=b.admission_nos))
    return Redirect(f"/h5/b/{pid}/pay")


# --------------------------------------------------------------------------------------------
# 我的申请, pay
# --------------------------------------------------------------------------------------------


def _view(rt, bk) -> dict[str, Any]:
    conf = rt.settings(BookingSettings)
    tz = rt.tz
    return {"public_id": bk.public_id, "booking_no": bk.booking_no, "hospital": next(
        (h.name for h in service.hospitals(rt) if h.code == bk.hospital), bk.hospital),
        "status": bk.status, "pay_status": bk.pay_status, "fee": yuan(bk.fee_fen),
        "courier_fee": yuan(bk.courier_fee_fen), "delivery": bk.delivery,
        "created": bk.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        "paid": bk.paid_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if bk.paid_at else "",
        "patient_name": bk.patient_name[:1] + "*" * (len(bk.patient_name) - 1),
        "admissions": len(bk.admissions), "pages": bk.pages, "copies": bk.copies,
        "purpose": conf.purposes.get(bk.purpose, bk.purpose),
        "applicant": APPLICANT_LABELS.get(bk.applicant_kind, ""),
        "address": bk.address, "recipient": bk.recipient, "review_note": bk.review_note,
        "tracking_no": bk.tracking_no, "courier_company": bk.courier_company,
        "hospital_code": bk.hospital}


@get("/mine", opt={"public": True})
async def mine(request: Request) -> Any:
    rt = _rt(request)
    p = await anyio.to_thread.run_sync(_patient, request)
    if p is None:
        return _signin(request)

    def work():
        with rt.sessions() as s:
            return [_view(rt, b) for b in service.my_bookings(s, p.account_id)]

    rows = await anyio.to_thread.run_sync(work)
    return _h5(request, "booking/h5_mine.html", title="我的申请", rows=rows)


def _mine_or_404(rt, p: patients.Patient, pid: str):
    with rt.sessions() as s:
        bk = service.my_booking(s, p.account_id, pid)
        if bk is None:
            raise NotFoundException("预约不存在")
        return _view(rt, bk), bk.out_trade_no, bk.tracking_no, bk.courier_company, \
            bk.recipient_phone


@get("/b/{pid:str}", opt={"public": True})
async def booking_detail(request: Request, pid: FromPath[str]) -> Any:
    rt = _rt(request)
    p = await anyio.to_thread.run_sync(_patient, request)
    if p is None:
        return _signin(request)

    def work():
        v, _no, tracking_no, company, rphone = _mine_or_404(rt, p, pid)
        track, track_err = None, None
        if tracking_no:
            try:
                gw = courier.gateway(rt)
                track = gw.track(company or rt.settings(BookingSettings).courier.company,
                                 tracking_no, rphone or "")
            except courier.TrackingError as exc:
                track_err = str(exc)
        return v, track, track_err

    v, track, track_err = await anyio.to_thread.run_sync(work)
    return _h5(request, "booking/h5_detail.html", title="申请详情", b=v, track=track,
               track_err=track_err)


@get("/b/{pid:str}/pay", opt={"public": True})
async def pay_page(request: Request, pid: FromPath[str]) -> Any:
    rt = _rt(request)
    p = await anyio.to_thread.run_sync(_patient, request)
    if p is None:
        return _signin(request)
    notify = _base_url(request) + "/h5/pay/notify"

    def work():
        try:
            params, err = pay.order(rt, p.account_id, pid, p.openid, notify), None
        except pay.PayError as exc:
            params, err = None, str(exc)
        v, *_ = _mine_or_404(rt, p, pid)
        return v, params, err

    v, params, err = await anyio.to_thread.run_sync(work)
    if params is None and err is None:
        return Redirect(f"/h5/b/{pid}")
    sandbox = rt.settings(BookingSettings).wechat.provider == "sandbox"
    cashier = ("/h5/sandbox/cashier?" + urlencode({"prepay_id": params["package"][10:],
                                                    "back": f"/h5/b/{pid}"})) if params and sandbox else None
    return _h5(request, "booking/h5_pay.html", title="支付", b=v, params=params, error=err,
               cashier=cashier)


@post("/b/{pid:str}/check", opt={"public": True})
async def pay_check(request: Request, pid: FromPath[str]) -> Any:
    """Back from the cashier without a notification yet: ask the platform (order query)."""
    rt = _rt(request)
    p = await anyio.to_thread.run_sync(_patient, request)
    if p is None:
        return _signin(request)
    await _fields(request)  # the session's form token, as every form

    def work():
        _v, no, *_ = _mine_or_404(rt, p, pid)
        try:
            pay.sync(rt, no)
        except pay.PayError:
            pass

    await anyio.to_thread.run_sync(work)
    return Redirect(f"/h5/b/{pid}")


@post("/pay/notify", opt={"public": True, "exclude_from_csrf": True})
async def pay_notify(request: Request) -> Response:
    """WeChat Pay's notification (API v3). Answers 200 only for one taken or already taken."""
    rt = _rt(request)
    body = await request.body()
    if len(body) > 65536:
        return Response({"code": "FAIL", "message": "too large"}, status_code=413)
    headers = {k: v for k, v in request.headers.items()}
    status, result = await anyio.to_thread.run_sync(
        lambda: pay.take_notification(rt, headers, body.decode("utf-8", "replace")))
    if status < 300:
        return Response(None, status_code=204)
    return Response({"code": "FAIL", "message": result}, status_code=status)


@get("/sandbox/cashier", opt={"public": True})
async def sandbox_cashier(request: Request, prepay_id: FromQuery[str] = "",
                          back: FromQuery[str] = "/h5/mine") -> Any:
    """The sandbox's cashier (WeChat's payment sheet in production)."""
    rt = _rt(request)
    if rt.settings(BookingSettings).wechat.provider != "sandbox":
        raise NotFoundException()
    from bingan_booking import sandbox_pay

    o = await anyio.to_thread.run_sync(lambda: sandbox_pay.platform(rt).order(prepay_id[:64]))
    if o is None:
        raise NotFoundException("订单不存在")
    return _h5(request, "booking/h5_cashier.html", title="微信支付（模拟）",
               order={"description": o.description, "total": yuan(o.total),
                      "state": o.trade_state}, prepay_id=o.prepay_id, back=_safe_next(back))


@post("/sandbox/cashier", opt={"public": True})
async def sandbox_pay_confirm(request: Request) -> Any:
    rt = _rt(request)
    if rt.settings(BookingSettings).wechat.provider != "sandbox":
        raise NotFoundException()
    from bingan_booking import sandbox_pay

    if await anyio.to_thread.run_sync(_patient, request) is None:
        return _signin(request)
    f, _, _ = await _fields(request)
    res = await anyio.to_thread.run_sync(
        lambda: sandbox_pay.platform(rt).pay(f.get("prepay_id", "")[:64]))
    if res is None:
        raise NotFoundException("订单不存在或已关闭")
    return Redirect(_safe_next(f.get("back")))


# --------------------------------------------------------------------------------------------
# 预约问题, 预约帮助
# --------------------------------------------------------------------------------------------


@get("/faq", opt={"public": True})
async def faq(request: Request, h: FromQuery[str | None] = None) -> Any:
    hosp = service.hospital(_rt(request), _hospital_code(request, h))
    return _h5(request, "booking/h5_faq.html", title="预约问题", h=hosp)


@get("/help", opt={"public": True})
async def help_page(request: Request, h: FromQuery[str | None] = None) -> Any:
    hosp = service.hospital(_rt(request), _hospital_code(request, h))
    return _h5(request, "booking/h5_help.html", title="预约帮助", h=hosp)


ROUTES = [Router(path="/h5", route_handlers=[
    home, signin, oauth_callback, sandbox_authorize, signout, phone_page, phone_code,
    phone_verify, sandbox_phone, book_page, book_lookup, book_submit, mine, booking_detail,
    pay_page, pay_check, pay_notify, sandbox_cashier, sandbox_pay_confirm, faq, help_page,
], before_request=_before, after_request=_after,
    # the site's own session-bound token (csrf_token) replaces the double-submit cookie
    opt={"exclude_from_csrf": True}, exception_handlers={CsrfRefused: _csrf_refused})]

__all__ = ["ROUTES"]
