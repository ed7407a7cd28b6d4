"""Settings of the imaging plugin (``[plugins.imaging]`` and ``[plugins.imaging.qc]`` in
plugins.toml). Every field has a default, so the plugin runs with no settings at all."""

from __future__ import annotations

import msgspec

from bingan.hooks.types import PAPER_SIZES_MM

# The steps this plugin provides, in their default order. A step another plugin provides
# through ``page_steps`` is named with a dot ("<plugin>.<step>") and checked when pages are
# processed (this plugin cannot see other plugins while its settings are validated).
# Paper sizes a phone may photograph (width, height in mm; the hook contract's names): the
# effective DPI of a photo follows from the sheet found in it and the paper it is. 16K: 正16开
# (大16开 is 210 x 285: give it as [210, 285] in camera_paper_mm).
PAPERS_MM = dict(PAPER_SIZES_MM)

OWN_STEPS = ("orientation", "perspective", "glare", "dewarp", "deskew", "illumination", "denoise",
             "crop", "blank")


class QcSettings(msgspec.Struct, forbid_unknown_fields=True):
    """Thresholds of the image quality check (D7). A page fails or warns on any one."""

    min_dpi: float = 300.0  # D2: >= 300 DPI required
    # the hospital's minimum for camera captures (the tender asks for >= 300 as for scans);
    # the phone page tells the photographer at once when a photo is below it
    min_dpi_camera: float = 300.0
    sharpness_fail: float = 0.20  # edge sharpness, worst direction (~0.8/sigma of a blur)
    sharpness_warn: float = 0.28
    motion_ratio_warn: float = 0.40  # worst/best direction below this: motion blur
    paper_fail: float = 110.0  # grey level of the paper: a dark page
    paper_warn: float = 170.0
    contrast_fail: float = 0.25  # (paper - ink) / 255
    contrast_warn: float = 0.40
    skew_warn: float = 0.3  # degrees of skew left after processing
    skew_fail: float = 1.0
    edge_warn: float = 0.01  # share of the content touching the page's edge (cut off?)
    noise_warn: float = 12.0  # paper noise sigma, grey levels
    blank_status: str = "warn"  # a blank page is flagged for a person to confirm
    glare_warn_mm2: float = 20.0  # glare over the text block: warn from this area (mm²)
    glare_fail_mm2: float = 200.0  # ... fail (retake) from this area

    def __post_init__(self) -> None:
        if self.blank_status not in ("pass", "warn", "fail"):
            raise ValueError("blank_status must be pass, warn or fail")
        if not 0 < self.sharpness_fail <= self.sharpness_warn:
            raise ValueError("sharpness_fail must be > 0 and <= sharpness_warn")


class ImagingSettings(msgspec.Struct, forbid_unknown_fields=True):
    """``[plugins.imaging]``."""

    steps: list[str] = msgspec.field(default_factory=lambda: list(OWN_STEPS))
    jpeg_quality: int = 85
    # below this confidence (0..1) the orientation step turns nothing and flags the page
    orientation_min_confidence: float = 0.4
    max_skew: float = 15.0  # degrees searched by the deskew
    min_skew: float = 0.02  # smaller skews are left alone (no resampling for nothing)
    camera_paper_mm: list[float] = msgspec.field(default_factory=lambda: [210.0, 297.0])
    perspective_sources: list[str] = msgspec.field(default_factory=lambda: ["camera",
                                                                            "unknown"])
    dewarp_sources: list[str] = msgspec.field(default_factory=lambda: ["camera"])
    dewarp_min_mm: float = 0.3  # text lines bent less than this (mm) are left alone
    illumination_threshold: float = 0.15  # relative spread of the paper's brightness to flatten
    whiten_max_gain: float = 1.5  # the denoise tone curve brightens at most this much
    despeckle_sources: list[str] = msgspec.field(default_factory=lambda: ["photocopy",
                                                                          "unknown"])
    crop_padding_mm: float = 5.0
    blank_max_ink_mm2: float = 12.0  # less content ink than this: a blank page
    qc: QcSettings = msgspec.field(default_factory=QcSettings)

    def __post_init__(self) -> None:
        seen = set()
        for name in self.steps:
            if name in seen:
                raise ValueError(f"steps lists {name!r} twice")
            seen.add(name)
            if "." not in name and name not in OWN_STEPS:
                raise ValueError(
                    f"steps has an unknown page step {name!r} (known: {', '.join(OWN_STEPS)};"
                    " steps of other plugins are written <plugin>.<step>)")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("jpeg_quality must be between 1 and 100")
        if len(self.camera_paper_mm) != 2 or min(self.camera_paper_mm) <= 0:
            raise ValueError("camera_paper_mm must be [width, height] in millimetres")
        for field in ("perspective_sources", "despeckle_sources", "dewarp_sources"):
            for s in getattr(self, field):
                if s not in ("scanner", "camera", "photocopy", "unknown"):
                    raise ValueError(f"{field} has an unknown source {s!r}")
        if not 0.0 <= self.orientation_min_confidence <= 1.0:
            raise ValueError("orientation_min_confidence must be between 0 and 1")
        if not 0 < self.max_skew <= 45:
            raise ValueError("max_skew must be in (0, 45]")
