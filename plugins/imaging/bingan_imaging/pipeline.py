"""``process_page``: decode, run every configured page step, check quality, encode.

Steps come from every plugin's ``page_steps`` and run in the order of this plugin's ``steps``
setting. This plugin's steps add to one pending piece of work (see work.py) that is applied
once at the end; before a step of another plugin runs, the pending work is applied so that step
sees a real image.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bingan.hooks.types import PageQuality, PageStep, ProcessedPage, Runtime

from bingan_imaging import codec
from bingan_imaging.settings import PAPERS_MM, ImagingSettings
from bingan_imaging.steps import SETTINGS_KEY
from bingan_imaging.work import WORK_KEY, Work

VIEWS_KEY = "_views"
_clock = time.perf_counter  # what timing_ms measures (wall time); tests may swap in CPU time
STATUS_RANK = {"pass": 0, "warn": 1, "fail": 2}


class PageStepError(ValueError):
    """The configured steps cannot run (a name no enabled plugin provides, a name twice)."""


def collect_steps(rt: Runtime) -> dict[str, PageStep]:
    """All ``page_steps`` of the enabled plugins by name (a name offered twice is an error)."""
    found: dict[str, PageStep] = {}
    for group in rt.pm.hook.page_steps(rt=rt):
        for step in group or []:
            if step.name in found:
                raise PageStepError(f"两个插件都提供了页面处理步骤 {step.name!r}")
            found[step.name] = step
    return found


def ordered_steps(rt: Runtime, settings: ImagingSettings) -> list[PageStep]:
    available = collect_steps(rt)
    missing = [n for n in settings.steps if n not in available]
    if missing:
        raise PageStepError(
            f"plugins.toml [plugins.imaging] steps: 没有已启用的插件提供步骤 {missing[0]!r}"
            f"（可用：{', '.join(sorted(available))}）")
    return [available[n] for n in settings.steps]


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items() if not str(k).startswith("_")}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def merge_quality(results: list[PageQuality | None]) -> PageQuality:
    """Combine ``assess_page`` answers: metrics merged, reasons joined, the worst status wins."""
    status, metrics, reasons = "pass", {}, []
    for q in results:
        if q is None:
            continue
        if STATUS_RANK.get(q.status, 2) > STATUS_RANK[status]:
            status = q.status if q.status in STATUS_RANK else "fail"
        metrics.update(q.metrics)
        reasons.extend(q.reasons)
    return PageQuality(status=status, metrics=metrics, reasons=tuple(reasons))


def _box_through(M: np.ndarray, box, w: int, h: int) -> list[int]:
    """The box around a box's corners mapped through ``M``, clipped to the picture."""
    x0, y0, x1, y1 = box
    pts = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], np.float64) @ M.T
    pts = pts[:, :2] / pts[:, 2:3]
    return [max(0, round(float(pts[:, 0].min()))), max(0, round(float(pts[:, 1].min()))),
            min(w, round(float(pts[:, 0].max()))), min(h, round(float(pts[:, 1].max())))]


def _assumed_dpi(width: int, height: int, paper_mm: tuple[float, float]) -> float:
    short_px, short_mm = min(width, height), min(paper_mm)
    return short_px / (short_mm / 25.4)


