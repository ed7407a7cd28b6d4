"""Administration pages: staff, departments, roles, plugins, sessions. Every change is audited."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import Body, FromPath
from litestar.response import Redirect
from sqlalchemy import or_, select

from bingan.hooks import hookimpl
from bingan.hooks.types import NavItem
from bingan.core import audit, identifiers
from bingan.core.models import Department, Role, Staff, WebSession, utcnow
from bingan.core.staff import (
    StaffError, add_department, add_staff, change_password, check_credential_reset, check_duties, check_role_permissions,
    revoke_sessions,
    set_active, unlock, update_department,
)
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


USER_OPS = ("save", "password", "unlock", "totp_reset", "disable", "enable")


def record_roles(rt) -> set[str]:
    """Roles that read every record ([core.role_actions]): no 三员 role goes with them."""
    return {r for r, actions in rt.config.core.role_actions.items() if actions}


def _list(v) -> list[str]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def all_permissions(rt):
    out = {}
    for group in rt.pm.hook.register_permissions():
        for p in group or []:
            out.setdefault(p.name, p)  # two plugins may declare the same permission
    return sorted(out.values(), key=lambda p: p.name)


def _users_page(request: Request, s, error: str | None = None, status: int = 200):
    q = str(request.query_params.get("q") or "").strip()[:64]
    stmt = select(Staff).order_by(Staff.staff_no)
    if q:
        # a staff number as typed (d0001) or part of a name
        stmt = stmt.where(or_(Staff.staff_no.in_({q, identifiers.staff_no(q)}),
                              Staff.staff_no.startswith(identifiers.staff_no(q), autoescape=True),
                              Staff.name.contains(q, autoescape=True)))
    staff = s.scalars(stmt).all()
    return page(request, "admin/users.html", status_code=status, users=staff, q=q,
                msg=request.query_params.get("msg"),
                departments=s.scalars(select(Department).order_by(Department.code)).all(),
                roles=s.scalars(select(Role).order_by(Role.name)).all(), error=error)


def _with_msg(path: str, msg: str) -> Redirect:
    return Redirect(path + "?msg=" + quote(msg))


OP_DONE = {"save": "已保存", "password": "密码已重置：本人下次登录须修改密码，其在线会话已全部结束",
           "unlock": "已解除锁定", "totp_reset": "已重置二次验证：本人下次登录时重新绑定",
           "disable": "账号已停用，其在线会话已结束", "enable": "账号已启用"}


@get("/admin/users", opt={"permission": "admin.users"})
@in_thread
def users(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        return _users_page(request, s)


@post("/admin/users", opt={"permission": "admin.users"})
@in_thread
def user_add(request: Request, data: Form) -> Any:
    rt = request.app.state.rt
    try:
        with rt.sessions() as s, s.begin():
            st = add_staff(s, str(data.get("staff_no", "")).strip(), str(data.get("name", "")).strip(),
                           str(data.get("password", "")) or None,
                           str(data.get("department") or "") or None, _list(data.get("roles")),
                           str(data.get("title") or "") or None, must_change=True,
                           by=s.get(Staff, request.state.staff.id), record_roles=record_roles(rt))
            audit.record(s, rt, "admin.user.add", actor=actor(request),
                         detail={"staff_no": st.staff_no, "roles": _list(data.get("roles"))})
            msg = f"已新增用户 {st.name}（工号 {st.staff_no}），首次登录须修改初始密码"
    except StaffError as exc:
        with rt.sessions() as s:
            return _users_page(request, s, error=str(exc), status=400)
    return _with_msg("/admin/users", msg)


@get("/admin/users/{staff_no:str}", opt={"permission": "admin.users"})
@in_thread
def user_edit(request: Request, staff_no: FromPath[str]) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        st = s.scalar(select(Staff).where(Staff.staff_no == staff_no))
        if st is None:
            raise NotFoundException(f"工号 {staff_no} 不存在")
        sessions = s.scalars(select(WebSession).where(WebSession.staff_id == st.id,
                                                      WebSession.revoked_at.is_(None))).all()
        return page(request, "admin/user_edit.html", user=st, sessions=sessions,
                    msg=request.query_params.get("msg"),
                    departments=s.scalars(select(Department).order_by(Department.code)).all(),
                    roles=s.scalars(select(Role).order_by(Role.name)).all(), error=None)


@post("/admin/users/{staff_no:str}", opt={"permission": "admin.users"})
@in_thread
def user_update(request: Request, staff_no: FromPath[str], data: Form) -> Any:
    rt = request.app.state.rt
    op = data.get("op", "save")
    if op not in USER_OPS:
        raise ValidationException(f"未知操作 {op!r}")
    with rt.sessions() as s, s.begin():
        st = s.scalar(select(Staff).where(Staff.staff_no == staff_no))
        if st is None:
            raise NotFoundException(f"工号 {staff_no} 不存在")
        detail: dict[str, Any] = {"staff_no": staff_no, "op": op}
        if op == "save":
            st.name = str(data.get("name") or st.name)
            st.title = str(data.get("title") or "") or None
            code = data.get("department") or None
            st.department = (s.scalar(select(Department).where(Department.code == code))
                             if code else None)
            names = _list(data.get("roles"))
            try:
                check_duties(s, st, names, by=s.get(Staff, request.state.staff.id),
                             record_roles=record_roles(rt))
            except StaffError as exc:
                raise ValidationException(str(exc)) from exc
            st.roles = list(s.scalars(select(Role).where(Role.name.in_(names))))
            detail.update(roles=sorted(names), department=code)
        elif op == "password":
            # to be changed at the next sign-in; every session of the person ends
            try:
                check_credential_reset(st, s.get(Staff, request.state.staff.id))
                change_password(s, st, str(data.get("password", "")), by_admin=True)
            except StaffError as exc:
                raise ValidationException(str(exc)) from exc
        elif op == "unlock":
            unlock(s, st)
        elif op == "totp_reset":
            try:
                check_credential_reset(st, s.get(Staff, request.state.staff.id))
            except StaffError as exc:
                raise ValidationException(str(exc)) from exc
            st.totp_secret = None
            st.totp_failures = 0
            revoke_sessions(s, st.id, "totp_reset")
        elif op in ("disable", "enable"):
            if op == "disable" and staff_no == request.state.staff.staff_no:
                raise ValidationException("不能停用自己的账号")
            try:
                set_active(s, staff_no, op == "enable")
            except StaffError as exc:
                raise ValidationException(str(exc)) from exc
        audit.record(s, rt, f"admin.user.{op}", actor=actor(request), detail=detail)
    return _with_msg(f"/admin/users/{staff_no}", OP_DONE[op])


@get("/admin/departments", opt={"permission": "admin.departments"})
@in_thread
def departments(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        return page(request, "admin/departments.html", msg=request.query_params.get("msg"),
                    rows=s.scalars(select(Department).order_by(Department.code)).all(), error=None)


@post("/admin/departments", opt={"permission": "admin.departments"})
@in_thread
def department_add(request: Request, data: Form) -> Any:
    rt = request.app.state.rt
    try:
        with rt.sessions() as s, s.begin():
            d = add_department(s, str(data.get("code", "")).strip(), str(data.get("name", "")).strip(),
                               str(data.get("kind") or "clinical"))
            audit.record(s, rt, "admin.department.add", actor=actor(request),
                         detail={"code": d.code, "name": d.name})
    except StaffError as exc:
        with rt.sessions() as s:
            return page(request, "admin/departments.html", status_code=400, error=str(exc),
                        rows=s.scalars(select(Department).order_by(Department.code)).all())
    return Redirect("/admin/departments")


@post("/admin/departments/{code:str}", opt={"permission": "admin.departments"})
@in_thread
def department_update(request: Request, code: FromPath[str], data: Form) -> Any:
    """Rename, change the kind of, or disable / enable a department (audited)."""
    rt = request.app.state.rt
    op = str(data.get("op") or "save")
    try:
        with rt.sessions() as s, s.begin():
            if op == "save":
                d = update_department(s, code, name=str(data.get("name") or ""),
                                      kind=str(data.get("kind") or "clinical"))
                msg = f"已保存科室 {d.name}（{d.code}）"
            elif op in ("disable", "enable"):
                d = update_department(s, code, active=op == "enable")
                msg = f"科室 {d.name}（{d.code}）已{'启用' if op == 'enable' else '停用'}"
            else:
                raise ValidationException(f"未知操作 {op!r}")
            audit.record(s, rt, "admin.department.update", actor=actor(request),
                         detail={"code": code, "op": op, "name": d.name, "kind": d.kind,
                                 "active": d.active})
    except StaffError as exc:
        raise ValidationException(str(exc)) from exc
    return _with_msg("/admin/departments", msg)


@get("/admin/roles", opt={"permission": "admin.roles"})
@in_thread
def roles(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        return page(request, "admin/roles.html", rows=s.scalars(select(Role).order_by(Role.name)).all(),
                    permissions=all_permissions(rt))


@post("/admin/roles", opt={"permission": "admin.roles"})
@in_thread
def role_add(request: Request, data: Form) -> Any:
    import re

    rt = request.app.state.rt
    name = str(data.get("name", "")).strip()
    label = str(data.get("label", "")).strip()
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,31}", name) or not label:
        raise ValidationException("角色代码须为小写字母开头的字母、数字或下划线，且须填写名称")
    with rt.sessions() as s, s.begin():
        if s.scalar(select(Role).where(Role.name == name)):
            raise ValidationException(f"角色 {name} 已存在")
        s.add(Role(name=name, label=label, permissions=[]))
        audit.record(s, rt, "admin.role.add", actor=actor(request),
                     detail={"role": name, "label": label})
    return Redirect("/admin/roles")


@post("/admin/roles/{name:str}", opt={"permission": "admin.roles"})
@in_thread
def role_update(request: Request, name: FromPath[str], data: Form) -> Any:
    rt = request.app.state.rt
    known = {p.name for p in all_permissions(rt)}
    with rt.sessions() as s, s.begin():
        role = s.scalar(select(Role).where(Role.name == name))
        if role is None:
            raise NotFoundException(f"角色 {name} 不存在")
        new = sorted(p for p in _list(data.get("permissions")) if p in known)
        try:
            check_role_permissions(name, new)
        except StaffError as exc:
            raise ValidationException(str(exc)) from exc
        audit.record(s, rt, "admin.role.update", actor=actor(request),
                     detail={"role": name, "old": sorted(role.permissions or []), "new": new})
        role.permissions = new
    return Redirect("/admin/roles")


@get("/admin/plugins", opt={"permission": "admin.plugins"})
@in_thread
def plugins(request: Request) -> Any:
    rt = request.app.state.rt
    rows = []
    for name, ep in sorted(rt.pm.installed.items()):
        lp = rt.pm.loaded.get(name)
        rows.append({"name": name, "enabled": lp is not None,
                     "version": lp.info.version if lp else "",
                     "title": lp.info.title if lp else "",
                     "hooks": rt.pm.hooks_implemented(name) if lp else []})
    return page(request, "admin/plugins.html", rows=rows)


@get("/admin/sessions", opt={"permission": "admin.sessions"})
@in_thread
def sessions(request: Request) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s:
        # signed-in sessions only: a sign-in still waiting for its second factor is no
        # session yet (and is ended by the next sign-in or after MFA_PENDING_MINUTES)
        rows = s.scalars(select(WebSession).where(WebSession.revoked_at.is_(None),
                                                  WebSession.mfa_passed.is_(True))
                         .order_by(WebSession.last_seen_at.desc())).all()
        return page(request, "admin/sessions.html", rows=rows)


@post("/admin/sessions/{sid:int}/revoke", opt={"permission": "admin.sessions"})
@in_thread
def session_revoke(request: Request, sid: FromPath[int]) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        ws = s.get(WebSession, sid)
        if ws is None:
            raise NotFoundException("会话不存在")
        ws.revoked_at, ws.revoked_by = utcnow(), request.state.staff.staff_no
        audit.record(s, rt, "admin.session.revoke", actor=actor(request),
                     detail={"session": sid, "staff_no": ws.staff.staff_no})
    return Redirect("/admin/sessions")


@hookimpl
def register_routes():
    return [users, user_add, user_edit, user_update, departments, department_add,
            department_update, roles,
            role_add, role_update, plugins, sessions, session_revoke]


@hookimpl
def register_nav():
    return [
        NavItem("用户管理", "/admin/users", "admin.users", "系统管理", 900),
        NavItem("科室管理", "/admin/departments", "admin.departments", "系统管理", 910),
        NavItem("角色权限", "/admin/roles", "admin.roles", "系统管理", 920),
        NavItem("插件", "/admin/plugins", "admin.plugins", "系统管理", 930),
        NavItem("在线会话", "/admin/sessions", "admin.sessions", "系统管理", 940),
    ]
