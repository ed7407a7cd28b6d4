"""The front page as a WS/T 500-2016 C0032 CDA R2 document: per admission for staff who may
export the record, and through the FHIR facade (a DocumentReference of type C0032 and its
Binary); well-formed (lxml), the CDA R2 header order, the template and the national OIDs."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from bingan.core import audit, intake
from bingan.core.models import Admission, AuditEvent
from bingan.core.staff import add_staff
from bingan.hooks.types import AdmissionIn, DiagnosisIn, OperationIn, PatientIn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fhir_world import CN, client, hospital, validate  # noqa: E402
from webutil import PASSWORD, login, web_client  # noqa: E402

NS = {"v3": "urn:hl7-org:v3", "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
ADM = "ZY202603000009"
# POCD_MT000040.ClinicalDocument: the order of its elements in the CDA R2 schema
CDA_HEADER_ORDER = [
    "realmCode", "typeId", "templateId", "id", "code", "title", "effectiveTime",
    "confidentialityCode", "languageCode", "setId", "versionNumber", "copyTime",
    "recordTarget", "author", "dataEnterer", "informant", "custodian", "informationRecipient",
    "legalAuthenticator", "authenticator", "participant", "inFulfillmentOf", "documentationOf",
    "relatedDocument", "authorization", "componentOf", "component"]


def _world(rt):
    hospital(rt)
    with rt.sessions() as s, s.begin():
        add_staff(s, "D0003", "刘洋", PASSWORD, "1001", ["physician"])
        add_staff(s, "D0004", "赵主任", None, "1001", ["physician"])
        add_staff(s, "R0001", "病案室", PASSWORD, None, ["records"])
        start = dt.datetime(2026, 3, 2, 10, 0, tzinfo=CN)
        res = intake.record_admission(s, rt, AdmissionIn(
            patient=PatientIn(mrn="00100009", name="孙七", sex="F",
                              birth_date=dt.date(1955, 6, 1), id_number="11010519491231002X"),
            admission_no=ADM, visit_no=2, admitted_at=start,
            discharged_at=start + dt.timedelta(days=9, hours=2), admit_department="1001",
            discharge_department="1001", discharge_way="2", payment_method="1",
            diagnoses=(DiagnosisIn("I21.000", "急性心肌梗死", "main", "1"),
                       DiagnosisIn("I10", "高血压", "other", "3")),
            operations=(OperationIn("36.0601", "冠状动脉药物洗脱支架置入术",
                                    dt.date(2026, 3, 3), level="3", surgeon_no="D0001",
                                    assistant1_no="D0002", incision_healing="1",
                                    anaesthesia="0301"),),
            signers={"dept_head": "D0004", "attending": "D0001", "resident": "D0002"},
            total_cost=45678.9), intake.Source("clerk", audit.Actor("R0001")))
        return res.admission.id


def _xml(data: bytes):
    root = etree.fromstring(data)  # well-formed, or this raises
    assert root.tag == "{urn:hl7-org:v3}ClinicalDocument"
    return root


def _one(root, path: str):
    (node,) = root.xpath(path, namespaces=NS)
    return node


def _check(root, rt):
    tags = [etree.QName(c).localname for c in root]
    assert tags == sorted(tags, key=CDA_HEADER_ORDER.index), tags  # CDA R2 order
    assert _one(root, "v3:templateId").get("root") == "2.16.156.10011.2.1.1.52"
    code = _one(root, "v3:code")
    assert (code.get("code"), code.get("codeSystem")) == ("C0032", "2.16.156.10011.2.4")
    assert _one(root, "v3:title").text == "住院病案首页"
    pr = _one(root, "v3:recordTarget/v3:patientRole")
    ids = {i.get("root"): i.get("extension") for i in pr.xpath("v3:id", namespaces=NS)}
    assert ids == {"2.16.156.10011.1.12": ADM, "2.16.156.10011.1.13": "00100009"}
    assert _one(pr, "v3:patient/v3:id").get("extension") == "11010519491231002X"
    assert _one(pr, "v3:patient/v3:name").text == "孙七"
    assert _one(pr, "v3:patient/v3:administrativeGenderCode").get("code") == "2"
    assert _one(pr, "v3:patient/v3:birthTime").get("value") == "19550601"
    assert _one(pr, "v3:providerOrganization/v3:id").get("extension") == rt.config.core.org_code
    la = _one(root, "v3:legalAuthenticator/v3:assignedEntity")
    assert (_one(la, "v3:id").get("extension"), _one(la, "v3:code").get("displayName"),
            _one(la, "v3:assignedPerson/v3:name").text) == ("D0004", "科主任", "赵主任")
    auth = [(_one(a, "v3:assignedEntity/v3:code").get("displayName"),
             _one(a, "v3:assignedEntity/v3:assignedPerson/v3:name").text)
            for a in root.xpath("v3:authenticator", namespaces=NS)]
    assert auth == [("主治医师", "陈志远"), ("住院医师", "王芳")]
    eff = _one(root, "v3:componentOf/v3:encompassingEncounter/v3:effectiveTime")
    assert (_one(eff, "v3:low").get("value"), _one(eff, "v3:high").get("value")) == (
        "20260302100000", "20260311120000")
    values = root.xpath("//v3:observation[v3:code/@code='DE05.01.024.00']/v3:value",
                        namespaces=NS)
    assert [(v.get("code"), v.get("codeSystem")) for v in values] == [
        ("I21.000", "2.16.156.10011.2.3.3.11.3"), ("I10", "2.16.156.10011.2.3.3.11.3")]
    assert all(v.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "CD" for v in values)
    way = _one(root, "//v3:observation[v3:code/@code='DE06.00.223.00']/v3:value")
    assert (way.get("code"), way.get("codeSystem"), way.get("displayName")) == (
        "2", "2.16.156.10011.2.3.1.265", "医嘱转院")
    proc = _one(root, "//v3:procedure")
    assert _one(proc, "v3:code").get("code") == "36.0601"
    assert _one(proc, "v3:effectiveTime").get("value") == "20260303"
    assert _one(proc, "v3:performer/v3:assignedEntity/v3:id").get("extension") == "D0001"
    level = _one(proc, ".//v3:observation[v3:code/@code='DE06.00.255.00']/v3:value")
    assert (level.get("code"), level.get("codeSystem")) == ("3", "2.16.156.10011.2.3.1.258")
    visits = _one(root, "//v3:observation[v3:code/@code='DE02.10.090.00']/v3:value")
    assert (visits.get("value"), visits.get("unit")) == ("2", "次")
    cost = _one(root, "//v3:observation[v3:code/@code='HDSD00.11.142']/v3:value")
    assert (cost.get("value"), cost.get("currency")) == ("45678.90", "元")


def test_front_page_export_for_staff_who_may_export(rt):
    _world(rt)
    with web_client(rt) as c:
        assert login(c, "R0001").status_code in (302, 303)
        r = c.get(f"/interop/c0032/{ADM}")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/xml")
        assert f"{ADM}_C0032.xml" in r.headers["content-disposition"]
        _check(_xml(r.content), rt)
        assert c.get("/interop/c0032/ZY209999999999").status_code == 404
    with rt.sessions() as s:
        ev = s.scalar(select(AuditEvent).where(AuditEvent.action == "cda.export"))
        assert (ev.staff_no, ev.mrn, ev.admission_no) == ("R0001", "00100009", ADM)


def test_front_page_refused_to_staff_who_may_not(rt):
    _world(rt)
    with web_client(rt) as c:
        assert login(c, "D0003").status_code in (302, 303)
        assert c.get("/", follow_redirects=False).status_code == 200  # signed in
        r = c.get(f"/interop/c0032/{ADM}", follow_redirects=False)
        assert r.status_code == 403
        assert "孙七" not in r.text
    with rt.sessions() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "cda.export")) is None


def test_front_page_through_fhir(rt):
    aid = _world(rt)
    token = client(rt)
    bearer = {"Authorization": f"Bearer {token}"}
    with web_client(rt) as c:
        r = c.get("/fhir/DocumentReference", headers=bearer, params={
            "patient.identifier": "00100009", "type": "urn:oid:2.16.156.10011.2.4|C0032"})
        body = r.json()
        validate(body)
        (entry,) = body["entry"]
        ref = entry["resource"]
        assert ref["id"] == f"fp-{aid}" and ref["type"]["coding"][0]["code"] == "C0032"
        att = ref["content"][0]["attachment"]
        assert att["contentType"] == "application/hl7-v3+xml"
        r = c.get(att["url"].replace("http://testserver.local", ""), headers=bearer)
        assert r.status_code == 200 and r.headers["content-type"].startswith(
            "application/hl7-v3+xml")
        _check(_xml(r.content), rt)
    with rt.sessions() as s:
        ev = s.scalar(select(AuditEvent).where(AuditEvent.action == "fhir.retrieve"))
        assert (ev.staff_no, ev.outcome, ev.admission_no) == ("api:cdr", "ok", ADM)
        assert s.scalar(select(Admission.id).where(Admission.admission_no == ADM)) == aid


def test_cda_settings_are_checked():
    from bingan.core.config import ConfigError, validate_settings
    from bingan_fhir.settings import FhirSettings

    with pytest.raises(ConfigError, match="OID"):
        validate_settings("plugins.fhir", FhirSettings, {"cda": {"mrn_root": "病案号"}})
