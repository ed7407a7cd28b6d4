"""Illumination flattening and denoising that keep handwriting and red seals.

Illumination: the paper's brightness per colour channel is estimated on a reduced view (text
removed by a grey-level dilation, then smoothed); when it varies across the page by more than a
threshold (a shadow, light falling off in a photo) every pixel is divided by it, which also
neutralises a colour cast of the light. Applied at full resolution as one multiplication.

Denoise: one brightness factor takes the paper (its histogram peak, minus three times the
measured full-resolution noise) to white and stretches the rest linearly, so background grain,
paper tint and faint copier mottling vanish while ink keeps its colour (a red seal's red channel
saturates, green and blue stay low: it stays red). It is one saturating multiply-add
(``cv2.convertScaleAbs``, 3 ms on an A4 page, a quarter of a per-channel look-up table) fused
into the last copy of the rotation. Isolated specks (toner dots, dust) far from any text are
painted white. Nothing is median-filtered, so thin pen strokes are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bingan_imaging.work import percentile_u8


@dataclass(frozen=True)
class Illumination:
    nonuniformity: float  # (p98 - p2) / p98 of the paper brightness across the page
    gain: np.ndarray | None  # float32 HxWx3 at the view's size, or None when not needed


def estimate_illumination(view: np.ndarray, threshold: float, max_gain: float = 2.0,
                          paper: np.ndarray | None = None) -> Illumination:
    """``paper``: optional mask (view size) of where the paper is; the surround is ignored."""
    h, w = view.shape[:2]
    small = view
    while max(small.shape[:2]) > 320:
        small = cv2.resize(small, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    k = max(3, (min(sh, sw) // 40) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    bg = cv2.dilate(small, kernel, iterations=2)  # text is darker: a max filter removes it
    bg = cv2.medianBlur(bg, 5)
    # a Gaussian (the kernel cv2.GaussianBlur would take) as a separable filter: OpenCV's
    # bit-exact 8-bit Gaussian costs twice as much here
    sigma = max(2.0, min(sh, sw) / 40.0)
    kg = cv2.getGaussianKernel(int(round(sigma * 6 + 1)) | 1, sigma)
    bg = cv2.sepFilter2D(bg, -1, kg, kg)
    g = cv2.cvtColor(bg, cv2.COLOR_BGR2GRAY)
    on = None
    if paper is not None:
        on = cv2.resize(paper, (sw, sh), interpolation=cv2.INTER_NEAREST) > 0
        if on.sum() < 0.2 * on.size:
            on = None
    vals = g[on] if on is not None else g.ravel()
    lo, hi = percentile_u8(vals, 2), percentile_u8(vals, 98)
    nonuni = float((hi - lo) / max(hi, 1.0))
    if nonuni < threshold:
        return Illumination(nonuni, None)
    bgf = bg.astype(np.float32)
    px = bgf[on] if on is not None else bgf.reshape(-1, 3)
    target = np.percentile(px, 95, axis=0).astype(np.float32)
    gain = np.clip(target[None, None, :] / np.maximum(bgf, 1.0), 1.0 / max_gain, max_gain)
    if on is not None:
        gain[~on] = 1.0
    full = cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)
    return Illumination(nonuni, full.astype(np.float32))


def paper_levels(view: np.ndarray) -> np.ndarray:
    """Per-channel paper level: the peak of each channel's histogram in its brighter half."""
    out = np.empty(3, np.float32)
    for c in range(3):
        hist = cv2.calcHist([view], [c], None, [256], [0, 256]).ravel()
        hist = np.convolve(hist, np.ones(5) / 5, mode="same")
        # the paper is the brightest big mode: search above the median pixel value
        cum = np.cumsum(hist)
        med = int(np.searchsorted(cum, cum[-1] / 2))
        out[c] = float(med + np.argmax(hist[med:]))
    return out


