"""Which way up a page is: 0, 90, 180 or 270 degrees, and how sure that is.

First the ink that is not text goes: straight rules (tables, form boxes), components longer
than four characters (a skewed rule, a seal's ring, a copier's streak) and specks.

Sideways or not: characters of a line stand far closer together than lines do, in any layout
(one or two columns, tables, forms). Closing gaps of half a character along the rows merges
each line into a few pieces; along the columns it merges little. The ratio of pieces left
(columns over rows) says which way the lines run (``line_direction``). Projection profiles,
used before, were fooled by character grids that line up across two columns and by the
vertical rules of tables.

Upright or upside down, on the level page, from votes in -1..1:
- punctuation: ，。、 and the decimal point sit at the bottom of the line and stand alone in
  their column of the line; upside down they hang at the top;
- ragged edge: paragraphs start at the margin (or a two-character indent) and their last lines
  end early, so the right ends are ragged and the left ones are not;
- title: the lines of the largest characters (hospital name, form title), centred, one run of
  characters (a seal's ring text is two arcs), sit in the top part of the text.

The confidence is the smaller of the two decisions'; below the setting the step turns nothing
and the page is flagged for a person (steps.orientation, quality.assess).
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
    text: bool = True  # False: too little text to tell (blank page, a picture)


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


def char_size(mask: np.ndarray) -> float | None:
    """Typical size (px) of a character of the mask: the 75th percentile of the larger side
    of its components (pieces of characters pull it down, a few rules up; neither much)."""
    _, _, st, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    s = np.maximum(st[1:, cv2.CC_STAT_WIDTH], st[1:, cv2.CC_STAT_HEIGHT])
    s = s[s >= 3]
    if len(s) < 10:
        return None
    return float(np.percentile(s, 75))


def text_only(mask: np.ndarray, cs: float) -> np.ndarray:
    """The mask without what is not a character: straight rules (table and form lines, cut
    away first so the text in the cells stays), then components longer than four characters
    (a skewed rule, a seal's ring, a streak) and specks (toner, noise)."""
    L = max(8, int(round(3 * cs)))
    rules = cv2.bitwise_or(
        cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (L, 1))),
        cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, L))))
    if cv2.countNonZero(rules):
        mask = cv2.bitwise_and(mask, cv2.bitwise_not(cv2.dilate(rules, np.ones((3, 3), np.uint8))))
    _, lab, st, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    big = np.maximum(st[:, cv2.CC_STAT_WIDTH], st[:, cv2.CC_STAT_HEIGHT]) > 4 * cs
    small = st[:, cv2.CC_STAT_AREA] < max(2.0, (cs / 5) ** 2)
    keep = ~(big | small)
    keep[0] = False
    return (keep[lab] * 255).astype(np.uint8)


