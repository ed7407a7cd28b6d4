"""The one validated entry for admissions from other systems and people.

Every path that brings an admission in (HL7 ADT, the HIS views, file import, the JSON API, the
clerk's form, the demo) calls ``record_admission``: it checks the whole front page, resolves
departments and physicians to the hospital's own codes and staff numbers, refuses what does not
fit with every reason at once (``IntakeError.problems``: field, reason, value), writes through
``core.records.upsert_admission`` and appends one audit event naming the source.

Rules (patterns from ``[core]`` in plugins.toml):
- MRN ``mrn_pattern``, admission number ``admission_no_pattern``; visit number >= 1; the
  admission number belongs to one patient, a patient's visit number to one admission; a patient
  merged into another (ADT A40) takes no new admissions under the old MRN.
- Patient name present; sex M/F/U; an 18-digit resident ID number with a valid check digit;
  birth date not after admission.
- Dates in order: admission not in the future, discharge not before admission, operations
  within the stay (by day).
- Diagnoses: ICD-10 shape ``icd10_pattern`` (pathology: ``morphology_pattern`` or ICD-10), one
  main diagnosis at most, admission condition 1-4; operations: ICD-9-CM-3 ``icd9cm3_pattern``.
- Discharge way CV06.00.226 (1 2 3 4 5 9), payment method 1-9.
- Departments: a department code or name known to the hospital (normalised to the code).
- Physicians (front-page signers, operation staff, the care team of the stay in the front-page
  keys ``CARE_TEAM_KEYS``): a staff number, ``姓名(工号)`` or a name that is unique (in the
  discharge department first); normalised to the staff number. The care team is what the reading
  policy uses while the patient is in hospital (M6).

``Source.authority``: a source that is the hospital's master patient index (HIS through HL7 or
its views, an integrator's API client) may change a known patient's name, sex and birth date;
a file import or a clerk may not (a name that differs from the one on file is a problem: most
often a wrong MRN).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from bingan.core import audit
from bingan.core.models import Admission, Department, Patient, Staff, utcnow
from bingan.core.records import (
    ADMISSION_CONDITIONS,
    DISCHARGE_WAYS,
    PAYMENT_METHODS,
    SIGNER_ROLES,
    RecordError,
    record_barcode,
    to_ref,
    upsert_admission,
)
from bingan.hooks.types import AdmissionIn, AdmissionRef, DiagnosisIn, OperationIn, PatientIn
from sqlalchemy import select
from sqlalchemy.orm import Session

# Front-page keys naming the physicians of the stay (read by the reading policy's current-stay
# rule): admitting, attending and resident physician, and everyone who treated the patient.
CARE_TEAM_KEYS = ("admit_physician", "attending_physician", "resident_physician",
                  "treating_physicians")
DIAGNOSIS_KINDS = {"main": "主要诊断", "other": "其他诊断", "outpatient": "门（急）诊诊断",
                   "pathology": "病理诊断", "injury": "损伤中毒外部原因"}
SOURCE_LABELS = {"hl7v2": "HL7 ADT 消息", "his_sql": "HIS 视图同步", "import": "首页文件导入",
                 "api": "接口客户端", "clerk": "手工登记", "demo": "演示数据"}
FUTURE_TOLERANCE = dt.timedelta(hours=1)
_NAME_NO = re.compile(r"^\s*(?P<name>[^()（）]+?)\s*[(（]\s*(?P<no>[^()（）]+?)\s*[)）]\s*$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True)
class Source:
    """Where an admission came from, for the audit log and the identity rule."""

    kind: str  # hl7v2 his_sql import api clerk demo
    actor: audit.Actor = field(default_factory=audit.Actor)
    ref: str = ""  # message control id, file and row, API client ...
    authority: bool = False  # may change a known patient's name, sex and birth date


@dataclass(frozen=True)
class Problem:
    """One reason an admission is refused. ``field`` is a path into ``AdmissionIn``
    (``patient.mrn``, ``diagnoses[1].code``, ``signers.attending``, ``front_page.admit_physician``)
    that each path maps to its own column or segment names."""

    field: str
    reason: str
    value: str | None = None


class IntakeError(RecordError):
    """The admission was refused; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("；".join(f"{p.field}：{p.reason}" for p in problems))


