"""Deterministic generator of the demo hospital's stays (pure: no database).

``build_admissions(tz)`` returns the same list of ``AdmissionIn`` on every call and machine for
the same time zone: all randomness comes from one ``random.Random(SEED)`` consumed in a fixed
order. Clock times (admissions in the morning, deaths at any hour) are the hospital's local
times in ``tz`` (``rt.tz``, ``[core] timezone``), stored in UTC.

The plan (see ``data``): 220 patients with 300 stays (160 patients with one stay, 40 with two,
20 with three); 30 of the 80 repeat stays begin within 31 days of the previous discharge
(``readmission_31d``); 6 patients are in hospital on the reference date (3 of them readmitted);
8 stays end in death (always the patient's last stay), 8 against medical advice, 10 transferred
to another hospital and 6 to a community health centre.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from bingan.hooks.types import AdmissionIn, DiagnosisIn, OperationIn, PatientIn

from bingan.core.demo import data as D

UTC = dt.timezone.utc

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
DELIVERY_CODES = {"O80", "O82.0", "O42.9"}
INJURY_CAUSES = {"S72.0": ("W01", "W19"), "S72.1": ("W01", "W19"), "S52.5": ("W01", "W19"),
                 "S82.2": ("V89.2", "W19"), "S06.9": ("V89.2", "W19")}
# An operation that is only done together with another one.
OP_REQUIRES = {"36.0700": "88.5600"}


# --------------------------------------------------------------------------------------------
# ID numbers (GB 11643-1999)
# --------------------------------------------------------------------------------------------


def id_check_digit(first17: str) -> str:
    """The check character of an 18-digit resident ID number (ISO 7064 MOD 11-2)."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"need 17 digits, got {first17!r}")
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS)) % 11]


def id_number_valid(number: str) -> bool:
    return (len(number) == 18 and number[:17].isdigit()
            and id_check_digit(number[:17]) == number[17].upper())


def make_id_number(area: str, birth: dt.date, seq: int, sex: str) -> str:
    """A fake ID number: area code, birth date, sequence (odd for men) and check digit."""
    seq = seq % 1000
    if (seq % 2 == 1) != (sex == "M"):
        seq = (seq + 1) % 1000
    body = f"{area}{birth:%Y%m%d}{seq:03d}"
    return body + id_check_digit(body)


# --------------------------------------------------------------------------------------------
# Plan objects
# --------------------------------------------------------------------------------------------


@dataclass
class _Patient:
    idx: int
    n_visits: int
    sex: str = "U"
    age_days: int = 0  # age at first admission
    visits: list["_Visit"] = field(default_factory=list)
    in_hospital: bool = False
    cancer: str | None = None
    # demographics, filled later
    mrn: str = ""
    name: str = ""
    surname: str = ""
    birth: dt.date | None = None
    region: D.Region | None = None
    id_number: str = ""
    phone: str = ""
    address: str = ""
    payment: str = "1"
    ethnicity: str = "汉族"
    blood_type: str = "A"
    rh: str = "阳"
    allergy: str = "无"


@dataclass
class _Visit:
    patient: _Patient
    index: int
    case: D.Case
    los: int = 1
    way: str | None = "1"
    within31: bool = False
    gap: int = 0
    admitted: dt.datetime | None = None  # local
    discharged: dt.datetime | None = None  # local
    route: str = "2"
    admit_dept: str = ""
    discharge_dept: str = ""
    admission_no: str = ""


def _wchoice(rng: random.Random, pairs):
    items = [p[0] for p in pairs]
    weights = [p[1] for p in pairs]
    return rng.choices(items, weights=weights, k=1)[0]


