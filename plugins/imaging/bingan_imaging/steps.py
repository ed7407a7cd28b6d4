"""The page-cleanup steps this plugin contributes through ``page_steps``.

Each ``run(image, notes) -> image`` works alone (tests, other callers): it decodes nothing,
does its work and returns the new image. Inside ``pipeline.process`` the notes carry the
pending :class:`~bingan_imaging.work.Work` of that very image; the steps then only add to it
(a matrix, a queued pixel operation) and hand the image back untouched, and the pipeline
applies everything in one pass at the end. What each step decided goes into ``notes``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import cv2
import numpy as np
from bingan.hooks.types import PageStep

from bingan_imaging import content as content_mod
from bingan_imaging import dewarp as dewarp_mod
from bingan_imaging import glare as glare_mod
from bingan_imaging import orientation as orientation_mod
from bingan_imaging import sheet as sheet_mod
from bingan_imaging import skew, tone
from bingan_imaging.settings import ImagingSettings
from bingan_imaging.work import (
    WORK_KEY,
    Work,
    apply_points,
    quarter_turn,
    rotation_about,
    translation,
)

SETTINGS_KEY = "_settings"
DEFAULT_DPI = 300.0


def settings_of(notes: dict[str, Any]) -> ImagingSettings:
    s = notes.get(SETTINGS_KEY)
    if isinstance(s, ImagingSettings):
        return s
    return ImagingSettings()  # a step called on its own, outside the pipeline


def _dpi(notes: dict[str, Any]) -> float:
    d = notes.get("dpi")
    return float(d) if d else DEFAULT_DPI


def _lazy(fn: Callable[[Work, dict[str, Any]], None]) -> Callable[..., Any]:
    """Make ``fn(work, notes)`` a page step: inside the pipeline it adds to the pending work;
    called on its own it applies its work and returns the new image."""

    def run(image: np.ndarray, notes: dict[str, Any]) -> np.ndarray:
        work = notes.get(WORK_KEY)
        if isinstance(work, Work) and work.base is image:
            fn(work, notes)
            return image
        own = Work.start(image)
        fn(own, notes)
        # steps called one after another keep the map from the first input to the output
        prev = np.asarray(notes.get("transform", np.eye(3)), np.float64)
        notes["transform"] = (own.M @ prev).tolist()
        return np.ascontiguousarray(own.commit())  # (a crop is a view of the input)

    run.pending_aware = True  # type: ignore[attr-defined]
    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


def _levels(work: Work) -> tuple[int, int, int | None]:
    """Coarse, mid and fine reduction factors for the skew sweeps."""
    f = work.factor
    return 2 * f, f, (f // 2 if f >= 2 else None)


# ------------------------------------------------------------------------------------------


def _ink(work: Work, factor: int) -> np.ndarray:
    """The ink mask (skew.ink_mask) of the current view at ``factor``, cached per geometry."""
    key = ("ink", factor, work.state)
    if key not in work.cache:
        work.cache[key] = skew.ink_mask(work.gray_view(factor), paper=_paper(work))
    return work.cache[key]


@_lazy
def orientation(work: Work, notes: dict[str, Any]) -> None:
    """Turn a page lying sideways or upside down upright (0/90/180/270)."""
    s = settings_of(notes)
    c, m, _ = _levels(work)
    o = orientation_mod.detect(_ink(work, c), _ink(work, m), max_angle=s.max_skew)
    check = {"confidence": round(o.confidence, 3), "line_ratio": round(o.sideways_ratio, 3),
             "upright_vote": round(o.upright_vote, 3)}
    if o.confidence < s.orientation_min_confidence and o.text:
        # unsure: the page keeps the orientation it came in and a person looks at it (a page
        # turned the wrong way is worse than one left as scanned)
        check["unsure"] = True
        check["found"] = int(o.turn)
        o = orientation_mod.Orientation(0, o.confidence, o.sideways_ratio, o.upright_vote,
                                        o.angle if not o.turn % 180 else 0.0, o.text)
    notes["orientation"] = int(o.turn)
    notes["orientation_check"] = check
    if o.turn:
        k = ((360 - o.turn) // 90) % 4  # quarter turns counter-clockwise that undo it
        masks = {f: work.cache[("ink", f, work.state)] for f in (c, m)}
        Q, size = quarter_turn(k, *work.size)
        work.then(Q, size)
        for f, mk in masks.items():  # the masks turn along (np.rot90 is what Q does)
            work.cache[("ink", f, work.state)] = np.ascontiguousarray(np.rot90(mk, k))
    work.cache["coarse_skew"] = (work.state, o.angle)


@_lazy
def perspective(work: Work, notes: dict[str, Any]) -> None:
    """Find the sheet in a camera capture and warp it to an upright rectangle of the paper's
    proportions; the effective DPI follows from the sheet's size."""
    s = settings_of(notes)
    source = notes.get("source", "unknown")
    if source not in s.perspective_sources:
        notes["perspective"] = {"applied": False, "reason": f"source is {source}"}
        return
    found = sheet_mod.find_sheet(work.view(work.factor, ops=False))
    if found is None:
        notes["perspective"] = {"applied": False, "reason": "no sheet found"}
        return
    if source != "camera" and (found.contrast < 1.6 or found.area_fraction > 0.95):
        notes["perspective"] = {"applied": False, "reason": "no distinct sheet"}
        return
    # refine on the view at half the analysis reduction (2 px per view pixel there)
    fine = max(1, work.factor // 2)
    to_fine = work.scale_matrix(fine) @ work.to_full()
    fine_corners = sheet_mod.refine_corners(work.gray_view(fine),
                                            apply_points(to_fine, found.corners))
    corners = apply_points(work.to_full(fine), fine_corners)
    paper_mm = tuple(notes.get("paper_mm") or s.camera_paper_mm)
    H, size, dpi = sheet_mod.rectify(corners, paper_mm)
    # the paper is exactly the sheet now (a shadow on it must never count as surround)
    f = work.factor
    to_base = work.scale_matrix(f) @ np.linalg.inv(work.M)
    poly = np.round(apply_points(to_base, corners)).astype(np.int32)
    sheet_mask = np.zeros(work.reduced_base(f, gray=True).shape[:2], np.uint8)
    cv2.fillConvexPoly(sheet_mask, poly, 255)
    work.cache["paper_base"] = sheet_mask
    work.cache["paper_from"] = "sheet"
    work.cache["paper_quad"] = apply_points(np.linalg.inv(work.M), corners)  # base coords
    work.then(H, size)
    notes["perspective"] = {"applied": True,
                            "quad": [[round(float(x), 1), round(float(y), 1)] for x, y in corners],
                            "size": [int(size[0]), int(size[1])],
                            "paper_mm": list(paper_mm)}
    notes["dpi"] = round(dpi, 1)
    notes["dpi_source"] = "sheet"
    work.cache.pop("coarse_skew", None)


@_lazy
def glare(work: Work, notes: dict[str, Any]) -> None:
    """Measure glare (saturated, colourless spots much brighter than the paper around them)
    and where it lies; changes nothing (the quality check warns or fails on it)."""
    f = work.factor
    view = work.view(f, ops=False)
    px_mm = _dpi(notes) / 25.4 / f
    ink = _ink(work, f)
    spots = glare_mod.find(view, px_mm, ink)
    to_base = np.linalg.inv(work.M) @ work.to_full(f)
    boxes = []
    for sp in spots:
        x0, y0, x1, y1 = sp.box
        pts = apply_points(to_base, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
                                             np.float64))
        boxes.append([round(float(pts[:, 0].min())), round(float(pts[:, 1].min())),
                      round(float(pts[:, 0].max())), round(float(pts[:, 1].max()))])
    mm2 = 1.0 / (px_mm * px_mm)
    notes["glare"] = {"spots": len(spots),
                      "mm2": round(sum(sp.area_px for sp in spots) * mm2, 1),
                      "content_mm2": round(sum(sp.content_px for sp in spots) * mm2, 1),
                      # in the coordinates of the picture the step was given (the capture):
                      # the pipeline adds "boxes" on the processed page
                      "input_boxes": boxes}


