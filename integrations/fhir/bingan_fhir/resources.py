"""FHIR R4 resources (as JSON-ready dicts) built from bingan's records.

Patient (病案号 and, when asked, 身份证 identifiers), Encounter (one stay: 住院号, period,
离院方式), DocumentReference following IHE MHD (the admission's PDF, each version; the front
page as a C0032 CDA document), Binary, Bundle, OperationOutcome and the CapabilityStatement.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo
import uuid
from typing import Any

from bingan.core.records import DISCHARGE_WAYS

from bingan_fhir.settings import Coding, FhirSettings

FHIR_JSON = "application/fhir+json"
MHD_PROFILE = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Minimal.DocumentReference"
FORMAT_SYSTEM = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
PDF_FORMAT = "urn:ihe:iti:xds:2017:mimeTypeSufficient"
CDA_FORMAT = "urn:ihe:iti:xds:2017:mimeTypeSufficient"
CDA_MEDIA_TYPE = "application/hl7-v3+xml"
GENDER = {"M": "male", "F": "female", "U": "unknown"}
# namespace of the document unique ids (urn:uuid:...): stable for one document everywhere
DOC_NS = uuid.UUID("0f6d3b5e-6d0b-4a55-9a43-6d1f2a7c0b8e")


def instant(t: dt.datetime) -> str:
    """An R4 ``instant``: UTC with seconds."""
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def local(t: dt.datetime | None, tz: dt.tzinfo) -> str | None:
    """An R4 ``dateTime`` in hospital time (``tz``, [core] timezone), as the hospital reads
    it."""
    return t.astimezone(tz).isoformat(timespec="seconds") if t else None


def coding(c: Coding) -> dict[str, Any]:
    out = {"system": c.system, "code": c.code}
    if c.display:
        out["display"] = c.display
    return out


def document_uid(org_code: str, kind: str, key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(DOC_NS, f'{org_code}/{kind}/{key}')}"


def patient_resource(st: FhirSettings, patient, id_number: str | None = None) -> dict[str, Any]:
    ids = [{"use": "usual", "type": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}],
        "text": "病案号"}, "system": st.mrn_system, "value": patient.mrn}]
    if id_number and st.expose_id_number:
        ids.append({"use": "official", "type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}],
            "text": "居民身份证"}, "system": st.id_number_system, "value": id_number})
    res: dict[str, Any] = {
        "resourceType": "Patient", "id": str(patient.id),
        "identifier": ids,
        "active": patient.merged_into_id is None,
        "name": [{"use": "official", "text": patient.name}],
        "gender": GENDER.get(patient.sex or "U", "unknown"),
    }
    if patient.birth_date:
        res["birthDate"] = patient.birth_date.isoformat()
    if patient.merged_into_id is not None:
        res["link"] = [{"other": {"reference": f"Patient/{patient.merged_into_id}"},
                        "type": "replaced-by"}]
    return res


def encounter_status(adm) -> str:
    if adm.cancelled_at is not None:
        return "entered-in-error"
    return "finished" if adm.discharged_at else "in-progress"


def encounter_resource(st: FhirSettings, adm, departments: dict[str, str],
                       tz: dt.tzinfo) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Encounter", "id": str(adm.id),
        "identifier": [{"use": "official", "system": st.admission_no_system,
                        "value": adm.admission_no}],
        "status": encounter_status(adm),
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                  "code": "IMP", "display": "inpatient encounter"},
        "subject": {"reference": f"Patient/{adm.patient_id}"},
        "period": {k: v for k, v in (("start", local(adm.admitted_at, tz)),
                                     ("end", local(adm.discharged_at, tz))) if v},
    }
    if adm.los_days is not None and adm.discharged_at:
        res["length"] = {"value": adm.los_days, "unit": "d", "system": "http://unitsofmeasure.org",
                         "code": "d"}
    if adm.discharge_way:
        res["hospitalization"] = {"dischargeDisposition": {"coding": [{
            "system": st.discharge_way_system, "code": adm.discharge_way,
            "display": DISCHARGE_WAYS.get(adm.discharge_way, adm.discharge_way)}]}}
    dept = adm.discharge_department or adm.admit_department
    if dept:
        res["serviceType"] = {"text": departments.get(dept, dept)}
    return res


def _subject(st: FhirSettings, adm) -> dict[str, Any]:
    return {"reference": f"Patient/{adm.patient_id}",
            "identifier": {"system": st.mrn_system, "value": adm.patient.mrn}}


def _custodian(st: FhirSettings, org_code: str, hospital: str) -> dict[str, Any]:
    return {"identifier": {"system": st.organization_system, "value": org_code},
            "display": hospital}


def _context(adm, tz: dt.tzinfo) -> dict[str, Any]:
    ctx: dict[str, Any] = {"encounter": [{"reference": f"Encounter/{adm.id}"}]}
    period = {k: v for k, v in (("start", local(adm.admitted_at, tz)),
                                ("end", local(adm.discharged_at, tz))) if v}
    if period:
        ctx["period"] = period
    return ctx


def pdf_status(adm, doc, latest_version: int) -> str:
    if adm.cancelled_at is not None:
        return "entered-in-error"
    return "current" if doc.version >= latest_version else "superseded"


def pdf_reference(st: FhirSettings, base: str, core, adm, doc, latest_version: int,
                  previous_id: int | None = None) -> dict[str, Any]:
    """The DocumentReference of one PDF version of an admission."""
    uid = document_uid(core.org_code, "pdf", doc.blob_sha256 + f"/{adm.id}/{doc.version}")
    res: dict[str, Any] = {
        "resourceType": "DocumentReference", "id": f"pdf-{doc.id}",
        "meta": {"profile": [MHD_PROFILE]},
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": uid},
        "identifier": [{"use": "official", "system": "urn:ietf:rfc:3986", "value": uid},
                       {"use": "secondary", "system": st.admission_no_system,
                        "value": adm.admission_no}],
        "status": pdf_status(adm, doc, latest_version),
        "docStatus": "final",
        "type": {"coding": [coding(st.pdf_type)]},
        "subject": _subject(st, adm),
        "date": instant(doc.created_at),
        "custodian": _custodian(st, core.org_code, core.hospital_name),
        "description": f"住院病案（住院号 {adm.admission_no}，第 {doc.version} 版，{doc.page_count} 页）",
        "content": [{
            "attachment": {"contentType": "application/pdf", "language": "zh-CN",
                           "url": f"{base}/fhir/Binary/pdf-{doc.id}", "size": int(doc.size),
                           "title": f"{adm.admission_no}_v{doc.version}.pdf",
                           "creation": local(doc.created_at, ZoneInfo(core.timezone))},
            "format": {"system": FORMAT_SYSTEM, "code": PDF_FORMAT}}],
        "context": _context(adm, ZoneInfo(core.timezone)),
    }
    if st.category is not None:
        res["category"] = [{"coding": [coding(st.category)]}]
    if previous_id is not None:
        res["relatesTo"] = [{"code": "replaces",
                             "target": {"reference": f"DocumentReference/pdf-{previous_id}"}}]
    return res


def front_page_reference(st: FhirSettings, base: str, core, adm) -> dict[str, Any]:
    """The DocumentReference of an admission's front page as a C0032 CDA document."""
    stamp = adm.updated_at or adm.created_at
    uid = document_uid(core.org_code, "c0032", f"{adm.id}/{instant(stamp)}")
    res: dict[str, Any] = {
        "resourceType": "DocumentReference", "id": f"fp-{adm.id}",
        "meta": {"profile": [MHD_PROFILE]},
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": uid},
        "identifier": [{"use": "secondary", "system": st.admission_no_system,
                        "value": adm.admission_no}],
        "status": "entered-in-error" if adm.cancelled_at is not None else "current",
        "docStatus": "final",
        "type": {"coding": [coding(st.front_page_type)]},
        "subject": _subject(st, adm),
        "date": instant(stamp),
        "custodian": _custodian(st, core.org_code, core.hospital_name),
        "description": f"住院病案首页（住院号 {adm.admission_no}，WS/T 500 C0032）",
        "content": [{
            "attachment": {"contentType": CDA_MEDIA_TYPE, "language": "zh-CN",
                           "url": f"{base}/fhir/Binary/fp-{adm.id}",
                           "title": f"{adm.admission_no}_C0032.xml",
                           "creation": local(stamp, ZoneInfo(core.timezone))},
            "format": {"system": FORMAT_SYSTEM, "code": CDA_FORMAT}}],
        "context": _context(adm, ZoneInfo(core.timezone)),
    }
    return res


