"""Record identity service: patients, admissions (front pages), barcodes, lookups.

The record barcode (one scheme, printed on labels and front pages, Code 128):

    BA<MRN>-<visit no., at least 2 digits><check character>

The check character is ISO 7064 MOD 37,36 over ``<MRN><visit>`` (digits and A-Z), the same
family used by Chinese unified social credit codes; a phone scanner can reject a misread
before any look-up. Example: MRN 00123456, visit 3 -> ``BA00123456-03`` + check.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import replace

from cryptography.fernet import Fernet
from pypinyin import Style, lazy_pinyin
from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.hooks.types import AdmissionIn, AdmissionRef
from bingan.core.models import Admission, Diagnosis, Operation, Patient, Signer

# Front-page signing roles (DOMAIN.md). Keys are stored; labels are shown.
SIGNER_ROLES: dict[str, str] = {
    "dept_head": "科主任",
    "chief": "主任（副主任）医师",
    "attending": "主治医师",
    "resident": "住院医师",
    "nurse": "责任护士",
    "fellow": "进修医师",
    "intern": "实习医师",
    "coder": "编码员",
    "qc_doctor": "质控医师",
    "qc_nurse": "质控护士",
}

DISCHARGE_WAYS: dict[str, str] = {
    "1": "医嘱离院", "2": "医嘱转院", "3": "医嘱转社区/乡镇卫生院",
    "4": "非医嘱离院", "5": "死亡", "9": "其他",
}

ADMISSION_CONDITIONS = {"1": "有", "2": "临床未确定", "3": "情况不明", "4": "无"}

# 医疗付费方式 of the national inpatient front page
PAYMENT_METHODS: dict[str, str] = {
    "1": "城镇职工基本医疗保险", "2": "城镇居民基本医疗保险", "3": "新型农村合作医疗",
    "4": "贫困救助", "5": "商业医疗保险", "6": "全公费", "7": "全自费", "8": "其他社会保险",
    "9": "其他",
}
SEXES: dict[str, str] = {"M": "男", "F": "女", "U": "未知"}

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_BARCODE_RE = re.compile(r"^BA([0-9A-Z]+)-(\d{2,})([0-9A-Z])$")


class RecordError(ValueError):
    """Bad record identity (wrong MRN format, unknown MRN, bad barcode ...)."""


def _mod37_36(payload: str) -> str:
    p = 36
    for ch in payload:
        p = ((p + _ALNUM.index(ch)) % 36 or 36) * 2 % 37
    return _ALNUM[(37 - p) % 36]


def record_barcode(mrn: str, visit_no: int) -> str:
    """The barcode of one record (see module docstring)."""
    mrn = mrn.upper()
    if not re.fullmatch(r"[0-9A-Z]+", mrn):
        raise RecordError(f"MRN {mrn!r} cannot be encoded in a record barcode")
    visit = f"{visit_no:02d}"
    return f"BA{mrn}-{visit}{_mod37_36(mrn + visit)}"


def parse_barcode(code: str) -> tuple[str, int]:
    """Return (MRN, visit no.) of a record barcode; RecordError if malformed or misread."""
    m = _BARCODE_RE.match(code.strip().upper())
    if not m:
        raise RecordError(f"{code!r} is not a record barcode")
    mrn, visit, check = m.groups()
    if _mod37_36(mrn + visit) != check:
        raise RecordError(f"{code!r}: check character does not match (misread?)")
    return mrn, int(visit)


def name_pinyin(name: str) -> tuple[str, str]:
    """Full pinyin (no tones, no spaces) and initials of a Chinese name."""
    full = lazy_pinyin(name, style=Style.NORMAL, errors="ignore")
    initials = lazy_pinyin(name, style=Style.FIRST_LETTER, errors="ignore")
    return "".join(full).lower(), "".join(initials).lower()


def check_formats(mrn: str, admission_no: str, mrn_pattern: str, adm_pattern: str) -> None:
    if not re.fullmatch(mrn_pattern.strip("^$"), mrn):
        raise RecordError(f"MRN {mrn!r} does not match the configured format {mrn_pattern}")
    if not re.fullmatch(adm_pattern.strip("^$"), admission_no):
        raise RecordError(
            f"admission number {admission_no!r} does not match the configured format {adm_pattern}"
        )


def to_ref(adm: Admission) -> AdmissionRef:
    """The plugin-facing view of an admission row."""
    return AdmissionRef(
        id=adm.id, mrn=adm.patient.mrn, admission_no=adm.admission_no, visit_no=adm.visit_no,
        patient_id=adm.patient_id, patient_name=adm.patient.name, admitted_at=adm.admitted_at,
        discharged_at=adm.discharged_at, discharge_department=adm.discharge_department,
        discharge_way=adm.discharge_way,
        signer_staff_nos=frozenset(s.staff_no for s in adm.signers), barcode=adm.barcode,
    )


def _id_hash(key: bytes, id_number: str) -> str:
    return hmac.new(key, id_number.upper().encode(), hashlib.sha256).hexdigest()


def id_number_hash(rt, id_number: str) -> str:
    """The keyed hash an ID number is looked up by (the number itself is stored encrypted)."""
    return _id_hash(rt.secret_key, id_number)


def decrypt_id_number(rt, patient: Patient) -> str | None:
    """The patient's ID number in clear (encrypted at rest)."""
    if patient.id_number_enc is None:
        return None
    return Fernet(rt.fernet_key()).decrypt(patient.id_number_enc).decode()


