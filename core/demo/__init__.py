"""The demo hospital behind ``bingan demo load``.

``load_demo(session, rt)`` fills an empty database with departments, staff (with passwords) and
300 deterministic stays of 220 fictitious patients, through the ordinary services
(``core.staff``, and the admissions through an intake path: ``demo_admissions``, else
``core.intake``) and inside the caller's transaction. The
caller checks that the database is empty; loading twice fails on the duplicate departments.

Demo logins: every staff member signs in with ``data.DEMO_PASSWORD`` except the administrator
``A0001``, who has ``data.ADMIN_PASSWORD`` (and must set up TOTP on first sign-in when TOTP is
required for administrators).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bingan.core.demo import data
from bingan.core.demo.generate import build_admissions, id_check_digit, id_number_valid

__all__ = ["DemoSummary", "build_admissions", "demo_logins", "id_check_digit", "id_number_valid",
           "load_demo"]


@dataclass(frozen=True)
class DemoSummary:
    """What ``load_demo`` created."""

    departments: int
    staff: int
    patients: int
    admissions: int
    in_hospital: int
    deaths: int
    against_advice: int
    readmissions_31d: int
    diagnoses: int
    operations: int
    # (staff_no, name, role label, password)
    logins: list[tuple[str, str, str, str]] = field(default_factory=list)


def _role_label(row: data.StaffRow) -> str:
    from bingan.core.staff import BUILTIN_ROLES

    label = "、".join(BUILTIN_ROLES[r][0] for r in row.roles)
    dept = data.DEPT_NAME[data.DEPT_CODE[row.dept]]
    return f"{label}·{dept}"


def demo_logins() -> list[tuple[str, str, str, str]]:
    """The demo accounts: (staff_no, name, role label, password)."""
    return [(s.staff_no, s.name, _role_label(s), s.password) for s in data.STAFF]


def load_demo(session, rt) -> DemoSummary:
    """Fill an empty database with the demo hospital (no commit: the caller's transaction)."""
    from bingan.core import audit, intake
    from bingan.core.staff import add_department, add_staff, ensure_builtin_roles

    ensure_builtin_roles(session, rt)
    for code, name, kind, _key in data.DEPARTMENTS:
        add_department(session, code, name, kind)
    # Each account gets its own salted hash (a shared hash would show who shares a password).
    for s in data.STAFF:
        add_staff(session, s.staff_no, s.name, s.password, data.DEPT_CODE[s.dept],
                  list(s.roles), s.title)
    admissions = build_admissions(rt.tz)
    # Through a real intake path: a plugin that answers ``demo_admissions`` (the front-page
    # file import) feeds them as a hospital would; otherwise core's validated entry directly.
    fed = rt.pm.hook.demo_admissions(session=session, admissions=list(admissions), rt=rt)
    if fed is None:
        directory = intake.Directory(session)
        for a in admissions:
            intake.record_admission(session, rt, a, intake.Source("demo", audit.Actor.cli()),
                                    directory=directory)
    elif fed != len(admissions):
        raise RuntimeError(f"demo: only {fed} of {len(admissions)} admissions went in")
    session.flush()
    return DemoSummary(
        departments=len(data.DEPARTMENTS),
        staff=len(data.STAFF),
        patients=len({a.patient.mrn for a in admissions}),
        admissions=len(admissions),
        in_hospital=sum(a.discharged_at is None for a in admissions),
        deaths=sum(a.discharge_way == "5" for a in admissions),
        against_advice=sum(a.discharge_way == "4" for a in admissions),
        readmissions_31d=sum(a.readmission_31d for a in admissions),
        diagnoses=sum(len(a.diagnoses) for a in admissions),
        operations=sum(len(a.operations) for a in admissions),
        logins=demo_logins(),
    )