def dewarp(image: np.ndarray, notes: dict[str, Any]) -> np.ndarray:
    """Flatten a page photographed curled at the binding: measure how far its text lines bend
    away from straight lines and, above ``dewarp_min_mm``, take every pixel from where its
    line bent to (camera captures only; a scan is never touched)."""
    import dataclasses

    s = settings_of(notes)
    work = notes.get(WORK_KEY)
    inside = isinstance(work, Work) and work.base is image
    if not inside:
        work = Work.start(image)
    assert isinstance(work, Work)
    source = notes.get("source", "unknown")
    if source not in s.dewarp_sources:
        notes["dewarp"] = {"applied": False, "reason": f"source is {source}"}
        return image
    f = work.factor
    px_mm = _dpi(notes) / 25.4 / f
    lines, _cs = dewarp_mod.text_lines(_ink(work, f))
    before = dewarp_mod.residual_mm(lines, px_mm)
    info: dict[str, Any] = {"applied": False, "lines": len(lines),
                            "residual_mm": round(before, 3)}
    notes["dewarp"] = info
    if len(lines) < 3 or before < s.dewarp_min_mm:
        info["reason"] = "text lines straight" if lines else "no text lines"
        return image
    ab = dewarp_mod.displacement(lines, work.view_size(f)[0], smooth_px=10 * px_mm)
    if ab is None:
        info["reason"] = "too few lines"
        return image
    # the pending work applied on a copy (the pipeline still reads this work's matrix)
    current = dataclasses.replace(work, M=work.M.copy(), ops=list(work.ops), cache={},
                                  _pyramid={}, _views={}).commit()
    out = dewarp_mod.remap(np.ascontiguousarray(current), *ab, factor=f)
    check = Work.start(out)
    after = dewarp_mod.residual_mm(
        dewarp_mod.text_lines(skew.ink_mask(check.gray_view(f), paper=None))[0], px_mm)
    info["residual_after_mm"] = round(after, 3)
    if after >= before:
        info["reason"] = "no improvement"
        return image
    info["applied"] = True
    if not inside:
        prev = np.asarray(notes.get("transform", np.eye(3)), np.float64)
        notes["transform"] = (work.M @ prev).tolist()
    return out


