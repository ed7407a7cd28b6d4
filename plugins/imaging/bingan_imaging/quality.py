"""Image quality check (D7): readability metrics of a processed page and a verdict.

Sharpness is measured at the ink's edges at full resolution, in a few tiles where there is
most text, and per direction. At an edge the steepest slope over the edge's contrast is about
0.8/sigma for a Gaussian blur and 2/length across a motion blur, independent of how dark or
contrasty the page is; noise does not reach the strong edges that are measured. The page's
sharpness is the *worst* direction (a motion blur smears one direction only, which an average
hides), and ``blur_direction_ratio`` (worst over best direction) tells motion blur from
focus blur. The variance of the Laplacian, the usual measure, ranked a 15-pixel motion blur
above a readable sigma-2 blur in a test here, and it scales with contrast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from bingan_imaging import content as content_mod
from bingan_imaging import skew

if TYPE_CHECKING:  # pragma: no cover
    from bingan.hooks.types import PageQuality

DIRECTIONS = (0.0, 45.0, 90.0, 135.0)


@dataclass(frozen=True)
class Sharpness:
    sharpness: float  # worst direction, ~0.8/sigma (1 = a crisp step edge)
    best: float  # best direction
    ratio: float  # worst / best: ~1 for focus blur, low for motion blur
    tiles: int


def _q(values: np.ndarray, q: float) -> float:
    """Quantile by partition (np.percentile costs more than the rest of a tile)."""
    k = min(len(values) - 1, max(0, int(q * (len(values) - 1))))
    return float(np.partition(values, k)[k])


_COS = np.cos(np.radians(DIRECTIONS)).astype(np.float32)
_SIN = np.sin(np.radians(DIRECTIONS)).astype(np.float32)


def _tile_sharpness(tile: np.ndarray) -> np.ndarray | None:
    """Per direction, the 90th percentile of slope / (4 * local contrast) at strong edges."""
    t = tile.astype(np.float32)
    gx = cv2.Sobel(t, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(t, cv2.CV_32F, 0, 1, ksize=3)
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (25, 25))
    contrast = cv2.dilate(t, k) - cv2.erode(t, k)
    c95 = _q(contrast[::4, ::4].ravel(), 0.95)
    if c95 < 30:
        return None
    mag = cv2.magnitude(gx, gy)
    sel = (contrast >= max(30.0, 0.6 * c95)) & (mag >= 0.08 * contrast)
    if np.count_nonzero(sel) < 50:
        return None
    gxs, gys, cs = gx[sel], gy[sel], contrast[sel]
    # direction bin of each gradient: 0, 45, 90, 135 degrees (mod 180)
    ang = np.arctan2(gys, gxs) * np.float32(180.0 / np.pi)
    bins = np.round(ang / 45.0).astype(np.int64) % 4
    out = np.full(len(DIRECTIONS), np.nan)
    for i in range(len(DIRECTIONS)):
        m = bins == i
        if np.count_nonzero(m) >= 15:
            r = np.abs(gxs[m] * _COS[i] + gys[m] * _SIN[i]) / (4.0 * cs[m])
            out[i] = _q(r, 0.9)
    return out


def sharpness(gray: np.ndarray, ink_cells: np.ndarray | None = None, tile: int = 128,
              n_tiles: int = 5) -> Sharpness | None:
    """Directional edge sharpness of a full-resolution grey page. ``ink_cells`` (optional) is
    a reduced ink picture (any size, larger = more ink) used to pick the tiles with most
    text."""
    h, w = gray.shape
    tile = min(tile, h, w)
    gy_n, gx_n = max(1, h // tile), max(1, w // tile)
    if ink_cells is None:
        step = max(1, tile // 16)
        ink_cells = 255.0 - gray[::step, ::step].astype(np.float32)
    cells = cv2.resize(np.asarray(ink_cells, np.float32), (gx_n, gy_n),
                       interpolation=cv2.INTER_AREA)
    order = np.argsort(cells.ravel())[::-1]
    per_dir = []
    for idx in order[: n_tiles * 3]:
        cy, cx = divmod(int(idx), gx_n)
        if cells[cy, cx] <= 0:
            break
        res = _tile_sharpness(gray[cy * tile:(cy + 1) * tile, cx * tile:(cx + 1) * tile])
        if res is None:
            continue
        per_dir.append(res)
        if len(per_dir) >= n_tiles:
            break
    if not per_dir:
        return None
    d = np.nanmedian(np.array(per_dir), axis=0)
    if np.all(np.isnan(d)):
        return None
    worst, best = float(np.nanmin(d)), float(np.nanmax(d))
    return Sharpness(worst, best, worst / max(best, 1e-6), len(per_dir))


@dataclass(frozen=True)
class Levels:
    paper: float  # grey level of the paper (histogram peak, 0..255)
    ink: float  # dark end (1st percentile)
    contrast: float  # (paper - ink) / 255
    noise: float  # paper noise sigma (grey levels)


def levels(gray_small: np.ndarray, noise: float) -> Levels:
    hist = cv2.calcHist([gray_small], [0], None, [256], [0, 256]).ravel()
    hist = np.convolve(hist, np.ones(5) / 5, mode="same")
    cum = np.cumsum(hist)
    med = int(np.searchsorted(cum, cum[-1] / 2))
    paper = float(med + np.argmax(hist[med:]))
    ink = float(np.searchsorted(cum, cum[-1] * 0.01))
    return Levels(paper, ink, max(0.0, paper - ink) / 255.0, noise)


def residual_skew(gray_coarse: np.ndarray, gray_mid: np.ndarray, paper=skew.AUTO
                  ) -> tuple[float, float]:
    """Skew left on the processed page (degrees) and the estimate's confidence."""
    if isinstance(paper, str):
        paper = skew.paper_mask(gray_mid)
    r = skew.estimate(skew.ink_mask(gray_coarse, paper=paper),
                      skew.ink_mask(gray_mid, paper=paper), None, max_angle=15.0, around=0.0)
    return r.angle, r.confidence


