"""OCR engine and the extract_text / classify_page hooks on generated pages (real rapidocr)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bingan.hooks.types import PageRef, TextBlock

from bingan_pageindex.engine import (OcrEngine, OcrInputError, OcrParams, decode_image,
                                     get_engine)
from bingan_pageindex.quantize import char_accuracy
from bingan_pageindex.synth import make_page

FLOAT = OcrParams(int8=False)  # the same parameters the pirt fixture gives the plugin
REF = PageRef(id=0, admission_id=0, seq=1, page_type=None, image_sha256=None,
              original_sha256=None)


def test_engine_reads_a_generated_page_offline():
    page = make_page(21, "出院记录", dpi=200, max_lines=5, noise=False)
    res = get_engine(FLOAT).read(page.jpeg())
    assert res.width == page.image.width and res.height == page.image.height
    assert "出院" in res.text and page.title in res.text.replace(" ", "")
    assert char_accuracy(page.text, res.text) >= 0.90
    # blocks are in reading order and inside the page
    tops = [b.box[1] for b in res.blocks]
    assert tops == sorted(tops) or tops[:3] == sorted(tops[:3])
    for b in res.blocks:
        x1, y1, x2, y2 = b.box
        assert 0 <= x1 < x2 <= res.width and 0 <= y1 < y2 <= res.height
        assert 0.5 <= b.confidence <= 1.0


def _sealed(page) -> np.ndarray:
    """The page (BGR) with a red seal (a filled disc, 85 % ink) stamped over its text the way
    ink is: multiplied, so black text under it stays black."""
    import cv2

    img = cv2.cvtColor(np.asarray(page.image.convert("RGB")), cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    disc = np.zeros((h, w), np.float32)
    cv2.circle(disc, (w // 2, h // 3), w // 5, 0.85, -1)
    red = np.array([40, 35, 200], np.float32) / 255.0  # BGR
    out = img.astype(np.float32) * (1 - disc[..., None] + disc[..., None] * red)
    return np.clip(out, 0, 255).astype(np.uint8)


def test_text_under_a_red_seal_is_read():
    from bingan_pageindex.engine import drop_red

    page = make_page(23, "病程记录", dpi=200, max_lines=8, noise=False)
    img = _sealed(page)
    clean = drop_red(img, OcrParams().seal_red_margin)
    gray0 = np.asarray(page.image.convert("L"))
    h, w = gray0.shape
    inside = np.zeros((h, w), bool)
    yy, xx = np.ogrid[:h, :w]
    inside[(yy - h // 3) ** 2 + (xx - w // 2) ** 2 < (w // 5 - 2) ** 2] = True
    text = inside & (gray0 < 80)
    paper = inside & (gray0 > 230)
    assert text.sum() > 500 and paper.sum() > 5000
    assert img[paper].min(axis=1).max() < 120  # the seal darkens the paper under it ...
    assert clean[paper].min(axis=1).min() > 180  # ... and is taken away for the OCR
    assert clean[text].max(axis=1).mean() < 100  # the text under it stays dark
    blue = np.full((4, 4, 3), (170, 60, 20), np.uint8)  # blue ballpoint (BGR) is ink
    assert (drop_red(blue, 40) == blue).all()
    res = get_engine(FLOAT).read(img)
    assert char_accuracy(page.text, res.text) >= 0.95
    # the margin is a setting (0 turns it off); out of range is refused
    from bingan_pageindex.settings import PageindexSettings

    assert PageindexSettings(seal_red_margin=0).ocr_params().seal_red_margin == 0
    assert PageindexSettings().ocr_params().seal_red_margin == OcrParams().seal_red_margin
    with pytest.raises(ValueError, match="seal_red_margin"):
        PageindexSettings(seal_red_margin=300)


def test_engine_band_reads_only_the_title_band():
    page = make_page(22, "检验报告", dpi=200, max_lines=6, noise=False)
    eng = get_engine(FLOAT)
    band = eng.read(page.jpeg(), band=0.15)
    assert page.title in band.text.replace(" ", "")
    assert all(b.box[1] < band.height * 0.15 for b in band.blocks)
    assert len(band.blocks) < len(eng.read(page.jpeg()).blocks)


def test_onnxruntime_memory_arena_follows_the_setting(tmp_path):
    """The arena is off by default (it kept ~700 MB in a serving process, README "Memory"),
    for rapidocr's float sessions and for the sessions the engine builds itself."""
    from bingan_pageindex.settings import PageindexSettings

    assert PageindexSettings().ocr_params().mem_arena is False
    assert PageindexSettings(mem_arena=True).ocr_params().mem_arena is True
    assert PageindexSettings().ocr_params().batch == 2
    eng = get_engine(FLOAT)
    for s in (eng.det.session.session, eng.rec.session.session):
        assert s.get_session_options().enable_cpu_mem_arena is False
    # the engine's own sessions (used for the 8-bit models), from the float model files
    det_path = eng.det.session.session._model_path
    assert eng._session(Path(det_path)).get_session_options().enable_cpu_mem_arena is False
    on = OcrEngine.__new__(OcrEngine)
    on.params = OcrParams(int8=False, mem_arena=True)
    assert on._session(Path(det_path)).get_session_options().enable_cpu_mem_arena is True