def process(data: bytes, source: str, dpi: float | None, rt: Runtime, settings: ImagingSettings,
            max_pixels: int | None = None, paper: str | None = None) -> ProcessedPage:
    """Run the whole cleanup of one captured file. Raises codec.ImageError (a ValueError) for
    files that cannot be read or have more than ``max_pixels`` pixels (default: core's one
    limit, ``[core] max_page_pixels``, which capture checks at upload) and PageStepError for a
    step configuration that cannot run. ``paper``: the paper photographed (a name of
    settings.PAPERS_MM; None: the setting ``camera_paper_mm``); a camera capture's DPI follows
    from the sheet found and this size."""
    if paper is not None and paper not in PAPERS_MM:
        raise ValueError(f"未知的纸张 {paper!r}（可选：{'、'.join(PAPERS_MM)}）")
    if max_pixels is None:
        from bingan.core.config import CoreSettings

        max_pixels = CoreSettings().max_page_pixels
    timings: dict[str, float] = {}
    t0 = _clock()
    steps = ordered_steps(rt, settings)  # checked first: a bad configuration decodes nothing
    image, info = codec.decode(data, max_pixels)
    timings["decode"] = (_clock() - t0) * 1000
    src = source if source in ("scanner", "camera", "photocopy") else "unknown"
    notes: dict[str, Any] = {"source": src, "input": info}
    if paper is not None:
        notes["paper"], notes["paper_mm"] = paper, list(PAPERS_MM[paper])
    if dpi:
        notes["dpi"], notes["dpi_source"] = float(dpi), "declared"
    elif info.get("dpi") and src != "camera":
        notes["dpi"], notes["dpi_source"] = float(info["dpi"]), "file"
    if "dpi" not in notes and src != "camera":
        # no DPI declared or in the file: the picture is taken to be the whole sheet
        # (a camera capture gets its DPI from the sheet it finds)
        notes["dpi"] = round(_assumed_dpi(image.shape[1], image.shape[0],
                                          tuple(notes.get("paper_mm")
                                                or settings.camera_paper_mm)), 1)
        notes["dpi_source"] = "assumed from page size"
    work = Work.start(image)
    notes[WORK_KEY], notes[SETTINGS_KEY] = work, settings
    total = np.eye(3)
    applied: list[str] = []
    for step in steps:
        ts = _clock()
        if getattr(step.run, "pending_aware", False):
            out = step.run(work.base, notes)
            if out is not work.base:  # it applied its work itself
                total = work.M @ total
                work = Work.start(out)
        else:
            total = work.M @ total
            current = work.commit()
            out = step.run(current, notes)
            if not isinstance(out, np.ndarray) or out.ndim != 3 or out.shape[2] != 3:
                raise PageStepError(f"页面处理步骤 {step.name!r} 没有返回 BGR 图像")
            work = Work.start(out)
        notes[WORK_KEY] = work
        applied.append(step.name)
        timings[step.name] = (_clock() - ts) * 1000
    # reduced views of the result, for the quality check (cheaper than reducing the output)
    ts = _clock()
    views: dict[str, Any] = {"factor": work.factor, "size": tuple(work.size),
             "mid": work.view(work.factor, ops=True, gray=True),
             "coarse": work.view(work.factor * 2, ops=True, gray=True)}
    # whatever lay outside the paper was cut away or whitened: the check need not look for it
    views["paper"] = None
    cached = work.cache.get("content")
    if cached and cached[0] == work.state and cached[1].kept is not None:
        views["content"] = cached[1].kept  # the crop step's content, in the final frame
    total = work.M @ total
    gray = work.is_gray()  # no colour anywhere: finish and store one channel
    # only where the whitened result shows anything but white paper is the page computed
    out = work.commit(gray=gray, ink_view=views["mid"])
    notes["colour"] = "grey" if gray else "colour"
    timings["commit"] = (_clock() - ts) * 1000
    ts = _clock()
    public = _jsonable(notes)
    public["steps_run"] = applied
    public["transform"] = [[round(float(x), 9) for x in row] for row in total]
    gl = public.get("glare")
    if isinstance(gl, dict) and gl.get("input_boxes"):
        # where the glare is on the processed page (for the inspector)
        h_out, w_out = out.shape[:2]
        gl["boxes"] = [_box_through(total, b, w_out, h_out) for b in gl["input_boxes"]]
    qc_notes = dict(public)
    qc_notes[VIEWS_KEY] = views
    eff_dpi = notes.get("dpi")
    quality = merge_quality(rt.pm.hook.assess_page(image=out, dpi=eff_dpi, notes=qc_notes,
                                                      rt=rt))
    timings["quality"] = (_clock() - ts) * 1000
    ts = _clock()
    jpeg = codec.encode_jpeg(np.ascontiguousarray(out), settings.jpeg_quality, eff_dpi)
    timings["encode"] = (_clock() - ts) * 1000
    timings["total"] = (_clock() - t0) * 1000
    public["timing_ms"] = {k: round(v, 1) for k, v in timings.items()}
    h, w = out.shape[:2]
    return ProcessedPage(image=jpeg, width=int(w), height=int(h),
                         dpi=float(eff_dpi) if eff_dpi else None, steps=public,
                         quality=quality, blank=bool(notes.get("blank", False)))
