"""Settings of the reading plugin (``[plugins.reading]`` in plugins.toml).

Every default is valid with no settings at all: front-page signers and the treating physicians
of a current stay read without applying, nothing is shared by department, applications go to
the ``records`` role, grants last at most 30 days, and served pages carry the watermark.
"""

from __future__ import annotations

import re

import msgspec

from bingan.core.records import SIGNER_ROLES

PHYSICIAN_SIGNER_ROLES = ["dept_head", "chief", "attending", "resident", "fellow", "intern"]
APPROVER_RE = re.compile(r"^(staff:[^\s@]+|role:[^\s@]+(@department)?)$")


class ShareRule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Department-wide sharing (M10): readers in ``to_department`` (their department code, "*"
    any, "same" the record's own department) holding one of ``roles`` (empty: any role) may do
    ``actions`` on records discharged from ``from_department`` ("*" any)."""

    from_department: str = "*"
    to_department: str = "*"
    roles: list[str] = msgspec.field(default_factory=list)
    actions: list[str] = msgspec.field(default_factory=lambda: ["view"])


class WatermarkSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The watermark burned into every served page image."""

    # A TrueType/OpenType font file that draws Chinese; empty: the installed font core.fonts
    # chooses (any CJK family fontconfig lists); none installed: names fall back to pinyin.
    font_path: str = ""
    opacity: float = 0.28        # 0..1, of the text colour over the page
    color: list[int] = msgspec.field(default_factory=lambda: [96, 96, 96])
    font_scale: float = 0.022    # text height as a share of the served image width
    angle: float = 30.0          # degrees, counter-clockwise
    jpeg_quality: int = 80
    max_width: int = 2480        # widest image served (300 DPI A4 is 2480 px)

    def __post_init__(self) -> None:
        if not 0.05 <= self.opacity <= 0.9:
            raise ValueError("opacity must be between 0.05 and 0.9 (legible, never hiding text)")
        if len(self.color) != 3 or not all(0 <= c <= 255 for c in self.color):
            raise ValueError("color must be three integers 0..255")
        if not 0.008 <= self.font_scale <= 0.08:
            raise ValueError("font_scale must be between 0.008 and 0.08")
        if not 40 <= self.jpeg_quality <= 95:
            raise ValueError("jpeg_quality must be between 40 and 95")
        if self.max_width < 320:
            raise ValueError("max_width must be at least 320")


class ReadingSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[plugins.reading]``."""

    # Front-page signers in these roles read that record without applying (M6). The tender
    # says the physicians who signed the front page; nurses, coders and QC staff by
    # configuration.
    signer_roles: list[str] = msgspec.field(default_factory=lambda: list(PHYSICIAN_SIGNER_ROLES))
    signer_actions: list[str] = msgspec.field(default_factory=lambda: ["view"])
    # While a patient is in hospital (an admission without discharge), its admitting and
    # treating physicians read all of the patient's earlier records (M6).
    current_stay: bool = True
    current_stay_signer_roles: list[str] = msgspec.field(
        default_factory=lambda: list(PHYSICIAN_SIGNER_ROLES))
    # front_page (AdmissionIn.extra) keys a connector fills with the admitting/treating
    # physicians' staff numbers (a string or a list of strings)
    current_stay_front_page_keys: list[str] = msgspec.field(default_factory=lambda: [
        "admit_physician", "attending_physician", "resident_physician", "treating_physicians"])
    current_stay_actions: list[str] = msgspec.field(default_factory=lambda: ["view"])
    # An admission still open after this many days is treated as a missed discharge, not as a
    # stay (0: no limit).
    current_stay_max_days: int = 365
    share: list[ShareRule] = msgspec.field(default_factory=list)
    # Applicant's department code (or "*") -> approvers: "role:NAME" (every active holder),
    # "role:NAME@department" (holders in the applicant's department), "staff:NO".
    approvers: dict[str, list[str]] = msgspec.field(
        default_factory=lambda: {"*": ["role:records"]})
    grant_actions: list[str] = msgspec.field(default_factory=lambda: ["view"])
    default_days: int = 7
    max_days: int = 30
    max_items: int = 200          # records in one application
    min_reason_chars: int = 4
    cache_mb: int = 256           # decoded page images kept per process
    # page-image requests one server process works on at once (access check, decode,
    # watermark, encode); the rest wait in line. About the cores one process can use.
    page_workers: int = 2
    watermark: WatermarkSettings = msgspec.field(default_factory=WatermarkSettings)

    def __post_init__(self) -> None:
        for key in ("signer_roles", "current_stay_signer_roles"):
            bad = [r for r in getattr(self, key) if r not in SIGNER_ROLES]
            if bad:
                raise ValueError(f"{key} names an unknown front-page role {bad[0]!r} "
                                 f"(known: {', '.join(SIGNER_ROLES)})")
        for dept, entries in self.approvers.items():
            if not entries:
                raise ValueError(f"approvers for {dept!r} is empty")
            for e in entries:
                if not APPROVER_RE.match(e):
                    raise ValueError(f"approvers entry {e!r} must be role:NAME, "
                                     "role:NAME@department or staff:NO")
        if "*" not in self.approvers:
            raise ValueError('approvers needs a "*" entry (applicants of any department)')
        if not 1 <= self.default_days <= self.max_days <= 3660:
            raise ValueError("max_days must be >= default_days >= 1 (and at most 3660)")
        if self.current_stay_max_days < 0 or self.cache_mb < 0 or self.max_items < 1:
            raise ValueError("current_stay_max_days and cache_mb must be >= 0, max_items >= 1")
        if not 1 <= self.page_workers <= 64:
            raise ValueError("page_workers must be between 1 and 64")