def noise_sigma(image: np.ndarray, tiles: int = 9, size: int = 48) -> float:
    """Noise of the paper at full resolution: the median over small tiles spread across the
    image of a robust deviation from the tile's smoothed self (tiles with ink come out high
    and the median ignores them)."""
    h, w = image.shape[:2]
    if h < size * 2 or w < size * 2:
        return 2.0
    rng = np.random.default_rng(h * 7919 + w)
    ys = rng.integers(0, h - size, tiles)
    xs = rng.integers(0, w - size, tiles)
    ch = image[..., 1] if image.ndim == 3 else image
    sig = np.empty(tiles)
    for i in range(tiles):
        t = ch[ys[i]:ys[i] + size, xs[i]:xs[i] + size].astype(np.float32)
        d = np.abs(t - cv2.blur(t, (5, 5))).ravel()
        k = len(d) // 2
        # median absolute deviation -> sigma; 1.12 undoes the blur's share of the noise
        sig[i] = 1.4826 * 1.12 * float(np.partition(d, k)[k])
    return float(np.median(sig))


def whitening_lut(paper: np.ndarray, sigma: float, max_gain: float) -> tuple[np.ndarray, list]:
    """A 256x1x3 LUT: paper (minus 3 sigma) -> 255, linear below, gain at most ``max_gain``.
    Returns the LUT and the knee per channel."""
    v = np.arange(256, dtype=np.float32)
    lut = np.empty((256, 1, 3), np.uint8)
    knees = []
    for c in range(3):
        knee = float(max(32.0, paper[c] - max(6.0, 3.0 * sigma)))
        gain = min(max_gain, 255.0 / knee)
        lut[:, 0, c] = np.clip(np.round(v * gain), 0, 255).astype(np.uint8)
        knees.append(round(knee, 1))
    return lut, knees


def speck_mask(gray_mid: np.ndarray, gray_coarse: np.ndarray, clearance: int,
               paper: np.ndarray | None = None) -> np.ndarray:
    """Isolated dark dots on a finer view (uint8 0/255, slightly widened to cover them).

    A dot is ink on the finer view that the coarse view (four times smaller) does not show as
    ink within ``clearance`` fine pixels: text, handwriting, a seal, a check mark or a decimal
    point next to its digits all stay visible at the coarse level and protect their
    neighbourhood; a toner speck or a dust dot of a millimetre or less vanishes there. No
    component labelling (which costs more than everything else here)."""
    h, w = gray_mid.shape
    ch, cw = gray_coarse.shape
    block = max(15, (min(h, w) // 30) | 1)
    k = int(round(block * cw / w)) | 1  # the same window on the coarse view
    if k >= 5:
        # darker than the local mean (a box of ``block`` fine pixels) by 25: the mean of a
        # smooth neighbourhood taken on the coarse view and enlarged costs a third of the
        # adaptive threshold on the fine one
        mean = cv2.resize(cv2.blur(gray_coarse, (k, k), borderType=cv2.BORDER_REPLICATE),
                          (w, h), interpolation=cv2.INTER_LINEAR)
        mid = cv2.threshold(cv2.subtract(mean, gray_mid), 24, 255, cv2.THRESH_BINARY)[1]
    else:
        mid = cv2.adaptiveThreshold(gray_mid, 255, cv2.ADAPTIVE_THRESH_MEAN_C,
                                    cv2.THRESH_BINARY_INV, block, 25)
    # darker than the local paper (a max filter) by 40 grey levels: a toner dot of 0.4 mm is
    # fainter than that at the coarse scale, a line of text, a pen stroke or a decimal point
    # is darker (a local mean would sit inside the text and miss dense lines)
    bg = cv2.dilate(gray_coarse, np.ones((5, 5), np.uint8))
    text = cv2.threshold(cv2.subtract(bg, gray_coarse), 40, 255, cv2.THRESH_BINARY)[1]
    r = max(1, int(round(clearance * cw / w)))  # clearance at the coarse scale
    near = cv2.dilate(text, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1)))
    near = cv2.resize(near, (w, h), interpolation=cv2.INTER_NEAREST)
    specks = cv2.bitwise_and(mid, cv2.bitwise_not(near))
    if paper is not None:
        specks = cv2.bitwise_and(specks, paper)
    return cv2.dilate(specks, np.ones((3, 3), np.uint8))
