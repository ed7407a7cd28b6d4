"""The national front-page layout (卫统4-1 住院病案首页): its columns, a row to an admission and
an admission back to a row. Shared by every path that reads front pages as rows (the file
import, the HIS views) so a column means the same thing everywhere.

Every column is recognised by its Chinese name or by the data-element code of the 卫统4-1 /
病案首页数据上报 layout (``BAH``, ``ZYCS`` ...); repeated groups are numbered (``其他诊断1`` /
``QTZD1`` ... ``其他诊断15``, ``手术及操作编码1`` / ``SSJCZBM1`` ... 7). Three columns are not
in 卫统4-1 and optional: 住院号 (ZYH; required unless ``admission_no_template`` derives it),
收治医师 / 主管医师 / 经治医师 (the care team of a stay still in hospital, M6) and
是否31天内再住院. Coded columns take the code or its label (性别 1/男, 离院方式 1/医嘱离院 ...).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from bingan.core.records import DISCHARGE_WAYS, PAYMENT_METHODS, SIGNER_ROLES
from bingan.hooks.types import AdmissionIn, DiagnosisIn, OperationIn, PatientIn

OTHER_DIAGNOSES = 15
OPERATIONS = 7

# (key, Chinese header, 卫统4-1 code)
_BASE: list[tuple[str, str, str]] = [
    ("org_name", "医疗机构名称", "JGMC"),
    ("org_code", "组织机构代码", "ZZJGDM"),
    ("payment_method", "医疗付费方式", "YLFKFS"),
    ("health_card_no", "健康卡号", "JKKH"),
    ("visit_no", "住院次数", "ZYCS"),
    ("mrn", "病案号", "BAH"),
    ("admission_no", "住院号", "ZYH"),
    ("name", "姓名", "XM"),
    ("sex", "性别", "XB"),
    ("birth_date", "出生日期", "CSRQ"),
    ("age", "年龄", "NL"),
    ("nationality", "国籍", "GJ"),
    ("age_months", "年龄不足1周岁的年龄（月）", "BZYZS_NL"),
    ("newborn_birth_weight", "新生儿出生体重（克）", "XSECSTZ"),
    ("newborn_admit_weight", "新生儿入院体重（克）", "XSERYTZ"),
    ("birthplace", "出生地", "CSD"),
    ("native_place", "籍贯", "GG"),
    ("ethnicity", "民族", "MZ"),
    ("id_number", "身份证号", "SFZH"),
    ("occupation", "职业", "ZY"),
    ("marital_status", "婚姻", "HY"),
    ("current_address", "现住址", "XZZ"),
    ("phone", "电话", "DH"),
    ("current_postcode", "现住址邮编", "YB1"),
    ("household_address", "户口地址", "HKDZ"),
    ("household_postcode", "户口地址邮编", "YB2"),
    ("work_address", "工作单位及地址", "GZDWJDZ"),
    ("work_phone", "单位电话", "DWDH"),
    ("work_postcode", "单位邮编", "YB3"),
    ("contact_name", "联系人姓名", "LXRXM"),
    ("contact_relation", "关系", "GX"),
    ("contact_address", "联系人地址", "DZ"),
    ("contact_phone", "联系人电话", "DH2"),
    ("admission_route", "入院途径", "RYTJ"),
    ("admitted_at", "入院时间", "RYSJ"),
    ("admitted_hour", "入院时间时", "RYSJS"),
    ("admit_department", "入院科别", "RYKB"),
    ("admit_ward", "入院病房", "RYBF"),
    ("transfer_chain", "转科科别", "ZKKB"),
    ("discharged_at", "出院时间", "CYSJ"),
    ("discharged_hour", "出院时间时", "CYSJS"),
    ("discharge_department", "出院科别", "CYKB"),
    ("ward", "出院病房", "CYBF"),
    ("los_days", "实际住院（天）", "SJZYTS"),
    ("outpatient_dx_name", "门（急）诊诊断", "MZZD"),
    ("outpatient_dx_code", "门（急）诊诊断编码", "JBBM"),
    ("main_dx_name", "主要诊断", "ZYZD"),
    ("main_dx_code", "主要诊断编码", "JBDM"),
    ("main_dx_condition", "主要诊断入院病情", "RYBQ"),
]
_AFTER_DX: list[tuple[str, str, str]] = [
    ("injury_name", "损伤、中毒的外部原因", "WBYY"),
    ("injury_code", "外部原因编码", "H23"),
    ("pathology_name", "病理诊断", "BLZD"),
    ("pathology_code", "病理诊断编码", "JBMM"),
    ("pathology_no", "病理号", "BLH"),
    ("has_allergy", "有无药物过敏", "YWGM"),
    ("drug_allergy", "过敏药物", "GMYW"),
    ("autopsy", "死亡患者尸检", "SWHZSJ"),
    ("blood_type", "血型", "XX"),
    ("rh", "Rh", "RH"),
    ("sig_dept_head", "科主任", "KZR"),
    ("sig_chief", "主任（副主任）医师", "ZRYS"),
    ("sig_attending", "主治医师", "ZZYS"),
    ("sig_resident", "住院医师", "ZYYS"),
    ("sig_nurse", "责任护士", "ZRHS"),
    ("sig_fellow", "进修医师", "JXYS"),
    ("sig_intern", "实习医师", "SXYS"),
    ("sig_coder", "编码员", "BMY"),
    ("record_quality", "病案质量", "BAZL"),
    ("sig_qc_doctor", "质控医师", "ZKYS"),
    ("sig_qc_nurse", "质控护士", "ZKHS"),
    ("qc_date", "质控日期", "ZKRQ"),
]
_OP_FIELDS = [("code", "手术及操作编码", "SSJCZBM"), ("date", "手术及操作日期", "SSJCZRQ"),
              ("level", "手术级别", "SSJB"), ("name", "手术及操作名称", "SSJCZMC"),
              ("surgeon", "术者", "SZ"), ("assistant1", "Ⅰ助", "YZ"),
              ("assistant2", "Ⅱ助", "EZ"), ("incision", "切口愈合等级", "QKDJ"),
              ("anaesthesia", "麻醉方式", "MZFS"), ("anaesthetist", "麻醉医师", "MZYS")]
_TAIL: list[tuple[str, str, str]] = [
    ("discharge_way", "离院方式", "LYFS"),
    ("receiving_org", "拟接收医疗机构名称", "YZZY_YLJG"),
    ("readmission_plan", "是否有出院31天内再住院计划", "SFZZYJH"),
    ("readmission_purpose", "目的", "MD"),
    ("readmission_31d", "是否31天内再住院", "ZZY31"),
    ("admit_physician", "收治医师", "SZYS"),
    ("attending_physician", "主管医师", "ZGYS"),
    ("treating_physicians", "经治医师", "JZYS"),
    ("total_cost", "住院费用（元）：总费用", "ZFY"),
    ("self_paid", "自付金额", "ZFJE"),
]
COST_ITEMS: list[tuple[str, str, str]] = [
    ("general_service", "一般医疗服务费", "YLFUF"),
    ("nursing", "护理费", "HLF"),
    ("lab", "实验室诊断费", "SYSZDF"),
    ("imaging", "影像学诊断费", "YXXZDF"),
    ("clinical_diagnosis", "临床诊断项目费", "LCZDXMF"),
    ("nonsurgical_treatment", "非手术治疗项目费", "FSSZLXMF"),
    ("surgery", "手术治疗费", "SSZLF"),
    ("anaesthesia", "麻醉费", "MAF"),
    ("rehabilitation", "康复费", "KFF"),
    ("western_medicine", "西药费", "XYF"),
    ("antibiotics", "抗菌药物费用", "KJYWF"),
    ("chinese_patent_medicine", "中成药费", "ZCYF"),
    ("blood", "血费", "XF"),
    ("materials_exam", "检查用一次性医用材料费", "HCYYCLF"),
    ("materials_treatment", "治疗用一次性医用材料费", "YYCLF"),
    ("materials_surgery", "手术用一次性医用材料费", "YCXYYCLF"),
    ("other", "其他费", "QTF"),
]


def _columns() -> list[tuple[str, str, str]]:
    cols = list(_BASE)
    for n in range(1, OTHER_DIAGNOSES + 1):
        cols += [(f"dx{n}_name", f"其他诊断{n}", f"QTZD{n}"),
                 (f"dx{n}_code", f"其他诊断编码{n}", f"JBDM{n}"),
                 (f"dx{n}_condition", f"其他诊断入院病情{n}", f"RYBQ{n}")]
    cols += _AFTER_DX
    for n in range(1, OPERATIONS + 1):
        cols += [(f"op{n}_{k}", f"{h}{n}", f"{c}{n}") for k, h, c in _OP_FIELDS]
    cols += _TAIL
    cols += [(f"cost_{k}", h, c) for k, h, c in COST_ITEMS]
    return cols


COLUMNS = _columns()
HEADERS = {key: header for key, header, _ in COLUMNS}
_BY_NAME: dict[str, str] = {}
for _key, _header, _code in COLUMNS:
    for _alias in (_header, _code, _header.replace("（", "(").replace("）", ")")):
        _BY_NAME[re.sub(r"\s+", "", _alias).upper()] = _key

SIGNER_COLUMNS = {f"sig_{role}": role for role in SIGNER_ROLES}
SEXES = {"1": "M", "男": "M", "M": "M", "2": "F", "女": "F", "F": "F",
         "0": "U", "9": "U", "未知": "U", "未说明": "U", "未知的性别": "U", "U": "U"}
SEX_LABELS = {"M": "男", "F": "女", "U": "未知"}
ADMISSION_ROUTES = {"1": "急诊", "2": "门诊", "3": "其他医疗机构转入", "9": "其他"}
CONDITIONS = {"1": "1", "有": "1", "2": "2", "临床未确定": "2", "3": "3", "情况不明": "3",
              "4": "4", "无": "4"}
YES_NO = {"1": False, "无": False, "否": False, "0": False, "2": True, "有": True, "是": True}


# front-page (``extra``) keys that the layout reads and writes; others (an HL7 feed's
# ``transfers`` ...) are kept as they are when a clerk corrects a record
EXTRA_KEYS = frozenset({
    "nationality", "ethnicity", "occupation", "marital_status", "birthplace", "native_place",
    "household_address", "current_address", "admit_ward", "drug_allergy", "blood_type", "rh",
    "autopsy", "receiving_org", "record_quality", "health_card_no", "work_address",
    "work_phone", "current_postcode", "household_postcode", "work_postcode", "transfer_chain",
    "id_type", "age_months", "newborn_birth_weight", "newborn_admit_weight", "admission_route",
    "contact", "outpatient_diagnosis", "pathology", "external_cause", "qc_date",
    "readmission_plan_31d", "admit_physician", "attending_physician", "treating_physicians",
    "costs"})


def column_key(header: Any) -> str | None:
    """The layout key of a header cell (Chinese name or 卫统4-1 code), or None."""
    if header is None:
        return None
    return _BY_NAME.get(re.sub(r"\s+", "", str(header)).upper())


class RowProblem(Exception):
    pass


@dataclasses.dataclass
class Parsed:
    """One row turned into an admission, where each admission field came from (for the
    report), and the problems of reading the row itself."""

    admission: AdmissionIn | None
    origin: dict[str, str]
    problems: list[tuple[str, str, str | None]]  # (column header, reason, value)


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _parse_date(v: Any) -> dt.date | None:
    if v is None or v == "":
        return None
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    s = _text(v)
    for fmt, part in (("%Y-%m-%d", s[:10]), ("%Y/%m/%d", s[:10]), ("%Y.%m.%d", s[:10]),
                      ("%Y%m%d", s[:8]), ("%Y年%m月%d日", s)):
        try:
            return dt.datetime.strptime(part, fmt).date()
        except ValueError:
            continue
    raise RowProblem("日期格式应为 YYYY-MM-DD")


def _parse_datetime(v: Any, hour: Any, tz: dt.tzinfo) -> dt.datetime | None:
    if v is None or v == "":
        return None
    if isinstance(v, dt.datetime):
        t = v
    elif isinstance(v, dt.date):
        t = dt.datetime.combine(v, dt.time())
    else:
        s = _text(v).replace("/", "-").replace("T", " ")
        t = None
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H", "%Y-%m-%d",
                    "%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y%m%d"):
            try:
                t = dt.datetime.strptime(s, fmt)
                break
            except ValueError:
                continue
        if t is None:
            raise RowProblem("时间格式应为 YYYY-MM-DD HH:MM")
    if hour not in (None, "") and t.hour == 0 and t.minute == 0:
        h = _text(hour)
        if not h.isdigit() or not 0 <= int(h) <= 23:
            raise RowProblem("“时”应为 0-23")
        t = t.replace(hour=int(h))
    return t.replace(tzinfo=tz) if t.tzinfo is None else t


def _code_or_label(value: str, codes: dict[str, str]) -> str | None:
    if not value:
        return None
    if value in codes:
        return value
    for code, label in codes.items():
        if value == label:
            return code
    return value  # left for the intake to refuse with its own reason


def row_to_admission(row: dict[str, Any], *, tz: dt.tzinfo,
                     admission_no_template: str = "") -> Parsed:
    """Map one row (layout key -> cell value) to an ``AdmissionIn``; times without an offset
    are the hospital's (``tz``)."""
    problems: list[tuple[str, str, str | None]] = []
    origin: dict[str, str] = {}

    def get(key: str) -> str:
        return _text(row.get(key))

    def parse(key: str, fn, *args):
        try:
            return fn(row.get(key), *args)
        except RowProblem as exc:
            problems.append((HEADERS[key], str(exc), get(key)))
            return None

    mrn, visit_text = get("mrn"), get("visit_no")
    visit_no = 0
    if not visit_text:
        problems.append((HEADERS["visit_no"], "住院次数不能为空", None))
    elif not visit_text.isdigit():
        problems.append((HEADERS["visit_no"], "住院次数应为正整数", visit_text))
    else:
        visit_no = int(visit_text)
    admission_no = get("admission_no")
    if not admission_no and admission_no_template and mrn and visit_no:
        admission_no = admission_no_template.format(mrn=mrn, visit=visit_no)
    elif not admission_no:
        problems.append((HEADERS["admission_no"], "住院号不能为空", None))
    sex_raw = get("sex")
    sex = SEXES.get(sex_raw, "?") if sex_raw else "U"
    if sex == "?":
        problems.append((HEADERS["sex"], "性别应为 1男 2女 0未知", sex_raw))
        sex = "U"
    admitted = parse("admitted_at", _parse_datetime, row.get("admitted_hour"), tz)
    discharged = parse("discharged_at", _parse_datetime, row.get("discharged_hour"), tz)
    birth = parse("birth_date", _parse_date)

    diagnoses: list[DiagnosisIn] = []

    def dx(kind: str, name_key: str, code_key: str, cond_key: str | None) -> None:
        name, code = get(name_key), get(code_key)
        if not name and not code:
            return
        origin[f"diagnoses[{len(diagnoses)}]"] = HEADERS[code_key]
        cond = get(cond_key) if cond_key else ""
        diagnoses.append(DiagnosisIn(code=code, name=name or code, kind=kind,
                                     admission_condition=CONDITIONS.get(cond, cond) or None))

    dx("main", "main_dx_name", "main_dx_code", "main_dx_condition")
    for n in range(1, OTHER_DIAGNOSES + 1):
        dx("other", f"dx{n}_name", f"dx{n}_code", f"dx{n}_condition")

    operations: list[OperationIn] = []
    for n in range(1, OPERATIONS + 1):
        code, name = get(f"op{n}_code"), get(f"op{n}_name")
        if not code and not name:
            continue
        i = len(operations)
        origin[f"operations[{i}]"] = HEADERS[f"op{n}_code"]
        for sub, key in (("date", "date"), ("surgeon_no", "surgeon"),
                         ("assistant1_no", "assistant1"), ("assistant2_no", "assistant2"),
                         ("anaesthetist_no", "anaesthetist")):
            origin[f"operations[{i}].{sub}"] = HEADERS[f"op{n}_{key}"]
        origin[f"operations[{i}].code"] = HEADERS[f"op{n}_code"]
        origin[f"operations[{i}].name"] = HEADERS[f"op{n}_name"]
        operations.append(OperationIn(
            code=code, name=name, date=parse(f"op{n}_date", _parse_date),
            level=get(f"op{n}_level") or None, surgeon_no=get(f"op{n}_surgeon") or None,
            assistant1_no=get(f"op{n}_assistant1") or None,
            assistant2_no=get(f"op{n}_assistant2") or None,
            incision_healing=get(f"op{n}_incision") or None,
            anaesthesia=get(f"op{n}_anaesthesia") or None,
            anaesthetist_no=get(f"op{n}_anaesthetist") or None))

    signers = {role: get(col) for col, role in SIGNER_COLUMNS.items() if get(col)}
    extra: dict[str, Any] = {}
    for key in ("nationality", "ethnicity", "occupation", "marital_status", "birthplace",
                "native_place", "household_address", "current_address", "admit_ward",
                "drug_allergy", "blood_type", "rh", "autopsy", "receiving_org",
                "record_quality", "health_card_no", "work_address", "work_phone",
                "current_postcode", "household_postcode", "work_postcode"):
        if get(key):
            extra[key] = get(key)
    if get("transfer_chain"):
        extra["transfer_chain"] = get("transfer_chain")
    if get("id_number"):
        extra["id_type"] = "居民身份证"
    if get("age_months"):
        months = get("age_months")
        extra["age_months"] = int(months) if months.isdigit() else months
    for key in ("newborn_birth_weight", "newborn_admit_weight"):
        if get(key):
            extra[key] = get(key)
    if get("admission_route"):
        extra["admission_route"] = ADMISSION_ROUTES.get(get("admission_route"),
                                                        get("admission_route"))
    if get("contact_name") or get("contact_phone"):
        extra["contact"] = {"name": get("contact_name"), "relation": get("contact_relation"),
                            "phone": get("contact_phone")}
        if get("contact_address"):
            extra["contact"]["address"] = get("contact_address")
    if get("outpatient_dx_code") or get("outpatient_dx_name"):
        extra["outpatient_diagnosis"] = {"code": get("outpatient_dx_code"),
                                         "name": get("outpatient_dx_name")}
    if get("pathology_code") or get("pathology_name"):
        extra["pathology"] = {"code": get("pathology_code"), "name": get("pathology_name"),
                              "pathology_no": get("pathology_no")}
    if get("injury_code") or get("injury_name"):
        extra["external_cause"] = {"code": get("injury_code"), "name": get("injury_name")}
    if get("qc_date"):
        qc = parse("qc_date", _parse_date)
        if qc:
            extra["qc_date"] = qc.isoformat()
    if get("readmission_plan"):
        planned = YES_NO.get(get("readmission_plan"))
        if planned is None:
            problems.append((HEADERS["readmission_plan"], "应为 1无 2有",
                             get("readmission_plan")))
        extra["readmission_plan_31d"] = {"planned": bool(planned),
                                         "purpose": get("readmission_purpose") or None}
    for key in ("admit_physician", "attending_physician"):
        if get(key):
            extra[key] = get(key)
            origin[f"front_page.{key}"] = HEADERS[key]
    if get("treating_physicians"):
        extra["treating_physicians"] = [x.strip() for x in re.split(r"[;；,，、]",
                                                                     get("treating_physicians"))
                                        if x.strip()]
        for i in range(len(extra["treating_physicians"])):
            origin[f"front_page.treating_physicians[{i}]"] = HEADERS["treating_physicians"]
    total = _money(row, "total_cost", problems)
    costs: dict[str, Any] = {}
    if total is not None:
        costs["total"] = total
        self_paid = _money(row, "self_paid", problems)
        costs["self_paid"] = self_paid if self_paid is not None else 0.0
        items = {}
        for key, _h, _c in COST_ITEMS:
            v = _money(row, f"cost_{key}", problems)
            items[key] = v if v is not None else 0.0
        costs["items"] = items
        extra["costs"] = costs
    readmit = get("readmission_31d")
    if readmit and readmit not in YES_NO:
        problems.append((HEADERS["readmission_31d"], "应为 是/否", readmit))

    if problems:
        return Parsed(None, origin, problems)
    adm = AdmissionIn(
        patient=PatientIn(mrn=mrn, name=get("name"), sex=sex,  # type: ignore[arg-type]
                          birth_date=birth, id_number=get("id_number") or None,
                          phone=get("phone") or None, address=get("current_address") or None),
        admission_no=admission_no, visit_no=visit_no,
        admitted_at=admitted,  # type: ignore[arg-type]
        discharged_at=discharged,
        admit_department=get("admit_department") or None,
        discharge_department=get("discharge_department") or None,
        ward=get("ward") or None,
        discharge_way=_code_or_label(get("discharge_way"), DISCHARGE_WAYS),
        payment_method=_code_or_label(get("payment_method"), PAYMENT_METHODS),
        diagnoses=tuple(diagnoses), operations=tuple(operations), signers=signers,
        readmission_31d=bool(YES_NO.get(readmit, False)),
        total_cost=total, extra=extra)
    return Parsed(adm, origin, [])


