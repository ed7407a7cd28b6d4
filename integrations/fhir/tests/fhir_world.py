"""Helpers of the FHIR tests: a small hospital, admissions through core's intake, real PDFs,
API clients, and fhirclient's R4 models to check every answer."""

from __future__ import annotations

import datetime as dt
import io

import pikepdf

from bingan.core import apiclients, audit, intake
from bingan.core.pages import add_document
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles
from bingan.hooks.types import AdmissionIn, DiagnosisIn, PatientIn

CN = dt.timezone(dt.timedelta(hours=8))
MRN_SYSTEM = "urn:oid:2.16.156.10011.1.13"
ADM_SYSTEM = "urn:oid:2.16.156.10011.1.12"


def hospital(rt) -> None:
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_staff(s, "D0001", "陈志远", None, "1001", ["physician"])
        add_staff(s, "D0002", "王芳", None, "1001", ["physician"])


def admit(rt, mrn: str, admission_no: str, visit: int, *, name="张三",
          discharged: bool = True, id_number: str | None = None) -> int:
    start = dt.datetime(2026, 3, 1, 9, 30, tzinfo=CN) + dt.timedelta(days=20 * visit)
    data = AdmissionIn(
        patient=PatientIn(mrn=mrn, name=name, sex="M", birth_date=dt.date(1960, 3, 1),
                          id_number=id_number),
        admission_no=admission_no, visit_no=visit, admitted_at=start,
        discharged_at=start + dt.timedelta(days=7) if discharged else None,
        admit_department="1001", discharge_department="1001", ward="三病区",
        discharge_way="1" if discharged else None, payment_method="1",
        diagnoses=(DiagnosisIn("I20.000", "不稳定型心绞痛", "main", "1"),) if discharged else (),
        signers={"attending": "D0002"} if discharged else {})
    with rt.sessions() as s, s.begin():
        res = intake.record_admission(s, rt, data, intake.Source("clerk", audit.Actor("R0001")))
        return res.admission.id


def pdf_bytes(pages: int, label: str) -> bytes:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=(595, 842))
    pdf.docinfo["/Title"] = label
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def document(rt, admission_id: int, pages: int = 2, label: str = "v") -> tuple[int, bytes]:
    from bingan.core.models import Admission

    data = pdf_bytes(pages, label)
    with rt.sessions() as s, s.begin():
        doc = add_document(s, rt, s.get(Admission, admission_id), data, pages,
                           created_by="R0001")
        return doc.id, data


def client(rt, client_id: str = "cdr", scopes=("documents.read",)) -> str:
    with rt.sessions() as s, s.begin():
        _c, token = apiclients.add_client(s, rt, client_id, "临床数据中心", list(scopes),
                                          audit.Actor("A0001"))
    return token


def validate(body: dict):
    """Parse a FHIR JSON answer with fhirclient's R4 models (strict: unknown or badly typed
    elements raise) and check it serialises back to what we sent."""
    from fhirclient.models import fhirelementfactory

    res = fhirelementfactory.FHIRElementFactory.instantiate(body["resourceType"], body)
    assert res.as_json() == body
    return res