def upsert_admission(session: Session, rt, data: AdmissionIn) -> tuple[Admission, bool]:
    """Create or update a patient and one admission with its front page. Idempotent: the same
    input twice changes nothing the second time. Returns (admission, created).

    Calls ``admission_upserted`` with ``session`` after the flush (inside the caller's
    transaction).
    """
    core = rt.config.core
    p = data.patient
    check_formats(p.mrn, data.admission_no, core.mrn_pattern, core.admission_no_pattern)
    if data.discharged_at and data.discharged_at < data.admitted_at:
        raise RecordError(f"{data.admission_no}: discharged before admitted")
    patient = session.scalar(select(Patient).where(Patient.mrn == p.mrn))
    if patient is None:
        patient = Patient(mrn=p.mrn, name=p.name)
        session.add(patient)
    full, initials = name_pinyin(p.name)
    patient.name, patient.name_pinyin, patient.name_initials = p.name, full, initials
    patient.sex = p.sex
    patient.birth_date = p.birth_date
    patient.phone, patient.address = p.phone, p.address
    if p.id_number:
        h = _id_hash(rt.secret_key, p.id_number)
        if patient.id_number_hash != h:
            patient.id_number_hash = h
            patient.id_number_enc = Fernet(rt.fernet_key()).encrypt(p.id_number.encode())
    session.flush()

    adm = session.scalar(select(Admission).where(Admission.admission_no == data.admission_no))
    created = adm is None
    if adm is None:
        adm = Admission(admission_no=data.admission_no, patient_id=patient.id)
        session.add(adm)
    elif adm.patient_id != patient.id:
        raise RecordError(
            f"admission {data.admission_no} belongs to another patient (MRN {adm.patient.mrn})"
        )
    adm.patient = patient
    adm.visit_no = data.visit_no
    if created or not adm.barcode:
        # fixed at registration: printed labels stay valid after a merge or a renumbering
        adm.barcode = record_barcode(p.mrn, data.visit_no)
    adm.admitted_at, adm.discharged_at = data.admitted_at, data.discharged_at
    adm.admit_department, adm.discharge_department = data.admit_department, data.discharge_department
    adm.ward, adm.discharge_way, adm.payment_method = data.ward, data.discharge_way, data.payment_method
    adm.readmission_31d, adm.total_cost = data.readmission_31d, data.total_cost
    adm.front_page = dict(data.extra)
    if data.discharged_at:
        adm.los_days = max(1, (data.discharged_at.date() - data.admitted_at.date()).days)
    else:
        adm.los_days = None
    if p.birth_date:
        ref = data.admitted_at.date()
        adm.age_years = ref.year - p.birth_date.year - ((ref.month, ref.day) < (p.birth_date.month, p.birth_date.day))
    want_dx = [(i, d.kind, d.code, d.name, d.admission_condition) for i, d in enumerate(data.diagnoses)]
    have_dx = [(d.seq, d.kind, d.code, d.name, d.admission_condition) for d in adm.diagnoses]
    if want_dx != have_dx:
        adm.diagnoses = [
            Diagnosis(seq=i, kind=k, code=c, name=n, admission_condition=ac)
            for i, k, c, n, ac in want_dx
        ]
    want_ops = [
        (i, o.code, o.name, o.date, o.level, o.surgeon_no, o.assistant1_no, o.assistant2_no,
         o.incision_healing, o.anaesthesia, o.anaesthetist_no)
        for i, o in enumerate(data.operations)
    ]
    have_ops = [
        (o.seq, o.code, o.name, o.op_date, o.level, o.surgeon_no, o.assistant1_no,
         o.assistant2_no, o.incision_healing, o.anaesthesia, o.anaesthetist_no)
        for o in adm.operations
    ]
    if want_ops != have_ops:
        adm.operations = [
            Operation(seq=w[0], code=w[1], name=w[2], op_date=w[3], level=w[4], surgeon_no=w[5],
                      assistant1_no=w[6], assistant2_no=w[7], incision_healing=w[8],
                      anaesthesia=w[9], anaesthetist_no=w[10])
            for w in want_ops
        ]
    unknown = set(data.signers) - set(SIGNER_ROLES)
    if unknown:
        raise RecordError(f"{data.admission_no}: unknown signer role {sorted(unknown)[0]!r}")
    if {(s.role, s.staff_no) for s in adm.signers} != set(data.signers.items()):
        adm.signers.clear()
        session.flush()  # delete before insert: (admission, role) is unique
        adm.signers.extend(Signer(role=r, staff_no=n) for r, n in sorted(data.signers.items()))
    session.flush()
    rt.pm.hook.admission_upserted(session=session, admission=to_ref(adm), created=created,
                                 rt=rt)
    return adm, created


def get_admission(session: Session, admission_no: str) -> Admission:
    adm = session.scalar(select(Admission).where(Admission.admission_no == admission_no))
    if adm is None:
        raise RecordError(f"unknown admission number {admission_no!r}")
    return adm


def get_patient(session: Session, mrn: str) -> Patient:
    patient = session.scalar(select(Patient).where(Patient.mrn == mrn))
    if patient is None:
        raise RecordError(f"unknown MRN {mrn!r}")
    return patient


__all__ = [
    "ADMISSION_CONDITIONS", "DISCHARGE_WAYS", "PAYMENT_METHODS", "SEXES", "RecordError",
    "SIGNER_ROLES", "check_formats",
    "decrypt_id_number", "get_admission", "id_number_hash", "get_patient", "name_pinyin", "parse_barcode",
    "record_barcode", "replace", "to_ref", "upsert_admission",
]
