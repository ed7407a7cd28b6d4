"""Settings of the front-page import (``[plugins.admission_import]`` in plugins.toml)."""

from __future__ import annotations

import msgspec


class ImportSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_file_mb: int = 20            # a file larger than this is refused before it is opened
    max_rows: int = 100_000          # rows per file (split larger exports)
    # When the hospital's export has no 住院号 column: how to make one from 病案号 and
    # 住院次数, e.g. "ZY{mrn}{visit:02d}" (it must still match [core] admission_no_pattern).
    admission_no_template: str = ""
    preview_rows: int = 20           # rows shown on the upload page's preview

    def __post_init__(self) -> None:
        if not 1 <= self.max_file_mb <= 150:
            raise ValueError("max_file_mb must be 1-150 (below [core] max_upload_mb)")
        if not 1 <= self.max_rows <= 1_000_000:
            raise ValueError("max_rows must be 1-1000000")
        if self.admission_no_template:
            try:
                self.admission_no_template.format(mrn="00000001", visit=1)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError("admission_no_template may use {mrn} and {visit} only") from exc