@dataclass(frozen=True)
class IntakeResult:
    admission: AdmissionRef
    created: bool
    changed: bool
    data: AdmissionIn


def id_number_valid(number: str) -> bool:
    """A mainland resident ID number (GB 11643): 18 characters with an ISO 7064 check digit."""
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    total = sum(int(c) * w for c, w in zip(number[:17], _ID_WEIGHTS))
    return "10X98765432"[total % 11] == number[17]


class Directory:
    """Departments and staff looked up once per value (an import of 10,000 rows names the same
    few hundred physicians and departments)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._dept: dict[str, str | None] = {}
        self._staff: dict[tuple[str, str | None], tuple[str | None, str]] = {}

    def department(self, value: str) -> str | None:
        """The department code for a code or a name, or None if unknown."""
        if value not in self._dept:
            s = self.session
            code = s.scalar(select(Department.code).where(Department.code == value))
            if code is None:
                codes = s.scalars(select(Department.code).where(Department.name == value)).all()
                code = codes[0] if len(codes) == 1 else None
            self._dept[value] = code
        return self._dept[value]

    def staff(self, value: str, department: str | None) -> tuple[str | None, str]:
        """(staff number, "") or (None, reason) for a staff number, 姓名(工号) or a name."""
        key = (value, department)
        if key not in self._staff:
            self._staff[key] = self._resolve(value.strip(), department)
        return self._staff[key]

    def _resolve(self, value: str, department: str | None) -> tuple[str | None, str]:
        s = self.session
        if s.scalar(select(Staff.staff_no).where(Staff.staff_no == value)):
            return value, ""
        m = _NAME_NO.match(value)
        if m:
            no, name = m.group("no"), m.group("name")
            got = s.scalar(select(Staff.name).where(Staff.staff_no == no))
            if got is None:
                return None, f"工号 {no} 不存在"
            if got != name:
                return None, f"工号 {no} 是 {got}，不是 {name}"
            return no, ""
        rows = s.execute(select(Staff.staff_no, Department.code)
                         .outerjoin(Department, Staff.department_id == Department.id)
                         .where(Staff.name == value, Staff.active.is_(True))).all()
        if len(rows) == 1:
            return rows[0][0], ""
        if not rows:
            return None, "不是本院在职职工（工号或姓名均未找到）"
        same = [no for no, dept in rows if department and dept == department]
        if len(same) == 1:
            return same[0], ""
        return None, f"本院有 {len(rows)} 名同名职工，请填写工号"


def _pattern(p: str) -> re.Pattern[str]:
    return re.compile(p)


def _dt(value: dt.datetime | None, tz: dt.tzinfo) -> str | None:
    """A time as a clerk reads it (hospital time) in a problem's value."""
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else None


