"""Finding the sheet in a camera capture, for the perspective correction.

The sheet is the large bright region (paper) against a darker surround (desk, cloth). On a
reduced view: Otsu on a grey picture whose text was closed away, the largest component, its
outline simplified to four corners; then each side is re-fitted as a straight line through the
outline points along it (a robust fit) and the corners are the sides' intersections, which is
sub-pixel accurate on the view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Sheet:
    corners: np.ndarray  # 4x2 float64 in view coords: top-left, top-right, bottom-right, -left
    area_fraction: float  # of the view
    contrast: float  # paper brightness over surround brightness


def _order(pts: np.ndarray) -> np.ndarray:
    """Order four points: top-left, top-right, bottom-right, bottom-left."""
    c = pts.mean(axis=0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(ang)]  # counter-clockwise from the left in image coords
    # start from the point with the smallest x + y (top-left)
    i = int(np.argmin(pts.sum(axis=1)))
    pts = np.roll(pts, -i, axis=0)
    # ensure clockwise on screen: top-left -> top-right
    if pts[1, 0] < pts[3, 0]:
        pts = pts[[0, 3, 2, 1]]
    return pts


def _intersect(l1: tuple, l2: tuple) -> np.ndarray:
    (vx1, vy1, x1, y1), (vx2, vy2, x2, y2) = l1, l2
    A = np.array([[vx1, -vx2], [vy1, -vy2]], np.float64)
    b = np.array([x2 - x1, y2 - y1], np.float64)
    t = np.linalg.solve(A, b)
    return np.array([x1 + t[0] * vx1, y1 + t[0] * vy1])


def _median(gray: np.ndarray, mask: np.ndarray) -> float:
    """Median grey level where ``mask`` is set (from the histogram)."""
    hist = cv2.calcHist([gray], [0], mask, [256], [0, 256]).ravel()
    cum = np.cumsum(hist)
    if cum[-1] <= 0:
        return 0.0
    return float(np.searchsorted(cum, cum[-1] / 2.0))


def find_sheet(bgr: np.ndarray, min_area: float = 0.2, max_area: float = 0.985) -> Sheet | None:
    """The sheet's corners on a reduced colour view, or None (no clear sheet, or it fills the
    picture)."""
    h, w = bgr.shape[:2]
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    k = max(3, (min(h, w) // 80) | 1)
    closed = cv2.morphologyEx(gray, cv2.MORPH_CLOSE,
                              cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    closed = cv2.GaussianBlur(closed, (0, 0), 1.0)
    thr, bw = cv2.threshold(closed, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    # the largest bright region by its outline (cheaper than labelling every component with
    # its statistics); its pixels are the bright ones inside that outline, so holes (text, a
    # dark seal) do not count
    contours, _ = cv2.findContours(bw, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    cnt = max(contours, key=cv2.contourArea)
    comp = np.zeros_like(bw)
    cv2.drawContours(comp, [cnt], -1, 255, cv2.FILLED)
    comp = cv2.bitwise_and(comp, bw)
    frac = cv2.countNonZero(comp) / float(h * w)
    if not (min_area <= frac <= max_area):
        return None
    hull = cv2.convexHull(cnt)
    peri = cv2.arcLength(hull, True)
    quad = None
    for eps in (0.01, 0.02, 0.03, 0.05, 0.08):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4:
            quad = approx.reshape(4, 2).astype(np.float64)
            break
    if quad is None:
        return None
    quad = _order(quad)
    contrast = _median(gray, comp) / max(1.0, _median(gray, cv2.bitwise_not(comp)))
    # refine each side with a robust line fit through the outline points near it
    pts = cnt.reshape(-1, 2).astype(np.float64)
    lines = []
    for s in range(4):
        a, b = quad[s], quad[(s + 1) % 4]
        d = b - a
        L = math.hypot(*d)
        if L < 10:
            return None
        u = d / L
        rel = pts - a
        t = rel @ u
        dist = np.abs(rel[:, 0] * u[1] - rel[:, 1] * u[0])
        sel = (t > 0.08 * L) & (t < 0.92 * L) & (dist < max(3.0, 0.01 * L))
        side = pts[sel]
        if len(side) < 10:
            lines.append((u[0], u[1], a[0], a[1]))
            continue
        vx, vy, x0, y0 = cv2.fitLine(side.astype(np.float32), cv2.DIST_HUBER, 0, 0.01,
                                     0.01).ravel()
        lines.append((float(vx), float(vy), float(x0), float(y0)))
    found = []
    for s in range(4):
        try:
            found.append(_intersect(lines[(s - 1) % 4], lines[s]))
        except np.linalg.LinAlgError:
            return None
    corners = np.array(found)
    # the contour runs along the outer edge of the paper's pixels: shift by half a pixel is
    # below what matters here; reject a fit that wandered off the rough quad
    if np.abs(corners - quad).max() > 0.05 * max(h, w):
        return None
    return Sheet(corners=corners, area_fraction=float(frac), contrast=contrast)


def refine_corners(gray: np.ndarray, corners: np.ndarray, samples: int = 48,
                   reach: float = 6.0) -> np.ndarray:
    """Sharpen the sheet's corners on a finer grey picture (coordinates of ``corners`` must
    be in that picture): along each side, the paper's edge is located to a tenth of a pixel
    as the steepest step across the side (parabola through the gradient's peak), a line is
    fitted through those points (Huber), and the corners are the lines' intersections."""
    gh, gw = gray.shape[:2]
    lines = []
    offs = np.arange(-reach, reach + 0.5, 0.5, dtype=np.float32)
    for s in range(4):
        a, b = corners[s], corners[(s + 1) % 4]
        d = b - a
        L = float(np.hypot(*d))
        u = d / L
        nrm = np.array([-u[1], u[0]])  # one of the two normals
        ts = np.linspace(0.1, 0.9, samples) * L
        base = a[None, :] + ts[:, None] * u[None, :]
        px = (base[:, None, 0] + offs[None, :] * nrm[0]).astype(np.float32)
        py = (base[:, None, 1] + offs[None, :] * nrm[1]).astype(np.float32)
        # the picture smoothed (sigma 1) only in a strip around the samples: the blur
        # reaches 3 pixels, interpolation one more, so inside the strip it is the same as
        # smoothing the whole picture
        pad = 6
        x0 = int(max(0, min(gw - 1, math.floor(float(px.min())) - pad)))
        y0 = int(max(0, min(gh - 1, math.floor(float(py.min())) - pad)))
        x1 = int(max(x0 + 1, min(gw, math.ceil(float(px.max())) + pad + 1)))
        y1 = int(max(y0 + 1, min(gh, math.ceil(float(py.max())) + pad + 1)))
        g = cv2.GaussianBlur(gray[y0:y1, x0:x1], (0, 0), 1.0).astype(np.float32)
        prof = cv2.remap(g, px - np.float32(x0), py - np.float32(y0), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        grad = np.abs(np.diff(prof, axis=1))
        pts = []
        for i in range(samples):
            j = int(np.argmax(grad[i]))
            if grad[i, j] < 8.0 or j == 0 or j == grad.shape[1] - 1:
                continue
            g0, g1, g2 = grad[i, j - 1], grad[i, j], grad[i, j + 1]
            den = g0 - 2 * g1 + g2
            dj = 0.5 * (g0 - g2) / den if den < 0 else 0.0
            o = offs[0] + (j + 0.5 + dj) * 0.5  # between samples j and j+1
            pts.append(base[i] + o * nrm)
        if len(pts) < samples // 3:
            lines.append((u[0], u[1], a[0], a[1]))
            continue
        vx, vy, x0_, y0_ = cv2.fitLine(np.array(pts, np.float32), cv2.DIST_HUBER, 0, 0.01,
                                      0.01).ravel()
        lines.append((float(vx), float(vy), float(x0_), float(y0_)))
    found = []
    for s in range(4):
        try:
            found.append(_intersect(lines[(s - 1) % 4], lines[s]))
        except np.linalg.LinAlgError:
            return corners
    out = np.array(found)
    if np.abs(out - corners).max() > 3 * reach:
        return corners
    return out


def rectify(corners: np.ndarray, paper_mm: tuple[float, float], inset_mm: float = 2.5
            ) -> tuple[np.ndarray, tuple[int, int], float]:
    """Homography from the sheet's corners (full-resolution coords) to an upright rectangle
    of the paper's proportions, its size, and the resulting DPI.

    The rectangle keeps the resolution the photo has on the sheet: its scale is the mean of the
    measured edge lengths over the paper's size. A sheet lying landscape gets the paper
    turned too. ``inset_mm`` of the sheet's rim is left out (the found outline may take in a
    pixel or two of the desk)."""
    tl, tr, br, bl = corners
    top, bottom = np.linalg.norm(tr - tl), np.linalg.norm(br - bl)
    left, right = np.linalg.norm(bl - tl), np.linalg.norm(br - tr)
    w_px, h_px = (top + bottom) / 2, (left + right) / 2
    pw, ph = sorted(paper_mm)
    if w_px > h_px:
        pw, ph = ph, pw
    px_per_mm = (w_px / pw + h_px / ph) / 2
    Wf, Hf = pw * px_per_mm, ph * px_per_mm
    m = inset_mm * px_per_mm
    dst = np.array([[0, 0], [Wf - 1, 0], [Wf - 1, Hf - 1], [0, Hf - 1]], np.float64) - m
    Hm = cv2.getPerspectiveTransform(corners.astype(np.float32), dst.astype(np.float32))
    W, H = int(round(Wf - 2 * m)), int(round(Hf - 2 * m))
    return Hm.astype(np.float64), (W, H), float(px_per_mm * 25.4)
