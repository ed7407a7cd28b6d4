"""The signed-in person's own account: changing the password (also the forced change of a
password an administrator set)."""

from __future__ import annotations

from typing import Annotated, Any

from argon2.exceptions import InvalidHashError, VerificationError
from bingan.core import audit
from bingan.core.models import Staff
from bingan.core.staff import MIN_PASSWORD_LENGTH, StaffError, change_password
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor
from bingan.hooks import hookimpl
from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
RULES = (f"至少 {MIN_PASSWORD_LENGTH} 位，含大写字母、小写字母、数字、符号中的至少三类；"
         "不能是常见密码，不能包含工号")


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") \
            or target.startswith("/account/password"):
        return "/"
    return target


@get("/account/password")
@in_thread
def password_form(request: Request, next: FromQuery[str | None] = None) -> Any:
    return page(request, "account_password.html", next=_safe_next(next), error=None, done=False,
                forced=bool(request.state.get("must_change_password")), rules=RULES)


@post("/account/password")
@in_thread
def password_submit(request: Request, data: Form) -> Any:
    from bingan.core import staff as core_staff

    rt = request.app.state.rt
    target = _safe_next(data.get("next"))
    current, new, again = (str(data.get(k, "")) for k in ("current", "password", "confirm"))
    forced = bool(request.state.get("must_change_password"))
    error = None
    with rt.sessions() as s, s.begin():
        st = s.get(Staff, request.state.staff.id)
        try:
            core_staff._hasher.verify(st.password_hash or "", current)
        except (VerificationError, InvalidHashError):
            error = "当前密码不正确"
        if error is None and new != again:
            error = "两次输入的新密码不一致"
        if error is None and new == current:
            error = "新密码不能与当前密码相同"
        if error is None:
            try:
                change_password(s, st, new, by_admin=False,
                                keep_session=request.state.web_session_id)
            except StaffError as exc:
                error = str(exc)
        audit.record(s, rt, "account.password", actor=actor(request),
                     outcome="failed" if error else "ok",
                     detail={"forced": forced, **({"error": error} if error else {})})
    if error:
        return page(request, "account_password.html", status_code=400, next=target,
                    error=error, done=False, forced=forced, rules=RULES)
    if forced:
        return Redirect(target)
    return page(request, "account_password.html", next=target, error=None, done=True,
                forced=False, rules=RULES)


@hookimpl
def register_routes():
    return [password_form, password_submit]

