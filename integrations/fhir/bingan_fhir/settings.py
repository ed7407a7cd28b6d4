"""Settings of the FHIR facade (``[plugins.fhir]`` in plugins.toml).

Identifier systems are the national OIDs (DOMAIN.md): 住院号 2.16.156.10011.1.12, 病案号
2.16.156.10011.1.13, 身份证 2.16.156.10011.1.3. The hospital's own OID roots go in here too.
"""

from __future__ import annotations

import re

import msgspec


class Coding(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    system: str
    code: str
    display: str = ""


class Cda(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """WS/T 500-2016 C0032 (住院病案首页): template, code systems and identifier roots. The
    defaults are the national ones; a province's evaluation may ask for others."""

    template_id: str = "2.16.156.10011.2.1.1.52"
    document_code: str = "C0032"
    document_code_system: str = "2.16.156.10011.2.4"       # 卫生信息共享文档规范编码体系
    document_id_root: str = "2.16.156.10011.1.1"            # 文档流水号
    admission_no_root: str = "2.16.156.10011.1.12"          # 住院号
    mrn_root: str = "2.16.156.10011.1.13"                   # 病案号
    id_number_root: str = "2.16.156.10011.1.3"              # 身份证
    organization_root: str = "2.16.156.10011.1.5"           # 医疗机构
    staff_root: str = "2.16.156.10011.1.4"                  # 医务人员
    author_root: str = "2.16.156.10011.1.7"                 # 文档创作者
    department_root: str = "2.16.156.10011.1.26"            # 科室
    data_element_system: str = "2.16.156.10011.2.2.1"       # 卫生信息数据元目录
    front_page_dataset_system: str = "2.16.156.10011.2.2.4"  # 住院病案首页基本数据集
    sex_system: str = "2.16.156.10011.2.3.3.4"              # GB/T 2261.1
    icd10_system: str = "2.16.156.10011.2.3.3.11.3"         # 疾病分类代码 ICD-10
    icd9cm3_system: str = "2.16.156.10011.2.3.3.12"         # 手术(操作)代码 ICD-9-CM-3
    admission_condition_system: str = "2.16.156.10011.2.3.1.253"  # 入院病情
    discharge_way_system: str = "2.16.156.10011.2.3.1.265"  # 离院方式
    payment_system: str = "2.16.156.10011.2.3.1.269"        # 医疗付费方式
    operation_level_system: str = "2.16.156.10011.2.3.1.258"  # 手术级别
    incision_system: str = "2.16.156.10011.2.3.1.257"       # 手术切口愈合等级
    anaesthesia_system: str = "2.16.156.10011.2.3.1.159"    # 麻醉方法

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if name != "document_code" and not re.fullmatch(r"[0-2](\.\d+)+", value):
                raise ValueError(f"cda.{name} must be an OID such as 2.16.156.10011.1.12")


class FhirSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The address other systems reach bingan at (https://bingan.hospital.local); attachment
    # URLs and the push use it. Empty: taken from each request (not possible for the push).
    base_url: str = ""
    mrn_system: str = "urn:oid:2.16.156.10011.1.13"           # 病案号
    admission_no_system: str = "urn:oid:2.16.156.10011.1.12"  # 住院号
    id_number_system: str = "urn:oid:2.16.156.10011.1.3"      # 居民身份证号
    # Patient.identifier carries the resident ID number only when asked (it is personal data
    # the CDR may already hold); searching by it works either way.
    expose_id_number: bool = False
    # The hospital (Organization) as custodian: its OID (e.g. "urn:oid:1.2.156.xxxxx") and name;
    # empty system: the unified social credit code of [core] org_code is used.
    organization_system: str = "urn:oid:2.16.156.10011.1.5"
    # DocumentReference of an admission's scanned record (PDF) and of its front page (C0032)
    pdf_type: Coding = msgspec.field(default_factory=lambda: Coding(
        system="http://loinc.org", code="11503-0", display="病案（扫描件）"))
    front_page_type: Coding = msgspec.field(default_factory=lambda: Coding(
        system="urn:oid:2.16.156.10011.2.4", code="C0032", display="住院病案首页"))
    category: Coding | None = None  # MHD classCode, when the CDR wants one
    # 离院方式 (CV06.00.226) for Encounter.hospitalization.dischargeDisposition
    discharge_way_system: str = "urn:oid:2.16.156.10011.2.3.1.265"
    page_size: int = 50   # DocumentReference search: entries per page (_count up to max_page)
    max_page: int = 200
    # record_digitized push: POST the DocumentReference to <push_url>/DocumentReference
    # (a FHIR server's base) through the durable task queue; empty: no push.
    push_url: str = ""
    push_token: str = ""  # sent as "Authorization: Bearer ..."; write { env = "NAME" }
    push_timeout_seconds: float = 10.0
    push_max_attempts: int = 8  # retried with back-off 2, 4, 8 ... s (at most an hour)
    cda: Cda = msgspec.field(default_factory=Cda)

    def __post_init__(self) -> None:
        for key in ("base_url", "push_url"):
            v = getattr(self, key).rstrip("/")
            if v and not v.startswith(("http://", "https://")):
                raise ValueError(f"{key} must start with http:// or https://")
            setattr(self, key, v)
        if self.push_url and not self.base_url:
            raise ValueError("push_url needs base_url (the pushed attachment URL points at it)")
        for key in ("mrn_system", "admission_no_system", "id_number_system"):
            if not getattr(self, key).startswith(("urn:oid:", "http://", "https://")):
                raise ValueError(f"{key} must be a URI (urn:oid:... or http(s)://...)")
        if not 1 <= self.page_size <= self.max_page <= 1000:
            raise ValueError("need 1 <= page_size <= max_page <= 1000")
        if not 1 <= self.push_max_attempts <= 50:
            raise ValueError("push_max_attempts must be 1-50")
        if not 0.5 <= self.push_timeout_seconds <= 300:
            raise ValueError("push_timeout_seconds must be 0.5-300")