def normalise(session: Session, rt, data: AdmissionIn, *, directory: Directory | None = None,
              now: dt.datetime | None = None) -> tuple[AdmissionIn, list[Problem]]:
    """Check an admission against the rules (no database write) and return it with
    departments and physicians resolved, plus every problem found."""
    core = rt.config.core
    d = directory or Directory(session)
    now = now or utcnow()
    problems: list[Problem] = []

    def bad(path: str, reason: str, value: Any = None) -> None:
        problems.append(Problem(path, reason, None if value is None else str(value)))

    p = data.patient
    mrn = (p.mrn or "").strip()
    if not mrn:
        bad("patient.mrn", "病案号不能为空")
    elif not _pattern(core.mrn_pattern).search(mrn):
        bad("patient.mrn", f"病案号格式不符（应匹配 {core.mrn_pattern}）", mrn)
    else:
        try:
            record_barcode(mrn, max(1, data.visit_no or 1))
        except RecordError:
            bad("patient.mrn", "病案号只能含数字和大写字母", mrn)
    adm_no = (data.admission_no or "").strip()
    if not adm_no:
        bad("admission_no", "住院号不能为空")
    elif not _pattern(core.admission_no_pattern).search(adm_no):
        bad("admission_no", f"住院号格式不符（应匹配 {core.admission_no_pattern}）", adm_no)
    if not isinstance(data.visit_no, int) or data.visit_no < 1:
        bad("visit_no", "住院次数应为不小于 1 的整数", data.visit_no)
    name = (p.name or "").strip()
    if not name:
        bad("patient.name", "姓名不能为空")
    if p.sex not in ("M", "F", "U"):
        bad("patient.sex", "性别应为 男/女/未知", p.sex)
    id_number = (p.id_number or "").strip().upper() or None
    if id_number and len(id_number) == 18 and not id_number_valid(id_number):
        bad("patient.id_number", "身份证号校验位不符", "****" + id_number[-4:])
    elif id_number and len(id_number) not in (15, 18) and re.fullmatch(r"[\dX]+", id_number):
        bad("patient.id_number", "身份证号应为 18 位", None)

    admitted, discharged = data.admitted_at, data.discharged_at
    for path, value in (("admitted_at", admitted), ("discharged_at", discharged)):
        if value is not None and (not isinstance(value, dt.datetime) or value.tzinfo is None):
            bad(path, "时间缺少时区（内部错误）", value)
    if admitted is None:
        bad("admitted_at", "入院时间不能为空")
    elif admitted.tzinfo is not None:
        if admitted > now + FUTURE_TOLERANCE:
            bad("admitted_at", "入院时间晚于当前时间", _dt(admitted, rt.tz))
        if discharged is not None and discharged.tzinfo is not None and discharged < admitted:
            bad("discharged_at", "出院时间早于入院时间", _dt(discharged, rt.tz))
        if p.birth_date and p.birth_date > admitted.date() + dt.timedelta(days=1):
            bad("patient.birth_date", "出生日期晚于入院日期", p.birth_date)
    if discharged is not None and discharged.tzinfo is not None and \
            discharged > now + FUTURE_TOLERANCE:
        bad("discharged_at", "出院时间晚于当前时间", _dt(discharged, rt.tz))
    if data.discharge_way and data.discharge_way not in DISCHARGE_WAYS:
        bad("discharge_way", "离院方式应为 1 2 3 4 5 9（CV06.00.226）", data.discharge_way)
    if data.discharge_way and discharged is None:
        bad("discharge_way", "未出院的住院不应有离院方式", data.discharge_way)
    if data.payment_method and data.payment_method not in PAYMENT_METHODS:
        bad("payment_method", "医疗付费方式应为 1-9", data.payment_method)

    depts: dict[str, str | None] = {}
    for path in ("admit_department", "discharge_department"):
        value = getattr(data, path)
        if value:
            code = d.department(value.strip())
            if code is None:
                bad(path, "不是本院科室（代码或名称均未找到）", value)
            depts[path] = code
        else:
            depts[path] = None
    home_dept = depts["discharge_department"] or depts["admit_department"]

    icd10, morph, icd9 = (_pattern(core.icd10_pattern), _pattern(core.morphology_pattern),
                          _pattern(core.icd9cm3_pattern))
    diagnoses = []
    for i, dx in enumerate(data.diagnoses):
        code = (dx.code or "").strip()
        where = f"diagnoses[{i}]"
        if dx.kind not in DIAGNOSIS_KINDS:
            bad(f"{where}.kind", "诊断类别未知", dx.kind)
        ok = icd10.search(code) or (dx.kind == "pathology" and morph.search(code))
        if not code:
            bad(f"{where}.code", "诊断编码不能为空")
        elif not ok:
            bad(f"{where}.code", "不是 ICD-10 编码" + ("或病理形态学编码" if dx.kind == "pathology"
                                                     else ""), code)
        if not (dx.name or "").strip():
            bad(f"{where}.name", "诊断名称不能为空")
        if dx.admission_condition and dx.admission_condition not in ADMISSION_CONDITIONS:
            bad(f"{where}.admission_condition", "入院病情应为 1有 2临床未确定 3情况不明 4无",
                dx.admission_condition)
        diagnoses.append(dataclasses.replace(dx, code=code, name=(dx.name or "").strip()))
    if sum(1 for dx in data.diagnoses if dx.kind == "main") > 1:
        bad("diagnoses", "主要诊断只能有一个")

    def staff(path: str, value: str | None) -> str | None:
        if value is None or not str(value).strip():
            return None
        no, why = d.staff(str(value), home_dept)
        if no is None:
            bad(path, why, value)
        return no

    operations = []
    for i, op in enumerate(data.operations):
        code = (op.code or "").strip()
        where = f"operations[{i}]"
        if not code:
            bad(f"{where}.code", "手术操作编码不能为空")
        elif not icd9.search(code):
            bad(f"{where}.code", "不是 ICD-9-CM-3 编码", code)
        if not (op.name or "").strip():
            bad(f"{where}.name", "手术操作名称不能为空")
        if op.date and admitted is not None and admitted.tzinfo is not None:
            first = admitted.astimezone(rt.tz).date()
            last = (discharged.astimezone(rt.tz).date() if discharged is not None
                    and discharged.tzinfo is not None else now.astimezone(rt.tz).date())
            if not first <= op.date <= last:
                bad(f"{where}.date", "手术日期不在住院期间", op.date)
        operations.append(dataclasses.replace(
            op, code=code, name=(op.name or "").strip(),
            surgeon_no=staff(f"{where}.surgeon_no", op.surgeon_no),
            assistant1_no=staff(f"{where}.assistant1_no", op.assistant1_no),
            assistant2_no=staff(f"{where}.assistant2_no", op.assistant2_no),
            anaesthetist_no=staff(f"{where}.anaesthetist_no", op.anaesthetist_no)))

    signers: dict[str, str] = {}
    for role, value in data.signers.items():
        if role not in SIGNER_ROLES:
            bad(f"signers.{role}", "未知的签名角色", role)
            continue
        no = staff(f"signers.{role}", value)
        if no:
            signers[role] = no

    extra = dict(data.extra)
    for key in CARE_TEAM_KEYS:
        value = extra.get(key)
        if value is None:
            continue
        if isinstance(value, list):
            out = [staff(f"front_page.{key}[{i}]", v) for i, v in enumerate(value)]
            extra[key] = sorted({v for v in out if v})
        else:
            extra[key] = staff(f"front_page.{key}", value)

    clean = dataclasses.replace(
        data, admission_no=adm_no,
        patient=dataclasses.replace(p, mrn=mrn, name=name, id_number=id_number),
        admit_department=depts["admit_department"],
        discharge_department=depts["discharge_department"],
        diagnoses=tuple(diagnoses), operations=tuple(operations), signers=signers, extra=extra)
    return clean, problems



