"""Staff identity service: departments, roles, staff members, passwords, lockout, TOTP.

Passwords are hashed with argon2 (argon2-cffi). After ``lockout_failures`` wrong passwords an
account is locked for ``lockout_minutes``; a locked account refuses even the right password.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.hooks.types import StaffRef
from bingan.core.models import Department, Role, Staff, utcnow

_hasher = PasswordHasher()
# A real hash to verify against when the staff number is unknown, so timing does not tell.
_DUMMY_HASH = _hasher.hash("bingan-dummy-password")

# Built-in roles and what they may do (administrators can change permissions in the admin page).
BUILTIN_ROLES: dict[str, tuple[str, list[str]]] = {
    "admin": ("系统管理员", ["admin.users", "admin.roles", "admin.departments", "admin.plugins",
                          "admin.sessions"]),
    "records": ("病案室管理员", ["records.manage"]),
    "clerk": ("病案室文员", ["records.manage"]),
    "qc": ("质控员", ["qc.inspect"]),
    "auditor": ("审计员", ["audit.read", "audit.export"]),
    "physician": ("医师", []),
    "nurse": ("护士", []),
}


class StaffError(ValueError):
    """Bad staff input (duplicate staff number, unknown department or role, weak password)."""


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    staff: Staff | None
    reason: str  # ok, bad_credentials, locked, disabled
    locked_until: dt.datetime | None = None


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise StaffError("密码至少 8 位")
    return _hasher.hash(password)


def staff_ref(staff: Staff) -> StaffRef:
    perms: set[str] = set()
    for role in staff.roles:
        perms.update(role.permissions or [])
    return StaffRef(
        id=staff.id, staff_no=staff.staff_no, name=staff.name,
        department_code=staff.department.code if staff.department else None,
        roles=frozenset(r.name for r in staff.roles), permissions=frozenset(perms),
    )


def ensure_builtin_roles(session: Session, rt=None) -> None:
    """Create the built-in roles that do not exist yet (never overwrites an admin's edits).

    With a runtime, a new role also gets the capabilities that enabled plugins give it by
    default (``PermissionInfo.default_roles``)."""
    extra: dict[str, list[str]] = {}
    if rt is not None:
        for group in rt.pm.hook.register_permissions():
            for p in group or []:
                for role in p.default_roles:
                    extra.setdefault(role, []).append(p.name)
    have = set(session.scalars(select(Role.name)))
    for name, (label, perms) in BUILTIN_ROLES.items():
        if name not in have:
            merged = sorted(set(perms) | set(extra.get(name, [])))
            session.add(Role(name=name, label=label, permissions=merged))
    session.flush()


def add_department(session: Session, code: str, name: str, kind: str = "clinical") -> Department:
    if session.scalar(select(Department).where(Department.code == code)):
        raise StaffError(f"科室代码 {code} 已存在")
    dept = Department(code=code, name=name, kind=kind)
    session.add(dept)
    session.flush()
    with _dept_lock:
        _dept_cache.clear()
    return dept


_dept_cache: "weakref.WeakKeyDictionary[Any, tuple[float, dict[str, str]]]" = \
    weakref.WeakKeyDictionary()
_dept_lock = threading.Lock()
DEPT_TTL = 60.0


def department_names(session: Session) -> dict[str, str]:
    """Department code -> name, cached a minute per engine (the list changes rarely; adding a
    department here clears the cache). Pages that show front-page department codes use it."""
    key = session.get_bind()
    now = time.monotonic()
    with _dept_lock:
        hit = _dept_cache.get(key)
        if hit and now - hit[0] < DEPT_TTL:
            return hit[1]
    names = dict(session.execute(select(Department.code, Department.name)).all())
    with _dept_lock:
        _dept_cache[key] = (now, names)
    return names


def add_staff(
    session: Session, staff_no: str, name: str, password: str | None,
    department_code: str | None = None, roles: list[str] = (), title: str | None = None,
) -> Staff:
    """Create a staff member; roles and department must exist."""
    if not staff_no.strip():
        raise StaffError("工号不能为空")
    if session.scalar(select(Staff).where(Staff.staff_no == staff_no)):
        raise StaffError(f"工号 {staff_no} 已存在")
    dept = None
    if department_code:
        dept = session.scalar(select(Department).where(Department.code == department_code))
        if dept is None:
            raise StaffError(f"科室 {department_code} 不存在")
    role_rows = list(session.scalars(select(Role).where(Role.name.in_(list(roles)))))
    if len(role_rows) != len(set(roles)):
        missing = set(roles) - {r.name for r in role_rows}
        raise StaffError(f"角色 {sorted(missing)[0]} 不存在")
    staff = Staff(
        staff_no=staff_no, name=name, title=title, department=dept, roles=role_rows,
        password_hash=hash_password(password) if password else None,
    )
    session.add(staff)
    session.flush()
    return staff


def get_staff(session: Session, staff_no: str) -> Staff:
    staff = session.scalar(select(Staff).where(Staff.staff_no == staff_no))
    if staff is None:
        raise StaffError(f"工号 {staff_no} 不存在")
    return staff


def set_password(session: Session, staff_no: str, password: str) -> None:
    staff = get_staff(session, staff_no)
    staff.password_hash = hash_password(password)
    staff.failed_logins = 0
    staff.locked_until = None


def set_active(session: Session, staff_no: str, active: bool) -> Staff:
    """Enable or disable an account; disabling also revokes its sessions."""
    from bingan.core.models import WebSession

    staff = get_staff(session, staff_no)
    staff.active = active
    if not active:
        for ws in session.scalars(
            select(WebSession).where(WebSession.staff_id == staff.id,
                                     WebSession.revoked_at.is_(None))
        ):
            ws.revoked_at = utcnow()
            ws.revoked_by = "disabled"
    return staff


def check_login(
    session: Session, staff_no: str, password: str, *, failures: int, lock_minutes: int,
    now: dt.datetime | None = None,
) -> LoginResult:
    """Check a password, counting failures and locking after ``failures`` in a row."""
    now = now or utcnow()
    staff = session.scalar(select(Staff).where(Staff.staff_no == staff_no))
    if staff is None or staff.password_hash is None:
        try:
            _hasher.verify(_DUMMY_HASH, password + "x")
        except VerificationError:
            pass
        return LoginResult(False, None, "bad_credentials")
    if staff.locked_until and staff.locked_until > now:
        return LoginResult(False, staff, "locked", staff.locked_until)
    try:
        _hasher.verify(staff.password_hash, password)
    except (VerificationError, InvalidHashError):
        if staff.locked_until and staff.locked_until <= now:
            staff.failed_logins = 0
            staff.locked_until = None
        staff.failed_logins += 1
        if staff.failed_logins >= failures:
            staff.locked_until = now + dt.timedelta(minutes=lock_minutes)
            return LoginResult(False, staff, "locked", staff.locked_until)
        return LoginResult(False, staff, "bad_credentials")
    if not staff.active:
        return LoginResult(False, staff, "disabled")
    staff.failed_logins = 0
    staff.locked_until = None
    staff.last_login_at = now
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = _hasher.hash(password)
    return LoginResult(True, staff, "ok")


def needs_totp(staff: Staff, required_roles: list[str]) -> bool:
    """TOTP is required for the configured (administrator) roles, optional for others."""
    return bool(staff.totp_secret) or any(r.name in required_roles for r in staff.roles)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def verify_totp(secret: str, code: str, now: dt.datetime | None = None) -> bool:
    code = (code or "").strip().replace(" ", "")
    if not code.isdigit():
        return False
    totp = pyotp.TOTP(secret)
    if now is None:
        return totp.verify(code, valid_window=1)
    return totp.verify(code, for_time=now, valid_window=1)


def totp_uri(secret: str, staff_no: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=staff_no, issuer_name=issuer)
