"""Settings of the tantivy backend (``[plugins.tantivy]`` in plugins.toml)."""

from __future__ import annotations

from bingan.core.fulltext import BackendSettings


class TantivySettings(BackendSettings):
    """``[plugins.tantivy]`` in plugins.toml: ``path``, ``snippet_chars`` and
    ``writer_timeout_s`` (core.fulltext.BackendSettings; default folder
    BINGAN_HOME/fulltext/tantivy), and:"""

    # Indexing memory per writer thread (tantivy needs at least 15 MB) and writer threads.
    writer_heap_mb: int = 64
    writer_threads: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 15 <= self.writer_heap_mb <= 4000:
            raise ValueError("writer_heap_mb must be between 15 and 4000")
        if not 1 <= self.writer_threads <= 16:
            raise ValueError("writer_threads must be between 1 and 16")