def _money(row: dict[str, Any], key: str, problems: list) -> float | None:
    v = row.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, (int, float)):
        return round(float(v), 2)
    try:
        return round(float(str(v).replace(",", "").strip()), 2)
    except ValueError:
        problems.append((HEADERS[key], "金额应为数字", str(v)))
        return None


PROBLEM_COLUMNS = {
    "patient.mrn": "mrn", "patient.name": "name", "patient.sex": "sex",
    "patient.birth_date": "birth_date", "patient.id_number": "id_number",
    "admission_no": "admission_no", "visit_no": "visit_no", "admitted_at": "admitted_at",
    "discharged_at": "discharged_at", "discharge_way": "discharge_way",
    "payment_method": "payment_method", "admit_department": "admit_department",
    "discharge_department": "discharge_department", "diagnoses": "main_dx_code",
}


def problem_column(field: str, origin: dict[str, str]) -> str:
    """The header of the column an intake problem (``Problem.field``) came from."""
    if field in origin:
        return origin[field]
    if field.startswith("signers."):
        return HEADERS.get(f"sig_{field.split('.', 1)[1]}", field)
    m = re.match(r"^(diagnoses|operations)\[(\d+)\]", field)
    if m:
        return origin.get(field, origin.get(m.group(0), field))
    key = PROBLEM_COLUMNS.get(field)
    return HEADERS[key] if key else field


