"""The FHIR facade through the real app (SQLite and PostgreSQL): ITI-67 search, ITI-68
retrieve, Patient and Encounter, the CapabilityStatement, each answer checked with fhirclient's
R4 models; access through the viewer's own decision; credentials and bad input refused."""

from __future__ import annotations

import base64
import hashlib
import sys
from pathlib import Path

from sqlalchemy import select

from bingan.core.models import AuditEvent
from bingan.hooks import hookimpl
from bingan.hooks.types import Vote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fhir_world import ADM_SYSTEM, MRN_SYSTEM, admit, client, document, hospital, validate
from webutil import web_client

FJ = "application/fhir+json"


def _world(rt):
    hospital(rt)
    a1 = admit(rt, "00100001", "ZY202603000001", 1, id_number="11010519491231002X")
    a2 = admit(rt, "00100001", "ZY202603000002", 2)
    other = admit(rt, "00100002", "ZY202603000003", 1, name="李四")
    d1, pdf1 = document(rt, a1, 2, "first")
    d2, pdf2 = document(rt, a1, 3, "second")  # a supplement: version 2
    d3, _ = document(rt, a2, 1, "stay2")
    document(rt, other, 1, "other")
    return {"a1": a1, "a2": a2, "d1": d1, "d2": d2, "d3": d3, "pdf2": pdf2}


def _get(c, url, token, **kw):
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    return c.get(url, headers=headers, **kw)


def _events(rt, action):
    with rt.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.seq)))


