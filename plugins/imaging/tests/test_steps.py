"""Each page step on generated pages with known truth (steps called on their own)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bingan_imaging import steps
from bingan_imaging.settings import ImagingSettings
from bingan_imaging.work import apply_points


def _notes(source: str = "scanner", dpi: float | None = None) -> dict:
    n = {"source": source, "_settings": ImagingSettings()}
    if dpi:
        n["dpi"] = dpi
    return n


def _red_pixels(img: np.ndarray) -> int:
    b, g, r = (img[..., i].astype(np.int16) for i in range(3))
    return int(((r > 150) & (r - g > 90) & (r - b > 90)).sum())


@pytest.mark.parametrize("angle", [-14.2, -3.7, -0.6, 0.35, 2.9, 11.3])
@pytest.mark.parametrize("style", ["scanner", "photocopy"])
def test_deskew_finds_the_angle(make_page, style, angle):
    page = make_page(11, style, "dense", angle=angle)
    notes = _notes(style, page.dpi)
    out = steps.deskew(page.image, notes)
    found = notes["deskew"]["angle"]
    assert abs(found - angle) < 0.03, (found, angle)  # 150 DPI here; 300 DPI below
    assert notes["deskew"]["applied"]
    # the image itself was turned: measuring it again finds it level
    again = _notes(style, page.dpi)
    steps.deskew(out, again)
    assert abs(again["deskew"]["angle"]) < 0.05


@pytest.mark.parametrize("style,content,angle", [("scanner", "dense", 7.31),
                                                 ("photocopy", "sparse", -0.43)])
def test_deskew_full_a4_is_within_a_hundredth_of_a_degree(make_page, style, content, angle):
    page = make_page(12, style, content, angle=angle, dpi=300)
    notes = _notes(style, 300)
    steps.deskew(page.image, notes)
    assert abs(notes["deskew"]["angle"] - angle) < 0.02


def test_photocopy_deskew_follows_the_text_not_the_paper_edge(make_page):
    page = make_page(13, "photocopy", "dense", angle=4.0)
    paper_angle = page.extra["paper_angle"]
    assert abs(paper_angle - 4.0) >= 1.0  # the copy's paper edge runs another way
    notes = _notes("photocopy", page.dpi)
    steps.deskew(page.image, notes)
    assert abs(notes["deskew"]["angle"] - 4.0) < 0.03


def test_blank_paper_is_not_rotated(make_page):
    page = make_page(14, "scanner", "blank", angle=3.0)
    notes = _notes("scanner", page.dpi)
    out = steps.deskew(page.image, notes)
    assert notes["deskew"]["applied"] is False
    assert out.shape == page.image.shape


@pytest.mark.parametrize("turn", [90, 180, 270])
@pytest.mark.parametrize("content", ["dense", "sparse"])
def test_orientation_detects_quarter_turns(make_page, turn, content):
    page = make_page(21, "scanner", content, angle=1.5, orientation=turn)
    notes = _notes("scanner", page.dpi)
    out = steps.orientation(page.image, notes)
    assert notes["orientation"] == turn
    upright = make_page(21, "scanner", content, angle=1.5)
    assert out.shape == upright.image.shape
    # turned back: the same picture as the upright capture
    diff = np.abs(out.astype(np.int16) - upright.image.astype(np.int16))
    assert float(diff.mean()) < 1.0


def test_orientation_leaves_an_upright_page_alone(make_page):
    for style in ("scanner", "photocopy", "camera"):
        page = make_page(22, style, "dense", dpi=150 if style != "camera" else 300)
        notes = _notes(style, page.dpi)
        out = steps.orientation(page.image, notes)
        assert notes["orientation"] == 0, style
        assert out is page.image or np.array_equal(out, page.image)


def test_crop_box_contains_the_content(make_page, residual):
    page = make_page(31, "scanner", "dense", angle=-2.2)
    notes = _notes("scanner", page.dpi)
    img = steps.deskew(page.image, notes)
    out = steps.crop(img, notes)
    box = notes["crop"]["box"]
    assert notes["crop"]["applied"]
    assert out.shape[0] < img.shape[0] and out.shape[1] < img.shape[1]  # margins went
    # the content's corners, mapped through everything the steps did, lie inside the output
    x0, y0, x1, y1 = page.content_box
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
    T = np.asarray(notes["transform"]) @ page.page_to_image
    mapped = apply_points(T, corners)
    h, w = out.shape[:2]
    pad = 5 / 25.4 * page.dpi
    assert (mapped[:, 0] >= 0).all() and (mapped[:, 0] <= w).all(), mapped
    assert (mapped[:, 1] >= 0).all() and (mapped[:, 1] <= h).all(), mapped
    # ... and not much more than the content plus the padding was kept
    assert w <= (mapped[:, 0].max() - mapped[:, 0].min()) + 2 * pad + 8
    assert box[2] - box[0] == w and box[3] - box[1] == h


def test_blank_page_is_flagged_and_a_stamp_is_not_blank(make_page):
    blank = make_page(41, "scanner", "blank")
    stamp = make_page(41, "scanner", "stamp")
    text = make_page(41, "scanner", "sparse")
    for page, expected in ((blank, True), (stamp, False), (text, False)):
        notes = _notes("scanner", page.dpi)
        out = steps.blank(page.image, notes)
        assert notes["blank"] is expected, (page.content, notes["blank_check"])
        assert out.shape == page.image.shape  # flagged, never dropped


def test_photocopy_blank_with_toner_specks_is_blank(make_page):
    page = make_page(42, "photocopy", "blank", angle=1.0)
    notes = _notes("photocopy", page.dpi)
    steps.blank(page.image, notes)
    assert notes["blank"] is True, notes["blank_check"]


def test_perspective_recovers_the_sheet_with_dpi_from_its_size(make_page, residual):
    page = make_page(51, "camera", "dense", dpi=300)
    notes = _notes("camera")
    out = steps.perspective(page.image, notes)
    info = notes["perspective"]
    assert info["applied"]
    h, w = out.shape[:2]
    assert abs(h / w - 297 / 210) < 0.01  # an upright A4 rectangle
    # DPI from the sheet's size in the photo (the truth's bottom edge)
    assert abs(notes["dpi"] - page.effective_dpi) / page.effective_dpi < 0.04
    assert notes["dpi"] < 300
    # the text is straight again: what is left is the print's own small skew on the sheet
    left = residual(page, notes["transform"])
    assert abs(left - page.angle) < 0.05, (left, page.angle)
    # and the output shows paper, not the desk, along its edges
    border = np.concatenate([out[:8].reshape(-1, 3), out[-8:].reshape(-1, 3),
                             out[:, :8].reshape(-1, 3), out[:, -8:].reshape(-1, 3)])
    assert float(np.median(border.mean(axis=1))) > 150


def test_perspective_is_skipped_for_scans(make_page):
    page = make_page(52, "scanner", "dense")
    notes = _notes("scanner", page.dpi)
    out = steps.perspective(page.image, notes)
    assert notes["perspective"]["applied"] is False
    assert out.shape == page.image.shape


def test_illumination_flattens_a_shadow(make_page):
    page = make_page(61, "camera", "sparse", dpi=300)
    notes = _notes("camera")
    img = steps.perspective(page.image, notes)
    out = steps.illumination(img, notes)
    assert notes["illumination"]["applied"]

    def paper_spread(im):
        g = cv2.cvtColor(cv2.resize(im, None, fx=0.125, fy=0.125,
                                    interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
        bg = cv2.dilate(g, np.ones((7, 7), np.uint8))
        p2, p98 = np.percentile(bg[10:-10, 10:-10], [2, 98])
        return (p98 - p2) / p98

    assert paper_spread(img) > 0.15
    assert paper_spread(out) < 0.6 * paper_spread(img)


def test_denoise_whitens_paper_and_keeps_the_seal_red(make_page):
    page = make_page(71, "scanner", "dense", angle=0.0)
    notes = _notes("scanner", page.dpi)
    out = steps.denoise(page.image, notes)
    g_in = cv2.cvtColor(page.image, cv2.COLOR_BGR2GRAY)
    g_out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    assert np.median(g_in) < 250 and np.median(g_out) == 255  # paper grain gone
    red_in, red_out = _red_pixels(page.image), _red_pixels(out)
    assert red_in > 2000
    assert red_out >= 0.9 * red_in  # the seal stays red (colour kept)
    # handwriting in blue ink keeps its colour too
    b, g, r = (out[..., i].astype(np.int16) for i in range(3))
    assert int(((b - r > 60) & (b > 90)).sum()) > 300


def test_denoise_removes_isolated_toner_specks_but_not_text(make_page):
    page = make_page(72, "photocopy", "sparse", angle=0.0)
    notes = _notes("photocopy", page.dpi)
    out = steps.denoise(page.image, notes)
    assert notes["denoise"]["speck_px"] > 0
    h, w = out.shape[:2]
    # the lower part of a sparse page is empty paper with specks
    region_in = cv2.cvtColor(page.image[int(0.75 * h):int(0.9 * h), w // 5:4 * w // 5],
                             cv2.COLOR_BGR2GRAY)
    region_out = cv2.cvtColor(out[int(0.75 * h):int(0.9 * h), w // 5:4 * w // 5],
                              cv2.COLOR_BGR2GRAY)
    assert int((region_in < 120).sum()) > 20
    assert int((region_out < 120).sum()) <= 0.1 * int((region_in < 120).sum())
    # the text keeps its ink: hardly any of it was painted out (the tone curve only lifts it)
    top_in = cv2.cvtColor(page.image[: h // 4], cv2.COLOR_BGR2GRAY)
    top_out = cv2.cvtColor(out[: h // 4], cv2.COLOR_BGR2GRAY)
    ink = top_in < 120
    assert int(ink.sum()) > 5000
    assert int((ink & (top_out >= 250)).sum()) <= 0.03 * int(ink.sum())


def test_steps_are_offered_through_page_steps():
    offered = {s.name: s for s in steps.page_steps()}
    assert list(offered) == list(ImagingSettings().steps)
    assert all(s.description for s in offered.values())