def _identity_problems(session: Session, data: AdmissionIn, source: Source) -> list[Problem]:
    out: list[Problem] = []
    p = data.patient
    patient = session.scalar(select(Patient).where(Patient.mrn == p.mrn))
    if patient is not None and patient.merged_into_id is not None:
        into = session.get(Patient, patient.merged_into_id)
        out.append(Problem("patient.mrn", f"病案号已合并到 {into.mrn if into else '另一病案号'}，"
                                          "请用合并后的病案号", p.mrn))
    if patient is not None and not source.authority and patient.name != p.name:
        out.append(Problem("patient.name", f"病案号 {p.mrn} 登记的姓名是 {patient.name}，"
                                           "与本次不符（病案号是否填错？）", p.name))
    adm = session.scalar(select(Admission).where(Admission.admission_no == data.admission_no))
    if adm is not None and (patient is None or adm.patient_id != patient.id):
        out.append(Problem("admission_no", f"住院号已属于病案号 {adm.patient.mrn} 的患者",
                           data.admission_no))
    if patient is not None:
        other = session.scalar(select(Admission.admission_no).where(
            Admission.patient_id == patient.id, Admission.visit_no == data.visit_no,
            Admission.admission_no != data.admission_no))
        if other:
            out.append(Problem("visit_no", f"病案号 {p.mrn} 的第 {data.visit_no} 次住院已登记为"
                                           f"住院号 {other}", data.visit_no))
    return out


