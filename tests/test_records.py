"""Record identity: formats, barcode scheme, idempotent upsert, front page, encryption."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from bingan.hooks.types import AdmissionIn, DiagnosisIn, OperationIn, PatientIn
from bingan.core import records
from bingan.core.models import Admission, Diagnosis, Patient, Signer

UTC = dt.timezone.utc


def _adm(**kw) -> AdmissionIn:
    base = dict(
        patient=PatientIn(mrn="00200001", name="单雪梅", sex="F", birth_date=dt.date(1980, 3, 9),
                          id_number="11010519800309002X"),
        admission_no="ZY202602000001", visit_no=2,
        admitted_at=dt.datetime(2026, 2, 1, 1, 30, tzinfo=UTC),
        discharged_at=dt.datetime(2026, 2, 9, 3, 0, tzinfo=UTC),
        discharge_department="0301", discharge_way="1", payment_method="1",
        diagnoses=(DiagnosisIn("K35.800", "急性阑尾炎", "main", "1"),
                   DiagnosisIn("I10.x00", "高血压", "other", "1")),
        operations=(OperationIn("47.0101", "腹腔镜下阑尾切除术", dt.date(2026, 2, 2),
                                "3", "D0002", "D0003"),),
        signers={"attending": "D0002", "resident": "D0003", "dept_head": "D0001"},
        extra={"ethnicity": "汉族"},
    )
    base.update(kw)
    return AdmissionIn(**base)


def test_barcode_round_trip_and_check_character():
    code = records.record_barcode("00200001", 2)
    assert code.startswith("BA00200001-02")
    assert records.parse_barcode(code) == ("00200001", 2)
    assert records.parse_barcode(code.lower()) == ("00200001", 2)
    # any single misread character is caught by the check character
    for i in range(2, len(code)):
        if code[i] in "-":
            continue
        for ch in "0123456789":
            if ch != code[i]:
                bad = code[:i] + ch + code[i + 1:]
                try:
                    assert records.parse_barcode(bad) != ("00200001", 2)
                except records.RecordError:
                    pass
    with pytest.raises(records.RecordError):
        records.parse_barcode("not-a-barcode")


def test_pinyin_of_names():
    assert records.name_pinyin("张三") == ("zhangsan", "zs")


def test_upsert_is_idempotent_and_updates(rt):
    with rt.sessions() as s, s.begin():
        adm, created = records.upsert_admission(s, rt, _adm())
        assert created and adm.los_days == 8 and adm.age_years == 45
        assert adm.barcode == records.record_barcode("00200001", 2)
    with rt.sessions() as s, s.begin():
        _, created = records.upsert_admission(s, rt, _adm())
        assert not created
        assert s.scalar(select(func.count()).select_from(Admission)) == 1
        assert s.scalar(select(func.count()).select_from(Diagnosis)) == 2
        assert s.scalar(select(func.count()).select_from(Signer)) == 3
    with rt.sessions() as s, s.begin():
        records.upsert_admission(s, rt, _adm(discharge_way="5", signers={"attending": "D0009"}))
    with rt.sessions() as s:
        adm = records.get_admission(s, "ZY202602000001")
        assert adm.discharge_way == "5"
        assert [(x.role, x.staff_no) for x in adm.signers] == [("attending", "D0009")]
        assert adm.diagnoses[0].code == "K35.800" and adm.operations[0].surgeon_no == "D0002"
        ref = records.to_ref(adm)
        assert ref.signer_staff_nos == frozenset({"D0009"}) and ref.patient_name == "单雪梅"


def test_id_number_encrypted_at_rest(rt):
    with rt.sessions() as s, s.begin():
        records.upsert_admission(s, rt, _adm())
    with rt.sessions() as s:
        p = s.scalar(select(Patient))
        assert b"11010519800309002X" not in (p.id_number_enc or b"")
        assert records.decrypt_id_number(rt, p) == "11010519800309002X"


@pytest.mark.parametrize("change, message", [
    ({"admission_no": "2026-1"}, "admission number"),
    ({"patient": PatientIn(mrn="12", name="李四")}, "MRN"),
    ({"discharged_at": dt.datetime(2026, 1, 1, tzinfo=UTC)}, "discharged before admitted"),
    ({"signers": {"janitor": "X1"}}, "unknown signer role"),
])
def test_bad_identity_is_refused_and_nothing_written(rt, change, message):
    with pytest.raises(records.RecordError, match=message):
        with rt.sessions() as s, s.begin():
            records.upsert_admission(s, rt, _adm(**change))
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Admission)) == 0
        assert s.scalar(select(func.count()).select_from(Patient)) == 0


def test_admission_of_another_patient_is_refused(rt):
    with rt.sessions() as s, s.begin():
        records.upsert_admission(s, rt, _adm())
    with pytest.raises(records.RecordError, match="belongs to another patient"):
        with rt.sessions() as s, s.begin():
            records.upsert_admission(s, rt, _adm(patient=PatientIn(mrn="00200002", name="王五")))


def test_unknown_lookups(rt):
    with rt.sessions() as s:
        with pytest.raises(records.RecordError, match="unknown MRN"):
            records.get_patient(s, "99999999")
        with pytest.raises(records.RecordError, match="unknown admission"):
            records.get_admission(s, "ZY999999")
