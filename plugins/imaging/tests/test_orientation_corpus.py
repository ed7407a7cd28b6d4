"""Orientation on the independent corpus (bingan_imaging.corpus): every layout kind, both
parts, pages lying in all four quarter turns, scans, copies of copies and phone photos."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from bingan_imaging import corpus, orientation, steps
from bingan_imaging.settings import ImagingSettings


@functools.lru_cache(maxsize=32)
def _page(part: str, layout: str) -> corpus.CorpusPage:
    i = corpus.LAYOUTS.index(layout)
    spec = corpus.plan(part, len(corpus.LAYOUTS) * 2)[i + (len(corpus.LAYOUTS) if
                                                            part == "validation" else 0)]
    return corpus.make(**spec, res=0.5)


def _notes(page: corpus.CorpusPage) -> dict:
    n = {"source": page.source, "_settings": ImagingSettings()}
    if page.source != "camera":
        n["dpi"] = page.effective_dpi
    return n


@pytest.mark.parametrize("part", corpus.PARTS)
@pytest.mark.parametrize("layout", corpus.LAYOUTS)
def test_every_layout_comes_out_upright(part, layout):
    page = _page(part, layout)
    notes = _notes(page)
    steps.orientation(page.image, notes)
    assert notes["orientation"] == page.turn, (page.capture, notes["orientation_check"])
    assert not notes["orientation_check"].get("unsure")


def test_the_plan_turns_pages_every_way():
    turns = {corpus.plan(p, 16)[i]["turn"] for p in corpus.PARTS for i in range(16)}
    assert turns == {0, 90, 180, 270}


def test_an_unsure_page_is_left_as_it_came_and_flagged():
    # a page of characters in a square grid with nothing to tell rows from columns, and
    # no title or punctuation: the step must not guess
    rng = np.random.default_rng(5)
    img = np.full((1400, 1000, 3), 255, np.uint8)
    for y in range(100, 1300, 60):
        for x in range(100, 900, 60):
            if rng.random() < 0.9:
                img[y:y + 30, x:x + 30] = 20
    s = ImagingSettings(orientation_min_confidence=0.4)
    notes = {"source": "scanner", "dpi": 150.0, "_settings": s}
    out = steps.orientation(img, notes)
    assert notes["orientation"] == 0
    assert notes["orientation_check"]["unsure"] is True
    assert out.shape == img.shape


def test_unsure_page_gets_a_qc_warning_in_chinese(make_page):
    from bingan_imaging.quality import assess

    page = make_page(31, "scanner", "dense", angle=0.0)
    q = assess(page.image, 150.0, {"orientation_check": {"confidence": 0.1, "unsure": True}},
               ImagingSettings().qc)
    assert q.status in ("warn", "fail")
    assert any("方向无法确定" in r for r in q.reasons)


def test_blank_page_is_not_called_unsure():
    img = np.full((1400, 1000, 3), 250, np.uint8)
    notes = {"source": "scanner", "dpi": 150.0, "_settings": ImagingSettings()}
    steps.orientation(img, notes)
    assert notes["orientation"] == 0
    assert "unsure" not in notes["orientation_check"]


def test_line_direction_ignores_aligned_columns():
    # two columns of text whose characters line up in both directions: rows still win
    m = np.zeros((600, 600), np.uint8)
    for col in (40, 330):
        for y in range(40, 560, 22):
            for x in range(col, col + 230, 13):
                m[y:y + 12, x:x + 12] = 255
    cs = orientation.char_size(m)
    assert orientation.line_direction(orientation.text_only(m, cs), cs) > 1.4
    assert orientation.line_direction(orientation.text_only(m.T.copy(), cs), cs) < 1 / 1.4