dewarp.pending_aware = True  # type: ignore[attr-defined]


@_lazy
def deskew(work: Work, notes: dict[str, Any]) -> None:
    """Measure the skew of the text lines (projection profiles, coarse to fine) and rotate the
    page level."""
    s = settings_of(notes)
    c, m, f = _levels(work)
    around = None
    cached = work.cache.get("coarse_skew")
    if cached and cached[0] == work.state:
        around = cached[1]
    # the finest level costs ~3 ms and takes the error from ~0.006 to ~0.001 degrees on
    # dense pages, from up to 0.05 to 0.015 on sparse ones (bench/imaging.py)
    fine = None
    if f:  # every other column is enough to place horizontal lines: half the cost
        g = work.gray_view_narrow(f)
        fine = skew.ink_mask(g, paper=_paper(work))
    r = skew.estimate(_ink(work, c), _ink(work, m), fine, max_angle=s.max_skew, around=around,
                      fine_x_scale=2.0)
    info: dict[str, Any] = {"angle": round(r.angle, 4), "confidence": round(r.confidence, 3)}
    if r.confidence < 0.05 or r.points < 100:
        info.update(angle=0.0, applied=False, reason="no text lines to measure")
    elif abs(r.angle) < s.min_skew:
        info.update(applied=False, reason="below min_skew")
    else:
        W, H = work.size
        a = math.radians(r.angle)
        W2 = int(math.ceil(abs(W * math.cos(a)) + abs(H * math.sin(a))))
        H2 = int(math.ceil(abs(W * math.sin(a)) + abs(H * math.cos(a))))
        R = translation((W2 - W) / 2.0, (H2 - H) / 2.0) @ rotation_about(
            -r.angle, (W - 1) / 2.0, (H - 1) / 2.0)
        work.then(R, (W2, H2))
        info["applied"] = True
    notes["deskew"] = info


@_lazy
def illumination(work: Work, notes: dict[str, Any]) -> None:
    """Flatten uneven light and shadows (and a colour cast) across the page."""
    s = settings_of(notes)
    gf = work.factor * 4  # light varies slowly: a sixteenth of 300 DPI is plenty
    ill = tone.estimate_illumination(work.view(gf, ops=True), s.illumination_threshold,
                                     paper=_paper(work))
    if ill.gain is not None:
        work.queue("gain", (ill.gain, gf))
    notes["illumination"] = {"applied": ill.gain is not None,
                             "nonuniformity": round(ill.nonuniformity, 4)}


