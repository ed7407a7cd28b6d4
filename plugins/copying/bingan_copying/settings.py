"""Settings of the copying plugin (``[plugins.copying]`` in plugins.toml).

Every default works with no settings at all: the applicant types and their documents follow
《医疗机构病历管理规定（2013年版）》 Art. 17, 18 and 20, every page type may be copied with the
objective record (Art. 19) preselected, 0.50 元 a page, identity images kept 365 days, the key
in BINGAN_HOME/keys (or from the environment), printing through CUPS ``lp``.
"""

from __future__ import annotations

import re

import msgspec

# Documents an applicant may have to show (kind -> label).
DOCUMENT_KINDS: dict[str, str] = {
    "patient_id": "患者有效身份证明",
    "agent_id": "代理人有效身份证明",
    "agent_relation": "代理关系法定证明材料",
    "power_of_attorney": "授权委托书",
    "death_certificate": "患者死亡证明",
    "heir_id": "法定继承人有效身份证明",
    "heir_relation": "死亡患者与法定继承人关系的法定证明材料",
    "official_letter": "调取病历的法定证明（单位公函）",
    "handler_id": "经办人有效身份证明",
    "handler_work_id": "经办人有效工作证明",
}


class ApplicantType(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Who may ask for a copy and what they must show; ``rule`` is cited when one is missing."""

    code: str
    label: str
    documents: list[str]
    rule: str
    # institutions name their body (police, court, insurer ...)
    organization: bool = False


def _default_applicants() -> list[ApplicantType]:
    art18 = "《医疗机构病历管理规定（2013年版）》第十八条"
    return [
        ApplicantType(code="patient", label="患者本人", documents=["patient_id"],
                      rule=f"{art18}第（一）项：申请人为患者本人的，应当提供其有效身份证明"),
        ApplicantType(code="agent", label="患者代理人",
                      documents=["patient_id", "agent_id", "agent_relation", "power_of_attorney"],
                      rule=f"{art18}第（二）项：申请人为患者代理人的，应当提供患者及其代理人的有效身份"
                           "证明，以及代理人与患者代理关系的法定证明材料和授权委托书"),
        ApplicantType(code="heir", label="死亡患者法定继承人",
                      documents=["death_certificate", "heir_id", "heir_relation"],
                      rule=f"{art18}第（三）项：申请人为死亡患者法定继承人的，应当提供患者死亡证明、"
                           "死亡患者法定继承人的有效身份证明，死亡患者与法定继承人关系的法定证明材料"),
        ApplicantType(code="heir_agent", label="死亡患者法定继承人的代理人",
                      documents=["death_certificate", "heir_id", "heir_relation", "agent_id",
                                 "agent_relation", "power_of_attorney"],
                      rule=f"{art18}第（四）项：申请人为死亡患者法定继承人代理人的，应当提供患者死亡"
                           "证明、死亡患者法定继承人及其代理人的有效身份证明，死亡患者与法定继承人关系的"
                           "法定证明材料，代理人与法定继承人代理关系的法定证明材料及授权委托书"),
        ApplicantType(code="institution", label="公安、司法、人社、保险、医疗事故鉴定等机构",
                      documents=["official_letter", "handler_id", "handler_work_id"],
                      organization=True,
                      rule="《医疗机构病历管理规定（2013年版）》第二十条：经办人员应当提供该机关或部门"
                           "出具的调取病历的法定证明、经办人本人有效身份证明和有效工作证明"),
    ]


DEFAULT_PURPOSES = {
    "insurance": "商业保险理赔", "medical_insurance": "医疗保险报销", "litigation": "诉讼/仲裁",
    "appraisal": "医疗事故/伤残鉴定", "continuing_care": "转院/继续治疗", "personal": "个人保存",
    "other": "其他",
}

# Art. 19: the objective record (page types of the page index, shared/DOMAIN.md)
DEFAULT_OBJECTIVE = [
    "体温单", "医嘱单", "入院记录", "手术同意书", "麻醉同意书", "麻醉记录", "手术记录", "护理记录",
    "出院记录", "死亡记录", "输血同意书", "特殊检查同意书", "病理报告", "检验报告", "医学影像检查报告",
]


class Prices(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The price table (元). Fee = request + per page x pages x copies; a page type listed in
    ``by_page_type`` costs that instead of ``per_page`` (e.g. imaging reports on film paper)."""

    per_page: float = 0.5
    request: float = 0.0
    by_page_type: dict[str, float] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, v in [("per_page", self.per_page), ("request", self.request),
                        *self.by_page_type.items()]:
            if not 0 <= v <= 10000:
                raise ValueError(f"price {name} must be between 0 and 10000 元")


class Printer(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A CUPS queue offered at the counter."""

    name: str
    label: str = ""
    site: str = ""  # the site (settings `sites`) it stands in; empty: the central record room

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,127}", self.name):
            raise ValueError(f"printer name {self.name!r}: letters, digits, _ . - only (CUPS)")


class Stamp(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The copy stamp drawn on every page."""

    text: str = "与原件相符"
    title: str = "病案复印专用"
    color: list[int] = msgspec.field(default_factory=lambda: [200, 16, 24])
    width_share: float = 0.36  # stamp width / page width
    opacity: float = 0.85
    font_path: str = ""  # empty: the CJK font core.fonts chooses

    def __post_init__(self) -> None:
        if len(self.color) != 3 or not all(0 <= c <= 255 for c in self.color):
            raise ValueError("stamp color must be three integers 0..255")
        if not 0.15 <= self.width_share <= 0.6:
            raise ValueError("stamp width_share must be between 0.15 and 0.6")
        if not 0.3 <= self.opacity <= 1.0:
            raise ValueError("stamp opacity must be between 0.3 and 1")


class CopyingSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[plugins.copying]``."""

    applicant_types: list[ApplicantType] = msgspec.field(default_factory=_default_applicants)
    purposes: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_PURPOSES))
    # page types that may be copied ("*": the whole record, 医疗纠纷预防和处理条例 Art. 16)
    copyable_types: list[str] = msgspec.field(default_factory=lambda: ["*"])
    # preselected at the counter (Art. 19)
    objective_types: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_OBJECTIVE))
    prices: Prices = msgspec.field(default_factory=Prices)
    max_copies: int = 10
    max_pages: int = 2000            # pages of one request (all admissions, one copy)
    # identity images: retention after the request, then the purge job deletes them
    identity_retention_days: int = 365
    identity_max_bytes: int = 10 * 1024 * 1024
    identity_max_pixels: int = 40_000_000
    # the AES key (base64, 32 bytes) for identity images; empty: BINGAN_HOME/keys/copying.key,
    # made on first use (mode 0600). Write it  identity_key = { env = "BINGAN_COPYING_KEY" }.
    identity_key: str = ""
    consent_text: str = ("申请人已知悉并同意：本院为核验复印申请人身份，采集并加密保存上述证件影像，"
                         "保存期满后删除，仅用于病历复印登记与依法查验。")
    # the repeat-copy warning looks this far back (days; 0: forever)
    repeat_window_days: int = 0
    # a SANE scanner the server reaches (``scanimage -d``; e.g. "net:10.0.0.5:fujitsu", or
    # "test" for SANE's test backend); empty: no scanner button, scans arrive as files
    scanner_device: str = ""
    scanner_resolution: int = 200
    scanner_options: list[str] = msgspec.field(default_factory=list)  # more scanimage options
    scanner_timeout_seconds: int = 90
    printers: list[Printer] = msgspec.field(default_factory=list)
    lp_command: str = "lp"
    lp_timeout_seconds: int = 60
    stamp: Stamp = msgspec.field(default_factory=Stamp)
    # sites that register remote requests (branch campuses, wards); approval grants them
    # ``print`` on the record for ``remote_grant_hours``
    sites: list[str] = msgspec.field(default_factory=lambda: ["东院区", "西院区"])
    remote_grant_hours: int = 72
    request_prefix: str = "FY"

    def __post_init__(self) -> None:
        codes = [a.code for a in self.applicant_types]
        if not codes or len(set(codes)) != len(codes):
            raise ValueError("applicant_types: codes must be present and unique")
        for a in self.applicant_types:
            bad = [d for d in a.documents if d not in DOCUMENT_KINDS]
            if bad:
                raise ValueError(f"applicant type {a.code}: unknown document {bad[0]!r} "
                                 f"(known: {', '.join(DOCUMENT_KINDS)})")
            if not a.documents:
                raise ValueError(f"applicant type {a.code}: at least one document")
        if not self.purposes:
            raise ValueError("purposes: at least one")
        if not 1 <= self.max_copies <= 100:
            raise ValueError("max_copies must be between 1 and 100")
        if not 1 <= self.identity_retention_days <= 36500:
            raise ValueError("identity_retention_days must be between 1 and 36500")
        if not re.fullmatch(r"[A-Z]{1,4}", self.request_prefix):
            raise ValueError("request_prefix: 1-4 capital letters")

    def applicant(self, code: str) -> ApplicantType | None:
        return next((a for a in self.applicant_types if a.code == code), None)
