"""The demo's pages are read by the page index whichever CJK font the machine has.

On a fresh machine whose only CJK font was WenQuanYi Micro Hei, the demo drew its pages with
fontconfig's answer for "Noto Sans CJK SC" (DejaVu: empty boxes), so OCR read nothing and every
demo page was 其他 at 0 %. Here the capture plugin's demo pages are drawn under a fontconfig
setup holding only WenQuanYi, then only Noto CJK, and read by pageindex's real OCR and title
classifier.
"""

from __future__ import annotations

import random

import pytest

import fontsetup
from bingan.core import fonts


@pytest.fixture
def only(tmp_path, monkeypatch):
    yield from fontsetup.only_fonts(tmp_path, monkeypatch)


# demo page kind -> the page type its printed title means
EXPECTED = {"front": "病案首页", "discharge": "出院记录", "admission": "入院记录",
            "progress": "病程记录", "orders": "医嘱单", "lab": "检验报告"}


@pytest.mark.parametrize("which", ["wqy", "noto"])
def test_demo_pages_are_read_under_one_cjk_font(only, which):
    from bingan_capture.demo import KINDS, DemoRecord, record_pages
    from bingan_pageindex.classify import classify
    from bingan_pageindex.engine import OcrParams, get_engine
    from bingan_pageindex.settings import PageindexSettings as Settings

    only(which)
    assert fonts.cjk_font().family.startswith(
        {"wqy": "WenQuanYi", "noto": "Noto Sans CJK SC"}[which])
    rec = DemoRecord("ZY202601000077", "00100077", "ZY202601000077", 1, "林晓雯", "女", "45岁",
                     "心血管内科", "2026-01-03 09:12", "2026-01-12 10:30",
                     (("I21.000x001", "急性前壁心肌梗死"), ("I10.x00x002", "高血压病3级")),
                     (("00.6601", "经皮冠状动脉球囊扩张术"),), "示例市第一人民医院")
    # 150 DPI A4, as tests/…/test_batches_cli runs the demo; one page of each kind
    pages = record_pages(rec, random.Random(3), 7, cover=False, size=(1240, 1754))
    kinds = KINDS[:7]
    settings = Settings()
    types = {t.name: t.aliases for t in settings.page_types}
    engine = get_engine(OcrParams(int8=False))
    seen = []
    for kind, image in zip(kinds, pages):
        if kind in {k for k, _ in seen}:
            continue
        res = engine.read(image)
        guess = classify(res.blocks, res.height, types, other_type=settings.other_type,
                         band=settings.title_band)
        seen.append((kind, guess.page_type))
        assert guess.page_type == EXPECTED[kind], (kind, guess, res.text[:200])
        assert guess.confidence >= settings.threshold, (kind, guess)
        if kind == "front":
            text = res.text.replace(" ", "")
            assert "林晓雯" in text and "心血管内科" in text, text[:300]
    assert {k for k, _ in seen} == set(EXPECTED)
