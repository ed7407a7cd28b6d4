"""The HL7 listener over a real socket, on SQLite and PostgreSQL: every ADT event, ACKs
(AA/AE/AR with the reason), de-duplication by control id, out-of-order A03, nothing
half-written, and the in-hospital state that the reading policy reads (M6)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest
from bingan.core import permissions
from bingan.core.models import Admission, AuditEvent, Patient
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles, get_staff, staff_ref
from bingan_hl7v2.models import Hl7Message
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hl7util import Listener, Sender, adt, merge, msa
from bingan_hl7v2.settings import Hl7Settings

UTC = dt.UTC


@pytest.fixture
def hl7(rt):
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_department(s, "1002", "普通外科")
        for no, name, dept in (("D0001", "陈志远", "1001"), ("D0002", "王芳", "1001"),
                               ("D0003", "李娜", "1002")):
            add_staff(s, no, name, None, dept, ["physician"])
    listener = Listener(rt)
    sender = Sender(listener.port)
    yield rt, sender
    sender.close()
    listener.close()


def _adm(rt, no):
    with rt.sessions() as s:
        a = s.scalar(select(Admission).where(Admission.admission_no == no))
        if a is not None:
            _ = a.patient, a.diagnoses
            s.expunge_all()
        return a


def _count(rt, model, *where) -> int:
    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def _reads(rt, staff_no, admission_no, when) -> bool:
    with rt.sessions() as s, s.begin():
        who = staff_ref(get_staff(s, staff_no))
        adm = s.scalar(select(Admission).where(Admission.admission_no == admission_no))
        return permissions.decide(s, rt, who, adm, "view", now=when).allowed


def test_stay_from_admission_to_discharge(hl7):
    rt, tx = hl7
    # an earlier stay, discharged
    for m in (adt("A01", adm="ZY202601000001", admit_at="20260105080000",
                  event_at="20260105080000"),
              adt("A03", adm="ZY202601000001", admit_at="20260105080000",
                  discharge_at="20260112100000", disposition="1",
                  event_at="20260112100000",
                  diagnoses=[("I21.000x001", "急性前壁心肌梗死", "F"), ("I10", "高血压", "F")])):
        ack, _ = tx.send(m)
        assert msa(ack)[0] == "AA"
    first = _adm(rt, "ZY202601000001")
    assert first.discharged_at == dt.datetime(2026, 1, 12, 2, tzinfo=UTC)  # 10:00 UTC+8
    assert first.discharge_way == "1" and [d.code for d in first.diagnoses] == [
        "I21.000x001", "I10"]

    # readmitted: in hospital; the new attending (D0001) reads the earlier record until discharge
    a01 = adt("A01", adm="ZY202603000001", attending="D0001^陈^志远", admitting="D0002",
              control_id="A01-ZY3")
    ack, _text = tx.send(a01)
    code, ctl, reason = msa(ack)
    assert (code, ctl) == ("AA", "A01-ZY3") and "入院" in reason
    assert ack.msh.msh_9.to_er7().startswith("ACK^A01")
    stay = _adm(rt, "ZY202603000001")
    assert stay.visit_no == 2 and stay.discharged_at is None and stay.discharge_department == "1001"
    assert stay.front_page["attending_physician"] == "D0001"
    during = dt.datetime(2026, 3, 2, tzinfo=UTC)
    assert _reads(rt, "D0001", "ZY202601000001", during)
    assert not _reads(rt, "D0003", "ZY202601000001", during)

    # the same message again: the same ACK, applied once
    upserts = _count(rt, AuditEvent, AuditEvent.action == "admission.upsert")
    ack, _ = tx.send(a01)
    assert msa(ack)[0] == "AA" and "重复" in msa(ack)[2]
    assert _count(rt, AuditEvent, AuditEvent.action == "admission.upsert") == upserts

    # transfer to surgery: the new attending joins, the earlier one keeps reading
    ack, _ = tx.send(adt("A02", adm="ZY202603000001", dept="普通外科", ward="W30",
                         attending="D0003", event_at="20260303100000"))
    assert msa(ack)[0] == "AA"
    stay = _adm(rt, "ZY202603000001")
    assert (stay.admit_department, stay.discharge_department, stay.ward) == ("1001", "1002",
                                                                             "W30")
    assert stay.front_page["transfers"][0]["to"] == "普通外科"
    assert _reads(rt, "D0003", "ZY202601000001", during)
    assert _reads(rt, "D0001", "ZY202601000001", during)

    # A08 corrects the name; A03 discharges; A13 cancels it; A03 again
    assert msa(tx.send(adt("A08", adm="ZY202603000001", name="张^叁",
                           event_at="20260304100000"))[0])[0] == "AA"
    assert msa(tx.send(adt("A03", adm="ZY202603000001", discharge_at="20260308090000",
                           disposition="4", event_at="20260308090000", name="张^叁"))[0])[0] \
        == "AA"
    stay = _adm(rt, "ZY202603000001")
    assert stay.patient.name == "张叁" and stay.discharge_way == "4"
    assert not _reads(rt, "D0001", "ZY202601000001", dt.datetime(2026, 3, 9, tzinfo=UTC))
    assert msa(tx.send(adt("A13", adm="ZY202603000001", event_at="20260308120000"))[0])[0] \
        == "AA"
    assert _adm(rt, "ZY202603000001").discharged_at is None
    # an A03 older than the A13, arriving late, changes nothing
    ack, _ = tx.send(adt("A03", adm="ZY202603000001", discharge_at="20260308090000",
                         event_at="20260308090000"))
    assert msa(ack)[0] == "AA" and "旧消息" in msa(ack)[2]
    assert _adm(rt, "ZY202603000001").discharged_at is None

    # A11 cancels the stay: it is no longer a current stay
    assert msa(tx.send(adt("A11", adm="ZY202603000001", event_at="20260308130000"))[0])[0] \
        == "AA"
    assert _adm(rt, "ZY202603000001").cancelled_at is not None
    assert not _reads(rt, "D0001", "ZY202601000001", dt.datetime(2026, 3, 9, tzinfo=UTC))

    # A40: a duplicate MRN merged in
    tx.send(adt("A01", mrn="00100099", adm="ZY202512000099", admit_at="20251201080000",
                event_at="20251201080000"))
    ack, _ = tx.send(merge("00100001", "00100099"))
    assert msa(ack)[0] == "AA"
    with rt.sessions() as s:
        rows = s.execute(select(Admission.admission_no, Admission.visit_no).join(Patient)
                         .where(Patient.mrn == "00100001").order_by(Admission.visit_no)).all()
    assert [r[0] for r in rows] == ["ZY202512000099", "ZY202601000001", "ZY202603000001"]


def test_discharge_before_admission(hl7):
    rt, tx = hl7
    # A03 with the admit time: the stay is created discharged; the late A01 keeps it so
    ack, _ = tx.send(adt("A03", adm="ZY202603000011", discharge_at="20260306090000",
                         disposition="1", event_at="20260306090000"))
    assert msa(ack)[0] == "AA"
    assert msa(tx.send(adt("A01", adm="ZY202603000011"))[0])[0] == "AA"
    assert _adm(rt, "ZY202603000011").discharged_at == dt.datetime(2026, 3, 6, 1, tzinfo=UTC)
    # A03 without the admit time: parked, applied when the A01 arrives
    ack, _ = tx.send(adt("A03", mrn="00100002", name="李^四", adm="ZY202603000012",
                         admit_at="", discharge_at="20260307090000", disposition="2",
                         event_at="20260307090000"))
    assert msa(ack)[0] == "AA" and "入院消息到达后" in msa(ack)[2]
    assert _adm(rt, "ZY202603000012") is None
    ack, _ = tx.send(adt("A01", mrn="00100002", name="李^四", adm="ZY202603000012",
                         admit_at="20260302080000", event_at="20260302080000"))
    assert msa(ack)[0] == "AA" and "先到的 1 条" in msa(ack)[2]
    late = _adm(rt, "ZY202603000012")
    assert late.discharged_at == dt.datetime(2026, 3, 7, 1, tzinfo=UTC)
    assert late.discharge_way == "2"
    assert _count(rt, Hl7Message, Hl7Message.status == "parked") == 0


def test_refused_messages_write_nothing(hl7):
    rt, tx = hl7
    cases = [
        # AR: not an HL7 message, not ADT, missing segment or the MRN
        (b"\x0bHELLO\x1c\r", "AR", "MSH"),
        (adt("A01").replace("ADT^A01", "ORU^R01", 1), "AR", "不支持"),
        ("\r".join(s for s in adt("A01").split("\r") if not s.startswith("PV1")), "AR", "PV1"),
        # AE: content the intake refuses, with the field it came from
        (adt("A01", mrn="12-AB"), "AE", "PID-3"),
        (adt("A01", dept="9999"), "AE", "PV1-10"),
        (adt("A01", attending="D0404^无^此人"), "AE", "PV1-7"),
        (adt("A03", discharge_at="20260201000000", event_at="20260301100000"), "AE", "PV1-45"),
        (adt("A01", diagnoses=[("心梗", "心梗", "F")]), "AE", "DG1-3"),
    ]
    for message, code, where in cases:
        payload = message if isinstance(message, bytes) else (
            b"\x0b" + message.encode() + b"\x1c\r")
        text = tx.send_raw(payload)
        seg = next(s for s in text.split("\r") if s.startswith("MSA")).split("|")
        assert seg[1] == code and where in seg[3], (where, text)
        assert any(s.startswith("ERR") for s in text.split("\r"))
    assert _count(rt, Admission) == 0 and _count(rt, Patient) == 0
    rejected = _count(rt, Hl7Message, Hl7Message.status == "rejected",
                      Hl7Message.raw.is_not(None))
    assert rejected == len(cases) - 1  # the unparseable one has no header to file it under
    assert _count(rt, AuditEvent, AuditEvent.action == "hl7.reject") == rejected
    # a corrected re-send with the same control id is processed (only AA is final)
    ack, _ = tx.send(adt("A01", dept="9999", control_id="FIX1"))
    assert msa(ack)[0] == "AE"
    ack, _ = tx.send(adt("A01", dept="1001", control_id="FIX1"))
    assert msa(ack)[0] == "AA" and _count(rt, Admission) == 1
    # outpatients are not ours; an unknown sender is refused when senders are listed
    ack, _ = tx.send(adt("A01", adm="ZY202603000077", patient_class="O"))
    assert msa(ack)[0] == "AA" and "非住院" in msa(ack)[2] and _count(rt, Admission) == 1
    rt.settings(Hl7Settings).senders = ["HIS"]
    ack, _ = tx.send(adt("A01", adm="ZY202603000078", sender="LIS"))
    assert msa(ack)[0] == "AR" and "未获授权" in msa(ack)[2]
