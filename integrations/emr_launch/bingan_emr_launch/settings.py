"""Settings of the EMR launch links (``[plugins.emr_launch]`` in plugins.toml).

One table per EMR (or CDR / 360 view) system under ``systems``: its own signing key (from the
environment: ``key = { env = "BINGAN_EMR_KEY" }``) and how its user ids map to staff numbers.
"""

from __future__ import annotations

import re

import msgspec

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")


class System(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    key: str  # HMAC-SHA256 key shared with this system (at least 32 characters)
    users: dict[str, str] = msgspec.field(default_factory=dict)  # EMR user id -> staff number
    # the EMR's user ids are the hospital's staff numbers (then ``users`` only lists exceptions)
    user_is_staff_no: bool = False


class EmrLaunchSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    systems: dict[str, System] = msgspec.field(default_factory=dict)
    max_age_seconds: int = 120   # a link is good this long after its ``ts``
    clock_skew_seconds: int = 30  # ... and from this long before it (the EMR's clock runs ahead)
    # Origins of the 360 view (and EMR) pages allowed to frame /emr/embed
    embed_origins: list[str] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        for name, system in self.systems.items():
            if not _NAME.match(name):
                raise ValueError(f"systems.{name}: a system name is 1-32 letters, digits, _ or -")
            if len(system.key) < 32:
                raise ValueError(f"systems.{name}.key must be at least 32 characters "
                                 "(write it as {{ env = \"NAME\" }})")
        if not 10 <= self.max_age_seconds <= 900:
            raise ValueError("max_age_seconds must be 10-900 (a launch link is short-lived)")
        if not 0 <= self.clock_skew_seconds <= 300:
            raise ValueError("clock_skew_seconds must be 0-300")
        for origin in self.embed_origins:
            if not _ORIGIN.match(origin):
                raise ValueError(f"embed_origins: {origin!r} is not an origin like "
                                 "https://360.hospital.local")
