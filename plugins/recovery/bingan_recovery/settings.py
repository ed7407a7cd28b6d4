"""Settings of the recovery plugin (``[plugins.recovery]`` in plugins.toml).

Every default works with no settings at all: records are due 2 working days after discharge
(出院患者病历2日归档率), labels are 50 x 30 mm, receipts are for 58 mm ESC/POS printers, labels go
to the browser's print dialog unless a CUPS queue is named.
"""

from __future__ import annotations

import re

import msgspec

DEFAULT_SUPPLEMENT_KINDS = ["检验报告", "病理报告", "影像检查报告", "会诊记录", "知情同意书",
                            "护理记录", "医嘱单", "其他"]


class RecoverySettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[plugins.recovery]``."""

    # a record is due this many working days after the day of discharge
    due_working_days: int = 2
    # CUPS queue of the record-room label printer; empty: the label opens in the browser
    label_printer: str = ""
    lp_command: str = "lp"
    lp_timeout_seconds: int = 30
    label_width_mm: float = 50.0
    label_height_mm: float = 30.0
    # ESC/POS receipt: characters per line of a 58 mm printer (font A) and its profile
    receipt_columns: int = 32
    escpos_profile: str = "default"
    receipt_title: str = "病案回收交接单"
    # one upload from the phone holds at most this many scans
    max_upload_items: int = 1000
    # the live list in the record room asks for changes this often (seconds)
    live_poll_seconds: int = 3
    supplement_kinds: list[str] = msgspec.field(
        default_factory=lambda: list(DEFAULT_SUPPLEMENT_KINDS))

    def __post_init__(self) -> None:
        if not 1 <= self.due_working_days <= 30:
            raise ValueError("due_working_days must be between 1 and 30")
        if self.label_printer and not re.fullmatch(r"[A-Za-z0-9_.\-]{1,127}", self.label_printer):
            raise ValueError("label_printer: letters, digits, _ . - only (a CUPS queue name)")
        if not (20 <= self.label_width_mm <= 120 and 15 <= self.label_height_mm <= 80):
            raise ValueError("label size must be 20-120 x 15-80 mm")
        if not 24 <= self.receipt_columns <= 64:
            raise ValueError("receipt_columns must be between 24 and 64")
        if not 1 <= self.max_upload_items <= 10000:
            raise ValueError("max_upload_items must be between 1 and 10000")
        if not 1 <= self.live_poll_seconds <= 60:
            raise ValueError("live_poll_seconds must be between 1 and 60")
        if not self.supplement_kinds:
            raise ValueError("supplement_kinds: at least one")
