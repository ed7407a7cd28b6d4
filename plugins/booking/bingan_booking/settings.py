"""Settings of the booking plugin (``[plugins.booking]`` in plugins.toml).

Every default works with no settings: one hospital (core's ``hospital_name``), the sandbox
providers for WeChat sign-in, WeChat Pay, SMS and the courier (they speak the real protocols
with test keys made on first use under BINGAN_HOME/keys), so the demo and the tests run the
real code path. A hospital switches a provider to the real one and gives its credentials as
``{ env = "NAME" }`` values.
"""

from __future__ import annotations

import re

import msgspec

MATCH_RULES = {
    "name_id": "患者姓名 + 身份证号",
    "mrn_phone": "病案号 + 住院时登记的手机号",
    "either": "姓名 + 身份证号，或病案号 + 手机号",
}


class Faq(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    q: str
    a: str


def _default_faq() -> list[Faq]:
    return [
        Faq(q="哪些人可以申请复印病历？",
            a="患者本人，或患者委托的代理人（需上传患者与代理人的身份证明及授权委托书）。"
              "依据《医疗机构病历管理规定（2013年版）》第十七、十八条。"),
        Faq(q="出院多久可以预约复印？",
            a="病案归档后即可预约，一般为出院后 7 个工作日。查不到住院记录时，请稍后再试。"),
        Faq(q="费用怎么算？", a="按页计费，另加每次申请的基本费用；选择快递的另付快递费。提交前页面显示应付金额。"),
        Faq(q="审核不通过怎么办？", a="审核不通过的申请全额原路退款，退款一般 1-3 个工作日到账；短信会告知原因。"),
        Faq(q="可以复印哪些内容？",
            a="默认复印客观病历（入院记录、医嘱单、检验报告、手术记录、护理记录、出院记录等）。"),
    ]


def _default_steps() -> list[str]:
    return [
        "在微信中打开本页面，验证手机号。",
        "选择医院，填写患者姓名与身份证号（或病案号与手机号），查找出院记录。",
        "勾选要复印的住院记录，选择复印用途与份数。",
        "选择本人申请或代理申请，上传申请人手持身份证的照片（代理人另传相关证明）。",
        "选择快递到家或到院自取，确认金额后微信支付。",
        "病案室审核（1-2 个工作日）；通过后复印，短信通知费用与取件地址或快递单号。",
        "在“我的申请”查看支付状态、审核进度与物流。",
    ]


class Hospital(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One hospital (tenant) the site books for: its own prices, addresses and texts."""

    code: str
    name: str
    pickup_address: str = "住院部一楼病案室复印窗口"
    pickup_hours: str = "工作日 8:00-11:30，13:30-17:00"
    phone: str = ""
    # fees in 元: base per booking + per page x pages x copies; courier fee when delivered
    base_fee: float = 5.0
    per_page: float = 0.5
    courier_fee: float = 15.0
    max_copies: int = 5
    match_rule: str = "either"
    # admissions of this hospital: admission numbers starting with this (empty: all), for a
    # group whose hospitals share one record room and database
    admission_no_prefix: str = ""
    notice: str = "复印件仅限申请用途使用。请如实填写信息，虚假申请将被驳回。"
    faq: list[Faq] = msgspec.field(default_factory=_default_faq)
    help_steps: list[str] = msgspec.field(default_factory=_default_steps)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]{1,16}", self.code):
            raise ValueError(f"hospital code {self.code!r}: 1-16 lowercase letters, digits, _")
        if self.match_rule not in MATCH_RULES:
            raise ValueError(f"match_rule must be one of {', '.join(MATCH_RULES)}")
        for name, v in [("base_fee", self.base_fee), ("per_page", self.per_page),
                        ("courier_fee", self.courier_fee)]:
            if not 0 <= v <= 10000:
                raise ValueError(f"{name} must be between 0 and 10000 元")
        if not 1 <= self.max_copies <= 20:
            raise ValueError("max_copies must be between 1 and 20")


class WeChat(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The official account (web authorization, snsapi_base) and the merchant (WeChat Pay)."""

    provider: str = "sandbox"  # "sandbox" or "wechat"
    appid: str = "wxsandbox000000001"
    app_secret: str = ""
    mchid: str = "1900000109"
    merchant_private_key: str = ""   # PEM
    merchant_serial_no: str = ""
    apiv3_key: str = ""
    platform_public_key: str = ""    # WeChat Pay platform public key (PEM)
    platform_public_key_id: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]{1,32}", self.provider):
            raise ValueError("wechat.provider: sandbox, wechat, or a plugin's provider name")


class Sms(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    provider: str = "sandbox"  # sandbox, aliyun, tencent
    sign_name: str = "病案复印"
    access_key_id: str = ""
    access_key_secret: str = ""
    sdk_app_id: str = ""       # Tencent
    region: str = "ap-guangzhou"
    # the provider's API address; empty: its public one (a hospital's egress proxy may differ)
    endpoint: str = ""
    # template ids of the provider, per message kind
    templates: dict[str, str] = msgspec.field(default_factory=lambda: {
        "code": "SMS_CODE", "approved": "SMS_APPROVED", "rejected": "SMS_REJECTED",
        "shipped": "SMS_SHIPPED"})
    per_phone_seconds: int = 60
    per_phone_day: int = 10

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]{1,32}", self.provider):
            raise ValueError("sms.provider: sandbox, aliyun, tencent, or a plugin's provider name")
        if not 1 <= self.per_phone_seconds <= 3600 or not 1 <= self.per_phone_day <= 100:
            raise ValueError("sms limits: per_phone_seconds 1-3600, per_phone_day 1-100")


class Courier(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    provider: str = "sandbox"  # sandbox or kuaidi100
    customer: str = ""
    key: str = ""
    company: str = "shunfeng"
    company_label: str = "顺丰速运"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]{1,32}", self.provider):
            raise ValueError("courier.provider: sandbox, kuaidi100, or a plugin's provider name")


class BookingSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[plugins.booking]``."""

    hospitals: list[Hospital] = msgspec.field(default_factory=list)
    # the site's public address (https://...), for the OAuth redirect and the pay callback;
    # empty: taken from the request (a deployment behind a proxy sets it)
    public_url: str = ""
    purposes: dict[str, str] = msgspec.field(default_factory=lambda: {
        "insurance": "商业保险理赔", "medical_insurance": "医疗保险报销",
        "litigation": "诉讼/仲裁", "continuing_care": "转院/继续治疗", "personal": "个人保存",
        "other": "其他"})
    wechat: WeChat = msgspec.field(default_factory=WeChat)
    sms: Sms = msgspec.field(default_factory=Sms)
    courier: Courier = msgspec.field(default_factory=Courier)
    photo_max_bytes: int = 8 * 1024 * 1024
    photo_max_pixels: int = 40_000_000
    photo_min_side: int = 480
    # a patient session lives this long without use, and at most max hours
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    # record lookups a WeChat user may make per hour (no enumeration of patients)
    lookups_per_hour: int = 10
    # form posts a client address may make per minute (the whole H5 site)
    posts_per_minute: int = 30
    # a callback's Wechatpay-Timestamp must be this close to our clock
    callback_window_seconds: int = 300
    unpaid_minutes: int = 30  # an order not paid within this is closed
    # the photos (ID in hand, the agent's documents) are deleted this many days after the
    # booking was finished (done), rejected or closed (job booking.photo_purge, audited)
    photo_retention_days: int = 90
    booking_prefix: str = "YY"

    def __post_init__(self) -> None:
        codes = [h.code for h in self.hospitals]
        if len(set(codes)) != len(codes):
            raise ValueError("hospitals: codes must be unique")
        if not self.purposes:
            raise ValueError("purposes: at least one")
        if not 1 <= self.callback_window_seconds <= 900:
            raise ValueError("callback_window_seconds must be between 1 and 900")
        if not 1 <= self.photo_retention_days <= 3650:
            raise ValueError("photo_retention_days must be between 1 and 3650")
        if not re.fullmatch(r"[A-Z]{1,4}", self.booking_prefix):
            raise ValueError("booking_prefix: 1-4 capital letters")
        if self.public_url and not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", self.public_url):
            raise ValueError("public_url must be an http(s) address")

    def hospital_list(self, default_name: str) -> list[Hospital]:
        return list(self.hospitals) or [Hospital(code="main", name=default_name)]
