"""Title-band matching on given text blocks (no OCR): OCR errors, ambiguity, no title."""

from __future__ import annotations

import msgspec
import pytest

from bingan.hooks.types import TextBlock

from bingan_pageindex.classify import band_lines, classify, norm
from bingan_pageindex.settings import DEFAULT_TYPES, PageindexSettings

TYPES = {n: a for n, a in DEFAULT_TYPES}
H = 3508


def page(title: str, *, title_h: int = 90, extra=()) -> list[TextBlock]:
    blocks = [TextBlock("示例市第一人民医院", (900, 180, 1580, 240), 0.99),
              TextBlock(title, (1000, 300, 1480, 300 + title_h), 0.98),
              TextBlock("姓名：张三 性别：男 住院号：ZY2026000001", (200, 460, 2200, 510), 0.97)]
    blocks += [TextBlock(t, (200, 600 + 80 * i, 2200, 650 + 80 * i), 0.95)
               for i, t in enumerate(extra)]
    return blocks


def go(blocks, height=H):
    return classify(blocks, height, TYPES, other_type="其他", band=0.15)


@pytest.mark.parametrize("title,expected", [
    ("出院记录", "出院记录"), ("出院小结", "出院记录"), ("长期医嘱单", "医嘱单"),
    ("首次病程记录", "病程记录"), ("术后首次病程记录", "术后病程"),
    ("手术知情同意书", "手术同意书"), ("授权委托书", "其他知情同意书"),
    ("特殊检查(治疗)同意书", "特殊检查同意书"), ("病危（重）通知书", "病危通知书"),
    ("住院病案首页", "病案首页"), ("CT检查报告单", "医学影像检查报告"),
    ("住院费用清单", "收费清单"), ("体温单", "体温单"),
])
def test_titles_map_to_types(title, expected):
    got = go(page(title))
    assert got.page_type == expected
    assert got.confidence >= 0.8


def test_ocr_error_in_title_lowers_confidence_below_threshold():
    exact = go(page("出院记录"))
    wrong = go(page("出院记灵"))  # one misread character
    assert wrong.page_type == "出院记录"
    assert wrong.confidence < 0.8 <= exact.confidence


def test_no_title_in_band_is_no_evidence():
    # body text only, title band empty (a continuation page)
    blocks = [TextBlock("患者今日一般情况可，继续目前治疗。", (200, 1200, 2200, 1260), 0.97)]
    got = go(blocks)
    assert (got.page_type, got.confidence) == ("其他", 0.0)
    assert go([]).confidence == 0.0
    # a type name further down the page is not a title
    got = go(page("护理评估表", extra=["详见出院记录"]))
    assert got.confidence < 0.8


def test_title_on_a_small_line_counts_less_than_a_big_title():
    big = go(page("手术记录", title_h=90))
    small = go([TextBlock("示例市第一人民医院", (900, 180, 1580, 300), 0.99),
                TextBlock("手术记录", (1000, 320, 1200, 350), 0.98)])
    assert small.page_type == big.page_type == "手术记录"
    assert small.confidence < big.confidence


def test_letter_spaced_title_is_rejoined():
    blocks = [TextBlock(ch, (1000 + 150 * i, 300, 1090 + 150 * i, 390), 0.98)
              for i, ch in enumerate("体温单")]
    lines = band_lines(blocks, H, 0.15)
    assert [ln.text for ln in lines] == ["体温单"]
    assert go(blocks).page_type == "体温单"


def test_page_height_unknown_is_estimated():
    blocks = page("入院记录", extra=["主诉：反复咳嗽咳痰10年。"] * 30)
    assert classify(blocks, None, TYPES, other_type="其他").page_type == "入院记录"


def test_norm_drops_spacing_and_punctuation():
    assert norm(" 特殊检查（治疗）同意书 ") == norm("特殊检查(治疗)同意书") == "特殊检查治疗同意书"


def test_settings_validate():
    s = PageindexSettings()
    assert s.type_names[0] == "病案首页" and s.type_names[-1] == "收费清单"
    with pytest.raises(ValueError):
        PageindexSettings(other_type="杂项")
    with pytest.raises(ValueError):
        PageindexSettings(page_types=[])
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"page_types": [{"name": "A"}, {"name": "A"}], "other_type": "A"},
                        PageindexSettings)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"threshold": 2}, PageindexSettings)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"unknown": 1}, PageindexSettings)
    custom = msgspec.convert({"page_types": [{"name": "首页", "aliases": ["住院病案首页"]},
                                             {"name": "其它"}], "other_type": "其它"}, PageindexSettings)
    assert custom.type_names == ["首页", "其它"]