@_lazy
def denoise(work: Work, notes: dict[str, Any]) -> None:
    """Whiten paper grain, tint and mottling with one brightness factor that takes the paper
    (its histogram peak minus three times the full-resolution noise) to white, so ink keeps
    its colour; remove isolated specks (toner dots, dust) far from any text."""
    s = settings_of(notes)
    # the paper's level does not depend on where things are: without a pending gain map the
    # reduced original serves (no warp)
    pending_gain = any(n == "gain" for n, _ in work.ops)
    view = work.view(work.factor * 2, ops=True) if pending_gain else \
        work.reduced_base(work.factor * 2)
    paper = tone.paper_levels(view)
    sigma = tone.noise_sigma(work.base)
    gain_ops = [i for i, (n, _) in enumerate(work.ops) if n == "gain"]
    if gain_ops:
        sigma *= float(np.median(work.ops[gain_ops[-1]][1][0]))
    knee = float(max(32.0, float(paper.min()) - max(6.0, 3.0 * sigma)))
    factor = min(s.whiten_max_gain, 255.0 / knee)
    specks = 0
    if notes.get("source", "unknown") in s.despeckle_sources:
        # dots are looked for at half the analysis reduction (a 0.25 mm toner dot is a
        # pixel there) and judged against the coarse view (twice the reduction)
        f = work.factor
        fine = max(1, f // 2)
        clearance = max(2, int(round(1.5 * _dpi(notes) / 25.4 / fine)))  # 1.5 mm
        # looked for on the unturned picture (its reduced levels are at hand, no resampling)
        # and carried into the current frame
        _paper(work)  # (finds the paper of the unturned picture when not done yet)
        g_fine = work.reduced_base(fine, gray=True)
        where = skew.fit_mask(work.cache.get("paper_base"), g_fine.shape)
        mask = tone.speck_mask(g_fine, work.reduced_base(2 * f, gray=True), clearance, where)
        specks = int(cv2.countNonZero(mask))
        if specks:
            work.queue("fill", (work.base_mask_to_view(mask, fine), fine))
    if gain_ops and gain_ops[-1] == len(work.ops) - 1:
        # fold the factor into the illumination's gain map: one multiplication at full size
        i = gain_ops[-1]
        gmap, gf = work.ops[i][1]
        work.ops[i] = ("gain", (gmap * np.float32(factor), gf))
    elif factor > 1.0 + 1e-3:
        work.queue("scale", factor)
    notes["denoise"] = {"paper": [round(float(p), 1) for p in paper],
                        "noise": round(sigma, 2), "knee": round(knee, 1),
                        "gain": round(factor, 4), "speck_px": specks}


def _paper(work: Work) -> np.ndarray | None:
    """Where the record's paper is in the current view (255), or None when it is everywhere.

    A dark surround (copier lid, desk) is found on the unturned base, where it touches the
    picture's border, and carried into the current view; the void a rotation leaves at the
    corners counts as outside too (a seam of two pixels along it is left out as well)."""
    key = ("paper", work.state)
    if key in work.cache:
        return work.cache[key]
    if "paper_base" not in work.cache:
        work.cache["paper_base"] = skew.paper_mask(work.reduced_base(work.factor, gray=True))
    base = work.cache["paper_base"]
    quad = work.cache.get("paper_quad") if base is not None else None
    if (base is None or quad is not None) and _within(work, quad):
        work.cache[key] = None  # every pixel comes from the paper: nothing to mask
        return None
    valid = work.valid_mask(work.factor)
    full_valid = cv2.countNonZero(valid) == valid.size
    if base is None and full_valid:
        paper = None
    else:
        paper = valid if base is None else cv2.bitwise_and(work.base_mask_to_view(base), valid)
        if not full_valid:
            paper = cv2.erode(paper, np.ones((5, 5), np.uint8))
    work.cache[key] = paper
    return paper


def _within(work: Work, quad: np.ndarray | None) -> bool:
    """True when the whole current picture is taken from inside the base picture, and from
    inside ``quad`` (the sheet's corners in base coordinates) when given: its four corners
    map there (the picture of a rectangle is a convex quadrilateral)."""
    W, H = work.size
    corners = np.array([[-0.5, -0.5], [W - 0.5, -0.5], [W - 0.5, H - 0.5], [-0.5, H - 0.5]])
    pts = apply_points(np.linalg.inv(work.M), corners)
    h, w = work.base.shape[:2]
    if not ((pts[:, 0] >= -0.5).all() and (pts[:, 0] <= w - 0.5).all()
            and (pts[:, 1] >= -0.5).all() and (pts[:, 1] <= h - 0.5).all()):
        return False
    if quad is None:
        return True
    poly = np.asarray(quad, np.float32).reshape(-1, 1, 2)
    return all(cv2.pointPolygonTest(poly, (float(x), float(y)), False) >= 0 for x, y in pts)


def _min_component_px(work: Work, notes: dict[str, Any], mm: float = 1.0) -> int:
    px = mm / 25.4 * _dpi(notes) / work.factor
    return max(3, int(round(px * px)))


@_lazy
def crop(work: Work, notes: dict[str, Any]) -> None:
    """Crop surplus margins: the content's box plus a padding, inside the page."""
    s = settings_of(notes)
    f = work.factor
    # (the view with the queued pixel work: specks the denoise removes are gone here too)
    view = work.gray_view(f, ops=True)
    paper = _paper(work)
    all_ink = content_mod.content_mask(view, paper=None)  # (also outside the paper)
    c = content_mod.find_content(view, _min_component_px(work, notes),
                                 mask=all_ink if paper is None else
                                 cv2.bitwise_and(all_ink, skew.fit_mask(paper, view.shape)))  # type: ignore[arg-type]  # noqa: E501
    work.cache["content"] = (work.state, c)
    if c.box is None:
        notes["crop"] = {"applied": False, "reason": "no content"}
        return
    W, H = work.size
    pad = s.crop_padding_mm / 25.4 * _dpi(notes)
    bx0, by0, bx1, by1 = c.box
    # on whole view pixels (a few pixels more padding at most): the reduced views and the
    # masks of the pending work are then cut, not resampled
    x0 = max(0, f * int(math.floor((bx0 * f - pad) / f)))
    y0 = max(0, f * int(math.floor((by0 * f - pad) / f)))
    x1 = min(W, f * int(math.ceil((bx1 * f + pad) / f)))
    y1 = min(H, f * int(math.ceil((by1 * f + pad) / f)))
    if x1 - x0 < 16 or y1 - y0 < 16:
        notes["crop"] = {"applied": False, "reason": "content box too small"}
        return
    info: dict[str, Any] = {"applied": (x0, y0, x1, y1) != (0, 0, W, H),
                            "box": [x0, y0, x1, y1]}
    if paper is not None and work.cache.get("paper_base") is not None and \
            work.cache.get("paper_from") != "sheet":
        # what lies outside the original (a copier's open lid) is not the record: whiten it.
        # (A photographed sheet was cut out by the perspective already, and the void a
        # rotation leaves is white.) Never where there is ink inside the picture: a dark
        # area that is in fact a shadow on the paper keeps its writing.
        outside = cv2.bitwise_not(paper)
        ink = skew.drop_border_components(all_ink)
        r = max(1, int(round(2.0 * _dpi(notes) / 25.4 / f)))  # 2 mm (a square: separable)
        near_ink = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_RECT,
                                                             (2 * r + 1, 2 * r + 1)))
        outside = cv2.bitwise_and(outside, cv2.bitwise_not(near_ink))
        work.queue("fill", (outside, f))
        info["outside_paper_whitened"] = round(cv2.countNonZero(outside) / outside.size, 4)
    notes["crop"] = info
    work.then(translation(-x0, -y0), (x1 - x0, y1 - y0))
    # the same ink in the new frame (the box is a multiple of the view's pixels or close)
    vx, vy = int(round(x0 / f)), int(round(y0 / f))
    vw, vh = work.view_size()
    if c.kept is not None:
        kept = np.zeros((vh, vw), np.uint8)
        part = c.kept[vy:vy + vh, vx:vx + vw]
        kept[:part.shape[0], :part.shape[1]] = part
        work.cache["content"] = (work.state, content_mod.Content(
            None, c.ink_px, c.components, c.largest_px, 0.0, kept))


