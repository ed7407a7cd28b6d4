"""The demo hospital: the generated plan (pure) and ``load_demo`` on each database backend."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bingan.core.demo import build_admissions, demo_logins, id_check_digit, id_number_valid, load_demo
from bingan.core.demo import data as D
from bingan.core.demo.generate import make_id_number
from bingan.core.records import ADMISSION_CONDITIONS, DISCHARGE_WAYS, SIGNER_ROLES
from bingan.core.staff import BUILTIN_ROLES

ICD10_RE = re.compile(r"^[A-Z]\d{2}(\.[0-9x]{1,4})?$")
ICD9CM3_RE = re.compile(r"^\d{2}\.[0-9x]{2}\d{2}$")
STAFF_NOS = {s.staff_no for s in D.STAFF}
CN = ZoneInfo("Asia/Shanghai")  # [core] timezone's default
EXPECTED_WAYS = {"1": 262, "2": D.N_TRANSFER_HOSPITAL, "3": D.N_TRANSFER_COMMUNITY,
                 "4": D.N_AGAINST_ADVICE, "5": D.N_DEATHS, None: D.N_IN_HOSPITAL}


@pytest.fixture(scope="module")
def adms():
    return build_admissions(CN)


def _by_patient(adms):
    out = defaultdict(list)
    for a in adms:
        out[a.patient.mrn].append(a)
    return out


# --------------------------------------------------------------------------------------------
# The plan (no database)
# --------------------------------------------------------------------------------------------


def test_counts(adms):
    assert len(adms) == D.N_ADMISSIONS == 300
    assert len({a.patient.mrn for a in adms}) == D.N_PATIENTS == 220
    assert Counter(a.discharge_way for a in adms) == EXPECTED_WAYS
    assert sum(a.readmission_31d for a in adms) == D.N_READMISSION_31D
    assert Counter(len(v) for v in _by_patient(adms).values()) == D.VISITS_PER_PATIENT
    assert 25 <= len(D.STAFF) <= 30
    assert sum("physician" in s.roles for s in D.STAFF) == 21
    assert len([d for d in D.DEPARTMENTS if d[2] == "clinical"]) == 11


def test_deterministic(adms):
    again = build_admissions(CN)
    assert again == adms
    key = lambda xs: [(a.patient.mrn, a.admission_no, a.patient.name) for a in xs]  # noqa: E731
    assert key(again) == key(adms)
    assert build_admissions(CN, seed=7) != adms


def test_clock_times_are_the_hospitals(adms):
    """The generator's clock times (planned admissions 08:00-16:59 local) are local times of
    the time zone it is given (rt.tz): the same wall clock, another instant, elsewhere."""
    urumqi = ZoneInfo("Asia/Urumqi")  # UTC+6
    other = build_admissions(urumqi)
    assert [a.admission_no for a in other] == [a.admission_no for a in adms]
    for a, b in zip(adms, other):
        assert a.admitted_at.astimezone(CN).replace(tzinfo=None) == \
            b.admitted_at.astimezone(urumqi).replace(tzinfo=None)
        assert b.admitted_at - a.admitted_at == dt.timedelta(hours=2)


def test_identifiers(adms):
    assert len({a.admission_no for a in adms}) == 300
    for a in adms:
        assert re.fullmatch(r"\d{6,10}", a.patient.mrn)
        assert re.fullmatch(r"ZY\d{6,14}", a.admission_no)
        local = a.admitted_at.astimezone(CN)
        assert a.admission_no[2:8] == f"{local:%Y%m}"
    for mrn, stays in _by_patient(adms).items():
        assert [a.visit_no for a in stays] == list(range(1, len(stays) + 1))
        assert len({(a.patient.name, a.patient.id_number) for a in stays}) == 1


def test_dates(adms):
    utc = dt.timezone.utc
    for a in adms:
        assert a.admitted_at.tzinfo is utc
        assert a.admitted_at.date() >= D.WINDOW_START
        if a.discharged_at is None:
            assert a.discharge_way is None
            assert D.REFERENCE_DATE - dt.timedelta(days=10) <= a.admitted_at.date()
            assert a.admitted_at.date() < D.REFERENCE_DATE
        else:
            assert a.discharged_at.tzinfo is utc
            assert a.admitted_at.date() <= D.WINDOW_END + dt.timedelta(days=1)
            los = (a.discharged_at.date() - a.admitted_at.date()).days
            assert 1 <= los <= 30
            assert a.discharged_at.date() < D.REFERENCE_DATE
        assert a.patient.birth_date < a.admitted_at.date()


def test_readmissions_deaths_and_in_hospital(adms):
    in_hospital_readmitted = 0
    for mrn, stays in _by_patient(adms).items():
        for prev, cur in zip(stays, stays[1:]):
            assert prev.discharged_at is not None and prev.discharge_way != "5"
            gap = (cur.admitted_at.date() - prev.discharged_at.date()).days
            assert gap > 0
            assert cur.readmission_31d == (gap <= 31)
        assert not stays[0].readmission_31d
        if stays[-1].discharged_at is None and len(stays) > 1:
            in_hospital_readmitted += 1
    assert in_hospital_readmitted == D.N_IN_HOSPITAL_READMITTED
    for a in adms:
        if a.discharge_way == "5":
            assert "autopsy" in a.extra
        if a.discharge_way in ("2", "3"):
            assert a.extra["receiving_org"]


def test_id_numbers(adms):
    # The worked examples of GB 11643-1999.
    assert id_check_digit("11010519491231002") == "X"
    assert id_check_digit("44052418800101001") == "4"
    assert make_id_number("330106", dt.date(1980, 2, 29), 123, "F")[14:17] == "124"
    areas = {r.code for r in D.REGIONS}
    for a in adms:
        p = a.patient
        assert id_number_valid(p.id_number), p.id_number
        assert p.id_number[:6] in areas
        assert p.id_number[6:14] == f"{p.birth_date:%Y%m%d}"
        assert (int(p.id_number[16]) % 2 == 1) == (p.sex == "M")
        assert re.fullmatch(r"1[3-9]\d{9}", p.phone)
        assert p.address.startswith(next(r.province for r in D.REGIONS
                                         if r.code == p.id_number[:6]))


def test_names(adms):
    surnames = {a.patient.name[0] for a in adms}
    assert set(D.HETERONYM_SURNAMES) <= surnames
    for a in adms:
        assert 2 <= len(a.patient.name) <= 3
        assert a.patient.sex in ("M", "F")
        if a.diagnoses[0].code.startswith("O"):
            assert a.patient.sex == "F"
        if a.patient.name.startswith("朴"):
            assert a.extra["ethnicity"] == "朝鲜族"


def test_codes(adms):
    assert len(D.DIAGNOSES) >= 60 and len(D.OPERATIONS) >= 30
    for code in D.DIAGNOSES:
        assert ICD10_RE.match(code), code
    for code in D.OPERATIONS:
        assert ICD9CM3_RE.match(code), code
    for a in adms:
        dx = a.diagnoses
        assert dx[0].kind == "main" and all(d.kind == "other" for d in dx[1:])
        assert 1 <= len(dx) <= 5
        assert len({d.code for d in dx}) == len(dx)
        for d in dx:
            assert D.DIAGNOSES[d.code] == d.name
            assert d.admission_condition in ADMISSION_CONDITIONS
        assert a.discharge_way is None or a.discharge_way in DISCHARGE_WAYS
        assert a.payment_method in {str(i) for i in range(1, 10)}
        for o in a.operations:
            assert ICD9CM3_RE.match(o.code) and D.OPERATIONS[o.code][0] == o.name
            assert o.level in ("1", "2", "3", "4")
            assert a.admitted_at.date() <= o.date
            if a.discharged_at:
                assert o.date <= a.discharged_at.date()
        od = a.extra["outpatient_diagnosis"]
        assert ICD10_RE.match(od["code"])
        if a.discharged_at is not None:
            costs = a.extra["costs"]
            summed = sum(v for k, v in costs["items"].items() if k != "antibiotics")
            assert round(summed, 2) == a.total_cost == costs["total"]
            assert 0 <= costs["self_paid"] <= a.total_cost
        else:
            assert a.total_cost is None


def test_signers_and_operators_are_staff(adms):
    by_no = {s.staff_no: s for s in D.STAFF}
    for a in adms:
        assert set(a.signers) <= set(SIGNER_ROLES)
        dept_key = next(k for c, _, _, k in D.DEPARTMENTS if c == a.discharge_department)
        for role in ("dept_head", "chief", "attending", "resident"):
            s = by_no[a.signers[role]]
            assert s.dept == dept_key and "physician" in s.roles
        for role, no in a.signers.items():
            assert no in STAFF_NOS
        if a.discharged_at is None:
            assert "coder" not in a.signers and "qc_doctor" not in a.signers
        for o in a.operations:
            for no in (o.surgeon_no, o.assistant1_no, o.assistant2_no, o.anaesthetist_no):
                assert no is None or no in STAFF_NOS
    for s in D.STAFF:
        assert set(s.roles) <= set(BUILTIN_ROLES)
        assert len(s.password) >= 8


def test_logins():
    logins = demo_logins()
    assert len(logins) == len(D.STAFF)
    admin = next(x for x in logins if x[0] == "A0001")
    assert admin[3] == D.ADMIN_PASSWORD != D.DEMO_PASSWORD
    assert all(x[3] == D.DEMO_PASSWORD for x in logins if x[0] != "A0001")


# --------------------------------------------------------------------------------------------
# Loading into a database
# --------------------------------------------------------------------------------------------


def test_load_demo(rt, adms):
    from bingan.core.models import Admission, Department, Operation, Patient, Signer, Staff
    from bingan.core.records import decrypt_id_number
    from bingan.core.staff import check_login

    with rt.sessions() as s, s.begin():
        summary = load_demo(s, rt)
    assert summary.admissions == 300 and summary.patients == 220
    assert summary.staff == len(D.STAFF) and summary.departments == len(D.DEPARTMENTS)
    assert (summary.deaths, summary.against_advice, summary.in_hospital,
            summary.readmissions_31d) == (8, 8, 6, 30)
    assert summary.logins == demo_logins()

    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Admission)) == 300
        assert s.scalar(select(func.count()).select_from(Patient)) == 220
        assert s.scalar(select(func.count()).select_from(Staff)) == len(D.STAFF)
        assert s.scalar(select(func.count()).select_from(Department)) == len(D.DEPARTMENTS)
        assert s.scalar(select(func.count()).select_from(Operation)) == summary.operations
        ways = Counter(s.scalars(select(Admission.discharge_way)))
        assert ways == EXPECTED_WAYS
        assert s.scalar(select(func.count()).where(Admission.readmission_31d.is_(True))) == 30
        rows = s.execute(
            select(Patient.mrn, Admission.admission_no, Patient.name)
            .join(Admission, Admission.patient_id == Patient.id)
            .order_by(Admission.admitted_at, Admission.admission_no)
        ).all()
        assert [tuple(r) for r in rows] == [
            (a.patient.mrn, a.admission_no, a.patient.name) for a in adms
        ]
        staff_nos = set(s.scalars(select(Staff.staff_no)))
        assert set(s.scalars(select(Signer.staff_no))) <= staff_nos
        for col in (Operation.surgeon_no, Operation.assistant1_no, Operation.anaesthetist_no):
            assert set(s.scalars(select(col).where(col.is_not(None)))) <= staff_nos
        first = adms[0]
        p = s.scalar(select(Patient).where(Patient.mrn == first.patient.mrn))
        assert decrypt_id_number(rt, p) == first.patient.id_number
        adm = s.scalar(select(Admission).where(Admission.admission_no == first.admission_no))
        assert adm.admitted_at == first.admitted_at
        assert adm.front_page["ethnicity"] == first.extra["ethnicity"]

    with rt.sessions() as s, s.begin():
        ok = check_login(s, "A0001", D.ADMIN_PASSWORD, failures=5, lock_minutes=15)
        assert ok.ok
        ok = check_login(s, "D0001", D.DEMO_PASSWORD, failures=5, lock_minutes=15)
        assert ok.ok
        bad = check_login(s, "A0001", D.DEMO_PASSWORD, failures=5, lock_minutes=15)
        assert not bad.ok
