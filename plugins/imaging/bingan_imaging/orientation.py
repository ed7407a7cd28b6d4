"""Which way up a page is: 0, 90, 180 or 270 degrees.

Sideways or not: the same projection sweep as the deskew, once for horizontal and once for
vertical lines; printed Chinese runs in horizontal lines whose profile is far peakier than the
column profile (characters sit on a grid, but the gaps between lines are much wider than those
between characters).

Upright or upside down, from three cues on the level page, each a vote in -1..1:
- punctuation: ，。、 and the decimal point sit at the bottom of the line and stand alone in
  their column of the line; upside down they hang at the top;
- ragged edge: paragraphs start at the margin (or a two-character indent) and their last lines
  end early, so the right ends are ragged and the left ones are not.
(The position of the largest line, the title, was tried and dropped: a signature with a seal
over it makes a taller band near the bottom of most records.)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bingan_imaging import skew


MAX_BANDS = 12
SIDEWAYS_STEP = 2.0  # degrees between the angles of the coarse sweeps


@dataclass(frozen=True)
class Orientation:
    turn: int  # the page is turned by this many degrees counter-clockwise: 0, 90, 180, 270
    confidence: float
    sideways_ratio: float  # horizontal / vertical line score (>1: lines are horizontal)
    upright_vote: float  # >0: upright, <0: upside down (after any sideways correction)
    angle: float  # coarse skew of the lines found on the way


def sideways(mask: np.ndarray, max_angle: float) -> tuple[float, float, float]:
    """(ratio of the best horizontal to the best vertical line score, angle of the horizontal
    lines, angle of the vertical ones)."""
    xs, ys = skew._points(mask, 6000)
    if len(xs) < 40:
        return 1.0, 0.0, 0.0
    # 2-degree steps: the peak (parabola-interpolated) is within a few tenths of a degree,
    # which the deskew's sweep of +-2 degrees around it takes from there
    ah, _, sh = skew.sweep(xs, ys, -max_angle, max_angle, SIDEWAYS_STEP)
    # vertical lines: the same sweep on the picture turned a quarter
    av, _, sv = skew.sweep(ys, -xs, -max_angle, max_angle, SIDEWAYS_STEP)
    return float(sh.max() / max(sv.max(), 1e-9)), ah, av


def _bands(mask: np.ndarray) -> list[tuple[int, int]]:
    """Text line bands (row ranges) of a level ink mask; bands with little ink (a row of
    specks, a stray mark) are left out."""
    prof = cv2.reduce(mask, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32F).ravel() / 255.0
    if prof.max() <= 0:
        return []
    on = prof > max(1.0, 0.04 * float(np.percentile(prof[prof > 0], 90)))
    edges = np.flatnonzero(np.diff(np.r_[0, on.astype(np.int8), 0]))
    bands = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2]) if b - a >= 3]
    if not bands:
        return []
    mass = np.array([prof[a:b].sum() for a, b in bands])
    floor = 0.1 * float(np.percentile(mass, 90))
    return [band for band, m in zip(bands, mass) if m >= floor]


def _text_run(cols: np.ndarray, gap: int) -> tuple[int, int] | None:
    """(first, last) column of the longest stretch of inked columns with gaps under ``gap``."""
    xs = np.flatnonzero(cols)
    if len(xs) == 0:
        return None
    cuts = np.flatnonzero(np.diff(xs) > gap)
    if len(cuts) == 0:
        return int(xs[0]), int(xs[-1])
    starts = np.concatenate(([0], cuts + 1))
    ends = np.concatenate((cuts, [len(xs) - 1]))
    i = int(np.argmax(ends - starts))
    return int(xs[starts[i]]), int(xs[ends[i]])


def upright_vote(mask: np.ndarray) -> tuple[float, dict]:
    """Vote >0 for upright, <0 for upside down, from a level ink mask (text lines horizontal).
    Returns the vote and its parts."""
    bands = _bands(mask)  # (bands with little ink, a row of specks, are left out)
    if len(bands) < 2:
        return 0.0, {"lines": len(bands)}
    heights = np.array([b - a for a, b in bands], np.float64)
    med_h = float(np.median(heights))
    text_bands = [(a, b) for a, b in bands if 0.6 * med_h <= b - a <= 1.6 * med_h]
    if len(text_bands) > MAX_BANDS:  # enough evidence; keep the cost bounded
        pick = np.linspace(0, len(text_bands) - 1, MAX_BANDS).round().astype(int)
        text_bands = [text_bands[i] for i in pick]
    if not text_bands:
        return 0.0, {"lines": len(bands)}
    # the text bands stacked (one blank row between) and labelled once
    w = mask.shape[1]
    parts, offsets, y = [], [], 0
    for a, b in text_bands:
        parts.append(mask[a:b])
        parts.append(np.zeros((1, w), np.uint8))
        offsets.append((y, b - a))
        y += b - a + 1
    stack = np.vstack(parts)
    n, labels, stats, cent = cv2.connectedComponentsWithStats(stack, connectivity=8)
    area = stats[:, cv2.CC_STAT_AREA]
    keep = (area >= 3).astype(np.uint8)  # specks are neither text nor punctuation
    keep[0] = 0
    clean = keep[labels]
    low = high = 0
    starts, ends = [], []
    cy = cent[:, 1]
    sx, sw, sh_, sa = (stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_WIDTH],
                       stats[:, cv2.CC_STAT_HEIGHT], area)
    for y0, h in offsets:
        cols = cv2.reduce(clean[y0:y0 + h], 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
        run = _text_run(cols > 0, int(2 * h))
        if run is None:
            continue
        starts.append(run[0])
        ends.append(run[1])
        # punctuation: a small mark inside the line's text, alone in its columns of the line
        # (not a speck: a comma or a full stop is a sizeable part of a character cell)
        small = ((cy >= y0) & (cy < y0 + h) & (keep > 0) & (sh_ <= 0.45 * h) & (sw <= 0.45 * h)
                 & (sh_ >= 0.12 * h) & (sa >= max(3.0, 0.02 * h * h))
                 & (sx > run[0]) & (sx + sw < run[1]))
        if not small.any():
            continue
        csum = np.concatenate(([0], np.cumsum(cols)))
        for i in np.flatnonzero(small):
            x, bw = int(sx[i]), int(sw[i])
            if csum[x + bw] - csum[x] > sa[i]:  # another component shares its columns
                continue
            rel = (cy[i] - y0) / h
            if rel > 0.6:
                low += 1
            elif rel < 0.4:
                high += 1
    n_marks = low + high
    punct = (low - high) / n_marks if n_marks >= 3 else 0.0
    punct_weight = min(1.0, n_marks / 8.0)
    ragged = 0.0
    if len(starts) >= 4:
        st, en = np.array(starts, np.float64), np.array(ends, np.float64)
        tol = 3.2 * med_h  # about three characters
        ragged_right = float(np.mean(en < np.percentile(en, 90) - tol))
        ragged_left = float(np.mean(st > np.percentile(st, 10) + tol))
        ragged = float(np.clip((ragged_right - ragged_left) * 3.0, -1, 1))
    vote = 0.7 * punct * punct_weight + 0.3 * ragged
    return float(vote), {"punctuation": round(punct, 3), "marks": n_marks,
                         "ragged": round(ragged, 3), "lines": len(bands)}


def level(mask: np.ndarray, angle: float) -> np.ndarray:
    """An ink mask turned by -angle so its text lines lie level."""
    if abs(angle) <= 0.05:
        return mask
    h, w = mask.shape
    M = cv2.getRotationMatrix2D((w / 2, h / 2), -angle, 1.0)
    # nearest neighbour: a mask stays a mask (no interpolation and threshold)
    return cv2.warpAffine(mask, M, (w, h), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


_QUARTER_CW = cv2.ROTATE_90_CLOCKWISE


def detect(coarse_mask: np.ndarray, mid_mask: np.ndarray, max_angle: float = 15.0,
           min_ratio: float = 1.25, min_vote: float = 0.2) -> Orientation:
    """Orientation from ink masks (skew.ink_mask) of a coarse and a mid-sized view."""
    ratio, ah, av = sideways(coarse_mask, max_angle)
    turn = 0
    conf_side = min(1.0, abs(np.log(max(ratio, 1e-6))) / np.log(2.0))
    angle = ah
    m = mid_mask
    if ratio < 1 / min_ratio:
        # lines run vertically: turn a quarter clockwise to read them
        m = cv2.rotate(mid_mask, _QUARTER_CW)
        turn = 90
        xs, ys = skew._points(cv2.rotate(coarse_mask, _QUARTER_CW), 6000)
        angle = skew.sweep(xs, ys, -max_angle, max_angle, SIDEWAYS_STEP)[0]
    elif ratio < min_ratio:
        return Orientation(0, 0.0, ratio, 0.0, ah)
    vote, _parts = upright_vote(level(m, angle))
    if vote < -min_vote:
        turn = (turn + 180) % 360
    conf = float(min(conf_side, min(1.0, abs(vote) / 0.5)))
    return Orientation(turn, conf, float(ratio), float(vote), float(angle))


def detect_gray(coarse_gray: np.ndarray, mid_gray: np.ndarray, max_angle: float = 15.0,
                paper=skew.AUTO) -> Orientation:
    """``detect`` from grey views (``paper``: where the paper is, any level; None:
    everywhere; skew.AUTO: find it)."""
    if isinstance(paper, str):
        paper = skew.paper_mask(mid_gray)
    return detect(skew.ink_mask(coarse_gray, paper=paper),
                  skew.ink_mask(mid_gray, paper=paper), max_angle)
