"""Settings of the pageindex plugin (``[plugins.pageindex]`` in plugins.toml).

The page types and their order are configuration (hospitals differ, shared/DOMAIN.md): each
type has a name and the printed titles (aliases) that identify it in a page's title band.
"""

from __future__ import annotations

import msgspec


class PageType(msgspec.Struct, forbid_unknown_fields=True):
    """One page type: its name (what the index and the PDF bookmarks show) and the titles
    printed on forms of this type. The name itself always counts as a title."""

    name: str
    aliases: list[str] = msgspec.field(default_factory=list)


# The common order of a discharged record (shared/DOMAIN.md), with titles seen on the forms.
DEFAULT_TYPES: list[tuple[str, list[str]]] = [
    ("病案首页", ["住院病案首页"]),
    ("出院记录", ["出院小结", "24小时内入出院记录"]),
    ("死亡记录", ["24小时内入院死亡记录"]),
    ("死亡病例讨论", ["死亡病例讨论记录", "死亡讨论记录"]),
    ("入院记录", ["再次入院记录", "住院病历"]),
    ("病程记录", ["首次病程记录", "日常病程记录", "上级医师查房记录", "交接班记录", "转科记录",
                  "转入记录", "转出记录", "阶段小结", "抢救记录", "会诊记录", "会诊申请单",
                  "术前小结", "术前讨论记录", "疑难病例讨论记录"]),
    ("手术同意书", ["手术知情同意书"]),
    ("麻醉同意书", ["麻醉知情同意书"]),
    ("麻醉术前访视", ["麻醉术前访视记录", "麻醉前访视记录", "麻醉术后访视记录"]),
    ("麻醉记录", ["麻醉记录单"]),
    ("手术记录", []),
    ("手术安全核查", ["手术安全核查表", "手术安全核查记录", "手术风险评估表"]),
    ("术后病程", ["术后首次病程记录", "术后病程记录"]),
    ("输血同意书", ["输血治疗知情同意书", "输血知情同意书"]),
    ("输血记录", ["输血记录单"]),
    ("特殊检查同意书", ["特殊检查（治疗）同意书", "特殊检查同意书", "特殊治疗同意书"]),
    ("病危通知书", ["病危（重）通知书", "病重（病危）通知书", "病重通知书"]),
    ("其他知情同意书", ["知情同意书", "授权委托书"]),
    ("医嘱单", ["长期医嘱单", "临时医嘱单"]),
    ("检验报告", ["检验报告单", "血常规检验报告单", "生化检验报告单", "化验单"]),
    ("医学影像检查报告", ["CT检查报告单", "超声检查报告单", "X线检查报告单", "磁共振检查报告单",
                          "影像检查报告单", "放射检查报告单", "CT检查报告", "超声检查报告"]),
    ("病理报告", ["病理诊断报告单", "病理检查报告单", "病理报告单"]),
    ("体温单", []),
    ("护理记录", ["护理记录单", "一般护理记录单", "病重（病危）患者护理记录"]),
    ("其他", []),
    ("收费清单", ["住院费用清单", "费用明细清单", "住院收费清单"]),
]


def _default_types() -> list[PageType]:
    return [PageType(n, list(a)) for n, a in DEFAULT_TYPES]


class PageindexSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[plugins.pageindex]``. Every key has a working default."""

    # page types in record order (the correction page's "standard order" follows it)
    page_types: list[PageType] = msgspec.field(default_factory=_default_types)
    # the type given when no title matches (must be one of page_types)
    other_type: str = "其他"
    # below this confidence a page needs a clerk's look (0..1)
    threshold: float = 0.8
    # the title band: this top fraction of the page is read first
    title_band: float = 0.15
    # OCR pages as soon as they are captured (pages_captured hook)
    auto_ocr: bool = True
    # put a record's pages in the standard order when every page type is confident
    auto_sort: bool = False
    # OCR tuning (bench/ocr.py measures these)
    det_max_side: int = 896
    squeeze: float = 1.0
    batch: int = 2
    threads: int = 1
    int8: bool = True
    # red seal ink lighter than black text by this much in red is read as paper (0: off)
    seal_red_margin: int = 40
    model_cache: str = ""
    # onnxruntime's CPU memory arena: off keeps the server's memory small (README "Memory")
    mem_arena: bool = False
    # width of the page thumbnails on the correction page (pixels)
    thumb_width: int = 300

    def __post_init__(self) -> None:
        names = [t.name for t in self.page_types]
        if not names:
            raise ValueError("page_types must not be empty")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"page_types has duplicate names: {', '.join(dup)}")
        if any(not n.strip() or len(n) > 32 for n in names):
            raise ValueError("page type names must be 1-32 characters")
        if self.other_type not in names:
            raise ValueError(f"other_type {self.other_type!r} is not one of page_types")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        if not 0.03 <= self.title_band <= 0.5:
            raise ValueError("title_band must be between 0.03 and 0.5")
        if not 256 <= self.det_max_side <= 4096:
            raise ValueError("det_max_side must be between 256 and 4096")
        if not 0.2 <= self.squeeze <= 1.5:
            raise ValueError("squeeze must be between 0.2 and 1.5")
        if not 0 <= self.seal_red_margin <= 255:
            raise ValueError("seal_red_margin must be between 0 and 255")
        if self.batch < 1 or self.threads < 1:
            raise ValueError("batch and threads must be >= 1")
        if not 80 <= self.thumb_width <= 1200:
            raise ValueError("thumb_width must be between 80 and 1200")

    @property
    def type_names(self) -> list[str]:
        return [t.name for t in self.page_types]

    def ocr_params(self):
        from bingan_pageindex.engine import OcrParams

        return OcrParams(det_max_side=self.det_max_side, squeeze=self.squeeze, batch=self.batch,
                         threads=self.threads, int8=self.int8, cache_dir=self.model_cache,
                         mem_arena=self.mem_arena, seal_red_margin=self.seal_red_margin)
