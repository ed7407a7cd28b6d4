"""The front page as a WS/T 500-2016 shared document: C0032 住院病案首页, CDA R2 XML.

Header: the document's template and type (C0032 in the shared-document code system), the
patient (住院号, 病案号, 身份证 with their national OIDs), the hospital as provider and
custodian, the signing physicians (科主任 as legal authenticator, the others as
authenticators), the stay as the encompassing encounter. Body: discharge diagnoses (ICD-10,
入院病情), 离院方式, operations (ICD-9-CM-3, date, surgeon and assistants, level, incision
healing, anaesthesia), 住院次数, 实际住院天数, payment method and total cost; each entry names
its data element (DE codes of the 卫生信息数据元目录). Every OID comes from the settings
(``[plugins.fhir.cda]``), the national values by default.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from bingan.core.models import Admission, Staff
from bingan.core.records import (
    ADMISSION_CONDITIONS, DISCHARGE_WAYS, PAYMENT_METHODS, SIGNER_ROLES, decrypt_id_number,
)
from bingan.core.config import CoreSettings
from bingan_fhir.settings import FhirSettings

V3 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SEX_CODES = {"M": ("1", "男性"), "F": ("2", "女性"), "U": ("0", "未知的性别")}
LOINC = "2.16.840.1.113883.6.1"


def _ts(t: dt.datetime | dt.date | None, tz: dt.tzinfo) -> str | None:
    """A CDA TS: a time as the hospital's clock (``tz``) shows it, or a date."""
    if t is None:
        return None
    if isinstance(t, dt.datetime):
        return t.astimezone(tz).strftime("%Y%m%d%H%M%S")
    return t.strftime("%Y%m%d")


class _Doc:
    def __init__(self, cfg) -> None:
        self.cfg = cfg

    def el(self, parent, tag: str, text: str | None = None, **attrs: Any):
        e = etree.SubElement(parent, f"{{{V3}}}{tag}") if parent is not None else \
            etree.Element(f"{{{V3}}}{tag}", nsmap={None: V3, "xsi": XSI})
        for k, v in attrs.items():
            if v is None:
                continue
            if k == "xsi_type":
                e.set(f"{{{XSI}}}type", v)
            else:
                e.set(k.rstrip("_"), str(v))
        if text is not None:
            e.text = text
        return e

    def de(self, parent, code: str, display: str):
        """The ``code`` of an entry naming its data element (卫生信息数据元目录)."""
        return self.el(parent, "code", code=code, codeSystem=self.cfg.data_element_system,
                       codeSystemName="卫生信息数据元目录", displayName=display)

    def observation(self, parent, element: str, display: str, value_type: str, **value):
        entry = self.el(parent, "entry")
        obs = self.el(entry, "observation", classCode="OBS", moodCode="EVN")
        self.de(obs, element, display)
        self.el(obs, "value", xsi_type=value_type, **value)
        return obs

    def section(self, body, code: str, display: str, title: str):
        comp = self.el(body, "component")
        sec = self.el(comp, "section")
        self.el(sec, "code", code=code, displayName=display, codeSystem=LOINC,
                codeSystemName="LOINC")
        self.el(sec, "title", title)
        return sec

    def person(self, parent, tag: str, role_label: str, staff_no: str, name: str,
               time: str | None):
        node = self.el(parent, tag)
        self.el(node, "time", value=time)
        self.el(node, "signatureCode", code="S")
        ent = self.el(node, "assignedEntity")
        self.el(ent, "id", root=self.cfg.staff_root, extension=staff_no)
        self.el(ent, "code", displayName=role_label)
        p = self.el(ent, "assignedPerson", classCode="PSN", determinerCode="INSTANCE")
        self.el(p, "name", name)


