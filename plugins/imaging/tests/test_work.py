"""The pending work's full-resolution pass (work.py): windows, white paper, helpers."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from bingan_imaging import skew, work
from bingan_imaging.work import Work, quarter_turn, rotation_about, translation


def _rotated_work(image: np.ndarray, angle: float, gain: float | None = None) -> Work:
    """A Work that turns ``image`` by ``angle`` degrees (canvas grown to hold it), crops a
    margin of 20 px and brightens by ``gain``."""
    w = Work.start(image)
    W, H = w.size
    a = math.radians(angle)
    W2 = int(math.ceil(abs(W * math.cos(a)) + abs(H * math.sin(a))))
    H2 = int(math.ceil(abs(W * math.sin(a)) + abs(H * math.cos(a))))
    R = translation((W2 - W) / 2.0, (H2 - H) / 2.0) @ rotation_about(
        -angle, (W - 1) / 2.0, (H - 1) / 2.0)
    w.then(R, (W2, H2))
    w.then(translation(-20, -20), (W2 - 40, H2 - 40))
    if gain:
        w.queue("scale", gain)
    return w


@pytest.mark.parametrize("angle", [0.0, 1.3, 7.5, -12.0])
def test_commit_on_ink_only_keeps_every_mark(make_page, angle):
    """Rendering only where the reduced result shows ink: outside those windows the page
    is white and a full render has nothing darker than light paper there; inside them it
    is the full render (a nearest-neighbour turn, computed per window, may pick the other
    pixel at an exact rounding tie: a handful of pixels)."""
    page = make_page(81, "scanner", "sparse", angle=0.0)
    full = _rotated_work(page.image, angle, gain=1.2).commit()
    w = _rotated_work(page.image, angle, gain=1.2)
    view = w.view(w.factor, ops=True, gray=True)
    blocks = work.ink_blocks(view, w.factor, w.size)
    inside = np.zeros(full.shape[:2], bool)
    for x0, y0, x1, y1 in blocks:
        inside[y0:y1, x0:x1] = True
    assert 0 < inside.mean() < 0.6  # most of a sparse page is skipped
    part = w.commit(ink_view=view)
    assert part.shape == full.shape
    assert (part[~inside] == 255).all()
    assert int(full[~inside].min()) >= 200  # only light paper was skipped, never ink
    ink = full.min(axis=2) < 160
    assert int(ink.sum()) > 20000 and inside[ink].all()
    differ = (part != full).any(axis=2) & inside
    assert int(differ.sum()) <= 0.0005 * int(inside.sum()), int(differ.sum())


def test_commit_of_a_blank_result_is_white(make_page):
    page = make_page(82, "scanner", "blank", angle=0.0)
    w = _rotated_work(page.image, 3.0, gain=1.3)
    W, H = w.size
    out = w.commit(ink_view=np.full(w.view_size()[::-1], 255, np.uint8))
    assert out.shape == (H, W, 3)
    assert int(out.min()) == 255


@pytest.mark.parametrize("k", [0, 1, 2, 3])
@pytest.mark.parametrize("angle", [0.0, 1.0, 7.0])
def test_windows_render_the_same_as_the_whole(k, angle):
    """Each geometry (copy, three shears, nearest-neighbour turn) gives the same pixels
    whether the output is computed whole or window by window."""
    rng = np.random.default_rng(5)
    img = rng.integers(0, 255, (60, 80, 3)).astype(np.uint8)
    Q, size = quarter_turn(k, 80, 60)
    M = rotation_about(angle, size[0] / 2, size[1] / 2) @ Q
    whole = work._render(img, M, size, None, [], None)
    if angle == 0.0:
        assert np.array_equal(whole, np.rot90(img, k))
    out = np.empty_like(whole)
    geo = work._Geometry(img, M)
    for x0, y0, x1, y1 in ((0, 0, size[0], 20), (0, 20, 30, size[1]),
                           (30, 20, size[0], size[1])):
        geo.render(out[y0:y1, x0:x1], x0, y0, None)
    assert np.array_equal(out, whole)
    assert geo.kind == ("translate" if angle == 0 else "shear" if angle < 3 else "nearest")


def test_perspective_windows_match_one_warp():
    """A homography is rendered bilinearly a window at a time (through BGRA); the result is
    OpenCV's warpPerspective of the whole picture, to a grey level."""
    img = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (300, 400, 3))
                           .astype(np.uint8), (0, 0), 2)
    src = np.float32([[30, 20], [380, 40], [390, 280], [10, 270]])
    dst = np.float32([[0, 0], [350, 0], [350, 260], [0, 260]])
    H = cv2.getPerspectiveTransform(src, dst).astype(np.float64)
    ref = cv2.warpPerspective(img, H, (350, 260), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255))
    out = np.empty_like(ref)
    geo = work._Geometry(img, H)
    assert geo.kind == "warp"
    for x0, y0, x1, y1 in ((0, 0, 350, 100), (0, 100, 200, 260), (200, 100, 350, 260)):
        geo.render(out[y0:y1, x0:x1], x0, y0, None)
    assert int(np.abs(out.astype(np.int16) - ref).max()) <= 1


