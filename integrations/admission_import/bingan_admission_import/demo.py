"""The demo hospital's admissions through the import: written as a front-page file in the
national layout (departments by name, physicians by staff number), then imported."""

from __future__ import annotations

from bingan.core import audit
from bingan.core.models import Department
from sqlalchemy import select
from bingan.core.config import CoreSettings


def feed(rt, session, admissions) -> int:
    from bingan.core.frontpage import admission_to_row

    from bingan_admission_import.export import write_rows
    from bingan_admission_import.service import import_file

    core = rt.settings(CoreSettings)
    # read in the caller's transaction: the departments were just added there
    names = dict(session.execute(select(Department.code, Department.name)).all())
    rows = [admission_to_row(a, names, core.hospital_name, core.org_code, tz=rt.tz)
            for a in admissions]
    folder = rt.home / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "住院病案首页.xlsx"
    path.write_bytes(write_rows(rows))
    report = import_file(rt, path, actor=audit.Actor.cli(), session=session)
    if report.refused or report.rejected:
        raise RuntimeError("demo front pages refused: " + "; ".join(
            report.lines(5) or [report.refused or ""]))
    return report.accepted
