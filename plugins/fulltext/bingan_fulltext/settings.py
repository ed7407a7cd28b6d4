"""Settings of the fulltext backend (``[plugins.fulltext]`` in plugins.toml)."""

from __future__ import annotations

from bingan.core.fulltext import BackendSettings


class FulltextSettings(BackendSettings):
    """``[plugins.fulltext]`` in plugins.toml: ``path``, ``snippet_chars`` and
    ``writer_timeout_s`` (core.fulltext.BackendSettings; default folder
    BINGAN_HOME/fulltext/whoosh), and:"""

    # Whoosh's in-memory buffer before it spills to temporary files while indexing.
    writer_memory_mb: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 16 <= self.writer_memory_mb <= 8192:
            raise ValueError("writer_memory_mb must be between 16 and 8192")