def bundle(base: str, resources: list[dict[str, Any]], total: int, self_url: str,
           next_url: str | None = None) -> dict[str, Any]:
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle", "id": uuid.uuid4().hex, "type": "searchset",
        "meta": {"lastUpdated": instant(dt.datetime.now(dt.timezone.utc))},
        "total": total, "link": links,
        "entry": [{"fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}", "resource": r,
                   "search": {"mode": "match"}} for r in resources],
    }


def operation_outcome(code: str, text: str, severity: str = "error") -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": text}]}


SEARCH_PARAMS: dict[str, list[tuple[str, str, str]]] = {
    "Patient": [("identifier", "token", "病案号或身份证号（system|value）"),
                ("_id", "token", "资源 id")],
    "Encounter": [("patient", "reference", "患者"), ("patient.identifier", "token", "患者标识"),
                  ("identifier", "token", "住院号"), ("status", "token", "状态"),
                  ("_id", "token", "资源 id")],
    "DocumentReference": [
        ("patient", "reference", "患者（ITI-67）"),
        ("patient.identifier", "token", "患者标识（ITI-67）"),
        ("status", "token", "current / superseded / entered-in-error"),
        ("date", "date", "文档日期，可带 ge/gt/le/lt/eq 前缀"),
        ("type", "token", "文档类型（system|code）"),
        ("encounter", "reference", "住院"),
        ("_id", "token", "资源 id")],
}


