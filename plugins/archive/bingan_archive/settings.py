"""Settings of the archive plugin (``[plugins.archive]`` in plugins.toml); all have defaults."""

from __future__ import annotations

import datetime as dt
import re

import msgspec

SAMPLE = {"mrn": "00123456", "visit_no": 1, "admission_no": "ZY202605000001",
          "discharge": dt.date(2026, 5, 1), "org_code": "12330100470000000X"}


class ArchiveSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # DPI that sizes a page when neither the page nor its JPEG header states a usable one.
    default_dpi: float = 300.0
    # PDF Producer; empty: "bingan-archive <version> (pikepdf <version>)".
    producer: str = ""
    # Queue a PDF build whenever pages are captured (``pages_captured``).
    auto_build: bool = True
    # Safety net for missed hook calls: every 5 minutes a sweep queues a build for records
    # whose newest page is older than this many minutes and newer than their last PDF;
    # 0 turns the sweep off.
    sweep_minutes: int = 10
    # File name (without .pdf) in the folder layout; fields: mrn, visit_no, admission_no,
    # discharge (a date, or None before discharge), org_code.
    file_name: str = "{mrn}_{visit_no}_{discharge:%Y%m%d}"
    # Base name of the catalog index table files (.xlsx and .csv).
    catalog_name: str = "目录清单"
    # Where exports started from the web page are written; empty: BINGAN_HOME/exports.
    export_dir: str = ""

    def __post_init__(self) -> None:
        if not 50 <= self.default_dpi <= 2400:
            raise ValueError("default_dpi must be between 50 and 2400")
        if self.sweep_minutes < 0:
            raise ValueError("sweep_minutes must be 0 (off) or more")
        try:
            name = self.file_name.format(**SAMPLE)
        except (KeyError, ValueError, IndexError, AttributeError) as exc:
            raise ValueError(f"file_name {self.file_name!r} cannot be formatted: {exc}") from exc
        if not name or re.search(r"[/\\:*?\"<>|]|\.\.", name):
            raise ValueError(f"file_name {self.file_name!r} gives a bad file name: {name!r}")
        if not self.catalog_name or re.search(r"[/\\:*?\"<>|]", self.catalog_name):
            raise ValueError(f"catalog_name {self.catalog_name!r} is not a file name")
