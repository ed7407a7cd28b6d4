"""Flattening a page photographed curled at the binding (翻拍 of bound records).

A page lying in an open bound record rises towards the spine; seen from above, the raised
part is magnified about the camera's axis, so text lines that are straight on the paper bend
up or down near the binding, more the farther they are from the middle of the page. After the
perspective step has made the sheet a rectangle, what is left of that is measured on the text
lines themselves:

- lines: characters merged along the rows (gaps under a character closed), blobs at least a
  quarter of the text block wide; per column, the middle of the line's ink, smoothed over
  two characters;
- curvature: per line, the largest distance of that middle from the straight line fitted to
  it, in millimetres; the page's figure is the mean over its lines (``residual_mm``);
- flattening: per column x, the lines' distances from their straight fits are fitted as
  a(x) + b(x)·y (the magnification grows linearly away from the middle of the page), smoothed
  along x; every pixel is then taken from y + a(x) + b(x)·y. Straight lines stay straight, the
  columns are not moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bingan_imaging import orientation


@dataclass(frozen=True)
class Line:
    xs: np.ndarray  # columns (view pixels)
    ys: np.ndarray  # middle of the line's ink in each column (smoothed)


def text_lines(mask: np.ndarray, min_share: float = 0.25) -> tuple[list[Line], float | None]:
    """Text lines (and horizontal rules) of an ink mask, and the character size (view
    pixels). Each line's middle per column is
    the middle of its envelope (see below)."""
    cs = orientation.char_size(mask)
    if cs is None:
        return [], None
    text = orientation.text_only(mask, cs)
    k = max(2, int(round(cs)))
    merged = cv2.morphologyEx(text, cv2.MORPH_CLOSE,
                              cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    # table and form rules are lines too (the most exact ones)
    rules = cv2.morphologyEx(mask, cv2.MORPH_OPEN,
                             cv2.getStructuringElement(cv2.MORPH_RECT, (2 * k, 1)))
    rules = cv2.morphologyEx(rules, cv2.MORPH_CLOSE,
                             cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    xs_ink = np.flatnonzero(text.any(axis=0))
    block_w = float(xs_ink[-1] - xs_ink[0] + 1) if len(xs_ink) else float(mask.shape[1])
    lines = []
    for src, ink, max_h in ((merged, text, 3.0 * cs), (rules, rules, 0.6 * cs)):
        n, lab, st, _ = cv2.connectedComponentsWithStats(src, connectivity=8)
        for i in range(1, n):
            x, y, w, h, _a = (int(v) for v in st[i])
            if w < min_share * block_w or h > max_h:
                continue
            part = (lab[y:y + h, x:x + w] == i) & (ink[y:y + h, x:x + w] > 0)
            cnt = part.sum(axis=0)
            ok = cnt > 0
            if ok.sum() < 0.5 * w:
                continue
            # the line's envelope: the highest top and lowest bottom of the ink within a
            # character's width (CJK glyphs fill their square, so the envelope is the line's
            # band), its middle smoothed over another character
            top = np.where(ok, part.argmax(axis=0), h).astype(np.float64)
            bot = np.where(ok, h - 1 - part[::-1].argmax(axis=0), -1).astype(np.float64)
            win = max(3, int(round(cs)) | 1)
            if w < 2 * win:
                continue
            top = _running(top, win, np.min)
            bot = _running(bot, win, np.max)
            mid = _running((top + bot) / 2.0, win, np.mean)
            keep = ok & (top < h) & (bot >= 0)
            cols = (np.flatnonzero(keep) + x).astype(np.float64)
            lines.append(Line(cols, mid[keep] + y))
    return lines, cs


def _running(v: np.ndarray, win: int, fn) -> np.ndarray:
    pad = win // 2
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(v, pad, mode="edge"), win)
    return fn(windows, axis=1)


def residual_mm(lines: list[Line], px_per_mm: float) -> float:
    """Mean over the lines of the largest distance of a line from its straight fit (mm)."""
    if not lines:
        return 0.0
    devs = []
    for ln in lines:
        p = np.polyfit(ln.xs, ln.ys, 1)
        devs.append(float(np.abs(ln.ys - np.polyval(p, ln.xs)).max()))
    return float(np.mean(devs)) / px_per_mm


def displacement(lines: list[Line], width: int, smooth_px: float
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """Per column (view pixels), a(x) and b(x) such that a line's middle lies at
    straight(x) + a(x) + b(x)·y; None with fewer than three lines."""
    if len(lines) < 3:
        return None
    sums = np.zeros((width, 5))  # n, sum y, sum y², sum r, sum y·r per column
    for ln in lines:
        p = np.polyfit(ln.xs, ln.ys, 1)
        r = ln.ys - np.polyval(p, ln.xs)
        x = np.clip(ln.xs.astype(np.int64), 0, width - 1)
        y = ln.ys
        np.add.at(sums, x, np.stack([np.ones_like(y), y, y * y, r, y * r], axis=1))
    # smooth the sums along x (a weighted fit over neighbouring columns)
    k = max(3, int(round(smooth_px)) | 1)
    sm = np.stack([cv2.GaussianBlur(sums[:, j].reshape(1, -1), (k, 1), 0).ravel()
                   for j in range(5)], axis=1)
    n, sy, syy, sr, syr = (sm[:, j] for j in range(5))
    var = n * syy - sy * sy
    ok = (n > 1e-6) & (var > 1e-6 * np.maximum(n * n, 1e-12))
    b = np.zeros(width)
    b[ok] = (n[ok] * syr[ok] - sy[ok] * sr[ok]) / var[ok]
    a = np.zeros(width)
    has = n > 1e-6
    a[has] = (sr[has] - b[has] * sy[has]) / n[has]
    # columns without lines take the nearest column's values
    idx = np.flatnonzero(has)
    if len(idx) == 0:
        return None
    a = np.interp(np.arange(width), idx, a[idx])
    b = np.interp(np.arange(width), idx, b[idx])
    return a, b


def remap(image: np.ndarray, a: np.ndarray, b: np.ndarray, factor: float) -> np.ndarray:
    """The image with every pixel taken from y + a(x) + b(x)·y (a, b per view column at
    ``factor``; a in view pixels)."""
    h, w = image.shape[:2]
    xv = (np.arange(w, dtype=np.float64) - (factor - 1) / 2.0) / factor
    a_full = np.interp(xv, np.arange(len(a)), a) * factor
    b_full = np.interp(xv, np.arange(len(b)), b)
    # y in view pixels is (Y - (f-1)/2)/f; r = a + b*y_view, in full pixels r*f
    off = (factor - 1) / 2.0
    ys = np.arange(h, dtype=np.float32)[:, None]
    map_y = (ys + a_full[None, :].astype(np.float32)
             + (b_full[None, :] * (ys - off)).astype(np.float32))
    map_x = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :], (h, w))
    return cv2.remap(image, np.ascontiguousarray(map_x), map_y.astype(np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