def capability_statement(base: str, version: str, hospital: str) -> dict[str, Any]:
    def resource(kind: str, reads: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"type": kind, "interaction": [{"code": "read"}]}
        if reads:
            out["interaction"].append({"code": "search-type"})
            out["searchParam"] = [{"name": n, "type": t, "documentation": d}
                                  for n, t, d in SEARCH_PARAMS.get(kind, [])]
        return out

    return {
        "resourceType": "CapabilityStatement", "id": "bingan",
        "url": f"{base}/fhir/metadata", "name": "BinganMHDDocumentResponder",
        "title": f"{hospital} 病案数字化管理平台 FHIR 接口", "status": "active",
        "date": dt.date.today().isoformat(), "publisher": hospital,
        "kind": "instance", "fhirVersion": "4.0.1", "format": [FHIR_JSON, "json"],
        "instantiates": ["https://profiles.ihe.net/ITI/MHD/CapabilityStatement/"
                         "IHE.MHD.DocumentResponder"],
        "software": {"name": "bingan", "version": version},
        "implementation": {"description": "病案数字化管理平台 IHE MHD 文档响应方",
                           "url": f"{base}/fhir"},
        "rest": [{
            "mode": "server",
            "documentation": "接口客户端凭据（Authorization: Bearer，权限范围 documents.read）；"
                             "OAuth2 客户端凭据模式令牌地址 /oauth/token",
            "security": {"service": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "OAuth"}]}],
                "description": "OAuth2 client credentials (RFC 6749 4.4) at /oauth/token"},
            "resource": [resource("Patient"), resource("Encounter"),
                         resource("DocumentReference"), resource("Binary", reads=False)],
        }],
    }