def _views(image: np.ndarray, notes: dict
           ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray | None]:
    """Grey views of ``image`` reduced by f and 2f and, when the pipeline passed it, the
    content mask at f (from the views the pipeline already had, else computed here)."""
    from bingan_imaging.work import analysis_factor

    h, w = image.shape[:2]
    v = notes.get("_views") if isinstance(notes, dict) else None
    if isinstance(v, dict) and tuple(v.get("size", ())) == (w, h):
        return v["coarse"], v["mid"], int(v["factor"]), v.get("content")
    f = analysis_factor(w, h)
    g = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    mid = g
    k = 1
    while k < f:
        mid = cv2.resize(mid, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        k *= 2
    coarse = cv2.resize(mid, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    return coarse, mid, f, None


def _gray_tiles_image(image: np.ndarray) -> np.ndarray:
    """A grey full-resolution picture; the colour image's green channel is close enough for
    edges and costs nothing to take."""
    if image.ndim == 2:
        return image
    return image[:, :, 1]


def assess(image: np.ndarray, dpi: float | None, notes: dict, qc) -> "PageQuality":
    """Metrics of one processed page (BGR, full resolution) and a verdict by ``qc``
    (settings.QcSettings)."""
    from bingan.hooks.types import PageQuality

    coarse, mid, f, kept = _views(image, notes)
    metrics: dict[str, float] = {}
    fails: list[str] = []
    warns: list[str] = []
    # resolution
    camera = isinstance(notes, dict) and notes.get("source") == "camera"
    if dpi:
        metrics["dpi"] = round(float(dpi), 1)
        if camera and dpi < qc.min_dpi_camera:
            paper = notes.get("paper") or "A4"
            fails.append(f"拍照分辨率 {dpi:.0f} DPI（按 {paper} 纸计算），低于要求的 "
                         f"{qc.min_dpi_camera:.0f} DPI：请靠近纸张、让纸张占满画面后重拍")
        elif not camera and dpi < qc.min_dpi:
            fails.append(f"分辨率 {dpi:.0f} DPI，低于要求的 {qc.min_dpi:.0f} DPI")
    else:
        warns.append("分辨率未知（来源未声明 DPI，且未找到纸张边界）")
    # brightness, contrast, noise
    noise = float(_noise_estimate(image))
    lv = levels(mid, noise)
    metrics.update(paper_level=round(lv.paper, 1), ink_level=round(lv.ink, 1),
                   contrast=round(lv.contrast, 3), noise=round(noise, 2))
    if lv.paper < qc.paper_fail:
        fails.append(f"页面过暗（纸张灰度 {lv.paper:.0f}）")
    elif lv.paper < qc.paper_warn:
        warns.append(f"页面偏暗（纸张灰度 {lv.paper:.0f}）")
    v = notes.get("_views") if isinstance(notes, dict) else None
    paper = v["paper"] if isinstance(v, dict) and "paper" in v and v.get("mid") is mid \
        else skew.paper_mask(mid)
    px_mm = (dpi or 300) / 25.4 / f  # view pixels per millimetre
    edge_px = max(1, int(round(1.0 * px_mm)))
    if kept is None or kept.shape != mid.shape:
        min_px = max(3, int(round((1.0 * px_mm) ** 2)))
        kept = content_mod.find_content(mid, min_px, edge=edge_px, paper=paper).kept
    ink_px = int(cv2.countNonZero(kept)) if kept is not None else 0
    edge = content_mod.edge_fraction(kept, edge_px) if kept is not None and ink_px else 0.0
    blank = bool(notes.get("blank")) if isinstance(notes, dict) and "blank" in notes else \
        ink_px / (px_mm * px_mm) < 12.0
    metrics["blank"] = 1.0 if blank else 0.0
    if not blank:
        if lv.contrast < qc.contrast_fail:
            fails.append(f"对比度过低（{lv.contrast:.2f}）")
        elif lv.contrast < qc.contrast_warn:
            warns.append(f"对比度偏低（{lv.contrast:.2f}）")
        if noise > qc.noise_warn:
            warns.append(f"噪点较多（σ={noise:.1f}）")
        # sharpness at full resolution, where there is most ink (off the page's edge)
        ink = kept if kept is not None else np.zeros(mid.shape[:2], np.uint8)
        cells = ink * np.uint8(255)
        k = max(1, min(mid.shape) // 40)
        cells[:k], cells[-k:], cells[:, :k], cells[:, -k:] = 0, 0, 0, 0
        sh = sharpness(_gray_tiles_image(image), ink_cells=cells)
        if sh is not None:
            metrics.update(sharpness=round(sh.sharpness, 3),
                           sharpness_best=round(sh.best, 3),
                           blur_direction_ratio=round(sh.ratio, 3))
            motion = sh.ratio < qc.motion_ratio_warn
            kind = "运动模糊（一个方向拖影）" if motion else "模糊"
            if sh.sharpness < qc.sharpness_fail:
                fails.append(f"{kind}：清晰度 {sh.sharpness:.2f}")
            elif sh.sharpness < qc.sharpness_warn:
                warns.append(f"{kind}：清晰度 {sh.sharpness:.2f}")
        # skew left over
        angle, conf = residual_skew(coarse, mid, paper)
        if conf >= 0.05:
            metrics["residual_skew"] = round(angle, 3)
            if abs(angle) > qc.skew_fail:
                fails.append(f"仍有倾斜 {angle:.2f}°")
            elif abs(angle) > qc.skew_warn:
                warns.append(f"仍有倾斜 {angle:.2f}°")
        # glare over the text: ink lost under the reflection
        gl = notes.get("glare") if isinstance(notes, dict) else None
        if isinstance(gl, dict) and gl.get("spots"):
            area = float(gl.get("content_mm2", 0.0))
            metrics["glare_mm2"] = float(gl.get("mm2", 0.0))
            metrics["glare_content_mm2"] = area
            where = "，位置见图中方框" if gl.get("boxes") else ""
            if area >= qc.glare_fail_mm2:
                fails.append(f"反光：约 {area / 100:.1f} cm² 的文字区域过曝，文字丢失，"
                             f"请避开灯光直射重拍{where}")
            elif area >= qc.glare_warn_mm2:
                warns.append(f"反光：约 {area / 100:.1f} cm² 的文字区域过曝，请核对{where}")
        # an orientation the cleanup was unsure of: left as captured, for a person to check
        oc = notes.get("orientation_check") if isinstance(notes, dict) else None
        if isinstance(oc, dict) and oc.get("unsure"):
            metrics["orientation_confidence"] = float(oc.get("confidence", 0.0))
            warns.append(f"页面方向无法确定（把握 {float(oc.get('confidence', 0.0)):.0%}），"
                         "未旋转，请人工确认方向")
        # content touching the edge: cut off at capture?
        metrics["edge_content"] = round(edge, 4)
        if edge > qc.edge_warn:
            warns.append(f"内容贴边（{edge:.1%} 的内容在页边 1 mm 内），可能被裁切")
    else:
        target = {"warn": warns, "fail": fails}.get(qc.blank_status)
        if target is not None:
            target.append("空白页（请确认）")
    status = "fail" if fails else ("warn" if warns else "pass")
    return PageQuality(status=status, metrics=metrics, reasons=tuple(fails + warns))


def _noise_estimate(image: np.ndarray) -> float:
    from bingan_imaging.tone import noise_sigma

    return noise_sigma(image)  # (colour or one channel)
