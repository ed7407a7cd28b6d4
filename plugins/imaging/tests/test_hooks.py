"""The imaging plugin through the hook contract, in a real runtime (every installed plugin
enabled; each test runs on SQLite and PostgreSQL through the ``rt`` fixture)."""

from __future__ import annotations

import io
import json
import types

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bingan.hooks import hookimpl
from bingan.hooks.types import PageQuality, PageStep, ProcessedPage

from bingan_imaging.codec import ImageError, UnreadableImage
from bingan_imaging.pipeline import PageStepError, merge_quality
from bingan_imaging.settings import OWN_STEPS


def test_hook_page_steps(rt, make_page):
    groups = rt.pm.hook.page_steps(rt=rt)
    offered = {s.name: s for g in groups for s in g}
    assert set(OWN_STEPS) <= set(offered)
    assert all(isinstance(s, PageStep) for s in offered.values())
    page = make_page(101, "scanner", "dense", angle=-2.5)
    notes: dict = {"source": "scanner", "dpi": page.dpi}
    out = offered["deskew"].run(page.image, notes)
    assert abs(notes["deskew"]["angle"] + 2.5) < 0.03
    assert out.shape != page.image.shape  # turned on a larger canvas


def test_hook_assess_page(rt, make_page):
    page = make_page(102, "scanner", "dense", angle=0.0)
    clean = cv2.convertScaleAbs(page.image, alpha=1.1)
    answers = rt.pm.hook.assess_page(rt=rt, image=clean, dpi=150.0, notes={})
    assert answers and all(isinstance(a, PageQuality) for a in answers if a)
    q = merge_quality(answers)
    assert q.status == "fail"  # 150 DPI is below the required 300
    assert q.metrics["dpi"] == 150.0 and q.metrics["sharpness"] > 0.4
    # merging: metrics combined, the worst status wins
    merged = merge_quality([PageQuality("pass", {"a": 1.0}),
                            PageQuality("warn", {"b": 2.0}, ("x",)), None])
    assert merged.status == "warn" and merged.metrics == {"a": 1.0, "b": 2.0}


def test_hook_process_page(rt, make_page, residual):
    page = make_page(103, "scanner", "dense", angle=6.4, orientation=180)
    result = rt.pm.hook.process_page(rt=rt, data=page.jpeg(90), source="scanner", dpi=None, paper=None)
    assert isinstance(result, ProcessedPage)
    steps = result.steps
    assert steps["steps_run"] == list(OWN_STEPS)
    assert steps["orientation"] == 180
    assert abs(abs(steps["deskew"]["angle"]) - 6.4) < 0.05
    assert abs(residual(page, steps["transform"])) < 0.05
    assert steps["crop"]["applied"] and len(steps["crop"]["box"]) == 4
    assert result.dpi == 150.0 and steps["dpi_source"] == "file"
    assert result.blank is False and steps["blank"] is False
    assert result.quality.status == "fail"  # 150 DPI
    assert any("DPI" in r for r in result.quality.reasons)
    json.dumps(steps)  # what the caller stores must be plain JSON
    with Image.open(io.BytesIO(result.image)) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        assert im.size == (result.width, result.height)
        assert im.info["dpi"] == (150, 150)


