"""Records in and out, end to end (issue 10's "Done when"), with the real plugins and
integrations and no stand-ins, on SQLite and PostgreSQL:

ADT A01 then A03 over a real MLLP connection -> the admission is found by the record room's
simple search -> a scanned stack (cover sheet with the record barcode + one page) is captured,
identified by its barcode, cleaned and digitized -> ``GET /fhir/DocumentReference?
patient.identifier=...`` with an API client's token lists the PDF (checked with fhirclient's
R4 models) -> the Binary is fetched and audited -> the patient is readmitted (A01) and an EMR
launch link opens the earlier record in the viewer as the mapped physician of the new stay
(M6), a replayed link is refused, and another physician signed in by a link is refused by the
viewer.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import cv2
import pytest
from PIL import Image
from sqlalchemy import select

from bingan.core import apiclients, audit, tasks
from bingan.core.models import Admission, AuditEvent, Role
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "integrations" / "hl7v2" / "tests"))
sys.path.insert(0, str(REPO / "integrations" / "fhir" / "tests"))
from fhir_world import validate  # noqa: E402
from hl7util import Listener, Sender, adt, msa  # noqa: E402
from webutil import PASSWORD, login, web_client  # noqa: E402
from bingan_emr_launch.settings import EmrLaunchSettings

ENABLED = ["imaging", "capture", "scan-folder", "archive", "reading", "search", "hl7v2", "fhir",
           "emr_launch"]
KEY = "e2e-emr-signing-key-" + "0" * 24
MRN, ADM1, ADM2 = "00300001", "ZY202604000001", "ZY202605000001"
MRN_SYSTEM = "urn:oid:2.16.156.10011.1.13"


@pytest.fixture
def world(db_url, tmp_path):
    from bingan.core.runtime import build_runtime, set_current
    from support import make_config

    cfg = make_config(tmp_path / "home", db_url, enabled=ENABLED)
    cfg.plugin_settings["emr_launch"] = {"systems": {"EMR": {
        "key": KEY, "users": {"wang.f": "D0002", "liu.y": "D0003"}}}}
    rt = build_runtime(cfg)
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        s.scalar(select(Role).where(Role.name == "records")).permissions = [
            "records.manage", "search.use"]  # as the administrator grants on the role page
        add_department(s, "1001", "心血管内科")
        add_staff(s, "D0002", "王芳", None, "1001", ["physician"])
        add_staff(s, "D0003", "刘洋", None, "1001", ["physician"])
        add_staff(s, "R0001", "病案室", PASSWORD, None, ["records"])
    listener = Listener(rt)
    yield rt, listener
    listener.close()
    rt.close()
    set_current(None)


def _stack(barcode: str, admission_no: str) -> bytes:
    """What a scanner's PDF mode writes: the record's cover sheet, then one cleaned-up page."""
    from bingan_capture.codes import A4_300, CoverInfo, cover_sheet_image
    from bingan_imaging import synth

    cover = cover_sheet_image(CoverInfo(barcode, MRN, admission_no, 1, "张三"), A4_300)
    scan = synth.make_page(301, "scanner", angle=1.2, dpi=300)
    ims = [cover.convert("RGB"), Image.fromarray(cv2.cvtColor(scan.image, cv2.COLOR_BGR2RGB))]
    buf = io.BytesIO()
    ims[0].save(buf, "PDF", resolution=300.0, save_all=True, append_images=ims[1:], quality=92)
    return buf.getvalue()


def _events(rt, action: str) -> list[AuditEvent]:
    with rt.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.seq)))


def test_adt_to_fhir_to_emr_launch(world):
    from bingan_capture.ingest import receive
    from bingan_emr_launch.links import make_link

    rt, listener = world
    # 1. the HIS admits and discharges the patient (ADT A01, A03 over MLLP)
    sender = Sender(listener.port)
    try:
        for msg in (adt("A01", mrn=MRN, adm=ADM1, attending="D0002^王^芳",
                        admit_at="20260401093000", event_at="20260401093000"),
                    adt("A03", mrn=MRN, adm=ADM1, attending="D0002^王^芳",
                        admit_at="20260401093000", discharge_at="20260408100000",
                        disposition="1", event_at="20260408100000",
                        diagnoses=[("I20.000", "不稳定型心绞痛", "F")])):
            ack, _raw = sender.send(msg)
            assert msa(ack)[0] == "AA", msa(ack)
    finally:
        sender.close()
    with rt.sessions() as s:
        adm = s.scalar(select(Admission).where(Admission.admission_no == ADM1))
        assert adm.discharged_at is not None and adm.discharge_way == "1"
        barcode = adm.barcode

    with web_client(rt) as c:
        # 2. the record room finds it
        assert login(c, "R0001").status_code in (302, 303)
        r = c.get("/search/simple", params={"mrn": MRN})
        assert r.status_code == 200 and ADM1 in r.text and "张三" in r.text

    # 3. the paper record is scanned behind its cover sheet, identified by the barcode,
    # cleaned and digitized
    with rt.sessions() as s, s.begin():
        got = receive(s, rt, _stack(barcode, ADM1), "stack.pdf", "hot_folder", by="R0001")
        assert got.frames == 2
    tasks.run_until_idle(rt)
    from bingan_archive.models import ArchiveRecord

    with rt.sessions() as s:
        rec = s.get(ArchiveRecord, adm.id)
        assert (rec.status, rec.page_count, rec.document_version) == ("digitized", 1, 1)

    # 4. the CDR finds the PDF by the patient's 病案号 with its API client token ...
    with rt.sessions() as s, s.begin():
        _c, token = apiclients.add_client(s, rt, "cdr", "临床数据中心", ["documents.read"],
                                          audit.Actor("A0001"))
    bearer = {"Authorization": f"Bearer {token}"}
    with web_client(rt) as c:
        r = c.get("/fhir/DocumentReference", headers=bearer,
                  params={"patient.identifier": f"{MRN_SYSTEM}|{MRN}",
                          "type": "http://loinc.org|11503-0"})
        assert r.status_code == 200, r.text
        bundle = validate(r.json())
        (entry,) = bundle.entry
        doc = entry.resource
        assert doc.status == "current" and doc.subject.identifier.value == MRN
        assert doc.context.encounter[0].reference == f"Encounter/{adm.id}"
        url = doc.content[0].attachment.url
        assert doc.content[0].attachment.contentType == "application/pdf"
        # ... and fetches it (ITI-68), audited under the client with the MRN
        r = c.get(url.replace("http://testserver.local", ""), headers=bearer)
        assert r.status_code == 200 and r.content.startswith(b"%PDF")
        assert len(r.content) == doc.content[0].attachment.size
    (ev,) = _events(rt, "fhir.retrieve")
    assert (ev.staff_no, ev.outcome, ev.mrn, ev.admission_no) == ("api:cdr", "ok", MRN, ADM1)

    # 5. readmitted: Dr Wang attends the new stay, so she reads the earlier record (M6); the
    # EMR opens it for her with a launch link
    sender = Sender(listener.port)
    try:
        ack, _raw = sender.send(adt("A01", mrn=MRN, adm=ADM2, attending="D0002^王^芳",
                                    admit_at="20260510080000", event_at="20260510080000"))
        assert msa(ack)[0] == "AA", msa(ack)
    finally:
        sender.close()
    st = rt.settings(EmrLaunchSettings)
    link = make_link(st, "", "EMR", "wang.f", ADM1)
    with web_client(rt) as c:
        r = c.get(link, follow_redirects=False)
        assert r.status_code in (302, 303) and r.headers["location"] == f"/records/{ADM1}"
        r = c.get(f"/records/{ADM1}")
        assert r.status_code == 200 and ADM1 in r.text
    view = _events(rt, "record.view")[-1]
    assert (view.staff_no, view.outcome, view.admission_no) == ("D0002", "ok", ADM1)
    assert "current_stay" in view.detail
    # the same link again is refused
    with web_client(rt) as c:
        r = c.get(link, follow_redirects=False)
        assert r.status_code == 403
    # Dr Liu has nothing to do with the patient: the link signs him in, the viewer refuses
    with web_client(rt) as c:
        r = c.get(make_link(st, "", "EMR", "liu.y", ADM1), follow_redirects=False)
        assert r.status_code in (302, 303)
        assert c.get(f"/records/{ADM1}").status_code == 403
    launches = [(e.staff_no, e.outcome) for e in _events(rt, "emr.launch")]
    assert launches == [("D0002", "ok"), (None, "denied"), ("D0003", "ok")]
    with rt.sessions() as s:
        assert audit.verify(s, rt).ok