def test_iti67_find_and_iti68_retrieve(rt):
    w = _world(rt)
    token = client(rt)
    with web_client(rt) as c:
        r = _get(c, "/fhir/DocumentReference", token,
                 params={"patient.identifier": f"{MRN_SYSTEM}|00100001"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(FJ)
        body = r.json()
        validate(body)
        assert body["type"] == "searchset"
        pdfs = [e["resource"] for e in body["entry"] if e["resource"]["id"].startswith("pdf-")]
        assert [(d["id"], d["status"]) for d in pdfs] == [
            (f"pdf-{w['d3']}", "current"), (f"pdf-{w['d2']}", "current"),
            (f"pdf-{w['d1']}", "superseded")]
        v2 = pdfs[1]
        assert v2["subject"]["identifier"] == {"system": MRN_SYSTEM, "value": "00100001"}
        assert v2["identifier"][1] == {"use": "secondary", "system": ADM_SYSTEM,
                                       "value": "ZY202603000001"}
        assert v2["context"]["encounter"] == [{"reference": f"Encounter/{w['a1']}"}]
        assert v2["relatesTo"][0]["target"]["reference"] == f"DocumentReference/pdf-{w['d1']}"
        att = v2["content"][0]["attachment"]
        assert att["contentType"] == "application/pdf" and att["size"] == len(w["pdf2"])
        assert att["url"] == f"http://testserver.local/fhir/Binary/pdf-{w['d2']}"
        # nobody else's documents
        assert all(e["resource"]["subject"]["identifier"]["value"] == "00100001"
                   for e in body["entry"])

        # status, type, date and encounter narrow it
        r = _get(c, "/fhir/DocumentReference", token, params={
            "patient.identifier": "00100001", "status": "current",
            "type": "http://loinc.org|11503-0"})
        assert [e["resource"]["id"] for e in r.json()["entry"]] == [f"pdf-{w['d3']}",
                                                                   f"pdf-{w['d2']}"]
        r = _get(c, "/fhir/DocumentReference", token, params={
            "patient": str(v2["subject"]["reference"]), "encounter": f"Encounter/{w['a1']}",
            "type": "11503-0"})
        assert [e["resource"]["id"] for e in r.json()["entry"]] == [f"pdf-{w['d2']}",
                                                                   f"pdf-{w['d1']}"]
        r = _get(c, "/fhir/DocumentReference", token, params=[
            ("patient.identifier", "00100001"), ("type", "11503-0"),
            ("date", "ge2000-01-01"), ("date", "lt2001")])
        assert r.json()["total"] == 0
        r = _get(c, "/fhir/DocumentReference", token, params={
            "patient.identifier": "00100001", "type": "11503-0", "date": "ge2000-01-01",
            "_count": "1"})
        page = r.json()
        validate(page)
        assert page["total"] == 3 and len(page["entry"]) == 1
        nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
        r = _get(c, nxt.replace("http://testserver.local", ""), token)
        assert r.json()["entry"][0]["resource"]["id"] == f"pdf-{w['d2']}"

        # ITI-68: the attachment URL gives the very PDF, audited with the MRN
        before = len(_events(rt, "fhir.retrieve"))
        r = _get(c, att["url"].replace("http://testserver.local", ""), token)
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        assert r.content == w["pdf2"]
        ev = _events(rt, "fhir.retrieve")[before:]
        assert [(e.staff_no, e.outcome, e.mrn, e.admission_no) for e in ev] == [
            ("api:cdr", "ok", "00100001", "ZY202603000001")]
        assert f'"sha256": "{hashlib.sha256(w["pdf2"]).hexdigest()}"' in ev[0].detail
        # ... or as a Binary resource
        r = _get(c, att["url"], token, headers={"Accept": FJ})
        binary = r.json()
        validate(binary)
        assert base64.b64decode(binary["data"]) == w["pdf2"]
        # the read of one DocumentReference
        r = _get(c, f"/fhir/DocumentReference/pdf-{w['d2']}", token)
        assert r.status_code == 200 and validate(r.json()).id == f"pdf-{w['d2']}"
        # every search is audited with what it returned
        searches = _events(rt, "fhir.search")
        assert searches[0].mrn == "00100001" and "ZY202603000001" in searches[0].detail


def test_patient_encounter_and_capability(rt):
    w = _world(rt)
    token = client(rt)
    with web_client(rt) as c:
        r = c.get("/fhir/metadata")  # public, as FHIR clients expect
        cap = r.json()
        validate(cap)
        assert cap["fhirVersion"] == "4.0.1"
        kinds = {res["type"] for res in cap["rest"][0]["resource"]}
        assert kinds == {"Patient", "Encounter", "DocumentReference", "Binary"}

        r = _get(c, "/fhir/Patient", token, params={"identifier": f"{MRN_SYSTEM}|00100001"})
        bundle = r.json()
        validate(bundle)
        (pat,) = [e["resource"] for e in bundle["entry"]]
        assert pat["identifier"][0]["value"] == "00100001" and pat["gender"] == "male"
        assert pat["name"][0]["text"] == "张三" and pat["birthDate"] == "1960-03-01"
        assert all(i["system"] != "urn:oid:2.16.156.10011.1.3" for i in pat["identifier"])
        # found by the resident ID number too (stored encrypted, looked up by its keyed hash)
        r = _get(c, "/fhir/Patient", token,
                 params={"identifier": "urn:oid:2.16.156.10011.1.3|11010519491231002X"})
        assert [e["resource"]["id"] for e in r.json()["entry"]] == [pat["id"]]
        r = _get(c, f"/fhir/Patient/{pat['id']}", token)
        assert validate(r.json()).id == pat["id"]

        r = _get(c, "/fhir/Encounter", token, params={"patient": f"Patient/{pat['id']}"})
        encs = [e["resource"] for e in r.json()["entry"]]
        validate(r.json())
        assert [e["id"] for e in encs] == [str(w["a2"]), str(w["a1"])]
        e1 = encs[1]
        assert e1["identifier"][0] == {"use": "official", "system": ADM_SYSTEM,
                                       "value": "ZY202603000001"}
        assert e1["status"] == "finished" and e1["class"]["code"] == "IMP"
        assert e1["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "1"
        assert e1["period"]["start"] == "2026-03-21T09:30:00+08:00"
        r = _get(c, "/fhir/Encounter", token, params={"identifier": "ZY202603000002"})
        assert [e["resource"]["id"] for e in r.json()["entry"]] == [str(w["a2"])]
        r = _get(c, f"/fhir/Encounter/{w['a1']}", token)
        assert validate(r.json()).status == "finished"
        assert _get(c, "/fhir/Encounter/999999", token).status_code == 404


def test_refusals(rt):
    w = _world(rt)
    token = client(rt)
    writer = client(rt, "his", ("admissions.write",))
    with web_client(rt) as c:
        q = {"patient.identifier": "00100001"}
        assert c.get("/fhir/DocumentReference", params=q).status_code == 401
        assert _get(c, "/fhir/DocumentReference", "bgn_cdr_wrong", params=q).status_code == 401
        assert _get(c, "/fhir/DocumentReference", writer, params=q).status_code == 403
        assert _get(c, f"/fhir/Binary/pdf-{w['d1']}", writer).status_code == 403
        for params, why in (({"type": "11503-0"}, "patient"),
                            ({"patient.identifier": "00100001", "author": "x"}, "author"),
                            ({"patient.identifier": "00100001", "date": "gt2026-13-01"}, "日期"),
                            ({"patient.identifier": "00100001", "date": "sa2026"}, "前缀"),
                            ({"patient": "Encounter/1"}, "Patient"),
                            ({"patient.identifier": "00100001", "_count": "5000"}, "_count")):
            r = _get(c, "/fhir/DocumentReference", token, params=params)
            assert r.status_code == 400, (params, r.text)
            oo = r.json()
            validate(oo)
            assert why in oo["issue"][0]["diagnostics"]
        assert _get(c, "/fhir/Binary/pdf-999999", token).status_code == 404
        assert _get(c, "/fhir/Binary/../../etc", token).status_code == 404
        assert _get(c, "/fhir/DocumentReference/pdf-999999", token).status_code == 404


class DenyApiClients:
    """An access policy plugin that denies API clients one patient's records (as a hospital's
    reading rule would): its vote reaches the facade through ``core.permissions.decide``."""

    @hookimpl
    def access_vote(self, context):
        if "api_client" in context.user.roles and context.admission.mrn == "00100001":
            return Vote(False, "test:deny-cdr", "数据中心暂停调阅")
        return None


def test_same_access_decision_as_the_viewer(rt):
    """A deny vote of the access policy takes the patient's documents out of searches and
    refuses the Binary (404, audited as denied with the rule)."""
    w = _world(rt)
    token = client(rt)
    rt.pm.register(DenyApiClients(), name="test-deny")
    with web_client(rt) as c:
        r = _get(c, "/fhir/DocumentReference", token, params={"patient.identifier": "00100001"})
        assert r.status_code == 200 and r.json()["total"] == 0
        r = _get(c, f"/fhir/Binary/pdf-{w['d2']}", token)
        assert r.status_code == 404
        r = _get(c, "/fhir/Patient", token, params={"identifier": "00100001"})
        assert r.json()["total"] == 0
        r = _get(c, "/fhir/DocumentReference", token, params={"patient.identifier": "00100002"})
        assert r.json()["total"] == 2  # the other patient: the PDF and the front page
    (ev,) = _events(rt, "fhir.retrieve")
    assert (ev.outcome, ev.mrn) == ("denied", "00100001")
    assert "test:deny-cdr" in ev.detail