def check(session: Session, rt, data: AdmissionIn, source: Source, *,
          directory: Directory | None = None) -> tuple[AdmissionIn, list[Problem]]:
    """Every problem of ``data`` for ``source``, with the normalised admission (no write)."""
    clean, problems = normalise(session, rt, data, directory=directory)
    if not problems:
        problems = _identity_problems(session, clean, source)
    return clean, problems


def _snapshot(adm: Admission) -> tuple:
    p = adm.patient
    return (
        p.mrn, p.name, p.sex, p.birth_date, p.id_number_hash, p.phone, p.address,
        adm.visit_no, adm.admitted_at, adm.discharged_at, adm.admit_department,
        adm.discharge_department, adm.ward, adm.discharge_way, adm.payment_method,
        adm.readmission_31d, adm.total_cost, adm.cancelled_at, repr(sorted(
            (adm.front_page or {}).items())),
        tuple((x.kind, x.code, x.name, x.admission_condition) for x in adm.diagnoses),
        tuple((o.code, o.name, o.op_date, o.surgeon_no) for o in adm.operations),
        tuple(sorted((s.role, s.staff_no) for s in adm.signers)),
    )


def record_admission(session: Session, rt, data: AdmissionIn, source: Source, *,
                     directory: Directory | None = None) -> IntakeResult:
    """Validate, write and audit one admission in the caller's transaction.

    Raises ``IntakeError`` with every problem and writes nothing when the admission is refused
    (the caller may audit the refusal with ``record_refusal``). A cancelled admission that
    arrives again is reinstated."""
    clean, problems = check(session, rt, data, source, directory=directory)
    if problems:
        raise IntakeError(problems)
    existing = session.scalar(select(Admission).where(Admission.admission_no == clean.admission_no))
    before = _snapshot(existing) if existing is not None else None
    with session.no_autoflush:
        adm, created = upsert_admission(session, rt, clean)
    if adm.cancelled_at is not None:
        adm.cancelled_at = None
        session.flush()
    changed = created or before != _snapshot(adm)
    audit.record(session, rt, "admission.upsert", actor=source.actor, mrn=clean.patient.mrn,
                 admission_no=clean.admission_no,
                 detail={"source": source.kind, "ref": source.ref, "created": created,
                         "changed": changed})
    return IntakeResult(to_ref(adm), created, changed, clean)


def record_refusal(session: Session, rt, data: AdmissionIn | None, source: Source,
                   problems: list[Problem]) -> None:
    """Audit a refused admission (in the caller's transaction, after the refusal rolled back)."""
    audit.record(
        session, rt, "admission.refused", actor=source.actor, outcome="failed",
        mrn=(data.patient.mrn or None) if data else None,
        admission_no=(data.admission_no or None) if data else None,
        detail={"source": source.kind, "ref": source.ref,
                "problems": [f"{p.field}：{p.reason}" for p in problems[:20]]})


def admission_as_input(adm: Admission) -> AdmissionIn:
    """The stored admission as an ``AdmissionIn`` (for a change of part of it: a transfer, a
    discharge, a clerk's correction), patient ID number left out (kept as stored)."""
    p = adm.patient
    return AdmissionIn(
        patient=PatientIn(mrn=p.mrn, name=p.name, sex=p.sex, birth_date=p.birth_date,
                          id_number=None, phone=p.phone, address=p.address),
        admission_no=adm.admission_no, visit_no=adm.visit_no, admitted_at=adm.admitted_at,
        discharged_at=adm.discharged_at, admit_department=adm.admit_department,
        discharge_department=adm.discharge_department, ward=adm.ward,
        discharge_way=adm.discharge_way, payment_method=adm.payment_method,
        diagnoses=tuple(DiagnosisIn(code=x.code, name=x.name, kind=x.kind,
                                    admission_condition=x.admission_condition)
                        for x in adm.diagnoses),
        operations=tuple(OperationIn(
            code=o.code, name=o.name, date=o.op_date, level=o.level, surgeon_no=o.surgeon_no,
            assistant1_no=o.assistant1_no, assistant2_no=o.assistant2_no,
            incision_healing=o.incision_healing, anaesthesia=o.anaesthesia,
            anaesthetist_no=o.anaesthetist_no) for o in adm.operations),
        signers={s.role: s.staff_no for s in adm.signers},
        readmission_31d=adm.readmission_31d, total_cost=adm.total_cost,
        extra=dict(adm.front_page or {}))


