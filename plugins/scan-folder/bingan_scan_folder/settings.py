"""Settings of the hot-folder adapter (``[plugins.scan-folder]`` in plugins.toml)."""

from __future__ import annotations

import msgspec


class FolderSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A file is taken once its size and modification time did not change for
    ``stable_seconds`` (the scanner may still be writing it); the folder is looked at every
    ``poll_seconds``."""

    stable_seconds: float = 2.0
    poll_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.stable_seconds < 0 or self.poll_seconds <= 0:
            raise ValueError("stable_seconds must be >= 0 and poll_seconds > 0")
