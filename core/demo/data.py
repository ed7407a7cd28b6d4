"""Reference tables of the demo hospital: departments, staff, codes, case mix, names, places.

Everything here is fictitious except the public code lists (ICD-10, ICD-9-CM-3 national clinical
edition style codes, GB/T 2260 administrative division codes), which are real so that the demo
looks and searches like a real record room. ID numbers built from these tables are fake.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

SEED = 2026
# The demo's "today": in-hospital patients were admitted in the days before it.
REFERENCE_DATE = dt.date(2026, 11, 20)
WINDOW_START = dt.date(2024, 1, 1)
WINDOW_END = dt.date(2026, 10, 31)  # last admission date of a discharged stay

# Planned totals (the generator meets them exactly; tests check them).
N_ADMISSIONS = 300
N_PATIENTS = 220
VISITS_PER_PATIENT = {1: 160, 2: 40, 3: 20}  # 160 + 80 + 60 = 300 stays
N_IN_HOSPITAL = 6  # 3 of them readmitted patients with earlier stays
N_IN_HOSPITAL_READMITTED = 3
N_DEATHS = 8
N_AGAINST_ADVICE = 8
N_TRANSFER_HOSPITAL = 10  # discharge way 2
N_TRANSFER_COMMUNITY = 6  # discharge way 3
N_READMISSION_31D = 30  # of the 80 repeat stays
# Rough stays per department; single-stay patients are spread to approach these.
DEPT_TARGETS = {"CARD": 40, "RESP": 34, "GAST": 26, "NEUR": 34, "GSUR": 36, "ORTH": 26,
                "OBGY": 26, "PEDS": 26, "ONCO": 32, "ICU": 20}

DEMO_PASSWORD = "bingan@2026"
ADMIN_PASSWORD = "Admin@bingan26"

# --------------------------------------------------------------------------------------------
# Departments: (code, name, kind, key). ``key`` is used by the case table.
# --------------------------------------------------------------------------------------------

DEPARTMENTS: list[tuple[str, str, str, str]] = [
    ("1001", "心血管内科", "clinical", "CARD"),
    ("1002", "呼吸内科", "clinical", "RESP"),
    ("1003", "消化内科", "clinical", "GAST"),
    ("1004", "神经内科", "clinical", "NEUR"),
    ("1005", "普通外科", "clinical", "GSUR"),
    ("1006", "骨科", "clinical", "ORTH"),
    ("1007", "妇产科", "clinical", "OBGY"),
    ("1008", "儿科", "clinical", "PEDS"),
    ("1009", "肿瘤科", "clinical", "ONCO"),
    ("1010", "重症医学科", "clinical", "ICU"),
    ("1011", "麻醉科", "clinical", "ANES"),
    ("9001", "病案室", "admin", "MRD"),
    ("9002", "医务科", "admin", "MED"),
    ("9003", "信息科", "admin", "IT"),
]
DEPT_CODE = {key: code for code, _, _, key in DEPARTMENTS}
DEPT_NAME = {code: name for code, name, _, _ in DEPARTMENTS}

WARDS: dict[str, list[str]] = {
    "CARD": ["心内科一病区", "心内科二病区"],
    "RESP": ["呼吸内科病区"],
    "GAST": ["消化内科病区"],
    "NEUR": ["神经内科一病区", "神经内科二病区"],
    "GSUR": ["普外科一病区", "普外科二病区"],
    "ORTH": ["骨科病区"],
    "OBGY": ["产科病区", "妇科病区"],
    "PEDS": ["儿科病区"],
    "ONCO": ["肿瘤科病区"],
    "ICU": ["重症监护病房"],
}

# --------------------------------------------------------------------------------------------
# Staff: (staff_no, name, department key, roles, title, password or None for DEMO_PASSWORD)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffRow:
    staff_no: str
    name: str
    dept: str
    roles: tuple[str, ...]
    title: str | None
    password: str = DEMO_PASSWORD


STAFF: list[StaffRow] = [
    StaffRow("A0001", "高峰", "IT", ("admin",), "工程师", ADMIN_PASSWORD),
    StaffRow("R0001", "邵文静", "MRD", ("records", "clerk"), "副主任技师"),
    StaffRow("R0002", "方晓琳", "MRD", ("clerk",), "主管技师"),
    StaffRow("R0003", "曾凡宇", "MRD", ("clerk",), "技师"),
    StaffRow("Q0001", "冯建平", "MED", ("qc",), "副主任医师"),
    StaffRow("S0001", "解晓梅", "MED", ("auditor",), "主管技师"),
    # Physicians: the first of each department is its head.
    StaffRow("D0001", "陈志远", "CARD", ("physician",), "主任医师"),
    StaffRow("D0002", "林晓雯", "CARD", ("physician",), "主治医师"),
    StaffRow("D0003", "王海峰", "RESP", ("physician",), "主任医师"),
    StaffRow("D0004", "周静怡", "RESP", ("physician",), "住院医师"),
    StaffRow("D0005", "赵立新", "GAST", ("physician",), "副主任医师"),
    StaffRow("D0006", "孙悦", "GAST", ("physician",), "主治医师"),
    StaffRow("D0007", "吴建华", "NEUR", ("physician",), "主任医师"),
    StaffRow("D0008", "郑雅琴", "NEUR", ("physician",), "主治医师"),
    StaffRow("D0009", "黄振宇", "GSUR", ("physician",), "主任医师"),
    StaffRow("D0010", "何俊杰", "GSUR", ("physician",), "主治医师"),
    StaffRow("D0011", "马国栋", "ORTH", ("physician",), "主任医师"),
    StaffRow("D0012", "徐子航", "ORTH", ("physician",), "住院医师"),
    StaffRow("D0013", "沈丽华", "OBGY", ("physician",), "主任医师"),
    StaffRow("D0014", "韩雪", "OBGY", ("physician",), "主治医师"),
    StaffRow("D0015", "杨春燕", "PEDS", ("physician",), "副主任医师"),
    StaffRow("D0016", "刘博文", "PEDS", ("physician",), "住院医师"),
    StaffRow("D0017", "许文斌", "ONCO", ("physician",), "主任医师"),
    StaffRow("D0018", "蒋思彤", "ONCO", ("physician",), "主治医师"),
    StaffRow("D0019", "罗建军", "ICU", ("physician",), "副主任医师"),
    StaffRow("D0020", "宋一鸣", "ICU", ("physician",), "主治医师"),
    StaffRow("D0021", "唐慧敏", "ANES", ("physician",), "副主任医师"),
    StaffRow("N0001", "朱玉兰", "CARD", ("nurse",), "主管护师"),
    StaffRow("N0002", "钱晓燕", "GSUR", ("nurse",), "护师"),
]

ANAESTHETIST = "D0021"
CODERS = ("R0002", "R0003")
QC_DOCTOR = "Q0001"


def physicians_of(dept_key: str) -> list[StaffRow]:
    return [s for s in STAFF if s.dept == dept_key and "physician" in s.roles]


def nurses_of(dept_key: str) -> list[StaffRow]:
    return [s for s in STAFF if s.dept == dept_key and "nurse" in s.roles]


# --------------------------------------------------------------------------------------------
# ICD-10 diagnoses used by the demo (code -> Chinese name)
# --------------------------------------------------------------------------------------------

DIAGNOSES: dict[str, str] = {
    # cardiology
    "I21.0": "急性前壁心肌梗死",
    "I21.1": "急性下壁心肌梗死",
    "I20.0": "不稳定型心绞痛",
    "I25.1": "冠状动脉粥样硬化性心脏病",
    "I50.9": "心力衰竭",
    "I47.1": "室上性心动过速",
    "I49.5": "病态窦房结综合征",
    # respiratory
    "J18.9": "肺炎",
    "J44.1": "慢性阻塞性肺病伴有急性加重",
    "J44.0": "慢性阻塞性肺病伴有急性下呼吸道感染",
    "J44.9": "慢性阻塞性肺病",
    "J45.9": "哮喘",
    "J47": "支气管扩张症",
    "J90": "胸腔积液",
    "J96.0": "急性呼吸衰竭",
    "J80": "急性呼吸窘迫综合征",
    "J69.0": "吸入性肺炎",
    "I27.9": "肺源性心脏病",
    # gastroenterology
    "K25.4": "胃溃疡伴出血",
    "K92.2": "消化道出血",
    "K29.7": "胃炎",
    "K85.9": "急性胰腺炎",
    "K74.6": "肝硬化",
    "K63.5": "结肠息肉",
    "K80.5": "胆管结石不伴有胆管炎或胆囊炎",
    "B18.1": "慢性乙型病毒性肝炎",
    "K76.0": "脂肪肝",
    "R18": "腹水",
    # neurology
    "I63.9": "脑梗死",
    "I61.9": "脑出血",
    "G45.9": "短暂性脑缺血发作",
    "G40.9": "癫痫",
    "G20": "帕金森病",
    "G61.0": "吉兰-巴雷综合征",
    "I67.2": "脑动脉粥样硬化",
    "G81.9": "偏瘫",
    # general surgery
    "K35.8": "急性阑尾炎",
    "K80.1": "胆囊结石伴有其他胆囊炎",
    "K80.2": "胆囊结石不伴有胆囊炎",
    "K40.9": "腹股沟疝",
    "K56.6": "肠梗阻",
    "K65.0": "急性腹膜炎",
    "C18.7": "乙状结肠恶性肿瘤",
    "C16.9": "胃恶性肿瘤",
    "E04.1": "非毒性单个甲状腺结节",
    # orthopaedics
    "S72.0": "股骨颈骨折",
    "S72.1": "股骨粗隆间骨折",
    "S82.2": "胫骨骨干骨折",
    "S52.5": "桡骨下端骨折",
    "M51.2": "腰椎间盘突出",
    "M17.9": "膝关节病",
    "M81.9": "骨质疏松",
    # obstetrics and gynaecology
    "O80": "单胎顺产",
    "O82.0": "经选择性剖宫产术的分娩",
    "O42.9": "胎膜早破",
    "O34.2": "由于以前的手术瘢痕给予的孕产妇医疗",
    "O24.4": "妊娠期糖尿病",
    "O99.0": "妊娠合并贫血",
    "Z37.0": "单胎活产",
    "D25.9": "子宫平滑肌瘤",
    "N83.2": "卵巢囊肿",
    # paediatrics
    "J18.0": "支气管肺炎",
    "J20.9": "急性支气管炎",
    "A08.0": "轮状病毒性肠炎",
    "J06.9": "急性上呼吸道感染",
    "R56.0": "热性惊厥",
    "B08.4": "手足口病",
    "E86": "脱水",
    # oncology
    "C34.1": "上叶支气管或肺恶性肿瘤",
    "C34.3": "下叶支气管或肺恶性肿瘤",
    "C50.9": "乳房恶性肿瘤",
    "C22.0": "肝细胞癌",
    "C20": "直肠恶性肿瘤",
    "C78.0": "肺继发恶性肿瘤",
    "C78.7": "肝继发恶性肿瘤",
    "C79.5": "骨继发恶性肿瘤",
    "Z51.1": "为肿瘤化学治疗疗程",
    "D70": "粒细胞缺乏",
    # intensive care
    "A41.9": "脓毒症",
    "R57.0": "心源性休克",
    "S06.9": "颅内损伤",
    "N17.9": "急性肾衰竭",
    "D65": "弥散性血管内凝血",
    "I46.9": "心脏停搏",
    # common comorbidities
    "I10": "特发性（原发性）高血压",
    "E11.9": "2型糖尿病不伴有并发症",
    "E78.5": "高脂血症",
    "N18.9": "慢性肾脏病",
    "E87.6": "低钾血症",
    "D64.9": "贫血",
    "E03.9": "甲状腺功能减退症",
}

# Symptoms used as outpatient diagnoses (ICD-10 chapter R).
SYMPTOMS: dict[str, str] = {
    "R07.4": "胸痛", "R10.4": "腹痛", "R50.9": "发热", "R05": "咳嗽", "R42": "头晕", "R51": "头痛",
}

# External causes of injury (ICD-10 chapter XX).
EXTERNAL_CAUSES: dict[str, str] = {
    "W01": "同一平面上滑倒、绊倒和摔倒", "W19": "跌倒", "V89.2": "机动车交通事故",
}

# Pathology (ICD-O-3 morphology) per cancer code.
PATHOLOGY: dict[str, list[tuple[str, str]]] = {
    "C34.1": [("M8140/3", "腺癌"), ("M8070/3", "鳞状细胞癌"), ("M8041/3", "小细胞癌")],
    "C34.3": [("M8140/3", "腺癌"), ("M8070/3", "鳞状细胞癌")],
    "C50.9": [("M8500/3", "浸润性导管癌")],
    "C22.0": [("M8170/3", "肝细胞癌")],
    "C20": [("M8140/3", "腺癌")],
    "C18.7": [("M8140/3", "腺癌")],
    "C16.9": [("M8140/3", "腺癌"), ("M8490/3", "印戒细胞癌")],
}

# --------------------------------------------------------------------------------------------
# Operations (ICD-9-CM-3, national clinical edition style codes)
# code -> (name, level, incision class or None, anaesthesia choices)
# incision class: "Ⅰ" "Ⅱ" "Ⅲ" for open/laparoscopic surgery, "0" for natural-orifice or
# percutaneous procedures, None for procedures without an incision.
# --------------------------------------------------------------------------------------------

OPERATIONS: dict[str, tuple[str, str, str | None, tuple[str | None, ...]]] = {
    "36.0700": ("药物洗脱冠状动脉支架置入", "4", "0", ("局部麻醉",)),
    "88.5600": ("用两根导管的冠状动脉造影术", "3", "0", ("局部麻醉",)),
    "37.3400": ("经导管心脏射频消融术", "4", "0", ("局部麻醉",)),
    "37.8300": ("首次置入双腔装置", "3", "Ⅰ", ("局部麻醉",)),
    "33.2400": ("闭合性[内镜的]支气管活组织检查", "2", "0", ("局部麻醉", "静脉麻醉")),
    "34.9100": ("胸腔穿刺术", "1", "0", ("局部麻醉",)),
    "44.4300": ("内镜下胃或十二指肠出血控制", "3", "0", ("静脉麻醉", None)),
    "45.4200": ("内镜下大肠息肉切除术", "2", "0", ("静脉麻醉", None)),
    "51.8800": ("内镜下胆管结石去除术", "4", "0", ("静脉麻醉",)),
    "88.4100": ("脑动脉造影术", "3", "0", ("局部麻醉",)),
    "99.1000": ("注射或输注血栓溶解剂", "1", None, (None,)),
    "03.3100": ("腰椎穿刺术", "1", "0", ("局部麻醉",)),
    "47.0100": ("腹腔镜下阑尾切除术", "3", "Ⅱ", ("全身麻醉",)),
    "47.0900": ("其他阑尾切除术", "2", "Ⅱ", ("椎管内麻醉", "全身麻醉")),
    "51.2300": ("腹腔镜下胆囊切除术", "3", "Ⅱ", ("全身麻醉",)),
    "53.0400": ("单侧腹股沟斜疝无张力修补术", "2", "Ⅰ", ("椎管内麻醉", "全身麻醉")),
    "54.5900": ("腹腔粘连松解术", "3", "Ⅱ", ("全身麻醉",)),
    "45.7600": ("乙状结肠切除术", "4", "Ⅱ", ("全身麻醉",)),
    "43.7x00": ("胃部分切除术伴胃空肠吻合术", "4", "Ⅱ", ("全身麻醉",)),
    "06.2x00": ("单侧甲状腺叶切除术", "3", "Ⅰ", ("全身麻醉",)),
    "81.5100": ("全髋关节置换", "4", "Ⅰ", ("全身麻醉", "椎管内麻醉")),
    "81.5200": ("部分髋关节置换", "3", "Ⅰ", ("椎管内麻醉", "全身麻醉")),
    "81.5400": ("全膝关节置换", "4", "Ⅰ", ("椎管内麻醉", "全身麻醉", "神经阻滞麻醉")),
    "79.3500": ("股骨骨折切开复位内固定术", "3", "Ⅰ", ("椎管内麻醉", "全身麻醉")),
    "79.3600": ("胫腓骨骨折切开复位内固定术", "3", "Ⅰ", ("椎管内麻醉",)),
    "79.3200": ("桡尺骨骨折切开复位内固定术", "2", "Ⅰ", ("神经阻滞麻醉",)),
    "80.5100": ("椎间盘切除术", "4", "Ⅰ", ("全身麻醉",)),
    "74.1x00": ("低位子宫下段剖宫产", "3", "Ⅱ", ("椎管内麻醉",)),
    "73.6x00": ("外阴切开术", "1", "Ⅱ", ("局部麻醉",)),
    "68.2900": ("子宫病损切除术", "3", "Ⅱ", ("全身麻醉", "椎管内麻醉")),
    "68.4100": ("腹腔镜下全子宫切除术", "4", "Ⅱ", ("全身麻醉",)),
    "65.2500": ("腹腔镜下卵巢病损切除术", "3", "Ⅱ", ("全身麻醉",)),
    "99.2500": ("注射或输注癌瘤化学治疗药物", "1", None, (None,)),
    "38.9300": ("静脉导管插入术", "1", "0", ("局部麻醉",)),
    "96.0400": ("气管内插管", "1", None, ("静脉麻醉",)),
    "96.7100": ("连续性有创机械通气小于96小时", "1", None, (None,)),
    "96.7200": ("连续性有创机械通气大于等于96小时", "1", None, (None,)),
    "31.1x00": ("暂时性气管切开术", "2", "Ⅱ", ("局部麻醉", "全身麻醉")),
    "39.9500": ("血液透析", "2", None, (None,)),
}

# Anaesthesia an anaesthetist gives (local anaesthesia is the operator's).
BY_ANAESTHETIST = {"全身麻醉", "椎管内麻醉", "神经阻滞麻醉", "静脉麻醉"}

# --------------------------------------------------------------------------------------------
# Case mix: one row per kind of stay
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    key: str
    dept: str  # department key
    main: str  # ICD-10 of the main diagnosis
    ops: tuple[tuple[str, float], ...] = ()  # (operation code, probability), in order
    los: tuple[int, int] = (3, 10)  # length of stay range, days
    age: tuple[int, int] = (18, 85)
    p_male: float = 0.5
    cost: int = 10000  # typical total cost, CNY
    weight: int = 1
    others: tuple[str, ...] = ()  # department-typical other diagnoses
    nxt: tuple[str, ...] = ()  # cases a readmission of this patient may be
    fatal: bool = False  # may end in death
    emergency: float = 0.3  # share admitted through the emergency room
    symptom: str | None = None  # outpatient symptom diagnosis sometimes recorded instead
    alt_ops: tuple[str, ...] = ()  # first op replaced by one of these if its coin fails


CASES: list[Case] = [
    # cardiology
    Case("CARD_AMI_A", "CARD", "I21.0", (("36.0700", 0.85), ("88.5600", 1.0)), (5, 12), (42, 88),
         0.72, 45000, 4, ("I10", "E11.9", "E78.5"), ("CARD_UA", "CARD_CHD"), True, 0.9, "R07.4"),
    Case("CARD_AMI_I", "CARD", "I21.1", (("36.0700", 0.8), ("88.5600", 1.0)), (5, 12), (42, 88),
         0.7, 42000, 3, ("I10", "E11.9", "E78.5"), ("CARD_UA", "CARD_CHD"), True, 0.9, "R07.4"),
    Case("CARD_UA", "CARD", "I20.0", (("88.5600", 0.75), ("36.0700", 0.45)), (3, 8), (45, 85),
         0.6, 25000, 5, ("I10", "E11.9", "E78.5"), ("CARD_CHD",), False, 0.4, "R07.4"),
    Case("CARD_CHD", "CARD", "I25.1", (("88.5600", 0.6),), (3, 7), (50, 88), 0.6, 15000, 3,
         ("I10", "E11.9", "E78.5", "N18.9"), ("CARD_HF",), False, 0.2),
    Case("CARD_HF", "CARD", "I50.9", (), (7, 16), (60, 93), 0.5, 14000, 4,
         ("I10", "I25.1", "N18.9", "E87.6", "E11.9"), ("CARD_HF",), True, 0.6),
    Case("CARD_SVT", "CARD", "I47.1", (("37.3400", 0.8),), (3, 6), (18, 70), 0.45, 30000, 2,
         ("I10",), (), False, 0.3),
    Case("CARD_SSS", "CARD", "I49.5", (("37.8300", 0.9),), (5, 9), (55, 88), 0.5, 60000, 2,
         ("I10", "I25.1"), (), False, 0.2, "R42"),
    # respiratory
    Case("RESP_PNEU", "RESP", "J18.9", (), (6, 14), (18, 92), 0.55, 8000, 6,
         ("I10", "E11.9", "J96.0", "E87.6"), (), True, 0.5, "R50.9"),
    Case("RESP_COPD_AE", "RESP", "J44.1", (), (7, 15), (55, 90), 0.75, 11000, 5,
         ("I27.9", "J96.0", "I10"), ("RESP_COPD_AE", "RESP_COPD_INF"), True, 0.5, "R05"),
    Case("RESP_COPD_INF", "RESP", "J44.0", (), (7, 14), (55, 90), 0.75, 10000, 2,
         ("I27.9", "I10"), ("RESP_COPD_AE",), True, 0.4, "R05"),
    Case("RESP_ASTHMA", "RESP", "J45.9", (), (5, 10), (16, 75), 0.45, 7000, 2,
         ("J18.9",), ("RESP_ASTHMA",), False, 0.5),
    Case("RESP_BRONCHIECT", "RESP", "J47", (("33.2400", 0.2),), (6, 12), (35, 80), 0.45, 9000, 2,
         ("J18.9", "D64.9"), ("RESP_BRONCHIECT",), False, 0.3, "R05"),
    Case("RESP_EFFUSION", "RESP", "J90", (("34.9100", 0.9),), (5, 12), (40, 88), 0.55, 9000, 2,
         ("J18.9", "D64.9"), (), False, 0.3),
    Case("RESP_LUNGCA", "RESP", "C34.1", (("33.2400", 0.9),), (6, 12), (50, 85), 0.7, 16000, 2,
         ("I10", "J90"), ("ONCO_CHEMO",), True, 0.2, "R05"),
    # gastroenterology
    Case("GAST_ULCER", "GAST", "K25.4", (("44.4300", 0.6),), (5, 10), (25, 85), 0.65, 12000, 3,
         ("D64.9", "E87.6"), (), True, 0.8),
    Case("GAST_BLEED", "GAST", "K92.2", (), (4, 9), (30, 88), 0.6, 9000, 2,
         ("D64.9",), (), False, 0.8),
    Case("GAST_GASTRITIS", "GAST", "K29.7", (), (3, 6), (20, 80), 0.45, 5000, 2, (), (), False,
         0.3, "R10.4"),
    Case("GAST_PANC", "GAST", "K85.9", (), (7, 16), (25, 80), 0.6, 18000, 3,
         ("K80.2", "E78.5", "E87.6"), (), True, 0.9, "R10.4"),
    Case("GAST_CIRR", "GAST", "K74.6", (("44.4300", 0.15),), (8, 16), (40, 80), 0.7, 15000, 3,
         ("B18.1", "R18", "D64.9"), ("GAST_CIRR", "GAST_BLEED"), True, 0.5),
    Case("GAST_POLYP", "GAST", "K63.5", (("45.4200", 0.95),), (2, 4), (35, 75), 0.55, 7000, 3,
         ("K76.0",), (), False, 0.0),
    Case("GAST_CBD", "GAST", "K80.5", (("51.8800", 0.9),), (5, 10), (40, 88), 0.5, 25000, 2,
         ("K80.2",), (), False, 0.6, "R10.4"),
    # neurology
    Case("NEUR_INFARCT", "NEUR", "I63.9", (("99.1000", 0.15), ("88.4100", 0.15)), (8, 16),
         (45, 93), 0.6, 14000, 7, ("I10", "E11.9", "E78.5", "I67.2", "G81.9", "J69.0"),
         ("NEUR_INFARCT", "NEUR_TIA"), True, 0.7, "R42"),
    Case("NEUR_ICH", "NEUR", "I61.9", (), (12, 28), (45, 88), 0.6, 25000, 3,
         ("I10", "G81.9", "J69.0"), (), True, 0.9, "R51"),
    Case("NEUR_TIA", "NEUR", "G45.9", (), (4, 8), (45, 88), 0.55, 7000, 3,
         ("I10", "E78.5", "I67.2"), ("NEUR_INFARCT",), False, 0.6, "R42"),
    Case("NEUR_EPI", "NEUR", "G40.9", (("03.3100", 0.1),), (4, 10), (15, 75), 0.55, 8000, 2,
         (), ("NEUR_EPI",), False, 0.7),
    Case("NEUR_PD", "NEUR", "G20", (), (6, 12), (55, 85), 0.55, 9000, 2, ("I10", "M81.9"),
         ("NEUR_PD",), False, 0.1),
    Case("NEUR_GBS", "NEUR", "G61.0", (("03.3100", 0.9),), (12, 25), (20, 70), 0.6, 40000, 1,
         (), (), False, 0.5),
    # general surgery
    Case("GSUR_APPX", "GSUR", "K35.8", (("47.0100", 0.8),), (3, 7), (12, 75), 0.55, 12000, 6,
         ("K65.0",), (), False, 0.9, "R10.4", ("47.0900",)),
    Case("GSUR_GALL", "GSUR", "K80.1", (("51.2300", 0.95),), (4, 8), (30, 80), 0.42, 15000, 5,
         ("I10", "K76.0", "E11.9"), (), False, 0.4, "R10.4"),
    Case("GSUR_GALL2", "GSUR", "K80.2", (("51.2300", 0.95),), (3, 6), (30, 80), 0.42, 13000, 2,
         ("K76.0",), (), False, 0.1),
    Case("GSUR_HERNIA", "GSUR", "K40.9", (("53.0400", 0.95),), (3, 6), (30, 85), 0.9, 10000, 4,
         ("I10",), (), False, 0.1),
    Case("GSUR_ILEUS", "GSUR", "K56.6", (("54.5900", 0.3),), (6, 14), (30, 88), 0.55, 14000, 3,
         ("E87.6", "D64.9"), (), True, 0.9, "R10.4"),
    Case("GSUR_COLON", "GSUR", "C18.7", (("45.7600", 0.9),), (12, 22), (45, 85), 0.6, 60000, 2,
         ("D64.9", "I10"), ("ONCO_CHEMO",), True, 0.1),
    Case("GSUR_GASTRIC", "GSUR", "C16.9", (("43.7x00", 0.85),), (14, 24), (45, 85), 0.7, 70000,
         2, ("D64.9", "I10"), ("ONCO_CHEMO",), True, 0.1),
    Case("GSUR_THYROID", "GSUR", "E04.1", (("06.2x00", 0.95),), (3, 6), (25, 70), 0.25, 12000, 2,
         ("E03.9",), (), False, 0.0),
    # orthopaedics
    Case("ORTH_FNF", "ORTH", "S72.0", (("81.5100", 0.5),), (8, 18), (60, 95), 0.35, 55000, 4,
         ("M81.9", "I10", "D64.9"), (), True, 0.8, None, ("81.5200",)),
    Case("ORTH_ITF", "ORTH", "S72.1", (("79.3500", 0.9),), (8, 16), (60, 95), 0.35, 40000, 3,
         ("M81.9", "I10", "D64.9"), (), True, 0.8),
    Case("ORTH_TIBIA", "ORTH", "S82.2", (("79.3600", 0.9),), (7, 15), (18, 70), 0.7, 30000, 3,
         (), (), False, 0.9),
    Case("ORTH_RADIUS", "ORTH", "S52.5", (("79.3200", 0.7),), (3, 8), (20, 85), 0.4, 15000, 2,
         ("M81.9",), (), False, 0.8),
    Case("ORTH_DISC", "ORTH", "M51.2", (("80.5100", 0.7),), (6, 14), (30, 75), 0.55, 35000, 3,
         (), (), False, 0.1),
    Case("ORTH_KNEE", "ORTH", "M17.9", (("81.5400", 0.6),), (7, 14), (55, 85), 0.3, 55000, 3,
         ("I10", "M81.9"), ("ORTH_KNEE",), False, 0.0),
    # obstetrics and gynaecology
    Case("OBGY_VAG", "OBGY", "O80", (("73.6x00", 0.4),), (2, 4), (20, 40), 0.0, 4500, 5,
         ("Z37.0", "O99.0"), (), False, 0.3),
    Case("OBGY_CS", "OBGY", "O82.0", (("74.1x00", 1.0),), (4, 6), (22, 42), 0.0, 10000, 4,
         ("Z37.0", "O34.2", "O24.4"), (), False, 0.1),
    Case("OBGY_PROM", "OBGY", "O42.9", (("73.6x00", 0.3),), (3, 5), (20, 40), 0.0, 5500, 2,
         ("Z37.0",), (), False, 0.6),
    Case("OBGY_MYOMA", "OBGY", "D25.9", (("68.2900", 0.6),), (5, 9), (30, 55), 0.0, 20000, 3,
         ("D64.9",), (), False, 0.0, None, ("68.4100",)),
    Case("OBGY_CYST", "OBGY", "N83.2", (("65.2500", 0.9),), (4, 7), (18, 50), 0.0, 14000, 2,
         (), (), False, 0.1),
    # paediatrics
    Case("PEDS_BPN", "PEDS", "J18.0", (), (5, 10), (0, 10), 0.55, 4000, 6, ("E86",),
         ("PEDS_BPN", "PEDS_BRON"), False, 0.5, "R50.9"),
    Case("PEDS_BRON", "PEDS", "J20.9", (), (4, 7), (0, 12), 0.55, 3000, 3, (), (), False, 0.4,
         "R05"),
    Case("PEDS_ROTA", "PEDS", "A08.0", (), (3, 6), (0, 5), 0.55, 2800, 3, ("E86",), (), False,
         0.6),
    Case("PEDS_URI", "PEDS", "J06.9", (), (2, 5), (0, 12), 0.55, 2000, 2, (), (), False, 0.5,
         "R50.9"),
    Case("PEDS_FC", "PEDS", "R56.0", (), (2, 5), (0, 6), 0.6, 2500, 2, ("J06.9",), (), False, 0.9),
    Case("PEDS_HFMD", "PEDS", "B08.4", (), (3, 7), (0, 6), 0.55, 3000, 2, (), (), False, 0.5,
         "R50.9"),
    # oncology
    Case("ONCO_LUNG_U", "ONCO", "C34.1", (("99.2500", 0.8), ("38.9300", 0.3)), (5, 12), (45, 85),
         0.7, 15000, 3, ("C78.7", "C79.5", "D64.9"), ("ONCO_CHEMO",), True, 0.1),
    Case("ONCO_LUNG_L", "ONCO", "C34.3", (("99.2500", 0.8), ("38.9300", 0.3)), (5, 12), (45, 85),
         0.7, 15000, 2, ("C78.7", "C79.5"), ("ONCO_CHEMO",), True, 0.1),
    Case("ONCO_BREAST", "ONCO", "C50.9", (("99.2500", 0.9), ("38.9300", 0.5)), (4, 8), (30, 75),
         0.0, 12000, 2, ("C78.0", "C79.5"), ("ONCO_CHEMO",), False, 0.0),
    Case("ONCO_HCC", "ONCO", "C22.0", (("99.2500", 0.3),), (6, 14), (40, 80), 0.75, 20000, 2,
         ("B18.1", "K74.6", "R18"), ("ONCO_CHEMO",), True, 0.3),
    Case("ONCO_RECTAL", "ONCO", "C20", (("99.2500", 0.8),), (5, 10), (40, 85), 0.6, 14000, 2,
         ("C78.7", "D64.9"), ("ONCO_CHEMO",), True, 0.1),
    Case("ONCO_CHEMO", "ONCO", "Z51.1", (("99.2500", 1.0),), (3, 6), (18, 90), 0.5, 9000, 0,
         ("D70", "D64.9"), ("ONCO_CHEMO",), False, 0.0),
    # intensive care
    Case("ICU_SEPSIS", "ICU", "A41.9", (("38.9300", 0.8), ("96.7100", 0.5), ("39.9500", 0.3)),
         (7, 25), (30, 90), 0.6, 80000, 3, ("N17.9", "D65", "J18.9"), (), True, 0.9, "R50.9"),
    Case("ICU_ARF", "ICU", "J96.0", (("96.0400", 0.7), ("96.7200", 0.4), ("31.1x00", 0.2)),
         (6, 20), (40, 90), 0.65, 70000, 3, ("J44.9", "J18.9", "I27.9"), (), True, 0.9),
    Case("ICU_SHOCK", "ICU", "R57.0", (("96.0400", 0.8), ("96.7100", 0.7), ("38.9300", 0.9)),
         (4, 15), (50, 90), 0.65, 90000, 1, ("I21.0", "N17.9"), (), True, 1.0),
    Case("ICU_TBI", "ICU", "S06.9", (("96.7200", 0.5), ("31.1x00", 0.4)), (8, 28), (18, 80),
         0.75, 100000, 2, ("J18.9",), (), True, 1.0),
    Case("ICU_ARDS", "ICU", "J80", (("96.0400", 1.0), ("96.7200", 0.8)), (8, 25), (30, 85), 0.6,
         110000, 1, ("J18.9", "N17.9"), (), True, 1.0),
]
CASE_BY_KEY = {c.key: c for c in CASES}

# Comorbidities any adult may carry (code, minimum age).
COMORBIDITIES: list[tuple[str, int]] = [
    ("I10", 40), ("E11.9", 40), ("E78.5", 35), ("K76.0", 30), ("N18.9", 55), ("D64.9", 18),
    ("E03.9", 30), ("M81.9", 60), ("I25.1", 55),
]
# Conditions that typically start in hospital (admission condition 4 = 无).
HOSPITAL_ACQUIRED = {"E87.6", "J69.0", "D70", "N17.9", "D65", "I46.9"}

# Departments that may hand a severe case to intensive care, or receive one back.
ICU_FEEDERS = ("CARD", "NEUR", "RESP", "GSUR")

# --------------------------------------------------------------------------------------------
# Codes of the front page
# --------------------------------------------------------------------------------------------

# 医疗付费方式 (CV07.10.005) with weights.
PAYMENT_METHODS: list[tuple[str, int]] = [
    ("1", 45), ("2", 24), ("3", 10), ("4", 2), ("5", 4), ("6", 2), ("7", 9), ("8", 2), ("9", 2),
]
ADMISSION_ROUTES = {"1": "急诊", "2": "门诊", "3": "其他医疗机构转入", "9": "其他"}
ETHNICITIES: list[tuple[str, int]] = [
    ("汉族", 930), ("畲族", 12), ("回族", 12), ("满族", 10), ("土家族", 10), ("苗族", 10),
    ("壮族", 8), ("蒙古族", 4), ("彝族", 4),
]
OCCUPATIONS_ADULT: list[tuple[str, int]] = [
    ("职员", 20), ("工人", 16), ("农民", 14), ("专业技术人员", 12), ("个体经营者", 9),
    ("自由职业者", 8), ("企业管理人员", 7), ("国家公务员", 4), ("无业人员", 6),
]
DRUG_ALLERGIES: list[tuple[str, int]] = [
    ("无", 88), ("青霉素", 5), ("头孢类", 3), ("磺胺类", 2), ("碘造影剂", 1), ("阿司匹林", 1),
]
BLOOD_TYPES: list[tuple[str, int]] = [("A", 28), ("B", 25), ("O", 33), ("AB", 10), ("不详", 4)]
RECEIVING_HOSPITALS = ["省人民医院", "省肿瘤医院", "市康复医院", "市第二人民医院", "省中医院"]

# Cost sub-items (front-page 住院费用 groups), with their usual share of the total.
COST_ITEMS: list[tuple[str, float]] = [
    ("general_service", 0.08),  # 综合医疗服务类: 一般医疗服务费
    ("nursing", 0.04),  # 护理费
    ("lab", 0.10),  # 诊断类: 实验室诊断费
    ("imaging", 0.07),  # 影像学诊断费
    ("clinical_diagnosis", 0.03),  # 临床诊断项目费
    ("nonsurgical_treatment", 0.08),  # 治疗类: 非手术治疗项目费
    ("surgery", 0.10),  # 手术治疗费
    ("anaesthesia", 0.03),  # 麻醉费
    ("rehabilitation", 0.01),  # 康复类
    ("western_medicine", 0.24),  # 西药费
    ("antibiotics", 0.04),  # 其中抗菌药物费用 (part of western medicine; not summed)
    ("chinese_patent_medicine", 0.03),  # 中成药费
    ("blood", 0.02),  # 血液和血液制品类
    ("materials_exam", 0.02),  # 耗材类: 检查用一次性医用材料费
    ("materials_treatment", 0.07),  # 治疗用一次性医用材料费
    ("materials_surgery", 0.06),  # 手术用一次性医用材料费
    ("other", 0.02),  # 其他类
]

# --------------------------------------------------------------------------------------------
# People: names, places, phones
# --------------------------------------------------------------------------------------------

SURNAMES: list[tuple[str, int]] = [
    ("王", 72), ("李", 70), ("张", 68), ("刘", 54), ("陈", 52), ("杨", 32), ("黄", 25), ("赵", 22),
    ("吴", 22), ("周", 21), ("徐", 18), ("孙", 16), ("马", 14), ("朱", 14), ("胡", 13), ("郭", 12),
    ("何", 11), ("高", 10), ("林", 10), ("罗", 9), ("郑", 9), ("梁", 8), ("谢", 7), ("宋", 6),
    ("唐", 6), ("许", 6), ("韩", 5), ("冯", 5), ("邓", 5), ("曹", 5), ("彭", 5), ("曾", 5),
    ("肖", 5), ("田", 4), ("董", 4), ("袁", 4), ("潘", 4), ("于", 4), ("蒋", 4), ("蔡", 4),
    ("余", 4), ("杜", 3), ("叶", 4), ("程", 3), ("苏", 3), ("魏", 3), ("吕", 3), ("丁", 3),
    ("任", 3), ("沈", 4), ("姚", 3), ("卢", 3), ("姜", 3), ("崔", 2), ("钟", 2), ("谭", 2),
    ("陆", 3), ("汪", 3), ("范", 2), ("金", 3), ("石", 2), ("廖", 2), ("贾", 2), ("夏", 2),
    ("方", 3), ("邹", 2), ("孟", 2), ("熊", 2), ("秦", 2), ("邱", 2), ("江", 2), ("尹", 2),
    ("薛", 2), ("严", 2), ("钱", 3), ("俞", 3), ("应", 2), ("楼", 2), ("章", 3), ("戴", 2),
]
# Surnames whose reading differs from the character's common reading (pinyin search tests).
HETERONYM_SURNAMES = ["单", "曾", "解", "区", "查", "仇", "朴", "乐"]

# Given names by sex and birth era: old (<1965), mid (1965-1989), young (>=1990).
GIVEN_NAMES: dict[tuple[str, str], list[str]] = {
    ("M", "old"): ["建国", "建军", "国强", "国华", "志强", "德明", "永明", "振华", "卫东", "福生",
                   "金海", "长林", "树森", "庆华", "文斌", "明", "军", "华", "勇", "强", "刚",
                   "平", "根水", "福林", "荣华"],
    ("M", "mid"): ["伟", "磊", "涛", "斌", "鹏", "杰", "海涛", "建华", "晓东", "志刚", "俊杰",
                   "文杰", "立新", "小明", "浩", "鑫", "超", "健", "晓峰", "剑", "亮", "波",
                   "永强", "海军"],
    ("M", "young"): ["子轩", "浩然", "宇航", "梓豪", "俊熙", "一鸣", "博文", "天佑", "子墨",
                     "宇轩", "睿", "航", "昊天", "承泽", "晨阳", "皓轩", "嘉豪", "思远", "铭",
                     "宇", "泽宇", "奕辰"],
    ("F", "old"): ["秀英", "桂英", "秀兰", "玉兰", "淑珍", "凤英", "桂兰", "秀珍", "玉梅", "秀云",
                   "素芳", "翠花", "桂芝", "兰英", "金凤", "彩娥", "月娥", "美华", "芳", "英"],
    ("F", "mid"): ["丽", "静", "敏", "燕", "艳", "娟", "霞", "芳", "红梅", "丽华", "海燕", "晓红",
                   "春燕", "雪梅", "婷", "丹", "丽娟", "慧", "琳", "晓燕", "玲", "萍"],
    ("F", "young"): ["欣怡", "梓涵", "诗涵", "雨萱", "子涵", "一诺", "思彤", "佳怡", "可馨",
                     "语桐", "梦瑶", "雨桐", "若汐", "婉清", "悦", "佳琪", "心怡", "颖",
                     "诗琪", "静怡", "欣然"],
}


@dataclass(frozen=True)
class Region:
    code: str  # GB/T 2260 county-level code (real)
    province: str
    city: str
    district: str
    weight: int
    rural: bool = False


REGIONS: list[Region] = [
    Region("330102", "浙江省", "杭州市", "上城区", 10),
    Region("330105", "浙江省", "杭州市", "拱墅区", 10),
    Region("330106", "浙江省", "杭州市", "西湖区", 12),
    Region("330108", "浙江省", "杭州市", "滨江区", 6),
    Region("330109", "浙江省", "杭州市", "萧山区", 9),
    Region("330110", "浙江省", "杭州市", "余杭区", 9),
    Region("330111", "浙江省", "杭州市", "富阳区", 4),
    Region("330122", "浙江省", "杭州市", "桐庐县", 3, True),
    Region("330127", "浙江省", "杭州市", "淳安县", 3, True),
    Region("330182", "浙江省", "杭州市", "建德市", 3, True),
    Region("330203", "浙江省", "宁波市", "海曙区", 2),
    Region("330302", "浙江省", "温州市", "鹿城区", 2),
    Region("330402", "浙江省", "嘉兴市", "南湖区", 2),
    Region("330502", "浙江省", "湖州市", "吴兴区", 2),
    Region("330602", "浙江省", "绍兴市", "越城区", 2),
    Region("330702", "浙江省", "金华市", "婺城区", 2),
    Region("331002", "浙江省", "台州市", "椒江区", 1),
    Region("340104", "安徽省", "合肥市", "蜀山区", 2),
    Region("360102", "江西省", "南昌市", "东湖区", 1),
    Region("320102", "江苏省", "南京市", "玄武区", 1),
    Region("410105", "河南省", "郑州市", "金水区", 2),
    Region("510107", "四川省", "成都市", "武侯区", 1),
    Region("420106", "湖北省", "武汉市", "武昌区", 1),
    Region("430104", "湖南省", "长沙市", "岳麓区", 1),
    Region("222401", "吉林省", "延边朝鲜族自治州", "延吉市", 0),  # for 朴
    Region("440105", "广东省", "广州市", "海珠区", 0),  # for 区
]
REGION_FOR_SURNAME = {"朴": "222401", "区": "440105"}

STREETS = ["人民路", "解放路", "中山路", "建设路", "新华路", "和平路", "文化路", "学院路", "长江路",
           "胜利路", "东风路", "光明路", "幸福路", "健康路", "朝阳路", "青年路", "园林路", "环城北路"]
COMMUNITIES = ["阳光花园", "翠苑", "丽水家园", "金色家园", "锦绣苑", "和睦新村", "朝晖小区",
               "景华苑", "桂花城", "东方名苑"]
TOWNS = ["城南", "新安", "石桥", "长乐", "永安", "青山", "白沙", "东溪"]
VILLAGES = ["前山", "后塘", "上村", "下湾", "新塘", "大路", "桥头", "枫树"]
PHONE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151",
                  "152", "153", "155", "156", "157", "158", "159", "166", "176", "177", "180",
                  "181", "182", "183", "186", "187", "188", "189", "191", "198", "199"]
