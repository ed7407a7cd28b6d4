"""A phone photo's DPI follows from the sheet found and the paper it is (A4, A5, B5, 16K);
below the hospital's minimum for camera captures QC says so in plain Chinese."""

from __future__ import annotations

import functools

import cv2
import msgspec
import numpy as np
import pytest

from bingan_imaging import corpus, pipeline, quality
from bingan_imaging.settings import PAPERS_MM, ImagingSettings


@functools.lru_cache(maxsize=2)
def _photo() -> corpus.CorpusPage:
    return corpus.make(9, "tuning", "sparse", "phone", turn=0, paper="A5", res=0.5)


def _settings(**qc) -> ImagingSettings:
    s = ImagingSettings()
    return msgspec.structs.replace(s, qc=msgspec.structs.replace(s.qc, **qc))


def test_dpi_follows_the_paper_photographed(rt):
    page = _photo()
    # through the hook, as capture calls it with the paper chosen on the phone page
    a5 = rt.pm.hook.process_page(data=page.jpeg(), source="camera", dpi=None, rt=rt,
                                 paper="A5")
    a4 = rt.pm.hook.process_page(data=page.jpeg(), source="camera", dpi=None, rt=rt,
                                 paper=None)
    assert a5.steps["paper"] == "A5" and a5.steps["dpi_source"] == "sheet"
    assert abs(a5.dpi - page.effective_dpi) / page.effective_dpi < 0.06
    # taken for A4 (the old fixed assumption), the same photo got 148/210 of its resolution
    assert a4.dpi == pytest.approx(a5.dpi * 148 / 210, rel=0.03)


def test_camera_minimum_is_a_setting_and_the_reason_is_plain_chinese(rt):
    page = _photo()
    res = pipeline.process(page.jpeg(), "camera", None, rt, ImagingSettings(), paper="A5")
    assert res.dpi < 300 and res.quality.status == "fail"  # default minimum: 300
    assert any(r.startswith("拍照分辨率") and "A5" in r and "重拍" in r
               for r in res.quality.reasons)
    # the hospital's own minimum for camera captures; scans keep theirs
    img = cv2.imdecode(np.frombuffer(res.image, np.uint8), cv2.IMREAD_COLOR)
    notes = {"source": "camera", "paper": "A5"}
    lenient = quality.assess(img, res.dpi, notes, _settings(min_dpi_camera=150.0).qc)
    assert not any("分辨率" in r for r in lenient.reasons)
    scan = quality.assess(img, res.dpi, {"source": "scanner"},
                          _settings(min_dpi_camera=150.0).qc)
    assert any(r.startswith("分辨率") for r in scan.reasons)


def test_unknown_paper_is_refused(rt):
    with pytest.raises(ValueError, match="未知的纸张"):
        pipeline.process(_photo().jpeg(), "camera", None, rt, ImagingSettings(), paper="A3")
    assert set(PAPERS_MM) == {"A4", "A5", "B5", "16K"}
