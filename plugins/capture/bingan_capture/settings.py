"""Settings of the capture plugin (``[plugins.capture]`` in plugins.toml)."""

from __future__ import annotations

import msgspec


class CaptureSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every setting has a working default, so the plugin runs with no table at all."""

    # Refuse a file bigger than this (the web app itself caps a request at 100 MB).
    max_file_mb: int = 100
    # Pages with more pixels than ``[core] max_page_pixels`` are refused at upload (one limit
    # for capture and imaging).
    max_pages_per_file: int = 500
    # Pixels of all pages of one file together (a PDF at `pdf_dpi`, a multi-page TIFF),
    # checked before anything is rendered or decoded: 500 A4 pages at 300 DPI are 4.4 billion.
    max_file_pixels: int = 4_500_000_000
    # PDF pages are rasterized at this resolution (D2: >= 300 DPI).
    pdf_dpi: int = 300
    # Working days (Monday = 0) that a batch's daily plan is spread over.
    plan_weekdays: list[int] = msgspec.field(default_factory=lambda: [0, 1, 2, 3, 4])
    # Pages the imaging plugin finds blank (the empty back of a sheet) are not stored.
    drop_blank_pages: bool = True
    # `bingan demo load`: how many demo admissions get page images pushed through capture.
    demo_records: int = 20
    # A record counts as being captured (capture and QC staff see its pages as stored) while
    # it is in an open batch, has files being processed or rework open, and this many hours
    # after a file of it was received (the clerk checks the result, QC spot-checks it).
    work_hours: int = 24

    def __post_init__(self) -> None:
        for key in ("max_file_mb", "max_pages_per_file", "max_file_pixels", "pdf_dpi"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1")
        if self.pdf_dpi > 1200:
            raise ValueError("pdf_dpi must be <= 1200")
        if not self.plan_weekdays or any(d not in range(7) for d in self.plan_weekdays):
            raise ValueError("plan_weekdays must list weekday numbers 0 (Monday) .. 6")
        if self.work_hours < 0:
            raise ValueError("work_hours must be >= 0")
        if self.demo_records < 0:
            raise ValueError("demo_records must be >= 0")
