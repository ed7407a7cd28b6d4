"""The clerk's form: register one admission by hand, or correct one on file.

Form fields are named after the import layout's keys, so a form is read exactly like a file
row (``layout.row_to_admission``) and goes through the same ``core.intake`` entry. Opening an
existing admission shows its front page: that asks the same access decision as the viewer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bingan.core import intake, permissions
from bingan.core.frontpage import (
    EXTRA_KEYS,
    HEADERS,
    SIGNER_COLUMNS,
    admission_to_row,
    problem_column,
    row_to_admission,
)
from bingan.core.models import Admission, Department
from bingan.core.records import DISCHARGE_WAYS, PAYMENT_METHODS, SIGNER_ROLES
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor
from litestar import Request, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy import select

OPT = {"permission": "records.manage"}
FORM_DIAGNOSES = 5
FORM_OPERATIONS = 3
_KEY_BY_HEADER = {h: k for k, h in HEADERS.items()}
FORM_KEYS = (
    ["mrn", "name", "sex", "birth_date", "id_number", "phone", "current_address", "visit_no",
     "admitted_at", "discharged_at", "admit_department", "discharge_department", "ward",
     "discharge_way", "payment_method", "main_dx_code", "main_dx_name", "main_dx_condition",
     "admit_physician", "attending_physician", "treating_physicians"]
    + [f"dx{n}_{f}" for n in range(1, FORM_DIAGNOSES + 1) for f in ("code", "name", "condition")]
    + [f"op{n}_{f}" for n in range(1, FORM_OPERATIONS + 1)
       for f in ("code", "name", "date", "surgeon")]
    + list(SIGNER_COLUMNS))


def _departments(rt) -> list[tuple[str, str]]:
    with rt.sessions() as s:
        return list(s.execute(select(Department.code, Department.name)
                              .where(Department.active.is_(True)).order_by(Department.code)))


def _render(request: Request, values: dict[str, Any], errors: dict[str, str], *,
            editing: str | None, saved: bool = False, general: list[str] | None = None):
    rt = request.app.state.rt
    return page(request, "admission_import/clerk.html", v=values, errors=errors,
                editing=editing, saved=saved, general=general or [],
                departments=_departments(rt), ways=DISCHARGE_WAYS, payments=PAYMENT_METHODS,
                signers=[(col, SIGNER_ROLES[role]) for col, role in SIGNER_COLUMNS.items()],
                n_dx=FORM_DIAGNOSES, n_ops=FORM_OPERATIONS,
                status_code=200 if not errors and not general else 422)


@get("/admissions/new", opt=OPT)
async def new_form(request: Request, no: FromQuery[str | None] = None) -> Any:
    if no:
        return Redirect(f"/admissions/{no.strip()}/edit")
    return _render(request, {}, {}, editing=None)


def _allowed(s, rt, request: Request, adm: Admission) -> None:
    d = permissions.decide(s, rt, request.state.staff, adm, "view", actor=actor(request))
    if not d.allowed:
        s.commit()
        raise PermissionDeniedException(f"无权查看该病案：{d.reason}")


@get("/admissions/{admission_no:str}/edit", opt=OPT)
@in_thread
def edit_form(request: Request, admission_no: FromPath[str],
              saved: FromQuery[int] = 0) -> Any:
    rt = request.app.state.rt
    with rt.sessions() as s, s.begin():
        adm = s.scalar(select(Admission).where(Admission.admission_no == admission_no))
        if adm is None:
            raise NotFoundException(f"住院号 {admission_no} 不存在，可在“手工登记住院”中新增")
        _allowed(s, rt, request, adm)
        values = admission_to_row(intake.admission_as_input(adm), {}, tz=rt.tz)
    values.pop("id_number", None)  # kept encrypted; typed again only to change it
    for key in ("admitted_at", "discharged_at"):
        if values.get(key):
            values[key] = str(values[key]).replace(" ", "T")
    return _render(request, values, {}, editing=admission_no, saved=bool(saved))


def _form_values(form) -> dict[str, Any]:
    return {k: (str(v).strip() or None) for k, v in form.items() if k in HEADERS}


async def _submit(request: Request, editing: str | None) -> Any:
    import anyio

    form = dict(await request.form())
    return await anyio.to_thread.run_sync(_save, request, form, editing)


def _save(request: Request, form: dict[str, Any], editing: str | None) -> Any:
    rt = request.app.state.rt
    values = _form_values(form)
    who = actor(request)
    source = intake.Source("clerk", who, ref="web",
                           authority=bool(form.get("correct_identity")))
    with rt.sessions() as s, s.begin():
        existing = None
        if editing:
            existing = s.scalar(select(Admission).where(Admission.admission_no == editing))
            if existing is None:
                raise NotFoundException(f"住院号 {editing} 不存在")
            _allowed(s, rt, request, existing)
            # what the form does not show keeps its value on file
            kept = admission_to_row(intake.admission_as_input(existing), {}, tz=rt.tz)
            values = {**kept, **{k: values.get(k) for k in FORM_KEYS}}
            values["admission_no"] = editing
        if not values.get("visit_no"):
            if existing is not None:
                values["visit_no"] = str(existing.visit_no)
            elif values.get("mrn"):
                values["visit_no"] = str(intake.next_visit_no(s, values["mrn"]))
        parsed = row_to_admission(values, tz=rt.tz)
        errors = {_KEY_BY_HEADER.get(c, c): r for c, r, _v in parsed.problems}
        if parsed.admission is not None:
            data = parsed.admission
            if existing is not None:
                kept_extra = {k: v for k, v in (existing.front_page or {}).items()
                              if k not in EXTRA_KEYS}
                data = dataclasses.replace(data, extra={**kept_extra, **data.extra})
            try:
                intake.record_admission(s, rt, data, source)
            except intake.IntakeError as exc:
                for p in exc.problems:
                    col = problem_column(p.field, parsed.origin)
                    errors.setdefault(_KEY_BY_HEADER.get(col, col),
                                      p.reason + (f"（{p.value}）" if p.value else ""))
        if errors:
            s.rollback()
            general = [f"{HEADERS.get(k, k)}：{r}" for k, r in errors.items()]
            for key in ("admitted_at", "discharged_at"):
                if values.get(key):
                    values[key] = str(values[key]).replace(" ", "T")
            return _render(request, values, errors, editing=editing, general=general)
        no = data.admission_no
    return Redirect(f"/admissions/{no}/edit?saved=1")


@post("/admissions/new", opt=OPT)
async def create(request: Request) -> Any:
    return await _submit(request, None)


@post("/admissions/{admission_no:str}/edit", opt=OPT)
async def update(request: Request, admission_no: FromPath[str]) -> Any:
    return await _submit(request, admission_no)


CLERK_ROUTES = [new_form, edit_form, create, update]
