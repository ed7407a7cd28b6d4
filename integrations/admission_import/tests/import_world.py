"""Helpers of the import tests: a small hospital and front-page files with known bad rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bingan.core.staff import add_department, add_staff, ensure_builtin_roles
from bingan.hooks.types import AdmissionIn, DiagnosisIn, OperationIn, PatientIn

CN = dt.timezone(dt.timedelta(hours=8))
DEPTS = {"1001": "心血管内科", "1002": "普通外科"}


def hospital(rt) -> None:
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        for code, name in DEPTS.items():
            add_department(s, code, name)
        add_staff(s, "D0001", "陈志远", None, "1001", ["physician"])
        add_staff(s, "D0002", "王芳", None, "1001", ["physician"])
        add_staff(s, "D0003", "刘洋", None, "1002", ["physician"])


def good(i: int) -> AdmissionIn:
    """A valid discharged admission number ``i`` (departments by code, signers by number)."""
    # 5 h apart from 2020: 10,000 rows (the bench and the 10k test) end in 2025, none in the
    # future (the intake refuses admissions after now)
    day = dt.datetime(2020, 1, 1, 9, tzinfo=CN) + dt.timedelta(hours=5 * i)
    return AdmissionIn(
        patient=PatientIn(mrn=f"{100000 + i // 2:08d}", name=f"患者{i // 2}",
                          sex="F" if (i // 2) % 3 else "M",
                          birth_date=dt.date(1950 + (i // 2) % 50, 1, 2)),
        admission_no=f"ZY2025{i:08d}", visit_no=1 + i % 2, admitted_at=day,
        discharged_at=day + dt.timedelta(days=6), admit_department="1001",
        discharge_department="1001" if i % 4 else "1002", ward="三病区", discharge_way="1",
        payment_method="1",
        diagnoses=(DiagnosisIn("I20.000", "不稳定型心绞痛", "main", "1"),
                   DiagnosisIn("I10", "高血压", "other", "1")),
        operations=(OperationIn("88.5600", "冠状动脉造影", (day + dt.timedelta(days=1)).date(),
                                surgeon_no="D0001"),),
        signers={"attending": "D0002", "resident": "王芳"},
        extra={"ethnicity": "汉族", "contact": {"name": "家属", "relation": "配偶",
                                                "phone": "13800000000"}},
        total_cost=12345.6)


# (row index in the file, how it is broken, the column header reported)
BREAKS = [
    ("admitted_at", "2025-13-40", "入院时间"),
    ("discharge_department", "不存在的科", "出院科别"),
    ("main_dx_code", "心绞痛", "主要诊断编码"),
    ("sig_attending", "无此人", "主治医师"),
    ("name", None, "姓名"),
    ("op1_code", "I20", "手术及操作编码1"),
    ("discharge_way", "8", "离院方式"),
    ("mrn", "AB-12", "病案号"),
]


def rows(n: int, bad_every: int = 0) -> tuple[list[dict], dict[int, str]]:
    """``n`` rows in the layout; every ``bad_every``-th one broken in turn as BREAKS says.
    Returns the rows and {file row number: the column the report must name}."""
    from bingan.core.frontpage import admission_to_row

    out, broken = [], {}
    for i in range(n):
        r = admission_to_row(good(i), DEPTS, "示例医院", "12330100470000000X", tz=CN)
        if bad_every and i % bad_every == bad_every - 1:
            key, value, column = BREAKS[(i // bad_every) % len(BREAKS)]
            r[key] = value
            broken[i + 2] = column  # header is row 1
        out.append(r)
    return out, broken


def write_xlsx(path: Path, rows_: list[dict]) -> Path:
    from bingan_admission_import.export import write_rows

    path.write_bytes(write_rows(rows_))
    return path
