"""What on a page is content: for the margin crop, the blank-page flag and the cut-off check.

Content is ink clearly darker than its surroundings (a threshold well above paper grain and
show-through from the back of the sheet), outside any dark surround (a copier's lid, a desk),
in components larger than a speck. Everything here runs on a reduced grey view.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bingan_imaging import skew


@dataclass(frozen=True)
class Content:
    box: tuple[int, int, int, int] | None  # x0, y0, x1, y1 in view pixels (exclusive end)
    ink_px: int  # view pixels of content ink
    components: int
    largest_px: int  # the largest component's ink, view pixels
    edge_fraction: float  # share of the ink within ``edge`` pixels of the view's border
    kept: np.ndarray | None = None  # uint8 0/1 mask of the content ink (specks, rims out)


def edge_fraction(kept: np.ndarray, edge: int) -> float:
    """Share of the content ink within ``edge`` pixels of the picture's border."""
    total = int(cv2.countNonZero(kept))
    if total == 0 or min(kept.shape) <= 2 * edge:
        return 0.0
    inner = int(cv2.countNonZero(kept[edge:-edge, edge:-edge]))
    return (total - inner) / total


def content_mask(gray: np.ndarray, c: float = 30.0, paper=skew.AUTO) -> np.ndarray:
    """Strong ink (uint8 0/255). ``paper``: a mask of where the paper is (any level of the
    same picture), None for paper everywhere, skew.AUTO to find it in ``gray``."""
    h, w = gray.shape
    block = max(15, (min(h, w) // 30) | 1)
    mask = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV,
                                 block, c)
    if isinstance(paper, str):
        paper = skew.paper_mask(gray)
    paper = skew.fit_mask(paper, (h, w))
    if paper is not None:
        mask = cv2.bitwise_and(mask, paper)
    return mask


def _rim_labels(kept: np.ndarray, labels: np.ndarray, band_x: int, band_y: int) -> set[int]:
    """Labels of thin streaks lying within the border band along an edge (a sheet's rim, a
    scanner's edge shadow): components of a strip twice the band's width that stay within
    the band and are five times longer than thick. Only the strips are labelled."""
    h, w = kept.shape
    out: set[int] = set()
    for side in ("top", "bottom", "left", "right"):
        if side == "top":
            ys, xs = slice(0, 2 * band_y), slice(0, w)
        elif side == "bottom":
            ys, xs = slice(h - 2 * band_y, h), slice(0, w)
        elif side == "left":
            ys, xs = slice(0, h), slice(0, 2 * band_x)
        else:
            ys, xs = slice(0, h), slice(w - 2 * band_x, w)
        strip = kept[ys, xs]
        if not strip.any():
            continue
        n, lab, st, _ = cv2.connectedComponentsWithStats(strip, connectivity=8)
        for i in range(1, n):
            x, y, bw, bh, _a = st[i]
            if side == "top":
                rim = y + bh <= band_y and bw > 5 * bh
            elif side == "bottom":
                rim = y >= band_y and bw > 5 * bh
            elif side == "left":
                rim = x + bw <= band_x and bh > 5 * bw
            else:
                rim = x >= band_x and bh > 5 * bw
            if rim:
                py, px = np.argwhere(lab == i)[0]
                out.add(int(labels[ys, xs][py, px]))
    return out


def find_content(gray: np.ndarray, min_component_px: int, edge: int = 2,
                 paper=skew.AUTO, mask: np.ndarray | None = None) -> Content:
    """Content of a reduced grey page: components of strong ink of at least
    ``min_component_px`` pixels, without thin streaks along the border (text cut off at the
    edge reaches inward and stays). Labelling without OpenCV's statistics (which cost five
    times the labelling here): areas by counting, the box from the kept pixels."""
    if mask is None:
        mask = content_mask(gray, paper=paper)
    if cv2.countNonZero(mask) < 65535:
        # (fewer labels than 16 bits hold: their histogram counts the areas, cheaper than
        # np.bincount on 32-bit labels)
        n, labels = cv2.connectedComponents(mask, connectivity=8, ltype=cv2.CV_16U)
        area = cv2.calcHist([labels], [0], None, [n], [0, n]).ravel().astype(np.int64)
    else:
        n, labels = cv2.connectedComponents(mask, connectivity=8)
        area = np.bincount(labels.ravel(), minlength=n)
    if n <= 1:
        return Content(None, 0, 0, 0, 0.0)
    h, w = gray.shape
    keep = area >= min_component_px
    keep[0] = False
    km = np.take(keep.astype(np.uint8), labels)  # type: ignore[arg-type]  # (half [labels]'s time)
    band_x, band_y = max(2, int(0.015 * w)), max(2, int(0.015 * h))
    rim = _rim_labels(km, labels, band_x, band_y)
    if rim:
        keep[list(rim)] = False
        km = np.take(keep.astype(np.uint8), labels)  # type: ignore[arg-type]
    if not keep.any():
        return Content(None, 0, 0, 0, 0.0)
    x0, y0, bw, bh = cv2.boundingRect(km)
    ink = int(area[keep].sum())
    return Content((int(x0), int(y0), int(x0 + bw), int(y0 + bh)), ink, int(keep.sum()),
                   int(area[keep].max()), edge_fraction(km, edge), km)
