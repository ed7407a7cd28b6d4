"""Generated admissions for the search tests, loaded through core's real upsert, and a
brute-force evaluator of the query semantics written independently of the SQL compiler."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from bingan.hooks.types import AdmissionIn, DiagnosisIn, OperationIn, PatientIn

UTC = dt.timezone.utc
CN = dt.timezone(dt.timedelta(hours=8))

SURNAMES = ["张", "王", "李", "刘", "陈", "单", "曾", "解", "区", "查", "仇", "朴", "乐",
            "欧阳", "吕"]
GIVEN = ["伟", "芳", "三", "晓明", "建国", "秀英", "一诺", "子轩", "丽", "强", "乐", "长青"]
DEPTS = {"1001": "心血管内科", "1002": "呼吸内科", "1005": "普通外科", "1006": "骨科"}
DX = [("K35.800", "急性阑尾炎"), ("K35.900", "阑尾炎"), ("K35.2", "急性阑尾炎伴弥漫性腹膜炎"),
      ("K37", "阑尾周围脓肿"), ("I10.x00x002", "高血压3级"), ("I21.0", "急性前壁心肌梗死"),
      ("J18.9", "肺炎"), ("J15.9", "社区获得性肺炎"), ("S72.0", "股骨颈骨折"),
      ("C34.1", "右肺上叶恶性肿瘤"), ("E11.9", "2型糖尿病"), ("X59", "意外跌倒_100%")]
OPS = [("47.0100", "腹腔镜下阑尾切除术", "3"), ("47.0900", "其他阑尾切除术", "2"),
       ("43.7x00", "胃部分切除术伴胃空肠吻合术", "4"), ("81.5100", "全髋关节置换", "4"),
       ("36.0700", "药物洗脱冠状动脉支架置入", "4")]
ANAESTHESIA = ["全身麻醉", "椎管内麻醉", "局部麻醉"]
STAFF = ["D0001", "D0002", "D0003", "D0004", "D0005"]
ROLES = ["dept_head", "attending", "resident", "coder"]


@dataclass
class Rec:
    """What the tests know about one admission (the brute force filters these)."""

    id: int
    admission_no: str
    mrn: str
    name: str
    name_pinyin: str
    sex: str
    birth_date: dt.date | None
    age_years: int | None
    visit_no: int
    admitted_at: dt.datetime
    discharged_at: dt.datetime | None
    admit_department: str | None
    discharge_department: str | None
    ward: str | None
    discharge_way: str | None
    payment_method: str | None
    los_days: int | None
    readmission_31d: bool
    total_cost: float | None
    diagnoses: list[tuple[str, str, str]] = field(default_factory=list)  # kind, code, name
    operations: list[dict[str, Any]] = field(default_factory=list)
    signers: dict[str, str] = field(default_factory=dict)


def build(seed: int = 11, n_patients: int = 50) -> list[AdmissionIn]:
    rng = random.Random(seed)
    out: list[AdmissionIn] = []
    adm_seq = 0
    for p in range(n_patients):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        if p == 0:
            name = "单伟"
        elif p == 1:
            name = "曾乐"
        birth = None if rng.random() < 0.1 else dt.date(1940, 1, 1) + dt.timedelta(
            days=rng.randint(0, 365 * 80))
        patient = PatientIn(mrn=f"{100000 + p:08d}", name=name, sex=rng.choice("MFFMU"),
                            birth_date=birth)
        day = dt.datetime(2023, 1, 1, 8, tzinfo=UTC) + dt.timedelta(days=rng.randint(0, 300))
        for v in range(1, rng.choice([1, 1, 1, 2, 3]) + 1):
            adm_seq += 1
            # some stays end just before/after midnight China time (date edges)
            admitted = day + dt.timedelta(hours=rng.choice([0, 7, 15, 16, 23]))
            discharged = None
            if rng.random() > 0.08:
                discharged = admitted + dt.timedelta(days=rng.randint(0, 40),
                                                     hours=rng.randint(0, 12))
            dept = rng.choice(list(DEPTS))
            dxs = rng.sample(DX, rng.randint(0 if rng.random() < 0.05 else 1, 4))
            diagnoses = tuple(DiagnosisIn(c, nm, "main" if i == 0 else rng.choice(
                ["other", "other", "outpatient", "pathology"])) for i, (c, nm) in enumerate(dxs))
            ops = []
            for i in range(rng.choice([0, 0, 1, 2])):
                c, nm, lv = rng.choice(OPS)
                ops.append(OperationIn(c, nm, date=admitted.date() + dt.timedelta(days=1),
                                       level=lv if rng.random() > 0.1 else None,
                                       surgeon_no=rng.choice(STAFF),
                                       anaesthesia=rng.choice(ANAESTHESIA)))
            signers = {r: rng.choice(STAFF) for r in ROLES if rng.random() < 0.8}
            out.append(AdmissionIn(
                patient=patient, admission_no=f"ZY2023{adm_seq:08d}", visit_no=v,
                admitted_at=admitted, discharged_at=discharged, admit_department=dept,
                discharge_department=None if rng.random() < 0.05 else rng.choice([dept, dept,
                                                                                  *DEPTS]),
                ward=rng.choice([None, "一病区", "二病区", "ICU病区"]),
                discharge_way=None if rng.random() < 0.1 else rng.choice("1111234559"),
                payment_method=None if rng.random() < 0.1 else rng.choice("1234567"),
                diagnoses=diagnoses, operations=tuple(ops), signers=signers,
                readmission_31d=v > 1 and rng.random() < 0.5,
                total_cost=None if rng.random() < 0.1 else round(rng.uniform(500, 90000), 2)))
            day = (discharged or admitted) + dt.timedelta(days=rng.randint(5, 90))
    return out


def load(rt, items: list[AdmissionIn] | None = None) -> list[Rec]:
    """Upsert through core (so the search plugin's hook indexes them) and return the records
    as the database holds them."""
    from bingan.core import records
    from bingan.core.models import Department
    from sqlalchemy import select

    items = build() if items is None else items
    recs: list[Rec] = []
    with rt.sessions() as s, s.begin():
        have = set(s.scalars(select(Department.code)))
        for code, name in DEPTS.items():
            if code not in have:
                s.add(Department(code=code, name=name))
        for a in items:
            adm, _ = records.upsert_admission(s, rt, a)
            recs.append(Rec(
                id=adm.id, admission_no=adm.admission_no, mrn=a.patient.mrn, name=a.patient.name,
                name_pinyin=adm.patient.name_pinyin, sex=a.patient.sex,
                birth_date=a.patient.birth_date, age_years=adm.age_years, visit_no=a.visit_no,
                admitted_at=a.admitted_at, discharged_at=a.discharged_at,
                admit_department=a.admit_department,
                discharge_department=a.discharge_department, ward=a.ward,
                discharge_way=a.discharge_way, payment_method=a.payment_method,
                los_days=adm.los_days, readmission_31d=a.readmission_31d,
                total_cost=a.total_cost,
                diagnoses=[(d.kind, d.code, d.name) for d in a.diagnoses],
                operations=[{"code": o.code, "name": o.name, "level": o.level, "date": o.date,
                             "surgeon_no": o.surgeon_no, "anaesthesia": o.anaesthesia}
                            for o in a.operations],
                signers=dict(a.signers)))
    return recs


# ---------------------------------------------------------------------------------------------
# Brute force: the documented semantics, in plain Python
# ---------------------------------------------------------------------------------------------


def cn_date(t: dt.datetime | None) -> dt.date | None:
    return None if t is None else t.astimezone(CN).date()


def _day(v: str) -> dt.date:
    return dt.date.fromisoformat(v)


def _cmp(x: Any, op: str, v: Any) -> bool:
    """NULL (None) compares false; ``ne`` is handled as NOT eq by the caller."""
    if op == "is_null":
        return x is None
    if op == "not_null":
        return x is not None
    if x is None:
        return False
    if op == "eq":
        return x == v
    if op == "in":
        return x in v
    if op == "prefix":
        return str(x).startswith(v)
    if op == "contains":
        return v in str(x)
    if op == "gt":
        return x > v
    if op == "ge":
        return x >= v
    if op == "lt":
        return x < v
    if op == "le":
        return x <= v
    if op == "between":
        return v[0] <= x <= v[1]
    raise AssertionError(op)


def _date_cmp(x: dt.date | None, op: str, v: Any) -> bool:
    if op in ("is_null", "not_null"):
        return _cmp(x, op, v)
    if x is None:
        return False
    if op == "between":
        return _day(v[0]) <= x <= _day(v[1])
    return _cmp(x, {"eq": "eq", "ge": "ge", "le": "le"}[op], _day(v))


def _norm_code(c: str) -> str:
    c = c.strip()
    return c[0].upper() + "".join("x" if ch in "xX" else ch.upper() for ch in c[1:])


def _values(op: str, v: Any, conv=lambda x: x) -> Any:
    if op == "in":
        items = v if isinstance(v, list) else str(v).replace("，", ",").split(",")
        return [conv(str(i).strip()) for i in items if str(i).strip()]
    if op == "between":
        return [conv(x) for x in v]
    return conv(v) if v is not None else None


def matches(rec: Rec, node: Any) -> bool:
    from bingan_search.names import name_keys, normalize_key
    from bingan_search.query import Cond, Group, Not

    if isinstance(node, Group):
        results = [matches(rec, i) for i in node.items]
        return all(results) if node.op == "and" else any(results)
    if isinstance(node, Not):
        return not matches(rec, node.item)
    assert isinstance(node, Cond)
    f, op, v = node.field, node.op, node.value
    if op == "ne":
        return not matches(rec, Cond(f, "eq", v))
    plain = {"mrn": rec.mrn, "patient_name": rec.name, "sex": rec.sex,
             "admission_no": rec.admission_no, "visit_no": rec.visit_no,
             "admit_department": rec.admit_department,
             "discharge_department": rec.discharge_department, "ward": rec.ward,
             "discharge_way": rec.discharge_way, "payment_method": rec.payment_method,
             "age_years": rec.age_years, "los_days": rec.los_days,
             "readmission_31d": rec.readmission_31d, "total_cost": rec.total_cost}
    if f in plain:
        conv = {"visit_no": int, "age_years": int, "los_days": int,
                "total_cost": float}.get(f, lambda x: x)
        if f == "readmission_31d":
            return rec.readmission_31d == (v in (True, "1", 1, "true", "是"))
        return _cmp(plain[f], op, _values(op, v, conv))
    if f == "name_pinyin":
        key = normalize_key(v)
        return any(k.startswith(key) for k in name_keys(rec.name))
    if f in ("admitted_at", "discharged_at"):
        return _date_cmp(cn_date(getattr(rec, f)), op, v)
    if f == "birth_date":
        return _date_cmp(rec.birth_date, op, v)
    if f in ("diagnosis_code", "main_diagnosis_code", "diagnosis_name", "main_diagnosis_name"):
        dxs = [d for d in rec.diagnoses if f.startswith("diagnosis") or d[0] == "main"]
        if f.endswith("code"):
            return any(_cmp(d[1], op, _values(op, v, _norm_code)) for d in dxs)
        return any(_cmp(d[2], op, v) for d in dxs)
    if f.startswith("operation") or f in ("surgeon_no", "anaesthesia"):
        attr = {"operation_code": "code", "operation_name": "name", "operation_level": "level",
                "operation_date": "date", "surgeon_no": "surgeon_no",
                "anaesthesia": "anaesthesia"}[f]
        conv = _norm_code if attr == "code" else (lambda x: x)
        if attr == "date":
            return any(_date_cmp(o["date"], op, v) for o in rec.operations)
        return any(_cmp(o[attr], op, _values(op, v, conv)) for o in rec.operations)
    if f == "signer_any":
        return any(_cmp(n, op, _values(op, v)) for n in rec.signers.values())
    if f.startswith("signer_"):
        role = f[len("signer_"):]
        return role in rec.signers and _cmp(rec.signers[role], op, _values(op, v))
    raise AssertionError(f"no brute force for {f}")


SORT_ATTR = {"discharged_at": "discharged_at", "admitted_at": "admitted_at", "mrn": "mrn",
             "name": "name_pinyin", "admission_no": "admission_no", "visit_no": "visit_no",
             "department": "discharge_department", "age": "age_years", "los": "los_days"}


def ordered(recs: list[Rec], sort: str, desc: bool) -> list[Rec]:
    """Empty values last; ties by id in the sort direction (the documented order)."""
    attr = SORT_ATTR[sort]
    present = [r for r in recs if getattr(r, attr) is not None]
    missing = [r for r in recs if getattr(r, attr) is None]
    present.sort(key=lambda r: (getattr(r, attr), r.id), reverse=desc)
    missing.sort(key=lambda r: r.id, reverse=desc)
    return present + missing
