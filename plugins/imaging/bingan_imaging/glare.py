"""Glare (反光): a lamp's or a window's reflection on the paper of a photographed page.

Where light is reflected into the lens the picture is saturated: white, colourless, without
texture, and the ink under it is gone. That is told from white paper by its surroundings:
a glare spot is much brighter than the paper just around it (a page photographed under even
light has no saturated part at all; a well-lit scan is white everywhere, and then nothing
stands out). Per spot: its area, the part of it over the text block (where ink was lost,
not a margin), and its box.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SATURATED = 248  # every channel at or above this (area-averaged view)
MAX_SURROUND = 242  # the paper around a spot must be at most this bright
MAX_SHARE = 0.25  # a saturated part larger than this share of the page is the paper itself


@dataclass(frozen=True)
class Spot:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the view's pixels
    area_px: int
    content_px: int  # the part over the text block
    surround: float  # median grey of the paper around it


def find(view_bgr: np.ndarray, px_per_mm: float, ink: np.ndarray | None = None,
         min_mm: float = 3.0) -> list[Spot]:
    """Glare spots of a reduced colour view of the page (``px_per_mm``: its resolution).
    ``ink``: the view's ink mask (the text block is its extent; None: the whole view)."""
    h, w = view_bgr.shape[:2]
    low = view_bgr.min(axis=2)
    sat = (low >= SATURATED).astype(np.uint8)
    if not sat.any():
        return []
    k = max(1, int(round(0.5 * px_per_mm)))
    sat = cv2.morphologyEx(sat, cv2.MORPH_CLOSE, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    n, lab, st, _ = cv2.connectedComponentsWithStats(sat, connectivity=8)
    gray = cv2.cvtColor(view_bgr, cv2.COLOR_BGR2GRAY)
    block = _text_block(ink, (h, w))
    min_px = (min_mm * px_per_mm) ** 2
    r_in = max(1, int(round(5 * px_per_mm)))
    r_out = max(r_in + 1, int(round(12 * px_per_mm)))
    spots = []
    for i in range(1, n):
        area = int(st[i, cv2.CC_STAT_AREA])
        if area < min_px or area > MAX_SHARE * h * w:
            continue
        x, y, bw, bh = (int(v) for v in st[i, :4])
        # the paper around it: a ring 5-12 mm out, ink and other saturated parts left out
        x0, y0 = max(0, x - r_out), max(0, y - r_out)
        x1, y1 = min(w, x + bw + r_out), min(h, y + bh + r_out)
        comp = (lab[y0:y1, x0:x1] == i).astype(np.uint8)
        outer = cv2.dilate(comp, cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * r_out + 1, 2 * r_out + 1)))
        inner = cv2.dilate(comp, cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * r_in + 1, 2 * r_in + 1)))
        ring = (outer > 0) & (inner == 0) & (sat[y0:y1, x0:x1] == 0)
        if ink is not None:
            ring &= ink[y0:y1, x0:x1] == 0
        vals = gray[y0:y1, x0:x1][ring]
        if len(vals) < 20:
            continue
        surround = float(np.median(vals))
        if surround > MAX_SURROUND:
            continue
        content = 0
        if block is not None:
            bx0, by0, bx1, by1 = block
            content = int(np.count_nonzero(lab[by0:by1, bx0:bx1] == i))
        spots.append(Spot((x, y, x + bw, y + bh), area, content, surround))
    return spots


def _text_block(ink: np.ndarray | None, shape: tuple[int, int]
                ) -> tuple[int, int, int, int] | None:
    """The extent of the ink (1st to 99th percentile of its rows and columns)."""
    if ink is None:
        return (0, 0, shape[1], shape[0])
    ys, xs = np.nonzero(ink)
    if len(xs) < 50:
        return None
    return (int(np.percentile(xs, 1)), int(np.percentile(ys, 1)),
            int(np.percentile(xs, 99)) + 1, int(np.percentile(ys, 99)) + 1)
