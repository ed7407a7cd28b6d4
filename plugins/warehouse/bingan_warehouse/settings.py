"""Settings of the warehouse plugin (``[plugins.warehouse]`` in plugins.toml).

Every default works with no settings: boxes hold 40 records, a shelf level 8 boxes, box
numbers are ``BX`` + 6 digits, a borrowed record is due back in 3 working days (医疗机构病历管理
规定), box labels are 100 x 60 mm and shelf labels 80 x 40 mm.
"""

from __future__ import annotations

import re

import msgspec


class WarehouseSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[plugins.warehouse]``."""

    box_capacity: int = 40
    shelf_capacity: int = 8
    # a box number (and barcode): this prefix and this many digits
    box_prefix: str = "BX"
    box_digits: int = 6
    loan_working_days: int = 3
    # the lookup shows at most this many records
    max_results: int = 200
    # one boxing run takes at most this many scans
    max_scans: int = 2000
    box_label_mm: tuple[float, float] = (100.0, 60.0)
    shelf_label_mm: tuple[float, float] = (80.0, 40.0)
    # overdue reminders are sent at this hour (hospital time), once a day per loan
    reminder_hour: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.box_capacity <= 500:
            raise ValueError("box_capacity must be between 1 and 500")
        if not 1 <= self.shelf_capacity <= 200:
            raise ValueError("shelf_capacity must be between 1 and 200")
        if not re.fullmatch(r"[A-Z]{1,4}", self.box_prefix):
            raise ValueError("box_prefix: 1-4 capital letters")
        if self.box_prefix in ("BA", "SH"):
            raise ValueError("box_prefix: BA is the record barcode's, SH the shelf's")
        if not 3 <= self.box_digits <= 10:
            raise ValueError("box_digits must be between 3 and 10")
        if not 1 <= self.loan_working_days <= 60:
            raise ValueError("loan_working_days must be between 1 and 60")
        if not 10 <= self.max_results <= 2000:
            raise ValueError("max_results must be between 10 and 2000")
        if not 1 <= self.max_scans <= 10000:
            raise ValueError("max_scans must be between 1 and 10000")
        for w, h in (self.box_label_mm, self.shelf_label_mm):
            if not (30 <= w <= 210 and 20 <= h <= 150):
                raise ValueError("label sizes must be 30-210 x 20-150 mm")
        if not 0 <= self.reminder_hour <= 23:
            raise ValueError("reminder_hour must be between 0 and 23")
