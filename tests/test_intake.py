"""The validated admission entry (core.intake), on SQLite and PostgreSQL: rules, name
resolution, identity conflicts, audit with the source, cancel and merge, and the reading
policy's current-stay rule fed by it (M6)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from bingan.core import audit, intake, permissions
from bingan.core.models import Admission, AuditEvent, Patient
from bingan.core.staff import add_department, add_staff, ensure_builtin_roles, get_staff, staff_ref
from bingan.hooks import hookimpl
from bingan.hooks.types import AdmissionIn, DiagnosisIn, OperationIn, PatientIn
from sqlalchemy import func, select

UTC = dt.UTC
CLI = intake.Source("clerk", audit.Actor(staff_no="R0001", client_ip="10.0.0.5"))
HIS = intake.Source("hl7v2", audit.Actor(staff_no="hl7:HIS"), ref="MSG1", authority=True)


def _hospital(rt) -> None:
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_department(s, "1002", "普通外科")
        add_staff(s, "D0001", "陈志远", None, "1001", ["physician"])
        add_staff(s, "D0002", "王芳", None, "1001", ["physician"])
        add_staff(s, "D0003", "李娜", None, "1001", ["physician"])
        add_staff(s, "D0004", "李娜", None, "1002", ["physician"])
        add_staff(s, "D0009", "赵强", None, "1002", ["physician"])


def _adm(mrn="00100001", no="ZY202601000001", visit=1, days=(5, 12), **kw) -> AdmissionIn:
    base = {
        "patient": PatientIn(mrn=mrn, name="张三", sex="M", birth_date=dt.date(1960, 3, 1),
                          id_number="11010519491231002X"),
        "admission_no": no, "visit_no": visit,
        "admitted_at": dt.datetime(2026, 1, days[0], 2, tzinfo=UTC),
        "discharged_at": dt.datetime(2026, 1, days[1], 2, tzinfo=UTC) if days[1] else None,
        "admit_department": "心血管内科", "discharge_department": "1001", "discharge_way": "1"
        if days[1] else None, "payment_method": "1",
        "diagnoses": (DiagnosisIn("I21.000x001", "急性前壁心肌梗死", "main", "1"),
                   DiagnosisIn("I10", "高血压", "other", "1")),
        "operations": (OperationIn("36.0700", "冠状动脉药物洗脱支架置入", dt.date(2026, 1, 6),
                                surgeon_no="陈志远"),),
        "signers": {"dept_head": "D0001", "attending": "王芳（D0002）", "resident": "李娜"}}
    base.update(kw)
    return AdmissionIn(**base)


def _count(rt, model) -> int:
    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_good_admission_is_normalised_written_and_audited_with_its_source(rt):
    _hospital(rt)
    with rt.sessions() as s, s.begin():
        res = intake.record_admission(s, rt, _adm(), CLI)
    assert res.created and res.changed
    d = res.data
    # names and 姓名(工号) resolved to staff numbers, 李娜 by the discharge department
    assert d.signers == {"dept_head": "D0001", "attending": "D0002", "resident": "D0003"}
    assert d.admit_department == "1001" and d.operations[0].surgeon_no == "D0001"
    with rt.sessions() as s:
        adm = s.scalar(select(Admission))
        assert {x.role: x.staff_no for x in adm.signers}["attending"] == "D0002"
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "admission.upsert")).all()
    assert len(ev) == 1 and ev[0].staff_no == "R0001" and ev[0].admission_no == "ZY202601000001"
    assert '"source": "clerk"' in ev[0].detail and '"created": true' in ev[0].detail
    with rt.sessions() as s, s.begin():  # the same again: accepted, nothing changed
        again = intake.record_admission(s, rt, _adm(), CLI)
    assert (again.created, again.changed) == (False, False)


def test_every_problem_is_reported_and_nothing_is_written(rt):
    _hospital(rt)
    bad = _adm(
        mrn="12AB", no="2026-1", visit=0,
        patient=PatientIn(mrn="12AB", name="", sex="X", id_number="110105194912310021"),
        admitted_at=dt.datetime(2026, 1, 12, 2, tzinfo=UTC),
        discharged_at=dt.datetime(2026, 1, 5, 2, tzinfo=UTC), discharge_way="7",
        payment_method="0", discharge_department="不存在科", admit_department=None,
        diagnoses=(DiagnosisIn("I21", "甲", "main"), DiagnosisIn("21.000", "乙", "main", "5")),
        operations=(OperationIn("I21.0", "丙", dt.date(2025, 12, 1), surgeon_no="无此人"),),
        signers={"attending": "李娜", "boss": "D0001", "resident": "D0099(D0099)"})
    with rt.sessions() as s, s.begin(), pytest.raises(intake.IntakeError) as exc:
        intake.record_admission(s, rt, bad, CLI)
    got = {p.field: p.reason for p in exc.value.problems}
    assert set(got) >= {
        "patient.mrn", "admission_no", "visit_no", "patient.name", "patient.sex",
        "patient.id_number", "discharged_at", "discharge_way", "payment_method",
        "discharge_department", "diagnoses[1].code", "diagnoses[1].admission_condition",
        "diagnoses", "operations[0].code", "operations[0].date", "operations[0].surgeon_no",
        "signers.attending", "signers.boss", "signers.resident"}
    assert "同名" in got["signers.attending"] and "ICD-9-CM-3" in got["operations[0].code"]
    assert "早于入院" in got["discharged_at"] and "校验位" in got["patient.id_number"]
    assert _count(rt, Admission) == 0 and _count(rt, Patient) == 0


def test_identity_conflicts(rt):
    _hospital(rt)
    with rt.sessions() as s, s.begin():
        intake.record_admission(s, rt, _adm(), CLI)
        intake.record_admission(s, rt, _adm(mrn="00100002", no="ZY202601000002",
                                            patient=PatientIn(mrn="00100002", name="李四")), CLI)
    cases = [
        (_adm(mrn="00100002", patient=PatientIn(mrn="00100002", name="李四")), "admission_no"),
        (_adm(no="ZY202601000009"), "visit_no"),  # visit 1 of 00100001 is another admission
        (_adm(patient=PatientIn(mrn="00100001", name="张叁")), "patient.name"),
    ]
    for data, field in cases:
        with rt.sessions() as s, s.begin(), pytest.raises(intake.IntakeError) as exc:
            intake.record_admission(s, rt, data, CLI)
        assert next(p.field for p in exc.value.problems) == field
    # the HIS (master patient index) may correct the name
    with rt.sessions() as s, s.begin():
        res = intake.record_admission(s, rt, _adm(patient=PatientIn(mrn="00100001",
                                                                    name="张叁")), HIS)
        assert res.changed and s.scalar(select(Patient.name).where(Patient.mrn == "00100001")) \
            == "张叁"


def test_current_stay_cancel_and_merge(rt):
    """A readmitted patient in hospital: the new stay's attending reads the earlier record;
    a cancelled stay (A11) no longer counts; a merge (A40) keeps barcodes and renumbers."""
    _hospital(rt)
    with rt.sessions() as s, s.begin():
        intake.record_admission(s, rt, _adm(), HIS)
        stay = _adm(no="ZY202602000003", visit=2, days=(1, None), signers={},
                    admitted_at=dt.datetime(2026, 2, 1, 2, tzinfo=UTC), discharged_at=None,
                    operations=(), extra={"attending_physician": "赵强",
                                          "treating_physicians": ["D0004"]})
        res = intake.record_admission(s, rt, stay, HIS)
        assert res.data.extra["attending_physician"] == "D0009"
        zhao = staff_ref(get_staff(s, "D0009"))
        first = s.scalar(select(Admission).where(Admission.admission_no == "ZY202601000001"))
        d = permissions.decide(s, rt, zhao, first, "view", now=dt.datetime(2026, 2, 3,
                                                                           tzinfo=UTC))
        assert d.allowed and "current_stay" in d.reason
        intake.cancel_admission(s, rt, "ZY202602000003", HIS, "登记错误")
        d = permissions.decide(s, rt, zhao, first, "view", now=dt.datetime(2026, 2, 3,
                                                                           tzinfo=UTC))
        assert not d.allowed
        # the HIS sends the stay again: reinstated
        intake.record_admission(s, rt, stay, HIS)
        assert s.scalar(select(Admission.cancelled_at).where(
            Admission.admission_no == "ZY202602000003")) is None

        # a duplicate MRN with one earlier stay, merged into 00100001
        intake.record_admission(s, rt, _adm(mrn="00100077", no="ZY202512000077", days=(1, 4),
                                            admitted_at=dt.datetime(2025, 12, 1, 2, tzinfo=UTC),
                                            discharged_at=dt.datetime(2025, 12, 4, 2,
                                                                      tzinfo=UTC),
                                            operations=()), HIS)
        old_code = s.scalar(select(Admission.barcode).where(
            Admission.admission_no == "ZY202512000077"))
        assert intake.merge_patients(s, rt, "00100001", "00100077", HIS) == 1
        rows = s.execute(select(Admission.admission_no, Admission.visit_no, Admission.barcode)
                         .join(Patient).where(Patient.mrn == "00100001")
                         .order_by(Admission.visit_no)).all()
        assert [(r[0], r[1]) for r in rows] == [
            ("ZY202512000077", 1), ("ZY202601000001", 2), ("ZY202602000003", 3)]
        assert rows[0][2] == old_code  # the printed label still finds the record
    with rt.sessions() as s, s.begin():
        with pytest.raises(intake.IntakeError) as exc:
            intake.record_admission(s, rt, _adm(mrn="00100077", no="ZY202603000001"), HIS)
        assert "已合并到 00100001" in exc.value.problems[0].reason
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action.in_(["admission.cancel", "patient.merge"]))) == 2


def test_hook_demo_admissions(rt):
    """``demo load`` hands the demo's admissions to the plugin answering ``demo_admissions``
    (and refuses a short count); without one they go through core.intake."""
    from bingan.core.cli import Ctx, build_cli
    from click.testing import CliRunner

    seen = []

    class Feeder:
        @hookimpl
        def demo_admissions(self, session, admissions, rt):
            seen.append(len(admissions))
            d = intake.Directory(session)
            for a in admissions[:10]:
                intake.record_admission(session, rt, dataclasses.replace(a),
                                        intake.Source("import"), directory=d)
            return 10

    rt.pm.register(Feeder(), name="test-feeder")
    obj = Ctx()
    obj._rt = rt
    res = CliRunner().invoke(build_cli(rt), ["demo", "load"], obj=obj)
    assert res.exit_code != 0 and seen == [300]
    assert "only 10 of 300" in str(res.exception)
    assert _count(rt, Admission) == 0  # nothing half-loaded