@_lazy
def blank(work: Work, notes: dict[str, Any]) -> None:
    """Flag a blank page (never dropped): less content ink than ``blank_max_ink_mm2``."""
    s = settings_of(notes)
    f = work.factor
    cached = work.cache.get("content")
    if cached and cached[0] == work.state:
        c = cached[1]
    else:
        c = content_mod.find_content(work.gray_view(f, ops=True),
                                     _min_component_px(work, notes), paper=_paper(work))
    mm2 = c.ink_px * (f * 25.4 / _dpi(notes)) ** 2
    notes["blank"] = bool(mm2 < s.blank_max_ink_mm2)
    notes["blank_check"] = {"ink_mm2": round(mm2, 1), "components": c.components}


STEPS: dict[str, tuple[Callable[..., Any], str]] = {
    "orientation": (orientation, "页面方向（0/90/180/270°）"),
    "perspective": (perspective, "翻拍透视校正与展平"),
    "glare": (glare, "反光检测（只测量，由质检提示）"),
    "dewarp": (dewarp, "翻拍书页展平（装订处卷曲，只用于拍照）"),
    "deskew": (deskew, "纠偏（±15°）"),
    "illumination": (illumination, "光照不均与阴影校正"),
    "denoise": (denoise, "去噪（保留手写与红色印章）"),
    "crop": (crop, "裁剪多余边距"),
    "blank": (blank, "空白页检测（只标记，不删除）"),
}


def page_steps() -> list[PageStep]:
    return [PageStep(name=n, run=fn, description=d) for n, (fn, d) in STEPS.items()]