def front_page_xml(s: Session, rt, adm: Admission, departments: dict[str, str]) -> bytes:
    """The C0032 document of one admission (UTF-8 XML bytes)."""
    cfg = rt.settings(FhirSettings).cda
    core = rt.settings(CoreSettings)
    d = _Doc(cfg)
    p = adm.patient
    staff_nos = {sg.staff_no for sg in adm.signers} | {o.surgeon_no for o in adm.operations} | \
        {o.assistant1_no for o in adm.operations} | {o.assistant2_no for o in adm.operations}
    names: dict[str, str] = dict(s.execute(select(Staff.staff_no, Staff.name).where(
        Staff.staff_no.in_([n for n in staff_nos if n]))).all())
    now = _ts(dt.datetime.now(dt.timezone.utc), rt.tz)
    signed = _ts(adm.updated_at or adm.created_at, rt.tz)

    doc = d.el(None, "ClinicalDocument")
    d.el(doc, "realmCode", code="CN")
    d.el(doc, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_MT000040")
    d.el(doc, "templateId", root=cfg.template_id)
    d.el(doc, "id", root=cfg.document_id_root, extension=f"{core.org_code}.{adm.admission_no}")
    d.el(doc, "code", code=cfg.document_code, codeSystem=cfg.document_code_system,
         codeSystemName="卫生信息共享文档规范编码体系")
    d.el(doc, "title", "住院病案首页")
    d.el(doc, "effectiveTime", value=now)
    d.el(doc, "confidentialityCode", code="N", codeSystem="2.16.840.1.113883.5.25",
         codeSystemName="Confidentiality", displayName="正常访问保密级别")
    d.el(doc, "languageCode", code="zh-CN")
    d.el(doc, "setId", root=cfg.document_id_root, extension=f"{core.org_code}.{adm.admission_no}")
    d.el(doc, "versionNumber", value="1")

    # -- the patient
    rt_ = d.el(d.el(doc, "recordTarget", typeCode="RCT", contextControlCode="OP"),
               "patientRole", classCode="PAT")
    d.el(rt_, "id", root=cfg.admission_no_root, extension=adm.admission_no)
    d.el(rt_, "id", root=cfg.mrn_root, extension=p.mrn)
    if p.address:
        d.el(d.el(rt_, "addr", use="H"), "streetAddressLine", p.address)
    if p.phone:
        d.el(rt_, "telecom", value=f"tel:{p.phone}")
    pat = d.el(rt_, "patient", classCode="PSN", determinerCode="INSTANCE")
    idn = decrypt_id_number(rt, p)
    if idn:
        d.el(pat, "id", root=cfg.id_number_root, extension=idn)
    d.el(pat, "name", p.name)
    sex, sex_label = SEX_CODES.get(p.sex or "U", SEX_CODES["U"])
    d.el(pat, "administrativeGenderCode", code=sex, codeSystem=cfg.sex_system,
         codeSystemName="生理性别代码表(GB/T 2261.1)", displayName=sex_label)
    if p.birth_date:
        d.el(pat, "birthTime", value=_ts(p.birth_date, rt.tz))
    if adm.age_years is not None:
        d.el(pat, "age", value=str(adm.age_years), unit="岁")
    org = d.el(rt_, "providerOrganization", classCode="ORG", determinerCode="INSTANCE")
    d.el(org, "id", root=cfg.organization_root, extension=core.org_code)
    d.el(org, "name", core.hospital_name)

    # -- who wrote it, who keeps it, who signed it
    au = d.el(doc, "author", typeCode="AUT", contextControlCode="OP")
    d.el(au, "time", value=now)
    aa = d.el(au, "assignedAuthor", classCode="ASSIGNED")
    d.el(aa, "id", root=cfg.author_root, extension="bingan")
    d.el(d.el(aa, "assignedAuthoredDevice"), "softwareName", "病案数字化管理平台")
    cu = d.el(d.el(doc, "custodian", typeCode="CST"), "assignedCustodian",
              classCode="ASSIGNED")
    co = d.el(cu, "representedCustodianOrganization", classCode="ORG", determinerCode="INSTANCE")
    d.el(co, "id", root=cfg.organization_root, extension=core.org_code)
    d.el(co, "name", core.hospital_name)
    signers = {sg.role: sg.staff_no for sg in adm.signers}
    if "dept_head" in signers:
        no = signers["dept_head"]
        d.person(doc, "legalAuthenticator", SIGNER_ROLES["dept_head"], no, names.get(no, no),
                 signed)
    for role, label in SIGNER_ROLES.items():
        if role != "dept_head" and role in signers:
            no = signers[role]
            d.person(doc, "authenticator", label, no, names.get(no, no), signed)

    # -- the stay
    enc = d.el(d.el(doc, "componentOf", typeCode="COMP"), "encompassingEncounter",
               classCode="ENC", moodCode="EVN")
    eff = d.el(enc, "effectiveTime")
    d.el(eff, "low", value=_ts(adm.admitted_at, rt.tz))
    if adm.discharged_at:
        d.el(eff, "high", value=_ts(adm.discharged_at, rt.tz))
    dept = adm.discharge_department or adm.admit_department
    if dept:
        hcf = d.el(d.el(enc, "location", typeCode="LOC"), "healthCareFacility",
                   classCode="SDLOC")
        spo = d.el(hcf, "serviceProviderOrganization", classCode="ORG",
                   determinerCode="INSTANCE")
        d.el(spo, "id", root=cfg.department_root, extension=dept)
        d.el(spo, "name", departments.get(dept, dept))

    body = d.el(d.el(doc, "component"), "structuredBody")

    # -- discharge diagnoses and 离院方式
    sec = d.section(body, "11535-2", "Discharge Diagnosis", "出院诊断")
    for dx in adm.diagnoses:
        if dx.kind not in ("main", "other"):
            continue
        which = "主要诊断" if dx.kind == "main" else "其他诊断"
        entry = d.el(sec, "entry")
        org_ = d.el(entry, "organizer", classCode="CLUSTER", moodCode="EVN")
        d.el(org_, "statusCode", code="completed")
        for code, disp, vtype, value in (
                ("DE05.01.025.00", f"出院诊断-{which}名称", "ST", {"text": dx.name}),
                ("DE05.01.024.00", f"出院诊断-{which}编码", "CD",
                 {"code": dx.code, "codeSystem": cfg.icd10_system,
                  "codeSystemName": "疾病分类代码表(ICD-10)", "displayName": dx.name}),
                ("DE09.00.104.00", f"出院诊断-{which}-入院病情代码", "CD",
                 {"code": dx.admission_condition, "codeSystem": cfg.admission_condition_system,
                  "codeSystemName": "入院病情代码表",
                  "displayName": ADMISSION_CONDITIONS.get(dx.admission_condition or "")})):
            if vtype == "CD" and not value["code"]:
                continue
            obs = d.el(d.el(org_, "component"), "observation", classCode="OBS", moodCode="EVN")
            d.de(obs, code, disp)
            text = value.pop("text", None)
            d.el(obs, "value", text, xsi_type=vtype, **value)
    if adm.discharge_way:
        d.observation(sec, "DE06.00.223.00", "离院方式", "CD", code=adm.discharge_way,
                      codeSystem=cfg.discharge_way_system, codeSystemName="离院方式代码表",
                      displayName=DISCHARGE_WAYS.get(adm.discharge_way, ""))

    # -- operations
    if adm.operations:
        sec = d.section(body, "47519-4", "HISTORY OF PROCEDURES", "手术操作")
        for op in adm.operations:
            proc = d.el(d.el(sec, "entry"), "procedure", classCode="PROC", moodCode="EVN")
            d.el(proc, "code", code=op.code, codeSystem=cfg.icd9cm3_system,
                 codeSystemName="手术(操作)代码表(ICD-9-CM)", displayName=op.name)
            d.el(proc, "statusCode", code="completed")
            if op.op_date:
                d.el(proc, "effectiveTime", value=_ts(op.op_date, rt.tz))
            if op.surgeon_no:
                ae = d.el(d.el(proc, "performer"), "assignedEntity")
                d.el(ae, "id", root=cfg.staff_root, extension=op.surgeon_no)
                d.el(d.el(ae, "assignedPerson"), "name", names.get(op.surgeon_no, op.surgeon_no))
            for no, label in ((op.assistant1_no, "第一助手"), (op.assistant2_no, "第二助手")):
                if not no:
                    continue
                pr = d.el(d.el(proc, "participant", typeCode="ATND"), "participantRole",
                          classCode="ASSIGNED")
                d.el(pr, "id", root=cfg.staff_root, extension=no)
                d.el(pr, "code", displayName=label)
                d.el(d.el(pr, "playingEntity", classCode="PSN", determinerCode="INSTANCE"),
                     "name", names.get(no, no))
            for code, disp, vtype, value in (
                    ("DE06.00.094.00", "手术操作名称", "ST", {"text": op.name}),
                    ("DE06.00.255.00", "手术级别", "CD",
                     {"code": op.level, "codeSystem": cfg.operation_level_system}),
                    ("DE05.10.147.00", "手术切口愈合等级", "CD",
                     {"code": op.incision_healing, "codeSystem": cfg.incision_system}),
                    ("DE06.00.073.00", "麻醉方法代码", "CD",
                     {"code": op.anaesthesia, "codeSystem": cfg.anaesthesia_system})):
                if vtype == "CD" and not value["code"]:
                    continue
                obs = d.el(d.el(proc, "entryRelationship", typeCode="COMP"), "observation",
                           classCode="OBS", moodCode="EVN")
                d.de(obs, code, disp)
                text = value.pop("text", None)
                d.el(obs, "value", text, xsi_type=vtype, **value)

    # -- 住院次数, 实际住院天数, payment and cost, readmission
    sec = d.section(body, "11336-5", "HISTORY OF HOSPITALIZATIONS", "住院史")
    d.observation(sec, "DE02.10.090.00", "住院次数", "PQ", value=str(adm.visit_no), unit="次")
    if adm.los_days is not None:
        sec = d.section(body, "8648-8", "Hospital Course", "住院过程")
        d.observation(sec, "DE06.00.310.00", "实际住院天数", "PQ", value=str(adm.los_days),
                      unit="天")
    if adm.payment_method or adm.total_cost is not None:
        sec = d.section(body, "48768-6", "PAYMENT SOURCES", "费用")
        if adm.payment_method:
            d.observation(sec, "DE07.00.007.00", "医疗付费方式代码", "CD",
                          code=adm.payment_method, codeSystem=cfg.payment_system,
                          codeSystemName="医疗付费方式代码表",
                          displayName=PAYMENT_METHODS.get(adm.payment_method, ""))
        if adm.total_cost is not None:
            entry = d.el(sec, "entry")
            obs = d.el(entry, "observation", classCode="OBS", moodCode="EVN")
            d.el(obs, "code", code="HDSD00.11.142", codeSystem=cfg.front_page_dataset_system,
                 codeSystemName="住院病案首页基本数据集", displayName="住院总费用")
            d.el(obs, "value", xsi_type="MO", value=f"{adm.total_cost:.2f}", currency="元")
    sec = d.section(body, "18776-5", "TREATMENT PLAN", "治疗计划")
    d.observation(sec, "DE06.00.194.00", "出院31天内再住院标志", "BL",
                  value="true" if adm.readmission_31d else "false")
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def admission_by_no(s: Session, admission_no: str) -> Admission | None:
    from sqlalchemy.orm import joinedload, selectinload

    return s.scalar(select(Admission).where(Admission.admission_no == admission_no)
                    .options(joinedload(Admission.patient), selectinload(Admission.signers)))
