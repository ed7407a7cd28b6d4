"""Staff identity service: departments, roles, staff members, passwords, lockout, TOTP.

Passwords are hashed with argon2 (argon2-cffi). After ``lockout_failures`` wrong passwords an
account is locked for ``lockout_minutes``; a locked account refuses even the right password.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence, Set as AbstractSet
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.hooks.types import StaffRef
from bingan.core import identifiers
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
    "secadmin": ("安全管理员", ["admin.users", "admin.roles"]),
    "auditor": ("审计员", ["audit.read", "audit.export"]),
    "physician": ("医师", []),
    "nurse": ("护士", []),
}


class StaffError(ValueError):
    """Bad staff input (duplicate staff number, unknown department or role, weak password)."""


# 三员分立 (GB/T 22239-2019 level 3): the system administrator, the security administrator and
# the security auditor are three people.
DUTY_ROLES = {"admin": "系统管理员", "secadmin": "安全管理员", "auditor": "审计员"}


# Capabilities that make a person one of the three: they stay with those roles, so nobody gets
# a duty through a role of another name (an administrator's role given audit.read, a new role
# "viewer" with audit.export).
DUTY_PERMISSIONS = {"audit.read": {"auditor"}, "audit.export": {"auditor"},
                    "admin.users": {"admin", "secadmin"}, "admin.roles": {"admin", "secadmin"}}


def check_role_permissions(role: str, permissions: list[str] | set[str]) -> None:
    """三员分立 for the capabilities of a role: a duty's capabilities only in the duty's roles,
    and the auditor role keeps reading and exporting the audit log."""
    perms = set(permissions)
    for p in sorted(perms):
        owners = DUTY_PERMISSIONS.get(p)
        if owners is not None and role not in owners:
            raise StaffError(f"三员分立：权限 {p} 只能属于"
                             + "或".join(DUTY_ROLES[o] for o in sorted(owners)) + "角色")
    if role == "auditor" and not {"audit.read", "audit.export"} <= perms:
        raise StaffError("三员分立：审计员角色须保留查看与导出审计日志的权限")


def _active_auditors(session: Session, but: int | None = None) -> int:
    from sqlalchemy import func

    q = (select(func.count(Staff.id.distinct())).join(Staff.roles)
         .where(Role.name == "auditor", Staff.active.is_(True)))
    if but is not None:
        q = q.where(Staff.id != but)
    return session.scalar(q) or 0


def check_not_last_auditor(session: Session, target: Staff) -> None:
    """The last active auditor can be neither disabled nor stripped of the role: somebody
    must always be able to read the audit log."""
    if any(r.name == "auditor" for r in target.roles) and target.active \
            and _active_auditors(session, but=target.id) == 0:
        raise StaffError("三员分立：不能停用或撤销最后一名审计员，请先为另一人授予审计员角色")


def check_duties(session: Session, target: Staff, new_roles: list[str], *,
                 by: Staff | None, record_roles: set[str]) -> None:
    """三员分立 for a change of ``target``'s roles to ``new_roles`` made by ``by`` (None: an
    operator at the server's console, ``bingan user``):

    - nobody holds two of the system administrator, security administrator and auditor
      roles, nor one of them together with a role that reads every record (``record_roles``,
      from ``[core.role_actions]``);
    - nobody changes their own roles;
    - each of the three roles is granted and withdrawn only by a holder of one of the other
      two;
    - the last active auditor keeps the role."""
    new = set(new_roles)
    old = {r.name for r in target.roles} if target.id is not None else set()
    if by is not None and target.id is not None and by.id == target.id and old != new:
        raise StaffError("不能修改自己的角色，请由其他管理员操作")
    duties = sorted(new & DUTY_ROLES.keys())
    if len(duties) > 1:
        raise StaffError("三员分立：" + "、".join(DUTY_ROLES[d] for d in duties)
                         + "不能由同一人兼任")
    reading = sorted(new & record_roles)
    if duties and reading:
        raise StaffError(f"三员分立：{DUTY_ROLES[duties[0]]}不能同时持有可查阅全部病案的角色"
                         f"（{'、'.join(reading)}）")
    if by is not None:
        mine = {r.name for r in by.roles} & DUTY_ROLES.keys()
        for role in sorted((old ^ new) & DUTY_ROLES.keys()):
            if not mine or role in mine:
                raise StaffError(f"三员分立：{DUTY_ROLES[role]}角色只能由"
                                 + "或".join(DUTY_ROLES[d] for d in DUTY_ROLES if d != role)
                                 + "授予或撤销")
    if "auditor" in old and "auditor" not in new:
        check_not_last_auditor(session, target)


def check_credential_reset(target: Staff, by: Staff | None) -> None:
    """三员分立 for credentials: the password or second factor of a holder of one of the three
    duty roles is reset only by the security administrator, and the security administrator's
    only by the system administrator, so the administrator cannot take over the auditor's
    account by resetting it. ``by`` None is the console (root on the host), which is allowed."""
    if by is None:
        return
    duties = {r.name for r in target.roles} & DUTY_ROLES.keys()
    if not duties:
        return
    needed = "admin" if "secadmin" in duties else "secadmin"
    if needed not in {r.name for r in by.roles}:
        duty = DUTY_ROLES[sorted(duties)[0]]
        raise StaffError(f"三员分立：{duty}的密码和二次验证只能由{DUTY_ROLES[needed]}重置")


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    staff: Staff | None
    reason: str  # ok, bad_credentials, locked, throttled, disabled
    locked_until: dt.datetime | None = None


# A staff number as hospitals write them: letters, digits, "-" and "_" (no spaces, no markup).
STAFF_NO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
MIN_PASSWORD_LENGTH = 8
_CLASSES = (("小写字母", str.islower), ("大写字母", str.isupper), ("数字", str.isdigit))


@functools.lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The list of passwords attackers try first (core/data/common_passwords.txt)."""
    path = Path(__file__).with_name("data") / "common_passwords.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(x.strip().lower() for x in lines if x.strip() and not x.startswith("#"))


