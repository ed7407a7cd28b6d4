"""The record page: ``GET /records/{admission_no}``, owned by core.

Every link to a record (search results, applications, the EMR launch) points here, so it works
whatever plugins are enabled. The page asks core's access decision (``permissions.decide``,
action ``view``, the same as every path that shows record content) and writes one audit event
``record.view`` carrying the decision, allowed or not, with IP and computer name.

Allowed: the admission's front-page summary, then what plugins add through ``record_links``
(links) and ``record_panels`` (sections: the reading plugin's page viewer ...).
Refused: 403 with the reason and what ``record_denied`` offers (how to apply), nothing of the
record. Unknown admission: 404 (audited as failed).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.params import FromPath
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from bingan.core import audit, permissions
from bingan.core.models import Admission, Staff, utcnow
from bingan.core.records import DISCHARGE_WAYS, PAYMENT_METHODS, SEXES, SIGNER_ROLES, to_ref
from bingan.core.staff import department_names
from bingan.core.web.render import in_thread, page
from bingan.core.web.security import actor
from bingan.hooks import hookimpl
from bingan.hooks.types import RecordDenied, RecordLink, RecordPanel, RecordView

DIAGNOSIS_KINDS = {"main": "主要诊断", "other": "其他诊断", "outpatient": "门急诊诊断",
                   "pathology": "病理诊断", "injury": "损伤中毒外因"}


def _department_label(s, code: str | None) -> str | None:
    """ "心血管内科（1001）" for a known department code, the code itself otherwise."""
    if not code:
        return None
    name = department_names(s).get(code)
    return f"{name}（{code}）" if name else code


def _staff_label(s, staff_no: str) -> str:
    """ "林晓雯（D0002）" for a known staff number, the number alone otherwise."""
    name = s.scalar(select(Staff.name).where(Staff.staff_no == staff_no))
    return f"{name}（{staff_no}）" if name else staff_no


def front_page(s, adm: Admission) -> dict[str, Any]:
    """The front-page summary of an admission as the record page shows it."""
    p = adm.patient
    signer_order = list(SIGNER_ROLES)
    return {
        "mrn": p.mrn, "name": p.name, "sex": SEXES.get(p.sex or "U", "未知"),
        "age": adm.age_years, "admission_no": adm.admission_no, "visit_no": adm.visit_no,
        "admitted_at": adm.admitted_at, "discharged_at": adm.discharged_at,
        "admit_department": _department_label(s, adm.admit_department),
        "discharge_department": _department_label(s, adm.discharge_department),
        "ward": adm.ward,
        "discharge_way": DISCHARGE_WAYS.get(adm.discharge_way or "", adm.discharge_way or ""),
        "los_days": adm.los_days,
        "payment_method": PAYMENT_METHODS.get(adm.payment_method or "", adm.payment_method),
        "diagnoses": [(DIAGNOSIS_KINDS.get(d.kind, d.kind), d.code, d.name)
                      for d in adm.diagnoses],
        "operations": [(o.code, o.name, o.op_date) for o in adm.operations],
        "signers": [(SIGNER_ROLES.get(sg.role, sg.role), _staff_label(s, sg.staff_no))
                    for sg in sorted(adm.signers, key=lambda x: signer_order.index(x.role)
                                     if x.role in signer_order else 99)],
    }


def _collect(results) -> list:
    return [x for group in results for x in (group or [])]


def _query(request: Request) -> dict[str, str]:
    """The page's query parameters (first value each), bounded."""
    return {k[:32]: str(v)[:200] for k, v in list(request.query_params.items())[:20]}


@get("/records/{admission_no:str}")
@in_thread
def record_page(request: Request, admission_no: FromPath[str]) -> Any:
    rt = request.app.state.rt
    staff = request.state.staff
    act = actor(request)
    with rt.sessions() as s, s.begin():
        adm = s.scalar(select(Admission).where(Admission.admission_no == admission_no)
                       .options(joinedload(Admission.patient),
                                selectinload(Admission.signers)))
        if adm is None:
            audit.record(s, rt, "record.view", actor=act, outcome="failed",
                         admission_no=admission_no[:32], detail={"why": "unknown admission"})
            return page(request, "error.html", status_code=404, title="病案不存在",
                        message=f"住院号 {admission_no} 不存在。")
        d = permissions.decide(s, rt, staff, adm, "view", actor=act, record=False)
        audit.record(s, rt, "record.view", actor=act, outcome="ok" if d.allowed else "denied",
                     mrn=adm.patient.mrn, admission_no=adm.admission_no,
                     detail={"via": "record page", "reason": d.reason,
                             "votes": [f"{p}:{v.rule}:{'allow' if v.allow else 'deny'}"
                                       for p, v in d.votes]})
        ref = to_ref(adm)
        if not d.allowed:
            denied = RecordDenied(admission=ref, staff=staff, reason=d.reason,
                                  votes=tuple(d.votes))
            panels: list[RecordPanel] = sorted(
                _collect(rt.pm.hook.record_denied(record=denied, session=s, rt=rt)),
                key=lambda p: (p.order, p.key))
            reason = ("；".join(v.reason for _, v in d.votes if not v.allow and v.reason)
                      or "您没有查阅该病案的授权")
            return page(request, "record_denied.html", status_code=403, title="无权查阅该病案",
                        admission_no=adm.admission_no, reason=reason, panels=panels)
        view = RecordView(admission=ref, staff=staff, query=_query(request), until=d.until)
        links: list[RecordLink] = sorted(
            _collect(rt.pm.hook.record_links(record=view, session=s, rt=rt)),
            key=lambda x: (x.order, x.label))
        panels = sorted(_collect(rt.pm.hook.record_panels(record=view, session=s, rt=rt)),
                        key=lambda p: (p.order, p.key))
        fp = front_page(s, adm)
    now = utcnow()
    basis = "；".join(dict.fromkeys(
        v.reason or v.rule for _, v in d.votes if v.allow and (v.until is None or v.until > now)))
    return page(request, "record.html", title=f"病案 {adm.admission_no}", record=fp,
                basis=basis, until=d.until, links=links, panels=panels,
                styles=list(dict.fromkeys(u for p in panels for u in p.styles)),
                scripts=list(dict.fromkeys(u for p in panels for u in p.scripts)),
                body_class=" ".join(dict.fromkeys(p.body_class for p in panels
                                                  if p.body_class)))


@hookimpl
def register_routes():
    return [record_page]
