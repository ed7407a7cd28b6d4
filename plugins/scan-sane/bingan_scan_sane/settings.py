"""Settings of the SANE adapter (``[plugins.scan-sane]`` in plugins.toml)."""

from __future__ import annotations

import msgspec


class SaneSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The scanimage program, the default device (``-d``) and scan parameters."""

    scanimage: str = "scanimage"
    device: str = ""
    resolution: int = 300
    mode: str = "Color"

    def __post_init__(self) -> None:
        if not 50 <= self.resolution <= 1200:
            raise ValueError("resolution must be between 50 and 1200")