def check_staff_no(staff_no: str) -> str:
    """The staff number, or StaffError when it is not letters, digits, "-" and "_"."""
    staff_no = (staff_no or "").strip()
    if not staff_no:
        raise StaffError("工号不能为空")
    if not STAFF_NO_RE.match(staff_no):
        raise StaffError("工号只能由字母、数字、“-”和“_”组成（以字母或数字开头，最多 32 位）")
    return staff_no


def check_password_policy(password: str, staff_no: str | None = None) -> None:
    """GB/T 22239-2019 level 3 (8.1.4.1 a, identity check with complexity): at least
    ``MIN_PASSWORD_LENGTH`` characters of at least three kinds (lower case, upper case,
    digits, other characters), not on the list of common passwords, not containing the staff
    number. StaffError says what is missing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"密码至少 {MIN_PASSWORD_LENGTH} 位")
    if len(password) > 128:
        raise StaffError("密码最多 128 位")
    kinds = [label for label, test in _CLASSES if any(test(ch) for ch in password)]
    if any(not (ch.isalnum() and ch.isascii()) for ch in password):
        kinds.append("符号")
    if len(kinds) < 3:
        raise StaffError("密码须包含大写字母、小写字母、数字、符号中的至少三类"
                         f"（现有：{'、'.join(kinds) or '无'}）")
    low = password.lower()
    if low in common_passwords():
        raise StaffError("该密码过于常见，容易被猜中，请换一个")
    if staff_no and len(staff_no) >= 3 and staff_no.lower() in low:
        raise StaffError("密码不能包含工号")


def hash_password(password: str, staff_no: str | None = None) -> str:
    """The argon2 hash of a password that passes ``check_password_policy``."""
    check_password_policy(password, staff_no)
    return _hasher.hash(password)


def revoke_sessions(session: Session, staff_id: int, why: str,
                    keep: int | None = None) -> int:
    """End every live session of a staff member (but ``keep``, the caller's own)."""
    from bingan.core.models import WebSession

    n = 0
    for ws in session.scalars(select(WebSession).where(WebSession.staff_id == staff_id,
                                                       WebSession.revoked_at.is_(None))):
        if ws.id != keep:
            ws.revoked_at, ws.revoked_by = utcnow(), why
            n += 1
    return n


def change_password(session: Session, staff: Staff, password: str, *, by_admin: bool,
                    keep_session: int | None = None) -> None:
    """Set a new password. One set by an administrator (or the CLI) must be changed at the
    next sign-in; the person's other sessions end either way (a reset must lock out whoever
    knew the old password)."""
    staff.password_hash = hash_password(password, staff.staff_no)
    staff.must_change_password = by_admin
    staff.password_changed_at = utcnow()
    staff.failed_logins, staff.locked_until = 0, None
    revoke_sessions(session, staff.id, "password_reset" if by_admin else "password_change",
                    keep=keep_session)


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


def update_department(session: Session, code: str, *, name: str | None = None,
                      kind: str | None = None, active: bool | None = None) -> Department:
    """Rename a department, change its kind, or disable/enable it (the code never changes:
    front pages and rules refer to it)."""
    dept = session.scalar(select(Department).where(Department.code == code))
    if dept is None:
        raise StaffError(f"科室代码 {code} 不存在")
    if name is not None:
        name = name.strip()
        if not name:
            raise StaffError("科室名称不能为空")
        dept.name = name[:64]
    if kind is not None:
        if kind not in ("clinical", "admin"):
            raise StaffError("科室类型只能是临床科室或职能科室")
        dept.kind = kind
    if active is not None:
        dept.active = active
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
    names: dict[str, str] = {code: name for code, name in
                             session.execute(select(Department.code, Department.name))}
    with _dept_lock:
        _dept_cache[key] = (now, names)
    return names


def add_staff(
    session: Session, staff_no: str, name: str, password: str | None,
    department_code: str | None = None, roles: Sequence[str] = (), title: str | None = None,
    *, must_change: bool = False, by: Staff | None = None, record_roles: AbstractSet[str] = frozenset(),
) -> Staff:
    """Create a staff member; roles and department must exist, the staff number is checked
    (``check_staff_no``) and so is the password (``check_password_policy``)."""
    staff_no = check_staff_no(staff_no)
    if session.scalar(select(Staff).where(Staff.staff_no == staff_no)):
        raise StaffError(f"工号 {staff_no} 已存在")
    dept = None
    if department_code:
        dept = session.scalar(select(Department).where(Department.code == department_code))
        if dept is None:
            raise StaffError(f"科室 {department_code} 不存在")
    check_duties(session, Staff(), list(roles), by=by, record_roles=set(record_roles))
    role_rows = list(session.scalars(select(Role).where(Role.name.in_(list(roles)))))
    if len(role_rows) != len(set(roles)):
        missing = set(roles) - {r.name for r in role_rows}
        raise StaffError(f"角色 {sorted(missing)[0]} 不存在")
    staff = Staff(
        staff_no=staff_no, name=name, title=title, department=dept, roles=role_rows,
        password_hash=hash_password(password, staff_no) if password else None,
        must_change_password=bool(password) and must_change,
    )
    session.add(staff)
    session.flush()
    return staff


def get_staff(session: Session, staff_no: str) -> Staff:
    staff = session.scalar(select(Staff).where(Staff.staff_no == staff_no))
    if staff is None:
        raise StaffError(f"工号 {staff_no} 不存在")
    return staff


def set_password(session: Session, staff_no: str, password: str, *,
                 by_admin: bool = True) -> None:
    """An administrator's (or the CLI's) new password for ``staff_no``: to be changed at the
    next sign-in, every session of the person ended."""
    change_password(session, get_staff(session, staff_no), password, by_admin=by_admin)


def set_active(session: Session, staff_no: str, active: bool) -> Staff:
    """Enable or disable an account; disabling also revokes its sessions."""
    from bingan.core.models import WebSession

    staff = get_staff(session, staff_no)
    if not active:
        check_not_last_auditor(session, staff)
    staff.active = active
    if not active:
        for ws in session.scalars(
            select(WebSession).where(WebSession.staff_id == staff.id,
                                     WebSession.revoked_at.is_(None))
        ):
            ws.revoked_at = utcnow()
            ws.revoked_by = "disabled"
    return staff


SOURCE_FACTOR = 4  # wrong passwords from one source, over all staff numbers: 4 x failures


def _failure_row(session: Session, source: str, staff_no: str):
    from bingan.core.models import LoginFailure

    return session.scalar(select(LoginFailure).where(LoginFailure.source == source,
                                                     LoginFailure.staff_no == staff_no))


def check_login(
    session: Session, staff_no: str, password: str, *, failures: int, lock_minutes: int,
    source: str | None = None, now: dt.datetime | None = None,
) -> LoginResult:
    """Check a password. Wrong passwords are counted per source (client address) and typed
    staff number, known or not: after ``failures`` in a row that source is locked out of that
    staff number for ``lock_minutes``, and after ``SOURCE_FACTOR`` x ``failures`` over all
    staff numbers out of every one. So nobody can lock another person out from elsewhere, and
    an unknown staff number gets the same answers (and the same argon2 work) as a known one.
    An account locked by wrong second-factor codes (``Staff.locked_until``) refuses even the
    right password; that is told only to whoever gave the right password."""
    from sqlalchemy import func

    from bingan.core.models import LoginFailure

    now = now or utcnow()
    source = (source or "unknown")[:64]
    key = (staff_no or "").strip()[:64]
    if key and session.scalar(select(Staff.id).where(Staff.staff_no == key)) is None:
        key = identifiers.staff_no(key)[:64]  # typed as d0001 or in full-width letters
    row = _failure_row(session, source, key)
    if row is not None and row.locked_until and row.locked_until > now:
        return LoginResult(False, None, "locked", row.locked_until)
    window = now - dt.timedelta(minutes=lock_minutes)
    recent = session.scalar(select(func.coalesce(func.sum(LoginFailure.failures), 0)).where(
        LoginFailure.source == source, LoginFailure.updated_at > window)) or 0
    if recent >= SOURCE_FACTOR * failures:
        return LoginResult(False, None, "throttled", now + dt.timedelta(minutes=lock_minutes))
    staff = session.scalar(select(Staff).where(Staff.staff_no == key)) if key else None
    ok = False
    try:
        if staff is None or staff.password_hash is None:
            _hasher.verify(_DUMMY_HASH, password + "x")  # same work, never matches
        else:
            ok = _hasher.verify(staff.password_hash, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        if row is None:
            row = LoginFailure(source=source, staff_no=key, failures=0)
            session.add(row)
        if row.locked_until and row.locked_until <= now or row.updated_at and \
                row.updated_at <= window:
            row.failures, row.locked_until = 0, None  # an old series starts again
        row.failures += 1
        row.updated_at = now
        if row.failures >= failures:
            row.locked_until = now + dt.timedelta(minutes=lock_minutes)
            return LoginResult(False, None, "locked", row.locked_until)
        return LoginResult(False, None, "bad_credentials")
    if row is not None:
        session.delete(row)
    if staff.locked_until and staff.locked_until > now:
        return LoginResult(False, staff, "locked", staff.locked_until)
    if not staff.active:
        return LoginResult(False, staff, "disabled")
    staff.failed_logins = 0
    staff.last_login_at = now
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = _hasher.hash(password)
    return LoginResult(True, staff, "ok")


def unlock(session: Session, staff: Staff) -> None:
    """An administrator's unlock: the account's second-factor lock and every source's
    password lock on its staff number."""
    from sqlalchemy import delete

    from bingan.core.models import LoginFailure

    staff.failed_logins, staff.locked_until, staff.totp_failures = 0, None, 0
    session.execute(delete(LoginFailure).where(LoginFailure.staff_no == staff.staff_no))


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
