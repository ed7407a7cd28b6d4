"""bingan fulltext: the embedded full-text backend (Whoosh, package whoosh3) behind
``index_record`` and ``search_fulltext``. Logic lives in core.cjk_text (shared analysis), backend.py and
service.py; this module only declares the plugin and its hooks."""

from __future__ import annotations

from typing import Any

import msgspec

from hooks import hookimpl
from hooks.types import AdmissionRef, FulltextHit, PageRef, PluginInfo

from . import service


class FulltextSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[plugins.fulltext]`` in plugins.toml."""

    # Index folder; a relative path is under BINGAN_HOME. Empty: BINGAN_HOME/fulltext/whoosh.
    path: str = ""
    # Characters of page text around the first match in a hit's snippet.
    snippet_chars: int = 100
    # How long a writer waits for another process holding the index's write lock.
    writer_timeout_s: float = 30.0
    # Whoosh's in-memory buffer before it spills to temporary files while indexing.
    writer_memory_mb: int = 128

    def __post_init__(self) -> None:
        if not 20 <= self.snippet_chars <= 1000:
            raise ValueError("snippet_chars must be between 20 and 1000")
        if not 0 < self.writer_timeout_s <= 3600:
            raise ValueError("writer_timeout_s must be > 0 and <= 3600 seconds")
        if not 16 <= self.writer_memory_mb <= 8192:
            raise ValueError("writer_memory_mb must be between 16 and 8192")


PLUGIN = PluginInfo(
    name="fulltext",
    version="0.1.0",
    settings=FulltextSettings,
    title="全文检索（Whoosh，内嵌默认）",
)


@hookimpl
def index_record(admission: AdmissionRef, pages: list[tuple[PageRef, str]]) -> None:
    service.index_record(admission, pages)


@hookimpl
def search_fulltext(query: str, limit: int, offset: int) -> list[FulltextHit] | None:
    return service.search(query, limit, offset)


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import fulltext

    cli.add_command(fulltext)