def test_process_page_refuses_bad_files(rt, make_page):
    jpeg = make_page(104, "scanner", "sparse").jpeg(90)
    for bad in (jpeg[: len(jpeg) // 3], b"not an image at all", b""):
        with pytest.raises(ImageError):
            rt.pm.hook.process_page(rt=rt, data=bad, source="scanner", dpi=None, paper=None)
    with pytest.raises(UnreadableImage):
        rt.pm.hook.process_page(rt=rt, data=b"%PDF-1.7\n", source="camera", dpi=300.0, paper=None)


def test_camera_capture_gets_dpi_from_the_sheet(rt, make_page):
    page = make_page(105, "camera", "sparse", dpi=300)
    result = rt.pm.hook.process_page(rt=rt, data=page.jpeg(90), source="camera", dpi=None, paper=None)
    s = result.steps
    assert s["perspective"]["applied"] and s["dpi_source"] == "sheet"
    assert abs(result.dpi - page.effective_dpi) / page.effective_dpi < 0.04
    assert result.quality.status == "fail"  # a phone photo of a whole sheet is under 300 DPI
    assert s["illumination"]["applied"]


def _blue_ink(img: np.ndarray) -> int:
    b, g, r = (img[..., i].astype(np.int16) for i in range(3))
    return int(((b - r > 60) & (b > 90)).sum())


def test_camera_capture_keeps_writing_in_a_shadow(rt, make_page):
    """A shadow reaching the sheet's edge is paper with writing on it, not surround: the
    handwriting in it survives (an early version whitened it as a 'desk')."""
    page = make_page(2024, "camera", "dense", orientation=180, dpi=300)
    result = rt.pm.hook.process_page(rt=rt, data=page.jpeg(90), source="camera", dpi=None, paper=None)
    assert result.steps["orientation"] == 180
    out = cv2.imdecode(np.frombuffer(result.image, np.uint8), cv2.IMREAD_COLOR)
    straight = make_page(2024, "scanner", "dense", angle=0.0, dpi=300).image
    expected = _blue_ink(straight) * (result.dpi / 300) ** 2
    assert _blue_ink(out) > 0.75 * expected


def test_unknown_step_in_settings_is_an_error_at_start(tmp_path, db_url):
    from bingan.core.config import ConfigError
    from bingan.core.runtime import build_runtime
    from support import make_config

    cfg = make_config(tmp_path / "home", db_url)
    cfg.plugin_settings["imaging"] = {"steps": ["orientation", "deskw"]}
    with pytest.raises(ConfigError, match="deskw"):
        build_runtime(cfg)
    cfg.plugin_settings["imaging"] = {"jpeg_quality": 0}
    with pytest.raises(ConfigError, match="jpeg_quality"):
        build_runtime(cfg)


_MARKED: list[tuple[int, int]] = []


def _foreign_module():
    """Another plugin's page step: it sees a real, already deskewed image and marks it."""

    def mark(image, notes):
        _MARKED.append(image.shape[:2])
        out = image.copy()
        out[:20, :20] = (0, 0, 255)
        notes["other_mark"] = True
        return out

    mod = types.ModuleType("bingan_test_marker")

    @hookimpl
    def page_steps():
        return [PageStep("marker.mark", mark, "test step")]

    mod.page_steps = page_steps
    return mod


def test_steps_of_other_plugins_run_in_the_configured_order(tmp_path, db_url, make_page):
    from bingan.core.runtime import build_runtime, set_current
    from support import make_config

    cfg = make_config(tmp_path / "home", db_url)
    cfg.plugin_settings["imaging"] = {"steps": ["deskew", "marker.mark", "denoise"]}
    rt = build_runtime(cfg, extra_modules=[_foreign_module()])
    try:
        page = make_page(106, "scanner", "sparse", angle=3.0)
        _MARKED.clear()
        result = rt.pm.hook.process_page(rt=rt, data=page.jpeg(90), source="scanner", dpi=None, paper=None)
        assert result.steps["steps_run"] == ["deskew", "marker.mark", "denoise"]
        assert result.steps["other_mark"] is True and len(_MARKED) == 1
        assert _MARKED[0] != page.image.shape[:2]  # it got the deskewed image
        img = cv2.imdecode(np.frombuffer(result.image, np.uint8), cv2.IMREAD_COLOR)
        b, g, r = (int(v) for v in img[5, 5])
        assert r > 200 and g < 80  # its mark survived the steps after it
        # a configured step nobody provides is refused when pages are processed
        cfg.plugin_settings["imaging"] = {"steps": ["deskew", "nobody.step"]}
        rt2 = build_runtime(cfg)
        with pytest.raises(PageStepError, match="nobody.step"):
            rt2.pm.hook.process_page(rt=rt2, data=page.jpeg(90), source="scanner", dpi=None, paper=None)
        rt2.close()
    finally:
        rt.close()
        set_current(None)


def test_cli_prints_the_steps_as_json(rt, tmp_path, make_page):
    from bingan.core.cli import Ctx, build_cli

    page = make_page(107, "photocopy", "dense", angle=-4.2)
    src = tmp_path / "page.jpg"
    src.write_bytes(page.jpeg(90))
    out = tmp_path / "out.jpg"
    ctx = Ctx()
    ctx._rt = rt
    res = CliRunner().invoke(build_cli(rt), ["imaging", "process", str(src), "-o", str(out),
                                             "--json", "--source", "photocopy",
                                             "--dpi", "300"], obj=ctx)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert abs(data["angle"] + 4.2) < 0.05
    assert data["dpi"] == 300.0 and data["source"] == "photocopy"
    assert data["steps"] == list(OWN_STEPS)
    assert len(data["crop_box"]) == 4 and data["orientation"] == 0
    assert data["quality"]["status"] in ("pass", "warn", "fail")
    assert "sharpness" in data["quality"]["metrics"]
    assert out.exists() and out.read_bytes()[:3] == b"\xff\xd8\xff"
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(src.read_bytes()[:5000])
    res = CliRunner().invoke(build_cli(rt), ["imaging", "process", str(bad), "-o",
                                             str(tmp_path / "x.jpg")], obj=ctx)
    assert res.exit_code != 0 and "不完整" in res.output
    assert not (tmp_path / "x.jpg").exists()
