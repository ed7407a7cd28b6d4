"""Core pages and APIs: sign-in (password, TOTP), notifications, health, record API (the home
page is core.web.home)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
import segno
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy import select

from bingan.hooks import hookimpl
from bingan.hooks.types import NavItem
from bingan.core import audit, permissions
from bingan.core.models import Admission, Notification, Staff, WebSession, utcnow
from bingan.core.staff import check_login, needs_totp, new_totp_secret, totp_uri, verify_totp
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import (
    COOKIE, CSRF_COOKIE, actor, cookie_secure, new_token, session_csrf_token, token_hash,
)

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _set_cookie(request: Request, response: Response, token: str) -> Response:
    """The session cookie, and a new CSRF cookie bound to that session."""
    rt = request.app.state.rt
    secure = cookie_secure(rt, request)
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", path="/", secure=secure)
    # HttpOnly: pages hand the token to forms (csrf_input) and htmx (hx-headers) themselves,
    # so no script needs to read the cookie
    response.set_cookie(CSRF_COOKIE, session_csrf_token(rt, token), httponly=True,
                        samesite="lax", path="/", secure=secure)
    return response


@get("/login", opt={"public": True}, name="login")
async def login_form(request: Request, next: FromQuery[str | None] = None) -> Any:
    return page(request, "login.html", next=_safe_next(next), error=None)


@post("/login", opt={"public": True})
@in_thread
def login_submit(request: Request, data: Form) -> Any:
    rt = request.app.state.rt
    core = rt.config.core
    staff_no = str(data.get("staff_no", "")).strip()
    password = str(data.get("password", ""))
    target = _safe_next(data.get("next"))
    who = audit.Actor(staff_no=staff_no or None, client_ip=request.state.client_ip,
                      computer_name=actor(request).computer_name)
    with rt.sessions() as s, s.begin():
        res = check_login(s, staff_no, password, failures=core.lockout_failures,
                          lock_minutes=core.lockout_minutes, source=request.state.client_ip)
        if not res.ok:
            audit.record(s, rt, "login", actor=who, outcome="failed", detail={"reason": res.reason})
            until = (f"{res.locked_until.astimezone(request.app.state.rt.tz):%H:%M}" if res.locked_until else "")
            msg = {
                "bad_credentials": "工号或密码错误",
                "locked": f"工号或密码错误次数过多，请于 {until} 后再试",
                "throttled": f"本机登录失败次数过多，请于 {until} 后再试",
                "disabled": "账号已停用，请联系管理员",
            }[res.reason]
            s.commit()
            return page(request, "login.html", status_code=401, next=target, error=msg,
                        staff_no=staff_no)
        staff = res.staff
        token = new_token()
        mfa = needs_totp(staff, core.totp_required_roles)
        # no half-finished sign-ins are kept: a new one ends the person's earlier ones
        for old in s.scalars(select(WebSession).where(WebSession.staff_id == staff.id,
                                                      WebSession.revoked_at.is_(None),
                                                      WebSession.mfa_passed.is_(False))):
            old.revoked_at, old.revoked_by = utcnow(), "superseded"
        ws = WebSession(token_hash=token_hash(token), staff_id=staff.id, mfa_passed=not mfa,
                        mfa_required=mfa, client_ip=request.state.client_ip,
                        user_agent=request.headers.get("user-agent", "")[:256])
        s.add(ws)
        audit.record(s, rt, "login", actor=who, outcome="ok" if not mfa else "password_ok",
                     detail={"mfa": mfa})
        if mfa:
            nxt = "/login/totp" if staff.totp_secret else "/login/totp/enroll"
            target = nxt + "?next=" + target
    return _set_cookie(request, Redirect(target), token)


def _pending_staff(request: Request, s) -> Staff:
    sid = request.state.get("mfa_staff_id")
    if sid is None:
        raise PermissionDeniedException("请先输入工号和密码")
    return s.get(Staff, sid)


def _locked_out(request: Request, s, staff: Staff) -> bool:
    """A sign-in begun before the account was locked cannot finish: it ends here."""
    if staff.locked_until and staff.locked_until > utcnow():
        ws = s.get(WebSession, request.state.web_session_id)
        ws.revoked_at, ws.revoked_by = utcnow(), "locked"
        return True
    return False


@get("/login/totp", opt={"public": True})
@in_thread
def totp_form(request: Request, next: FromQuery[str | None] = None) -> Any:
    if request.state.get("mfa_staff_id") is None:
        return Redirect("/login")
    return page(request, "totp.html", next=_safe_next(next), error=None)


def _finish_mfa(request: Request, s, staff: Staff, ok: bool, target: str, rt) -> bool:
    who = audit.Actor(staff_no=staff.staff_no, client_ip=request.state.client_ip,
                      computer_name=actor(request).computer_name)
    if not ok:
        # wrong codes are counted per account across sign-ins (a right password does not
        # reset them), and a lock ends every pending sign-in of the account
        core = rt.config.core
        staff.totp_failures = (staff.totp_failures or 0) + 1
        locked = staff.totp_failures >= core.lockout_failures
        if locked:
            staff.locked_until = utcnow() + dt.timedelta(minutes=core.lockout_minutes)
            staff.totp_failures = 0
            for ws in s.scalars(select(WebSession).where(WebSession.staff_id == staff.id,
                                                         WebSession.revoked_at.is_(None),
                                                         WebSession.mfa_passed.is_(False))):
                ws.revoked_at, ws.revoked_by = utcnow(), "totp_lockout"
        audit.record(s, rt, "login.totp", actor=who, outcome="failed",
                     detail={"locked": locked})
        return False
    staff.totp_failures = 0
    ws = s.get(WebSession, request.state.web_session_id)
    ws.mfa_passed = True
    ws.totp_pending = None
    audit.record(s, rt, "login.totp", actor=who, outcome="ok")
    return True


LOCKED_MSG = "动态验证码错误次数过多，账号已锁定，请稍后重新登录"


@post("/login/totp", opt={"public": True})
@in_thread
def totp_submit(request: Request, data: Form) -> Any:
    rt = request.app.state.rt
    target = _safe_next(data.get("next"))
    with rt.sessions() as s, s.begin():
        staff = _pending_staff(request, s)
        if _locked_out(request, s, staff):
            return page(request, "totp.html", status_code=401, next=target, error=LOCKED_MSG)
        ok = bool(staff.totp_secret) and verify_totp(staff.totp_secret, str(data.get("code", "")))
        if _finish_mfa(request, s, staff, ok, target, rt):
            return Redirect(target)
        locked = staff.locked_until is not None and staff.locked_until > utcnow()
    return page(request, "totp.html", status_code=401, next=target,
                error=LOCKED_MSG if locked else "动态验证码错误")


def _enroll_page(request: Request, rt, staff: Staff, secret: str, target: str,
                 error: str | None = None, status: int = 200) -> Any:
    uri = totp_uri(secret, staff.staff_no, rt.config.core.hospital_name)
    qr_svg = segno.make(uri, error="m").svg_inline(scale=5)
    return page(request, "totp_enroll.html", status_code=status, next=target, secret=secret,
                qr_svg=qr_svg, error=error)


@get("/login/totp/enroll", opt={"public": True})
@in_thread
def totp_enroll_form(request: Request, next: FromQuery[str | None] = None) -> Any:
    """The authenticator to bind: one secret per sign-in, kept (server side) until the
    enrolment succeeds, so an authenticator already scanned stays good after a wrong code
    or a reload."""
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        staff = _pending_staff(request, s)
        if staff.totp_secret:
            return Redirect("/login/totp")
        ws = s.get(WebSession, request.state.web_session_id)
        if not ws.totp_pending:
            ws.totp_pending = new_totp_secret()
        return _enroll_page(request, rt, staff, ws.totp_pending, _safe_next(next))


@post("/login/totp/enroll", opt={"public": True})
@in_thread
def totp_enroll_submit(request: Request, data: Form) -> Any:
    rt = request.app.state.rt
    target = _safe_next(data.get("next"))
    with rt.sessions() as s, s.begin():
        staff = _pending_staff(request, s)
        if staff.totp_secret:
            # an authenticator is already bound: only an administrator's reset removes it
            raise PermissionDeniedException("该账号已绑定身份验证器")
        ws = s.get(WebSession, request.state.web_session_id)
        if _locked_out(request, s, staff):
            return page(request, "totp.html", status_code=401, next=target, error=LOCKED_MSG)
        secret = ws.totp_pending
        if not secret:
            return Redirect("/login/totp/enroll?next=" + target)
        ok = verify_totp(secret, str(data.get("code", "")))
        if ok:
            staff.totp_secret = secret
        if _finish_mfa(request, s, staff, ok, target, rt):
            return Redirect(target)
        if staff.locked_until and staff.locked_until > utcnow():
            return page(request, "totp.html", status_code=401, next=target, error=LOCKED_MSG)
        return _enroll_page(request, rt, staff, secret, target, status=401,
                            error="动态验证码错误：请核对身份验证器中本账号的 6 位数字后重新输入"
                                  "（二维码未变，无需重新扫描）")


@post("/logout")
@in_thread
def logout(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        ws = s.get(WebSession, request.state.web_session_id)
        if ws:
            ws.revoked_at, ws.revoked_by = utcnow(), "logout"
        audit.record(s, rt, "logout", actor=actor(request))
    resp = Redirect("/login")
    resp.delete_cookie(COOKIE, path="/")
    resp.delete_cookie(CSRF_COOKIE, path="/")
    return resp


@get("/notifications")
@in_thread
def notifications(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        rows = s.scalars(select(Notification).where(Notification.staff_id == request.state.staff.id)
                         .order_by(Notification.created_at.desc()).limit(200)).all()
    return page(request, "notifications.html", rows=rows)


@post("/notifications/read")
@in_thread
def notifications_read(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        for n in s.scalars(select(Notification).where(
                Notification.staff_id == request.state.staff.id, Notification.read_at.is_(None))):
            n.read_at = utcnow()
    return Redirect("/notifications")


@get("/healthz", opt={"public": True})
@in_thread
def healthz(request: Request) -> dict[str, Any]:
    rt = request.app.state.rt
    from bingan.core.migrate import pending

    with rt.engine.connect() as c:
        c.exec_driver_sql("select 1")
    from bingan.core import __version__

    return {"status": "ok", "version": __version__, "pending_migrations": pending(rt),
            "plugins": sorted(rt.pm.loaded)}


class MeOut(msgspec.Struct):
    staff_no: str
    name: str
    department: str | None
    roles: list[str]
    permissions: list[str]


@get("/api/me")
async def api_me(request: Request) -> MeOut:
    st = request.state.staff
    return MeOut(st.staff_no, st.name, st.department_code, sorted(st.roles), sorted(st.permissions))


class DiagnosisOut(msgspec.Struct):
    kind: str
    code: str
    name: str
    admission_condition: str | None


class OperationOut(msgspec.Struct):
    code: str
    name: str
    date: dt.date | None
    surgeon_no: str | None


class AdmissionOut(msgspec.Struct):
    mrn: str
    patient_name: str
    sex: str
    admission_no: str
    visit_no: int
    barcode: str
    admitted_at: dt.datetime
    discharged_at: dt.datetime | None
    discharge_department: str | None
    discharge_way: str | None
    los_days: int | None
    diagnoses: list[DiagnosisOut]
    operations: list[OperationOut]
    signers: dict[str, str]


@get("/api/admissions/{admission_no:str}")
@in_thread
def api_admission(request: Request, admission_no: FromPath[str]) -> AdmissionOut:
    """The front page of one admission; needs the ``view`` right (audited)."""
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        adm = s.scalar(select(Admission).where(Admission.admission_no == admission_no))
        if adm is None:
            audit.record(s, rt, "record.view", actor=actor(request), outcome="failed",
                         admission_no=admission_no, detail={"why": "unknown admission"})
            s.commit()
            raise NotFoundException(f"住院号 {admission_no} 不存在")
        d = permissions.decide(s, rt, request.state.staff, adm, "view", actor=actor(request))
        if not d.allowed:
            s.commit()
            raise PermissionDeniedException(d.reason)
        return AdmissionOut(
            mrn=adm.patient.mrn, patient_name=adm.patient.name, sex=adm.patient.sex,
            admission_no=adm.admission_no, visit_no=adm.visit_no, barcode=adm.barcode,
            admitted_at=adm.admitted_at, discharged_at=adm.discharged_at,
            discharge_department=adm.discharge_department, discharge_way=adm.discharge_way,
            los_days=adm.los_days,
            diagnoses=[DiagnosisOut(x.kind, x.code, x.name, x.admission_condition)
                       for x in adm.diagnoses],
            operations=[OperationOut(o.code, o.name, o.op_date, o.surgeon_no)
                        for o in adm.operations],
            signers={x.role: x.staff_no for x in adm.signers},
        )


@hookimpl
def register_routes():
    return [login_form, login_submit, totp_form, totp_submit, totp_enroll_form,
            totp_enroll_submit, logout, notifications, notifications_read, healthz,
            api_me, api_admission]


@hookimpl
def register_nav():
    return [NavItem("首页", "/", None, "", 0),
            NavItem("消息通知", "/notifications", None, "", 90)]

