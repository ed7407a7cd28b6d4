"""bingan tantivy: the full-text backend for large archives (tantivy, a Rust search library)
behind ``index_record`` and ``search_fulltext``. Logic lives in core.cjk_text (shared analysis), backend.py and
service.py; this module only declares the plugin and its hooks."""

from __future__ import annotations

from typing import Any

import msgspec

from hooks import hookimpl
from hooks.types import AdmissionRef, FulltextHit, PageRef, PluginInfo

from . import service


class TantivySettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[plugins.tantivy]`` in plugins.toml."""

    # Index folder; a relative path is under BINGAN_HOME. Empty: BINGAN_HOME/fulltext/tantivy.
    path: str = ""
    # Characters of page text around the first match in a hit's snippet.
    snippet_chars: int = 100
    # How long a writer waits for another process holding the index's writer lock.
    writer_timeout_s: float = 30.0
    # Indexing memory per writer thread (tantivy needs at least 15 MB) and writer threads.
    writer_heap_mb: int = 64
    writer_threads: int = 1

    def __post_init__(self) -> None:
        if not 20 <= self.snippet_chars <= 1000:
            raise ValueError("snippet_chars must be between 20 and 1000")
        if not 0 < self.writer_timeout_s <= 3600:
            raise ValueError("writer_timeout_s must be > 0 and <= 3600 seconds")
        if not 15 <= self.writer_heap_mb <= 4000:
            raise ValueError("writer_heap_mb must be between 15 and 4000")
        if not 1 <= self.writer_threads <= 16:
            raise ValueError("writer_threads must be between 1 and 16")


PLUGIN = PluginInfo(
    name="tantivy",
    version="0.1.0",
    settings=TantivySettings,
    title="全文检索（tantivy，大型病案库）",
)


@hookimpl
def index_record(admission: AdmissionRef, pages: list[tuple[PageRef, str]]) -> None:
    service.index_record(admission, pages)


@hookimpl
def search_fulltext(query: str, limit: int, offset: int) -> list[FulltextHit] | None:
    return service.search(query, limit, offset)


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import tantivy

    cli.add_command(tantivy)