def line_direction(text: np.ndarray, cs: float) -> float:
    """Ratio > 1 when text runs in horizontal lines, < 1 for vertical ones.

    Characters of a line stand much closer together than lines do (a tenth of a character
    against half a character or more), whatever the layout: closing the gaps shorter than
    half (and four fifths of) a character along the rows merges each line into a few
    pieces, along the columns it merges little. The ratio of the pieces left (columns over
    rows) is the answer; unlike projection profiles it does not care whether lines or
    character columns line up across the page (two columns, tables, forms)."""
    ratios = []
    for fr in (0.5, 0.8):
        k = max(2, int(round(cs * fr)))
        rows = cv2.morphologyEx(text, cv2.MORPH_CLOSE,
                                cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
        cols = cv2.morphologyEx(text, cv2.MORPH_CLOSE,
                                cv2.getStructuringElement(cv2.MORPH_RECT, (1, k)))
        n_rows = cv2.connectedComponents(rows, connectivity=8)[0] - 1
        n_cols = cv2.connectedComponents(cols, connectivity=8)[0] - 1
        ratios.append(max(n_cols, 1) / max(n_rows, 1))
    return float(np.exp(np.mean(np.log(ratios))))


def title_vote(mask: np.ndarray) -> tuple[float, dict]:
    """Vote > 0 when the lines of the largest characters (hospital name, form title) are in
    the top part of the level text, < 0 when in the bottom part.

    A title line is a band whose characters are at least 1.2 times the body's, centred on
    the text block and narrower than most of it (a seal's ring text over a body line, or a
    signature, is neither)."""
    bands = _bands(mask)
    if len(bands) < 3:
        return 0.0, {}
    _, _, st, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    st = st[1:]
    cy = st[:, cv2.CC_STAT_TOP] + st[:, cv2.CC_STAT_HEIGHT] / 2.0
    hs = st[:, cv2.CC_STAT_HEIGHT].astype(np.float64)
    x0s = st[:, cv2.CC_STAT_LEFT]
    x1s = x0s + st[:, cv2.CC_STAT_WIDTH]
    if len(st) == 0:
        return 0.0, {}
    sizes, spans = [], []
    for a, b in bands:
        inside = (cy >= a) & (cy < b) & (hs >= 0.3 * (b - a))
        if np.count_nonzero(inside) >= 2:
            sz = float(np.median(hs[inside]))
            order = np.argsort(x0s[inside])
            a0, a1 = x0s[inside][order], x1s[inside][order]
            gap = float((a0[1:] - np.maximum.accumulate(a1)[:-1]).max())
            # a title is one run of characters; the two arcs of a seal's ring text are not
            sizes.append(sz if gap <= 1.5 * sz else -sz)
            spans.append((float(a0.min()), float(a1.max())))
        else:
            sizes.append(0.0)
            spans.append((0.0, 0.0))
    size_arr = np.abs(np.array(sizes))
    if not np.any(size_arr > 0):
        return 0.0, {}
    body = float(np.median(size_arr[size_arr > 0]))
    # the text block: from the first to the last column of its lines (lines of specks
    # left out)
    starts = [a for (a, b), z in zip(spans, size_arr) if z >= 0.5 * body]
    ends = [b for (a, b), z in zip(spans, size_arr) if z >= 0.5 * body]
    left, right = float(min(starts)), float(max(ends))
    width = max(1.0, right - left)
    centre = (left + right) / 2.0
    top, bottom = bands[0][0], bands[-1][1]
    span = max(1.0, float(bottom - top))
    vote, weight, n = 0.0, 0.0, 0
    for (a, b), sz, (sx0, sx1) in zip(bands, sizes, spans):
        mid = (sx0 + sx1) / 2.0
        # centred on the text block, or on the picture (a copier's streak or a cut-off
        # column can move the block's edges)
        centred = abs(mid - centre) <= 0.15 * width or \
            abs(mid - mask.shape[1] / 2.0) <= 0.1 * mask.shape[1]
        if sz < 1.2 * body or sx1 - sx0 > 0.75 * width or not centred:
            continue
        rel = ((a + b) / 2.0 - top) / span
        w = sz / body - 1.0
        vote += w * float(np.clip((0.5 - rel) * 4.0, -1, 1))
        weight += w
        n += 1
    if weight <= 0:
        return 0.0, {"title_lines": 0}
    return float(np.clip(vote / weight, -1, 1)), {"title_lines": n}


_QUARTER_CW = cv2.ROTATE_90_CLOCKWISE


def detect(coarse_mask: np.ndarray, mid_mask: np.ndarray, max_angle: float = 15.0,
           min_ratio: float = 1.4, min_vote: float = 0.2) -> Orientation:
    """Orientation from ink masks (skew.ink_mask) of a coarse and a mid-sized view.

    ``confidence`` is the smaller of the two decisions' (sideways or not; upright or upside
    down), 0..1. A page whose line direction is unclear (ratio within ``min_ratio`` of 1)
    or whose upright vote is within ``min_vote`` of 0 is left as it came (``turn`` 0) with
    a low confidence: the caller flags it for a person rather than turn it on a guess."""
    cs = char_size(mid_mask)
    if cs is None:
        return Orientation(0, 0.0, 1.0, 0.0, 0.0, text=False)
    text = text_only(mid_mask, cs)
    ratio = line_direction(text, cs)
    conf_side = float(min(1.0, abs(np.log(max(ratio, 1e-6))) / np.log(2.0)))
    if 1 / min_ratio <= ratio <= min_ratio:
        return Orientation(0, conf_side * 0.5, ratio, 0.0, 0.0)
    sideways_ = ratio < 1
    cmask = text_only(coarse_mask, max(2.0, cs / 2))
    m = mid_mask
    if sideways_:
        cmask = cv2.rotate(cmask, _QUARTER_CW)
        m = cv2.rotate(m, _QUARTER_CW)
    xs, ys = skew._points(cmask, 6000)
    angle = skew.sweep(xs, ys, -max_angle, max_angle, SIDEWAYS_STEP)[0] if len(xs) >= 40 \
        else 0.0
    # rules are cut away on the level page, where they run along the rows and columns
    lv = text_only(level(m, angle), cs)
    vote_p, _parts = upright_vote(lv)
    vote_t, _ = title_vote(lv)
    vote = float(np.clip(vote_p + 1.0 * vote_t, -1, 1))
    conf_up = float(min(1.0, abs(vote) / 0.5))
    conf = min(conf_side, conf_up)
    if abs(vote) <= min_vote:
        return Orientation(0, conf, ratio, vote, float(angle))
    turn = 90 if sideways_ else 0
    if vote < 0:
        turn = (turn + 180) % 360
    return Orientation(turn, conf, float(ratio), vote, float(angle))


def detect_gray(coarse_gray: np.ndarray, mid_gray: np.ndarray, max_angle: float = 15.0,
                paper=skew.AUTO) -> Orientation:
    """``detect`` from grey views (``paper``: where the paper is, any level; None:
    everywhere; skew.AUTO: find it)."""
    if isinstance(paper, str):
        paper = skew.paper_mask(mid_gray)
    return detect(skew.ink_mask(coarse_gray, paper=paper),
                  skew.ink_mask(mid_gray, paper=paper), max_angle)
