"""Glare (反光) on phone photos of the corpus: found where the reflection is, none on pages
without one, QC fails with the region kept for the inspector."""

from __future__ import annotations

import functools

from bingan_imaging import corpus, steps
from bingan_imaging.settings import ImagingSettings
from bingan_imaging.work import WORK_KEY, Work


@functools.lru_cache(maxsize=8)
def _page(seed: int, capture: str, layout: str = "prose") -> corpus.CorpusPage:
    return corpus.make(seed, "tuning", layout, capture, turn=0, res=0.5)


def _overlaps(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _glare(page: corpus.CorpusPage) -> dict:
    notes = {"source": page.source, "_settings": ImagingSettings()}
    if page.source != "camera":
        notes["dpi"] = page.effective_dpi
    # the two steps add to one pending piece of work, as inside process_page: the boxes are
    # then in the photo's coordinates
    work = Work.start(page.image)
    notes[WORK_KEY] = work
    steps.perspective(work.base, notes)
    steps.glare(work.base, notes)
    return notes


def test_glare_spot_is_found_where_it_is():
    page = _page(3, "phone_glare")
    assert page.glare
    g = _glare(page)["glare"]
    assert g["spots"] >= 1 and g["content_mm2"] > 0
    for truth in page.glare:
        assert any(_overlaps(truth, b) for b in g["input_boxes"])


def test_no_glare_on_photos_scans_and_copies_without_it():
    for seed, capture in ((4, "phone"), (5, "scan"), (6, "copy2"), (7, "phone_curl")):
        g = _glare(_page(seed, capture))["glare"]
        assert g["spots"] == 0, capture


def test_process_page_fails_glare_and_keeps_the_region(rt):
    page = _page(3, "phone_glare")
    result = rt.pm.hook.process_page(data=page.jpeg(), source="camera", dpi=None, rt=rt, paper=None)
    g = result.steps["glare"]
    assert result.quality.status == "fail"
    assert any("反光" in r for r in result.quality.reasons)
    assert result.quality.metrics["glare_content_mm2"] >= ImagingSettings().qc.glare_fail_mm2
    assert g["boxes"]
    for x0, y0, x1, y1 in g["boxes"]:  # on the processed page
        assert 0 <= x0 < x1 <= result.width and 0 <= y0 < y1 <= result.height