def test_blank_and_bad_images():
    eng = get_engine(FLOAT)
    blank = np.full((800, 600, 3), 250, np.uint8)
    assert eng.read(blank).blocks == []
    with pytest.raises(OcrInputError):
        decode_image(b"\xff\xd8\xff\xe0 truncated jpeg")
    with pytest.raises(OcrInputError):
        decode_image(b"")
    with pytest.raises(OcrInputError):
        decode_image(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(OcrInputError):
        decode_image("not an image")
    gray = decode_image(np.zeros((10, 12), np.uint8))
    assert gray.shape == (10, 12, 3)


def test_hook_extract_text(pirt):
    page = make_page(23, "手术记录", dpi=150, max_lines=3, noise=False)
    img = decode_image(page.jpeg())
    blocks = pirt.pm.hook.extract_text(rt=pirt, image=img, page=REF)
    assert blocks and all(isinstance(b, TextBlock) for b in blocks)
    top = min(blocks, key=lambda b: b.box[1])
    assert "医院" in top.text  # the hospital name is the first line
    assert any(page.title in b.text for b in blocks)


KINDS = ["出院记录", "检验报告", "医嘱单", "病程记录", "手术同意书", "医学影像检查报告"]


def test_hook_classify_page(pirt):
    from bingan_pageindex.service import page_geometry
    from bingan_pageindex.settings import PageindexSettings

    names = pirt.settings(PageindexSettings).type_names
    threshold = pirt.settings(PageindexSettings).threshold
    for i, kind in enumerate(KINDS):
        page = make_page(30 + i, kind, dpi=150, max_lines=2, noise=False)
        res = get_engine(FLOAT).read(page.jpeg(), band=0.15)
        token = page_geometry.set((res.width, res.height))
        try:
            guess = pirt.pm.hook.classify_page(rt=pirt, blocks=res.blocks, page=REF, page_types=names)
            # only the types the caller lists are candidates
            rest = [n for n in names if n != kind]
            other = pirt.pm.hook.classify_page(rt=pirt, blocks=res.blocks, page=REF, page_types=rest)
        finally:
            page_geometry.reset(token)
        assert guess.page_type == kind, (page.title, res.text)
        assert guess.confidence >= threshold
        assert other.page_type != kind


def test_quantize_pipeline_on_the_small_classifier(tmp_path):
    """The 8-bit build (opset conversion, QDQ static quantization) works with the installed
    onnx/onnxruntime; checked on rapidocr's small line classifier to stay fast."""
    from pathlib import Path

    import onnxruntime as ort
    import rapidocr

    from bingan_pageindex.quantize import _quantize

    src = next((Path(rapidocr.__file__).parent / "models").glob("*cls*.onnx"))
    rng = np.random.default_rng(0)
    samples = [rng.uniform(-1, 1, (1, 3, 48, 192)).astype(np.float32) for _ in range(4)]
    dst = tmp_path / "cls-int8.onnx"
    _quantize(src, dst, samples, ["Conv"])
    f = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    q = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    name = f.get_inputs()[0].name
    a, b = f.run(None, {name: samples[0]})[0], q.run(None, {name: samples[0]})[0]
    assert a.shape == b.shape
    assert np.abs(a - b).max() < 0.2
    assert list(tmp_path.iterdir()) == [dst]  # no temp files left
