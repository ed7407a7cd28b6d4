"""System-credential endpoints of core: the OAuth2 token endpoint and the write-admissions API.

``POST /oauth/token`` (client-credentials grant) and ``POST /api/admissions`` (scope
``admissions.write``): an integrator's HIS or EMR registers or updates an admission with its
front page through the same validated entry as every other path (``core.intake``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated, Any

import msgspec
from bingan.core import apiclients, audit, intake
from bingan.core.web.render import in_thread
from bingan.core.web.security import actor, api_route
from bingan.hooks import hookimpl
from bingan.hooks.types import AdmissionIn, DiagnosisIn, OperationIn, PatientIn
from litestar import Request, Response, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _oauth_error(status: int, error: str, description: str) -> Response:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="bingan"'
    return Response({"error": error, "error_description": description}, status_code=status,
                    headers=headers)


def _basic(request: Request) -> tuple[str, str] | None:
    raw = request.headers.get("authorization", "")
    kind, _, value = raw.partition(" ")
    if kind.lower() != "basic":
        return None
    try:
        user, _, pw = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, pw


@post("/oauth/token", opt={"public": True, "exclude_from_csrf": True}, status_code=200)
@in_thread
def oauth_token(request: Request, data: Form) -> Response:
    """OAuth2 client-credentials grant (RFC 6749 4.4): ``grant_type=client_credentials`` with
    the client's id and secret (HTTP Basic or form fields) and an optional ``scope``."""
    rt = request.app.state.rt
    who = actor(request)
    if data.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "只支持 client_credentials")
    creds = _basic(request) or (str(data.get("client_id", "")), str(data.get("client_secret", "")))
    client_id, secret = creds
    scopes = str(data.get("scope", "")).split()
    with rt.sessions() as s, s.begin():
        client = apiclients.check_secret(s, rt, client_id, secret) if client_id else None
        if client is None:
            audit.record(s, rt, "api.token", outcome="failed",
                         actor=audit.Actor(staff_no=None, client_ip=who.client_ip,
                                           computer_name=who.computer_name),
                         detail={"client_id": client_id[:32], "why": "invalid_client"})
            s.commit()
            return _oauth_error(401, "invalid_client", "客户端编号或密钥错误，或已撤销")
        try:
            token, row = apiclients.issue_token(s, rt, client, scopes)
        except apiclients.ApiClientError as exc:
            return _oauth_error(400, "invalid_scope", str(exc))
        audit.record(s, rt, "api.token", actor=audit.Actor(
            staff_no=f"api:{client.client_id}", client_ip=who.client_ip,
            computer_name=who.computer_name), detail={"scopes": row.scopes})
        return Response({"access_token": token, "token_type": "Bearer",
                         "expires_in": int(apiclients.TOKEN_TTL.total_seconds()),
                         "scope": " ".join(row.scopes)},
                        headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


class PatientBody(msgspec.Struct, forbid_unknown_fields=True):
    mrn: str
    name: str
    sex: str = "U"
    birth_date: dt.date | None = None
    id_number: str | None = None
    phone: str | None = None
    address: str | None = None


class DiagnosisBody(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    name: str
    kind: str = "other"
    admission_condition: str | None = None


class OperationBody(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    name: str
    date: dt.date | None = None
    level: str | None = None
    surgeon: str | None = None
    assistant1: str | None = None
    assistant2: str | None = None
    incision_healing: str | None = None
    anaesthesia: str | None = None
    anaesthetist: str | None = None


class CareTeamBody(msgspec.Struct, forbid_unknown_fields=True):
    """The physicians of the stay (staff number, 姓名(工号) or a unique name): while the
    patient is in hospital they read the patient's earlier records (M6)."""

    admit_physician: str | None = None
    attending_physician: str | None = None
    resident_physician: str | None = None
    treating_physicians: list[str] = []


class AdmissionBody(msgspec.Struct, forbid_unknown_fields=True):
    """One admission with its front page. Times without an offset are hospital time ([core] timezone).
    ``visit_no`` (住院次数) omitted: the patient's next one for a new admission. ``signers``:
    front-page role (dept_head chief attending resident nurse fellow intern coder qc_doctor
    qc_nurse) to staff number, 姓名(工号) or a unique name. Departments: code or name."""

    patient: PatientBody
    admission_no: str
    admitted_at: dt.datetime
    visit_no: int | None = None
    discharged_at: dt.datetime | None = None
    admit_department: str | None = None
    discharge_department: str | None = None
    ward: str | None = None
    discharge_way: str | None = None
    payment_method: str | None = None
    diagnoses: list[DiagnosisBody] = []
    operations: list[OperationBody] = []
    signers: dict[str, str] = {}
    care_team: CareTeamBody | None = None
    readmission_31d: bool = False
    total_cost: float | None = None
    front_page: dict[str, Any] = {}


class ProblemOut(msgspec.Struct):
    field: str
    reason: str
    value: str | None


class AdmissionWritten(msgspec.Struct):
    admission_no: str
    mrn: str
    visit_no: int
    barcode: str
    created: bool
    changed: bool


def _aware(value: dt.datetime | None, tz: dt.tzinfo) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def body_to_input(body: AdmissionBody, visit_no: int, tz: dt.tzinfo) -> AdmissionIn:
    """The API body as an intake input; times without an offset are hospital time (``tz``)."""
    extra = {k: v for k, v in body.front_page.items() if k not in intake.CARE_TEAM_KEYS}
    if body.care_team is not None:
        ct = body.care_team
        for key in ("admit_physician", "attending_physician", "resident_physician"):
            if getattr(ct, key):
                extra[key] = getattr(ct, key)
        if ct.treating_physicians:
            extra["treating_physicians"] = list(ct.treating_physicians)
    p = body.patient
    return AdmissionIn(
        patient=PatientIn(mrn=p.mrn, name=p.name, sex=p.sex,  # type: ignore[arg-type]
                          birth_date=p.birth_date, id_number=p.id_number, phone=p.phone,
                          address=p.address),
        admission_no=body.admission_no, visit_no=visit_no,
        admitted_at=_aware(body.admitted_at, tz), discharged_at=_aware(body.discharged_at, tz),
        admit_department=body.admit_department, discharge_department=body.discharge_department,
        ward=body.ward, discharge_way=body.discharge_way, payment_method=body.payment_method,
        diagnoses=tuple(DiagnosisIn(code=d.code, name=d.name, kind=d.kind,
                                    admission_condition=d.admission_condition)
                        for d in body.diagnoses),
        operations=tuple(OperationIn(
            code=o.code, name=o.name, date=o.date, level=o.level, surgeon_no=o.surgeon,
            assistant1_no=o.assistant1, assistant2_no=o.assistant2,
            incision_healing=o.incision_healing, anaesthesia=o.anaesthesia,
            anaesthetist_no=o.anaesthetist) for o in body.operations),
        signers=dict(body.signers), readmission_31d=body.readmission_31d,
        total_cost=body.total_cost, extra=extra)


@post("/api/admissions", opt=api_route("admissions.write"), status_code=200)
@in_thread
def api_write_admission(request: Request,
                        data: Annotated[AdmissionBody, Body(title="住院记录")]) -> Response:
    """Register or update one admission with its front page (scope ``admissions.write``).

    201 when created, 200 when updated (or unchanged), 422 with every problem
    (``field``, ``reason``, ``value``) when refused: nothing is written then."""
    from bingan.core.models import Admission
    from sqlalchemy import select

    rt = request.app.state.rt
    who = actor(request)
    source = intake.Source("api", who, ref=who.staff_no or "", authority=True)
    adm_in = None
    try:
        with rt.sessions() as s, s.begin():
            visit = data.visit_no
            if visit is None:
                known = s.scalar(select(Admission.visit_no).where(
                    Admission.admission_no == data.admission_no))
                visit = known or intake.next_visit_no(s, data.patient.mrn)
            adm_in = body_to_input(data, visit, rt.tz)
            res = intake.record_admission(s, rt, adm_in, source)
            out = AdmissionWritten(res.admission.admission_no, res.admission.mrn,
                                   res.admission.visit_no, res.admission.barcode, res.created,
                                   res.changed)
    except intake.IntakeError as exc:
        with rt.sessions() as s, s.begin():
            intake.record_refusal(s, rt, adm_in, source, exc.problems)
        return Response({"detail": "住院记录未通过校验，未写入", "problems": [
            msgspec.to_builtins(ProblemOut(p.field, p.reason, p.value))
            for p in exc.problems]}, status_code=422)
    return Response(msgspec.to_builtins(out), status_code=201 if res.created else 200)


@hookimpl
def register_routes():
    return [oauth_token, api_write_admission]