def test_enlarged_map_windows_equal_the_whole_map():
    rng = np.random.default_rng(1)
    g = cv2.GaussianBlur(rng.integers(50, 90, (40, 30, 3)).astype(np.uint8), (0, 0), 2)
    m = ((rng.random((160, 120)) > 0.9) * 255).astype(np.uint8)
    whole_g = cv2.resize(g, None, fx=16, fy=16, interpolation=cv2.INTER_LINEAR)
    whole_m = cv2.resize(m, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    for x0, y0, bw, bh in ((0, 0, 480, 640), (4, 8, 100, 60), (36, 100, 444, 540),
                           (200, 300, 7, 9)):
        a = work._upscaled_window(g, 16, x0, y0, bw, bh, cv2.INTER_LINEAR)
        b = work._upscaled_window(m, 4, x0, y0, bw, bh, cv2.INTER_NEAREST)
        assert np.array_equal(a, whole_g[y0:y0 + bh, x0:x0 + bw])
        assert np.array_equal(b, whole_m[y0:y0 + bh, x0:x0 + bw])


def test_masks_move_with_a_crop_by_slicing():
    m = (np.random.default_rng(2).random((50, 40)) > 0.5).astype(np.uint8) * 255
    for tx, ty, W, H in ((-8, -12, 60, 70), (8, 12, 100, 120), (-400, 0, 10, 10)):
        M = translation(tx, ty)
        S = Work.scale_matrix(4)
        Ms = S @ M @ np.linalg.inv(S)
        ref = cv2.warpPerspective(m, Ms, (round(W / 4), round(H / 4)),
                                  flags=cv2.INTER_NEAREST, borderValue=0)
        assert np.array_equal(work._move_mask(m, M, (W, H), 4), ref)


def test_percentile_of_bytes_is_numpys():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 100, 999):
        v = rng.integers(0, 256, n).astype(np.uint8)
        for q in (0, 2, 50, 75, 95, 98, 100):
            assert work.percentile_u8(v, q) == pytest.approx(float(np.percentile(v, q)))


def test_climb_finds_the_sweeps_peak(make_page):
    page = make_page(83, "scanner", "dense", angle=2.37)
    g = cv2.cvtColor(page.image, cv2.COLOR_BGR2GRAY)
    xs, ys = skew._points(skew.ink_mask(g), 20000)
    for around, step in ((2.2, 0.2), (2.5, 0.2), (2.36, 0.03)):
        swept = skew.sweep(xs, ys, around - 4 * step, around + 4 * step, step)[0]
        assert skew.climb(xs, ys, around, step, 4) == pytest.approx(swept, abs=1e-9)