def next_visit_no(session: Session, mrn: str) -> int:
    """The visit number a new admission of ``mrn`` gets when its source does not say."""
    from sqlalchemy import func

    patient = session.scalar(select(Patient).where(Patient.mrn == mrn))
    if patient is None:
        return 1
    top = session.scalar(select(func.max(Admission.visit_no))
                         .where(Admission.patient_id == patient.id))
    return (top or 0) + 1


def cancel_admission(session: Session, rt, admission_no: str, source: Source,
                     reason: str = "") -> AdmissionRef:
    """The HIS cancelled an admission (registered in error, ADT A11): it stays on file (pages
    and audit may refer to it) but no longer counts as a stay of the patient."""
    adm = session.scalar(select(Admission).where(Admission.admission_no == admission_no))
    if adm is None:
        raise IntakeError([Problem("admission_no", "住院号不存在", admission_no)])
    if adm.cancelled_at is None:
        adm.cancelled_at = utcnow()
        session.flush()
    audit.record(session, rt, "admission.cancel", actor=source.actor, mrn=adm.patient.mrn,
                 admission_no=admission_no,
                 detail={"source": source.kind, "ref": source.ref, "reason": reason})
    return to_ref(adm)


def merge_patients(session: Session, rt, survivor_mrn: str, merged_mrn: str,
                   source: Source) -> int:
    """Merge the patient ``merged_mrn`` into ``survivor_mrn`` (ADT A40): every admission moves
    to the survivor and visit numbers become chronological across both; each admission keeps
    its barcode (labels already printed stay valid). Returns how many admissions moved."""
    if survivor_mrn == merged_mrn:
        raise IntakeError([Problem("patient.mrn", "不能与自身合并", merged_mrn)])
    survivor = session.scalar(select(Patient).where(Patient.mrn == survivor_mrn))
    merged = session.scalar(select(Patient).where(Patient.mrn == merged_mrn))
    if merged is None:
        raise IntakeError([Problem("merged.mrn", "被合并的病案号不存在", merged_mrn)])
    if survivor is None:
        raise IntakeError([Problem("patient.mrn", "保留的病案号不存在", survivor_mrn)])
    if survivor.merged_into_id is not None:
        raise IntakeError([Problem("patient.mrn", "保留的病案号本身已被合并", survivor_mrn)])
    moved = list(session.scalars(select(Admission).where(Admission.patient_id == merged.id)))
    every = list(session.scalars(select(Admission).where(
        Admission.patient_id.in_([survivor.id, merged.id]))))
    every.sort(key=lambda a: (a.admitted_at, a.id))
    for a in every:  # clear the (patient, visit) pairs before renumbering
        a.visit_no = -a.id
    session.flush()
    for i, a in enumerate(every, start=1):
        a.patient_id, a.visit_no = survivor.id, i
    merged.merged_into_id = survivor.id
    session.flush()
    session.expire_all()
    audit.record(session, rt, "patient.merge", actor=source.actor, mrn=survivor_mrn,
                 detail={"source": source.kind, "ref": source.ref, "merged_mrn": merged_mrn,
                         "admissions": [a.admission_no for a in moved]})
    for a in session.scalars(select(Admission).where(Admission.patient_id == survivor.id)):
        rt.pm.hook.admission_upserted(session=session, admission=to_ref(a), created=False,
                                     rt=rt)
    return len(moved)


__all__ = [
    "CARE_TEAM_KEYS",
    "DIAGNOSIS_KINDS",
    "SOURCE_LABELS",
    "Directory",
    "IntakeError",
    "IntakeResult",
    "Problem",
    "Source",
    "admission_as_input",
    "cancel_admission",
    "check",
    "id_number_valid",
    "merge_patients",
    "next_visit_no",
    "normalise",
    "record_admission",
    "record_refusal",
]
