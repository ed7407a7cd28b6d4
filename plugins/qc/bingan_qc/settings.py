"""Settings of the qc plugin (``[plugins.qc]`` in plugins.toml)."""

from __future__ import annotations

import msgspec


class QcSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Acceptance sampling (D8) and inspection settings; every one has a working default."""

    # Share of a batch's digitized records drawn for inspection, and the least drawn.
    sample_rate: float = 0.05
    min_sample: int = 1
    # A fixed seed makes every draw reproducible from configuration; without it each draw
    # takes a random seed, which is recorded with the sample (so the draw can be replayed).
    seed: int | None = None
    # Reasons offered to the inspector for a failed page (free text is allowed too).
    reasons: list[str] = msgspec.field(default_factory=lambda: [
        "图像模糊", "缺页", "页面倾斜", "裁切不全", "页序错误", "印章不清", "阴影或反光", "重复页",
        "非本病案页面"])

    def __post_init__(self) -> None:
        if not 0 < self.sample_rate <= 1:
            raise ValueError("sample_rate must be > 0 and <= 1")
        if self.min_sample < 1:
            raise ValueError("min_sample must be >= 1")
