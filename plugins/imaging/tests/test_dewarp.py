"""Pages photographed curled at the binding are flattened; scans are never touched."""

from __future__ import annotations

import numpy as np

from bingan_imaging import corpus, dewarp, steps
from bingan_imaging.settings import ImagingSettings
from bingan_imaging.work import WORK_KEY, Work


def _through_dewarp(page: corpus.CorpusPage) -> tuple[np.ndarray, dict]:
    notes = {"source": page.source, "_settings": ImagingSettings()}
    if page.source != "camera":
        notes["dpi"] = page.effective_dpi
    work = Work.start(page.image)
    notes[WORK_KEY] = work
    for name in ("orientation", "perspective", "glare"):
        getattr(steps, name)(work.base, notes)
    out = steps.dewarp(work.base, notes)
    return out, notes


def test_curled_page_comes_out_with_straighter_lines():
    page = corpus.make(3, "tuning", "prose", "phone_curl", turn=0, res=0.5)
    assert page.curl_mm > 10
    out, notes = _through_dewarp(page)
    d = notes["dewarp"]
    assert d["applied"], d
    assert d["residual_mm"] >= ImagingSettings().dewarp_min_mm
    assert d["residual_after_mm"] < d["residual_mm"]
    assert out.shape[:2] == tuple(reversed(notes["perspective"]["size"]))


def test_scans_are_not_touched():
    page = corpus.make(5, "tuning", "prose", "scan", turn=0, res=0.5)
    out, notes = _through_dewarp(page)
    assert notes["dewarp"] == {"applied": False, "reason": "source is scanner"}


def test_straight_lines_measure_straight():
    m = np.zeros((400, 600), np.uint8)
    for y in range(40, 360, 30):
        for x in range(40, 560, 14):
            m[y:y + 12, x:x + 12] = 255
    lines, cs = dewarp.text_lines(m)
    assert len(lines) >= 10
    assert dewarp.residual_mm(lines, 3.0) < 0.1
    # the same lines bent near one end (a binding): measured, and flattened by the field
    bent = np.zeros_like(m)
    for x in range(600):
        shift = int(round(12 * np.exp(-x / 80.0) * 1.0))
        col = np.roll(m[:, x], -shift)
        bent[:, x] = col
    lines, _ = dewarp.text_lines(bent)
    before = dewarp.residual_mm(lines, 3.0)
    assert before > 1.0
    a, b = dewarp.displacement(lines, bent.shape[1], smooth_px=6)
    flat = dewarp.remap(bent, a, b, factor=1)
    after = dewarp.residual_mm(dewarp.text_lines(flat)[0], 3.0)
    assert after < 0.5 * before, (before, after)