def _age_years(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


class _Generator:
    def __init__(self, seed: int, tz: dt.tzinfo):
        self.rng = random.Random(seed)
        self.tz = tz
        self.patients: list[_Patient] = []
        self.visits: list[_Visit] = []

    # -- 1. who comes how often with what ----------------------------------------------------
    def plan_cases(self) -> None:
        rng = self.rng
        counts = [n for n, k in D.VISITS_PER_PATIENT.items() for _ in range(k)]
        rng.shuffle(counts)
        firsts_chronic = [(c, c.weight) for c in D.CASES if c.weight > 0 and c.nxt]
        per_dept: dict[str, int] = {k: 0 for k in D.DEPT_TARGETS}
        # readmitted patients first (their chronic cases), then single stays balance departments
        order = sorted(range(len(counts)), key=lambda i: counts[i] == 1)
        for i in order:
            n = counts[i]
            p = _Patient(idx=i, n_visits=n)
            if n > 1:
                case = _wchoice(rng, firsts_chronic)
            else:
                dept = _wchoice(rng, [(k, max(t - per_dept[k], 0.2))
                                      for k, t in D.DEPT_TARGETS.items()])
                case = _wchoice(rng, [(c, c.weight) for c in D.CASES
                                      if c.dept == dept and c.weight > 0])
            p.sex = "M" if rng.random() < case.p_male else "F"
            years = rng.randint(*case.age)
            p.age_days = years * 365 + (rng.randint(30, 364) if years == 0 else rng.randint(0, 364))
            if case.main.startswith("C"):
                p.cancer = case.main
            for k in range(n):
                if k:
                    nxt = p.visits[-1].case.nxt or p.visits[0].case.nxt
                    case = _wchoice(rng, [(D.CASE_BY_KEY[x], max(D.CASE_BY_KEY[x].weight, 1))
                                          for x in nxt])
                v = _Visit(patient=p, index=k, case=case)
                p.visits.append(v)
                self.visits.append(v)
                per_dept[case.dept] += 1
            self.patients.append(p)

    # -- 2. how the stays end ----------------------------------------------------------------
    def plan_outcomes(self) -> None:
        rng = self.rng
        multi = [p for p in self.patients if p.n_visits > 1]
        single = [p for p in self.patients if p.n_visits == 1]
        n_multi = D.N_IN_HOSPITAL_READMITTED
        chosen = rng.sample(multi, n_multi) + rng.sample(single, D.N_IN_HOSPITAL - n_multi)
        for p in chosen:
            p.in_hospital = True
            p.visits[-1].way = None

        def age_at_last(p: _Patient) -> int:
            return p.age_days // 365 + (p.n_visits - 1)

        last = [p.visits[-1] for p in self.patients if not p.in_hospital]
        fatal = [v for v in last if v.case.fatal and age_at_last(v.patient) >= 40]
        icu = [v for v in fatal if v.case.dept == "ICU"]
        n_icu = min(3, len(icu))
        deaths = rng.sample(icu, n_icu)
        rest = [v for v in fatal if v not in deaths]
        deaths += rng.sample(rest, D.N_DEATHS - n_icu)
        for v in deaths:
            v.way = "5"

        open_ = [v for v in self.visits if v.way == "1"]
        for v in rng.sample(open_, D.N_AGAINST_ADVICE):
            v.way = "4"
        open_ = [v for v in self.visits if v.way == "1" and v.case.dept not in ("OBGY", "PEDS")]
        for v in rng.sample(open_, D.N_TRANSFER_HOSPITAL):
            v.way = "2"
        open_ = [v for v in self.visits if v.way == "1"
                 and v.patient.age_days // 365 + v.index >= 60]
        for v in rng.sample(open_, D.N_TRANSFER_COMMUNITY):
            v.way = "3"

    # -- 3. lengths of stay and gaps ---------------------------------------------------------
    def plan_durations(self) -> None:
        rng = self.rng
        for v in self.visits:
            lo, hi = v.case.los
            los = int(round(rng.triangular(lo, hi, lo + (hi - lo) * 0.35)))
            if v.way == "4":
                los = max(1, los // 2)
            elif v.way == "5":
                los = rng.randint(1, los)
            v.los = max(1, los)
        repeats = [v for v in self.visits if v.index > 0]
        chemo = [v for v in repeats if v.case.key == "ONCO_CHEMO"]
        others = [v for v in repeats if v.case.key != "ONCO_CHEMO"]
        rng.shuffle(chemo)
        rng.shuffle(others)
        for v in (chemo + others)[: D.N_READMISSION_31D]:
            v.within31 = True
        for v in repeats:
            if v.within31:
                v.gap = rng.randint(14, 28) if v.case.key == "ONCO_CHEMO" else rng.randint(4, 30)
            else:
                v.gap = rng.randint(35, 420)

    # -- 4. dates ----------------------------------------------------------------------------
    def plan_dates(self) -> None:
        rng = self.rng
        latest_discharge = D.REFERENCE_DATE - dt.timedelta(days=5)
        for p in self.patients:
            vs = p.visits
            # offsets (days) of each admission from the first one
            offs = [0]
            for a, b in zip(vs, vs[1:]):
                offs.append(offs[-1] + a.los + b.gap)
            if p.in_hospital:
                last_day = D.REFERENCE_DATE - dt.timedelta(days=rng.randint(1, 7))
                first = last_day - dt.timedelta(days=offs[-1])
            else:
                hi = min(D.WINDOW_END - dt.timedelta(days=offs[-1]),
                         latest_discharge - dt.timedelta(days=offs[-1] + vs[-1].los))
                span = (hi - D.WINDOW_START).days
                if span < 0:
                    raise RuntimeError(f"demo patient {p.idx}: stays do not fit the window")
                first = D.WINDOW_START + dt.timedelta(days=rng.randint(0, span))
            for v, off in zip(vs, offs):
                day = first + dt.timedelta(days=off)
                c = v.case
                if rng.random() < c.emergency:
                    v.route = "1"
                    hour = rng.choices(range(24), weights=[2] * 7 + [4] * 12 + [3] * 5)[0]
                elif rng.random() < 0.06:
                    v.route = "3"
                    hour = rng.randint(9, 16)
                else:
                    v.route = "2"
                    hour = rng.randint(8, 16)
                v.admitted = dt.datetime.combine(
                    day, dt.time(hour, rng.randint(0, 59), rng.randint(0, 59)), self.tz)
                if v.way is None:
                    v.discharged = None
                else:
                    dday = day + dt.timedelta(days=v.los)
                    if v.way == "5":
                        t = dt.time(rng.randint(0, 23), rng.randint(0, 59))
                    else:
                        t = dt.time(rng.randint(9, 15), rng.randint(0, 59))
                    v.discharged = dt.datetime.combine(dday, t, self.tz)

    # -- 5. departments and transfers --------------------------------------------------------
    def plan_departments(self) -> None:
        rng = self.rng
        for v in self.visits:
            dept = v.case.dept
            v.admit_dept = v.discharge_dept = dept
            if dept == "ICU" and rng.random() < 0.35:
                v.admit_dept = rng.choice(D.ICU_FEEDERS)
            elif dept in D.ICU_FEEDERS and v.case.fatal and v.route == "1" and rng.random() < 0.12:
                v.admit_dept = "ICU"

    # -- 6. numbers --------------------------------------------------------------------------
    def assign_numbers(self) -> None:
        rng = self.rng
        by_time = sorted(self.visits, key=lambda v: v.admitted)
        month, seq = None, 0
        for v in by_time:
            ym = f"{v.admitted:%Y%m}"
            if ym != month:
                month, seq = ym, rng.randint(1, 300)
            else:
                seq += rng.randint(40, 400)
            v.admission_no = f"ZY{ym}{seq:04d}"
        self.visits = by_time
        self.patients.sort(key=lambda p: p.visits[0].admitted)
        mrn = 312000
        for p in self.patients:
            mrn += rng.randint(1, 40)
            p.mrn = f"00{mrn:06d}"

    # -- 7. who the patients are -------------------------------------------------------------
    def make_people(self) -> None:
        rng = self.rng
        special = dict(zip(rng.sample(range(len(self.patients)), len(D.HETERONYM_SURNAMES)),
                           D.HETERONYM_SURNAMES))
        regions = {r.code: r for r in D.REGIONS}
        weighted_regions = [(r, r.weight) for r in D.REGIONS if r.weight > 0]
        for i, p in enumerate(self.patients):
            first_day = p.visits[0].admitted.date()
            p.birth = first_day - dt.timedelta(days=p.age_days)
            p.surname = special.get(i) or _wchoice(rng, D.SURNAMES)
            era = "old" if p.birth.year < 1965 else "mid" if p.birth.year < 1990 else "young"
            p.name = p.surname + rng.choice(D.GIVEN_NAMES[(p.sex, era)])
            code = D.REGION_FOR_SURNAME.get(p.surname)
            p.region = regions[code] if code else _wchoice(rng, weighted_regions)
            p.id_number = make_id_number(p.region.code, p.birth, rng.randint(0, 999), p.sex)
            p.phone = rng.choice(D.PHONE_PREFIXES) + f"{rng.randint(0, 99999999):08d}"
            p.address = self._address(p.region)
            if p.surname == "朴":
                p.ethnicity = "朝鲜族"
            else:
                p.ethnicity = _wchoice(rng, D.ETHNICITIES)
            age = p.age_days // 365
            if age < 18:
                p.payment = "2" if rng.random() < 0.85 else _wchoice(rng, D.PAYMENT_METHODS)
            elif p.region.rural and rng.random() < 0.5:
                p.payment = "3"
            else:
                p.payment = _wchoice(rng, D.PAYMENT_METHODS)
            p.blood_type = _wchoice(rng, D.BLOOD_TYPES)
            p.rh = "阴" if rng.random() < 0.01 else "阳"
            p.allergy = _wchoice(rng, D.DRUG_ALLERGIES)

    def _address(self, r: D.Region) -> str:
        rng = self.rng
        head = f"{r.province}{r.city}{r.district}"
        if r.rural:
            return f"{head}{rng.choice(D.TOWNS)}镇{rng.choice(D.VILLAGES)}村{rng.randint(1, 120)}号"
        return (f"{head}{rng.choice(D.STREETS)}{rng.randint(1, 399)}号"
                f"{rng.choice(D.COMMUNITIES)}{rng.randint(1, 30)}幢{rng.randint(1, 6)}单元"
                f"{rng.randint(1, 28)}{rng.randint(1, 4):02d}室")

    # -- 8. front pages ----------------------------------------------------------------------
    def _diagnoses(self, v: _Visit, age: int) -> tuple[DiagnosisIn, ...]:
        rng = self.rng
        c = v.case
        main_cond = _wchoice(rng, [("1", 95), ("2", 3), ("3", 2)])
        out = [DiagnosisIn(c.main, D.DIAGNOSES[c.main], "main", main_cond)]
        forced: list[str] = []
        if c.main in DELIVERY_CODES:
            forced.append("Z37.0")
        if c.key == "ONCO_CHEMO" and v.patient.cancer:
            forced.append(v.patient.cancer)
        pool = [(x, 3) for x in c.others if x not in forced and x != c.main]
        if c.key == "ONCO_CHEMO" and v.patient.cancer:
            first_case = v.patient.visits[0].case
            pool += [(x, 2) for x in first_case.others
                     if x.startswith("C") and x not in dict(pool)]
        if age >= 18:
            pool += [(x, 1) for x, min_age in D.COMORBIDITIES
                     if age >= min_age and x != c.main and x not in forced
                     and x not in dict(pool)]
        weights = [40, 30, 20, 8, 2] if age < 45 else [10, 25, 30, 22, 13]
        n = rng.choices(range(5), weights=weights)[0]
        n = max(0, min(n, 4 - len(forced), len(pool)))
        picked: list[str] = []
        pool = list(pool)
        for _ in range(n):
            x = _wchoice(rng, pool)
            picked.append(x)
            pool = [q for q in pool if q[0] != x]
        codes = forced + picked
        if v.way == "5" and len(codes) < 4 and rng.random() < 0.5:
            codes.append("I46.9")
        for x in codes:
            if x in D.HOSPITAL_ACQUIRED:
                cond = "4"
            elif x in forced:
                cond = "1"
            else:
                cond = _wchoice(rng, [("1", 85), ("2", 7), ("3", 8)])
            out.append(DiagnosisIn(x, D.DIAGNOSES[x], "other", cond))
        return tuple(out)

    def _operations(self, v: _Visit) -> tuple[OperationIn, ...]:
        rng = self.rng
        c = v.case
        codes: list[str] = []
        for i, (code, p) in enumerate(c.ops):
            if rng.random() < p:
                codes.append(code)
            elif i == 0 and c.alt_ops:
                codes.append(rng.choice(c.alt_ops))
        codes = [x for x in codes if x not in OP_REQUIRES or OP_REQUIRES[x] in codes]
        stay = v.los if v.discharged else (D.REFERENCE_DATE - v.admitted.date()).days
        if stay < 5:
            codes = ["96.7100" if x == "96.7200" else x for x in codes]
        codes = list(dict.fromkeys(codes))
        # main operation first: the highest level
        codes.sort(key=lambda x: -int(D.OPERATIONS[x][1]))
        head, junior = D.physicians_of(c.dept)[:2]
        adm_day = v.admitted.date()
        last_day = (v.discharged.date() - dt.timedelta(days=1) if v.discharged
                    else D.REFERENCE_DATE - dt.timedelta(days=1))
        last_day = max(adm_day, last_day)
        day = adm_day + dt.timedelta(days=0 if v.route == "1" else rng.randint(1, 2))
        out = []
        for code in codes:
            name, level, incision, anaes_choices = D.OPERATIONS[code]
            day = min(max(day, adm_day), last_day)
            anaes = rng.choice(anaes_choices)
            if int(level) >= 3:
                surgeon, assistant = head, junior
            elif rng.random() < 0.5:
                surgeon, assistant = junior, head
            else:
                surgeon, assistant = head, junior
            heal = None
            if incision is not None:
                grade = "甲" if incision == "0" else _wchoice(rng, [("甲", 95), ("乙", 4), ("丙", 1)])
                heal = f"{incision}/{grade}"
            no_assistant = incision is None or int(level) == 1
            out.append(OperationIn(
                code=code, name=name, date=day, level=level, surgeon_no=surgeon.staff_no,
                assistant1_no=None if no_assistant else assistant.staff_no, assistant2_no=None,
                incision_healing=heal, anaesthesia=anaes,
                anaesthetist_no=D.ANAESTHETIST if anaes in D.BY_ANAESTHETIST else None,
            ))
            day = day + dt.timedelta(days=rng.randint(0, 2))
        return tuple(out)

    def _signers(self, v: _Visit) -> dict[str, str]:
        rng = self.rng
        head, junior = D.physicians_of(v.discharge_dept)[:2]
        s = {
            "dept_head": head.staff_no,
            "chief": head.staff_no,
            "attending": junior.staff_no if junior.title in ("主治医师", "副主任医师") else head.staff_no,
            "resident": junior.staff_no,
        }
        nurses = D.nurses_of(v.discharge_dept)
        if nurses:
            s["nurse"] = nurses[0].staff_no
        if v.discharged is not None:
            dday = v.discharged.date()
            if dday <= D.REFERENCE_DATE - dt.timedelta(days=10):
                s["coder"] = rng.choice(D.CODERS)
            if dday <= D.REFERENCE_DATE - dt.timedelta(days=30):
                s["qc_doctor"] = D.QC_DOCTOR
        return s

    def _costs(self, v: _Visit, ops: tuple[OperationIn, ...]) -> tuple[float, dict]:
        rng = self.rng
        c = v.case
        mid = (c.los[0] + c.los[1]) / 2
        total = c.cost * rng.lognormvariate(0, 0.22) * (v.los / mid) ** 0.4
        if c.ops and not ops:
            total *= 0.6
        if v.way == "5":
            total *= 1.2
        total = max(800.0, round(total, 2))
        surgical = any(o.anaesthesia in D.BY_ANAESTHETIST or o.incision_healing for o in ops)
        shares = {}
        for key, share in D.COST_ITEMS:
            if key == "antibiotics":
                continue
            if not surgical and key in ("surgery", "anaesthesia", "materials_surgery"):
                continue
            shares[key] = share * rng.uniform(0.6, 1.4)
        norm = sum(shares.values())
        cents = int(round(total * 100))
        items = {k: int(cents * w / norm) for k, w in shares.items()}
        items["western_medicine"] += cents - sum(items.values())
        costs = {k: items[k] / 100 if k in items else 0.0 for k, _ in D.COST_ITEMS}
        costs["antibiotics"] = round(costs["western_medicine"] * rng.uniform(0.05, 0.35), 2)
        if v.patient.payment == "7":
            self_paid = total
        elif v.patient.payment == "6":
            self_paid = round(total * rng.uniform(0.0, 0.05), 2)
        else:
            self_paid = round(total * rng.uniform(0.08, 0.35), 2)
        return total, {"total": total, "self_paid": self_paid, "items": costs}

    def _contact(self, p: _Patient, age: int, marital: str) -> dict:
        rng = self.rng
        if age < 18:
            relation = rng.choice(["父亲", "母亲"])
            surname = p.surname if relation == "父亲" else _wchoice(rng, D.SURNAMES)
            sex = "M" if relation == "父亲" else "F"
            era = "mid" if p.birth.year < 2010 else "young"
        elif marital == "已婚":
            relation, sex = "配偶", "F" if p.sex == "M" else "M"
            surname = _wchoice(rng, D.SURNAMES)
            era = "old" if p.birth.year < 1965 else "mid" if p.birth.year < 1990 else "young"
        elif age >= 55:
            relation = rng.choice(["子", "女"])
            sex = "M" if relation == "子" else "F"
            surname = p.surname if (relation == "子" and p.sex == "M") else _wchoice(rng, D.SURNAMES)
            era = "mid" if p.birth.year < 1960 else "young"
        else:
            relation = rng.choice(["父亲", "母亲", "其他"])
            sex = "F" if relation == "母亲" else "M"
            surname = p.surname if relation == "父亲" else _wchoice(rng, D.SURNAMES)
            era = "old" if p.birth.year < 1985 else "mid"
        name = surname + rng.choice(D.GIVEN_NAMES[(sex, era)])
        phone = rng.choice(D.PHONE_PREFIXES) + f"{rng.randint(0, 99999999):08d}"
        return {"name": name, "relation": relation, "phone": phone}

    def _marital(self, p: _Patient, age: int, case: D.Case) -> str:
        rng = self.rng
        if case.main in DELIVERY_CODES:
            return "已婚"
        if age < 20:
            return "未婚"
        if age < 30:
            return _wchoice(rng, [("未婚", 50), ("已婚", 50)])
        if age < 60:
            return _wchoice(rng, [("已婚", 88), ("离婚", 7), ("未婚", 5)])
        return _wchoice(rng, [("已婚", 75), ("丧偶", 22), ("离婚", 3)])

    def _occupation(self, p: _Patient, age: int) -> str:
        rng = self.rng
        if age < 3:
            return "散居儿童"
        if age < 7:
            return "幼托儿童"
        if age < 22:
            return "学生"
        if age >= 60:
            return "退（离）休人员" if rng.random() < 0.75 else "农民"
        if p.region.rural and rng.random() < 0.5:
            return "农民"
        return _wchoice(rng, D.OCCUPATIONS_ADULT)

    def front_pages(self) -> list[AdmissionIn]:
        rng = self.rng
        out: list[AdmissionIn] = []
        path_seq = 0
        for v in self.visits:
            p, c = v.patient, v.case
            adm_day = v.admitted.date()
            age = _age_years(p.birth, adm_day)
            diagnoses = self._diagnoses(v, age)
            ops = self._operations(v)
            signers = self._signers(v)
            marital = self._marital(p, age, c)
            ward = self._ward(v.discharge_dept, c)
            moved = v.admit_dept != v.discharge_dept
            extra: dict = {
                "nationality": "中国",
                "ethnicity": p.ethnicity,
                "id_type": "居民身份证",
                "occupation": self._occupation(p, age),
                "marital_status": marital,
                "birthplace": f"{p.region.province}{p.region.city}",
                "native_place": p.region.province,
                "household_address": p.address,
                "current_address": p.address,
                "contact": self._contact(p, age, marital),
                "admission_route": D.ADMISSION_ROUTES[v.route],
                "admit_ward": ward if not moved else self._ward(v.admit_dept, c),
                "transfer_chain": "→".join(D.DEPT_NAME[D.DEPT_CODE[k]]
                                           for k in (v.admit_dept, v.discharge_dept))
                if moved else None,
                "drug_allergy": p.allergy,
                "blood_type": p.blood_type,
                "rh": p.rh,
            }
            if age == 0:
                extra["age_months"] = (adm_day - p.birth).days // 30
            if c.key == "ONCO_CHEMO" and p.cancer:
                od = (p.cancer, D.DIAGNOSES[p.cancer])
            elif c.symptom and rng.random() < 0.35:
                od = (c.symptom, D.SYMPTOMS[c.symptom])
            else:
                od = (c.main, D.DIAGNOSES[c.main])
            extra["outpatient_diagnosis"] = {"code": od[0], "name": od[1]}
            if c.main in D.PATHOLOGY:
                path_seq += rng.randint(20, 400)
                code, name = rng.choice(D.PATHOLOGY[c.main])
                extra["pathology"] = {"code": code, "name": name,
                                      "pathology_no": f"B{adm_day:%Y}{path_seq:05d}"}
            if c.main in INJURY_CAUSES:
                code = rng.choice(INJURY_CAUSES[c.main])
                extra["external_cause"] = {"code": code, "name": D.EXTERNAL_CAUSES[code]}
            if v.way == "5":
                extra["autopsy"] = "是" if rng.random() < 0.15 else "否"
            if v.way == "2":
                extra["receiving_org"] = rng.choice(D.RECEIVING_HOSPITALS)
            if v.way == "3":
                extra["receiving_org"] = f"{p.region.district}社区卫生服务中心"
            total = None
            if v.discharged is not None:
                nxt = p.visits[v.index + 1] if v.index + 1 < len(p.visits) else None
                planned = bool(nxt and nxt.within31 and nxt.case.key == "ONCO_CHEMO")
                extra["readmission_plan_31d"] = {"planned": planned,
                                                 "purpose": "化疗" if planned else None}
                total, extra["costs"] = self._costs(v, ops)
                if "qc_doctor" in signers:
                    qc_day = v.discharged.date() + dt.timedelta(days=rng.randint(3, 15))
                    extra["qc_date"] = qc_day.isoformat()
                    extra["record_quality"] = _wchoice(rng, [("甲", 92), ("乙", 8)])
            out.append(AdmissionIn(
                patient=PatientIn(
                    mrn=p.mrn, name=p.name, sex=p.sex, birth_date=p.birth,
                    id_number=p.id_number, phone=p.phone, address=p.address,
                ),
                admission_no=v.admission_no,
                visit_no=v.index + 1,
                admitted_at=v.admitted.astimezone(UTC),
                discharged_at=v.discharged.astimezone(UTC) if v.discharged else None,
                admit_department=D.DEPT_CODE[v.admit_dept],
                discharge_department=D.DEPT_CODE[v.discharge_dept],
                ward=ward,
                discharge_way=v.way,
                payment_method=p.payment,
                diagnoses=diagnoses,
                operations=ops,
                signers=signers,
                readmission_31d=v.within31,
                total_cost=total,
                extra=extra,
            ))
        return out

    def _ward(self, dept: str, case: D.Case) -> str:
        wards = D.WARDS[dept]
        if dept == "OBGY":
            return wards[0] if case.main.startswith("O") else wards[1]
        return self.rng.choice(wards)

    def run(self) -> list[AdmissionIn]:
        self.plan_cases()
        self.plan_outcomes()
        self.plan_durations()
        self.plan_dates()
        self.plan_departments()
        self.assign_numbers()
        self.make_people()
        return self.front_pages()


def build_admissions(tz: dt.tzinfo, seed: int = D.SEED) -> list[AdmissionIn]:
    """The demo hospital's 300 stays, in admission order, local times in the hospital's time
    zone ``tz`` (``rt.tz``); the same result on every call with the same ``tz`` and ``seed``."""
    return _Generator(seed, tz).run()