def _fmt_dt(t: dt.datetime | None, tz: dt.tzinfo) -> str:
    if t is None:
        return ""
    t = t.astimezone(tz)
    return t.strftime("%Y-%m-%d %H:%M:%S" if t.second else "%Y-%m-%d %H:%M")


def admission_to_row(a: AdmissionIn, department_names: dict[str, str],
                     org_name: str = "", org_code: str = "", *,
                     tz: dt.tzinfo) -> dict[str, Any]:
    """An admission as one row of the layout (layout key -> value): for the demo's file and
    for templates. Departments are written by name, as a hospital's export has them."""
    e = a.extra
    p = a.patient
    r: dict[str, Any] = {
        "org_name": org_name, "org_code": org_code, "payment_method": a.payment_method or "",
        "health_card_no": e.get("health_card_no", ""), "visit_no": a.visit_no, "mrn": p.mrn,
        "admission_no": a.admission_no, "name": p.name, "sex": {"M": "1", "F": "2"}.get(p.sex, "0"),
        "birth_date": p.birth_date.isoformat() if p.birth_date else "",
        "id_number": p.id_number or "", "phone": p.phone or "",
        "admitted_at": _fmt_dt(a.admitted_at, tz), "discharged_at": _fmt_dt(a.discharged_at, tz),
        "admit_department": department_names.get(a.admit_department or "", a.admit_department or ""),
        "discharge_department": department_names.get(a.discharge_department or "",
                                                     a.discharge_department or ""),
        "ward": a.ward or "", "discharge_way": a.discharge_way or "",
        "readmission_31d": "是" if a.readmission_31d else "否",
    }
    for key in ("nationality", "ethnicity", "occupation", "marital_status", "birthplace",
                "native_place", "household_address", "current_address", "admit_ward",
                "drug_allergy", "blood_type", "rh", "autopsy", "receiving_org",
                "record_quality", "transfer_chain", "admission_route", "qc_date",
                "work_address", "work_phone", "current_postcode", "household_postcode",
                "work_postcode", "newborn_birth_weight", "newborn_admit_weight"):
        if e.get(key) not in (None, ""):
            r[key] = e[key]
    if e.get("age_months") is not None:
        r["age_months"] = e["age_months"]
    if e.get("contact"):
        c = e["contact"]
        r.update(contact_name=c.get("name", ""), contact_relation=c.get("relation", ""),
                 contact_phone=c.get("phone", ""), contact_address=c.get("address", ""))
    for key, prefix in (("outpatient_diagnosis", "outpatient_dx"),
                        ("external_cause", "injury"), ("pathology", "pathology")):
        if e.get(key):
            r[f"{prefix}_code"] = e[key].get("code", "")
            r[f"{prefix}_name"] = e[key].get("name", "")
    if e.get("pathology"):
        r["pathology_no"] = e["pathology"].get("pathology_no", "")
    plan = e.get("readmission_plan_31d")
    if plan:
        r["readmission_plan"] = "2" if plan.get("planned") else "1"
        r["readmission_purpose"] = plan.get("purpose") or ""
    main = [d for d in a.diagnoses if d.kind == "main"]
    others = [d for d in a.diagnoses if d.kind != "main"]
    if main:
        r.update(main_dx_name=main[0].name, main_dx_code=main[0].code,
                 main_dx_condition=main[0].admission_condition or "")
    for n, d in enumerate(others[:OTHER_DIAGNOSES], start=1):
        r.update({f"dx{n}_name": d.name, f"dx{n}_code": d.code,
                  f"dx{n}_condition": d.admission_condition or ""})
    for n, o in enumerate(a.operations[:OPERATIONS], start=1):
        r.update({f"op{n}_code": o.code, f"op{n}_name": o.name,
                  f"op{n}_date": o.date.isoformat() if o.date else "",
                  f"op{n}_level": o.level or "", f"op{n}_surgeon": o.surgeon_no or "",
                  f"op{n}_assistant1": o.assistant1_no or "",
                  f"op{n}_assistant2": o.assistant2_no or "",
                  f"op{n}_incision": o.incision_healing or "",
                  f"op{n}_anaesthesia": o.anaesthesia or "",
                  f"op{n}_anaesthetist": o.anaesthetist_no or ""})
    for col, role in SIGNER_COLUMNS.items():
        if a.signers.get(role):
            r[col] = a.signers[role]
    for key in ("admit_physician", "attending_physician"):
        if e.get(key):
            r[key] = e[key]
    if e.get("treating_physicians"):
        r["treating_physicians"] = ";".join(e["treating_physicians"])
    costs = e.get("costs")
    if costs:
        r["total_cost"] = costs.get("total")
        r["self_paid"] = costs.get("self_paid")
        for key, _h, _c in COST_ITEMS:
            r[f"cost_{key}"] = (costs.get("items") or {}).get(key, 0.0)
    elif a.total_cost is not None:
        r["total_cost"] = a.total_cost
    return r
