"""Settings of the deathcase plugin (``[plugins.deathcase]`` in plugins.toml).

国卫办医政函〔2024〕96号 asks for the records of patients who died (离院方式 5) or left against
medical advice (4) as PDF files in a prescribed document order and file naming. The notice's
own tables were not available when this was written: the defaults below are *defaults*, not
the notice's text; a hospital sets the rule its provincial quality-control centre publishes.
"""

from __future__ import annotations

import datetime as dt
import re
import string

import msgspec

DISCHARGE_WAYS = {"4": "非医嘱离院", "5": "死亡"}

# The default document order (shared/DOMAIN.md): front page, discharge or death record with the
# death discussion, admission record, progress notes, consents, operations, orders, reports,
# charts, nursing, others, the charge list last. Types not listed go just before the charge
# list, in their captured order; pages without a type go after them.
DEFAULT_ORDER = [
    "病案首页", "出院记录", "死亡记录", "死亡病例讨论", "入院记录", "病程记录", "首次病程", "日常病程",
    "上级医师查房", "交接班", "转科", "阶段小结", "抢救记录", "会诊记录", "术前小结", "术前讨论",
    "手术同意书", "麻醉同意书", "麻醉术前访视", "麻醉记录", "手术记录", "手术安全核查", "术后病程",
    "输血同意书", "输血记录", "特殊检查（治疗）同意书", "病危（重）通知书", "其他知情同意书",
    "医嘱单", "长期医嘱单", "临时医嘱单", "检验报告", "医学影像检查报告", "病理报告", "体温单",
    "护理记录", "其他", "收费清单",
]
CHARGE_TYPE = "收费清单"
DEFAULT_PATTERN = "{org_code}_{mrn}_{visit_no}_{discharge_date:%Y%m%d}.pdf"
PATTERN_FIELDS = {"org_code", "mrn", "visit_no", "admission_no", "discharge_date",
                  "admitted_date", "discharge_way", "department", "version", "name"}


class DeathcaseSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[plugins.deathcase]``."""

    # page types in export order; "收费清单" is where the merged charge list goes
    page_order: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_ORDER))
    # per discharge way ("4", "5"), an order that replaces page_order for those records
    page_order_by_way: dict[str, list[str]] = msgspec.field(default_factory=dict)
    # file name of each record's PDF (str.format fields: PATTERN_FIELDS; dates take formats)
    file_pattern: str = DEFAULT_PATTERN
    # a first page with the case label (discharge way, dates, department) in every PDF
    cover_page: bool = True
    # an uploaded charge list: bounds before anything is parsed
    charge_max_bytes: int = 20 * 1024 * 1024
    charge_max_pages: int = 500
    charge_max_rows: int = 20000
    # records in one export batch (one zip; each record's PDF is built and stored in turn)
    max_batch: int = 200

    def __post_init__(self) -> None:
        if not self.page_order:
            raise ValueError("page_order: at least one page type")
        for way, order in self.page_order_by_way.items():
            if way not in DISCHARGE_WAYS:
                raise ValueError(f"page_order_by_way: unknown discharge way {way!r} (4 or 5)")
            if not order:
                raise ValueError(f"page_order_by_way[{way}]: at least one page type")
        check_pattern(self.file_pattern)
        if not 1 <= self.max_batch <= 5000:
            raise ValueError("max_batch must be between 1 and 5000")
        if not 1 <= self.charge_max_pages <= 5000:
            raise ValueError("charge_max_pages must be between 1 and 5000")

    def order_for(self, way: str | None) -> list[str]:
        return self.page_order_by_way.get(way or "", self.page_order)


def check_pattern(pattern: str) -> None:
    """A file pattern names only known fields, ends in .pdf and makes no folders."""
    if not pattern.lower().endswith(".pdf"):
        raise ValueError("file_pattern must end with .pdf")
    if "/" in pattern or "\\" in pattern or ".." in pattern:
        raise ValueError("file_pattern must not contain / \\ or ..")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None}
    except ValueError as exc:
        raise ValueError(f"file_pattern: {exc}") from None
    unknown = fields - PATTERN_FIELDS
    if unknown or "" in fields:
        raise ValueError(f"file_pattern: unknown fields {sorted(unknown) or ['{}']} "
                         f"(known: {', '.join(sorted(PATTERN_FIELDS))})")
    sample = file_name(pattern, org_code="X", mrn="1", visit_no=1, admission_no="ZY1",
                       discharge_date=dt.date(2026, 1, 2), admitted_date=dt.date(2026, 1, 1),
                       discharge_way="5", department="内科", version=1, name="张三")
    if not sample or sample == ".pdf":
        raise ValueError("file_pattern makes an empty name")


_UNSAFE = re.compile(r'[\x00-\x1f/\\:*?"<>|]')


def file_name(pattern: str, **fields) -> str:
    """The pattern filled in, with characters no file system takes replaced by _."""
    return _UNSAFE.sub("_", pattern.format(**fields)).strip()
