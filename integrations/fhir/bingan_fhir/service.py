"""What the FHIR routes and the push share: loading records, the access decision, searches.

Every search names its patient or stay (ITI-67 requires ``patient`` or ``patient.identifier``),
so each answer covers a handful of admissions, and each admission passes
``core.permissions.decide(client, admission, "view")``, the viewer's own decision, before
anything of it is returned.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from bingan.core import audit, permissions
from bingan.core.models import Admission, Document, Patient
from bingan.core.staff import department_names
from bingan.hooks.types import StaffRef

from bingan_fhir import resources as R
from bingan_fhir.search import (
    SearchError, check_params, date_condition, patient_identifier_condition, reference_id,
    tokens,
)
from bingan_fhir.settings import FhirSettings
from bingan.core.config import CoreSettings


def settings(rt) -> FhirSettings:
    return rt.settings(FhirSettings)


def base_url(rt, request_base: str | None = None) -> str:
    st = settings(rt)
    return st.base_url or (request_base or "").rstrip("/")


@dataclass
class Found:
    resources: list[dict[str, Any]] = field(default_factory=list)
    admissions: list[Admission] = field(default_factory=list)


def _load(q):
    return q.options(joinedload(Admission.patient), selectinload(Admission.signers))


def may_view(s: Session, rt, user: StaffRef, adm: Admission) -> permissions.Decision:
    return permissions.decide(s, rt, user, adm, "view", record=False)


def _admissions(s: Session, rt, params, *, need_patient: bool) -> list[Admission]:
    """Admissions selected by patient / patient.identifier / encounter / identifier."""
    st = settings(rt)
    q = _load(select(Admission).join(Patient, Admission.patient_id == Patient.id))
    named = False
    if "patient" in params:
        q = q.where(Admission.patient_id == reference_id(params["patient"], "Patient"))
        named = True
    if "patient.identifier" in params:
        q = q.where(patient_identifier_condition(st, rt, params["patient.identifier"]))
        named = True
    if "encounter" in params:
        q = q.where(Admission.id == reference_id(params["encounter"], "Encounter"))
        named = True
    if "identifier" in params and not need_patient:
        ors = [Admission.admission_no == t.code for t in tokens(params["identifier"])
               if t.system in (None, st.admission_no_system)]
        q = q.where(or_(*ors) if ors else false())
        named = True
    if not named:
        raise SearchError("须给出患者（patient 或 patient.identifier）"
                          + ("" if need_patient else "、住院号（identifier）或 _id"))
    return list(s.scalars(q.order_by(Admission.admitted_at.desc(), Admission.id.desc())).unique())


def _readable(s: Session, rt, user: StaffRef, adms: list[Admission]) -> list[Admission]:
    return [a for a in adms if may_view(s, rt, user, a).allowed]


def search_documents(s: Session, rt, user: StaffRef, params, base: str) -> Found:
    """ITI-67 Find Document References."""
    st = settings(rt)
    check_params(params, {"patient", "patient.identifier", "status", "date", "type",
                          "encounter", "_id"})
    ids = [p.strip() for p in params["_id"].split(",")] if "_id" in params else None
    if ids is not None and not any(k in params for k in ("patient", "patient.identifier",
                                                         "encounter")):
        # a read by id: the documents' admissions are the ones named
        adm_ids = set()
        for i in ids:
            kind, _, num = i.partition("-")
            if not num.isdigit() or kind not in ("pdf", "fp"):
                continue
            if kind == "fp":
                adm_ids.add(int(num))
            else:
                doc = s.get(Document, int(num))
                if doc is not None:
                    adm_ids.add(doc.admission_id)
        adms = list(s.scalars(_load(select(Admission).where(Admission.id.in_(adm_ids))))
                    .unique()) if adm_ids else []
    else:
        adms = _admissions(s, rt, params, need_patient=True)
    statuses = set(tokens(params["status"])) if "status" in params else None
    want_status = {t.code for t in statuses} if statuses else None
    kinds = {"pdf", "fp"}
    if "type" in params:
        kinds = set()
        for t in tokens(params["type"]):
            if t.code == st.pdf_type.code and t.system in (None, st.pdf_type.system):
                kinds.add("pdf")
            if t.code == st.front_page_type.code and t.system in (None,
                                                                   st.front_page_type.system):
                kinds.add("fp")
    dates = params.getall("date") if "date" in params else []
    for raw in dates:
        date_condition(Document.created_at, raw, rt.tz)  # refuse a bad date before anything else
    found = Found()
    rows: list[tuple[dt.datetime, str, dict[str, Any]]] = []
    for adm in _readable(s, rt, user, adms):
        found.admissions.append(adm)
        if "pdf" in kinds:
            q = select(Document).where(Document.admission_id == adm.id)
            for raw in dates:
                q = q.where(date_condition(Document.created_at, raw, rt.tz))
            docs = list(s.scalars(select(Document).where(Document.admission_id == adm.id)
                                  .order_by(Document.version)))
            latest = docs[-1].version if docs else 0
            keep = {d.id for d in s.scalars(q)}
            prev = None
            for d in docs:
                if d.id in keep:
                    res = R.pdf_reference(st, base, rt.settings(CoreSettings), adm, d, latest, prev)
                    rows.append((d.created_at, res["id"], res))
                prev = d.id
        if "fp" in kinds and front_page_ready(adm):
            res = R.front_page_reference(st, base, rt.settings(CoreSettings), adm)
            stamp = adm.updated_at or adm.created_at
            if all(_in_range(stamp, raw, rt.tz) for raw in dates):
                rows.append((stamp, res["id"], res))
    for _t, rid, res in sorted(rows, key=lambda r: (r[0], r[1]), reverse=True):
        if ids is not None and rid not in ids:
            continue
        if want_status is not None and res["status"] not in want_status:
            continue
        found.resources.append(res)
    return found


def front_page_ready(adm: Admission) -> bool:
    """A front page exists once the stay is over (discharged)."""
    return adm.discharged_at is not None


def _in_range(t: dt.datetime, raw: str, tz: dt.tzinfo) -> bool:
    from bingan_fhir.search import date_range

    prefix, start, end = date_range(raw, tz)
    return {"eq": start <= t < end, "ge": t >= start, "gt": t >= end, "le": t < end,
            "lt": t < start}[prefix]


def search_encounters(s: Session, rt, user: StaffRef, params) -> Found:
    st = settings(rt)
    check_params(params, {"patient", "patient.identifier", "identifier", "status", "_id"})
    if "_id" in params and not any(k in params for k in ("patient", "patient.identifier",
                                                         "identifier")):
        nums = [int(x) for x in params["_id"].split(",") if x.strip().isdigit()]
        adms = list(s.scalars(_load(select(Admission).where(Admission.id.in_(nums)))).unique())
    else:
        adms = _admissions(s, rt, params, need_patient=False)
    want = {t.code for t in tokens(params["status"])} if "status" in params else None
    names = department_names(s)
    found = Found()
    for adm in _readable(s, rt, user, adms):
        res = R.encounter_resource(st, adm, names, rt.tz)
        if want is not None and res["status"] not in want:
            continue
        found.admissions.append(adm)
        found.resources.append(res)
    return found


def search_patients(s: Session, rt, user: StaffRef, params) -> Found:
    """Patients named by identifier or id, shown when the client may read at least one of
    their admissions (a patient with nothing readable is not disclosed)."""
    from bingan.core.records import decrypt_id_number

    st = settings(rt)
    check_params(params, {"identifier", "_id"})
    q = select(Patient)
    if "identifier" in params:
        q = q.where(patient_identifier_condition(st, rt, params["identifier"]))
    elif "_id" in params:
        q = q.where(Patient.id.in_([int(x) for x in params["_id"].split(",")
                                    if x.strip().isdigit()]))
    else:
        raise SearchError("须给出 identifier（病案号或身份证号）或 _id")
    found = Found()
    for p in s.scalars(q.order_by(Patient.id)):
        adms = list(s.scalars(_load(select(Admission).where(Admission.patient_id == p.id)))
                    .unique())
        readable = _readable(s, rt, user, adms)
        if not readable:
            continue
        found.admissions.extend(readable)
        idn = decrypt_id_number(rt, p) if st.expose_id_number else None
        found.resources.append(R.patient_resource(st, p, idn))
    return found


def audit_search(s: Session, rt, who: audit.Actor, resource: str, params,
                 found: Found) -> None:
    """One audit event per search (M12), naming the records it returned."""
    mrns = sorted({a.patient.mrn for a in found.admissions})
    audit.record(s, rt, "fhir.search", actor=who, mrn=mrns[0] if len(mrns) == 1 else None,
                 detail={"resource": resource,
                         "query": {k: params.getall(k) for k in params.keys()},
                         "count": len(found.resources),
                         "admissions": sorted({a.admission_no for a in found.admissions})[:100]})


def load_admission(s: Session, admission_id: int) -> Admission | None:
    return s.scalar(_load(select(Admission).where(Admission.id == admission_id)))
