"""bingan tantivy: the full-text backend for large archives (tantivy, a Rust search library)
behind ``index_record`` and ``search_fulltext``. What every backend shares is in core (cjk_text:
analysis; fulltext: checks, registry, settings, commands); the engine is backend.py, the wiring
service.py; this module only declares the plugin and its hooks."""

from __future__ import annotations

from typing import Any

from bingan.core.fulltext import BackendSettings
from bingan.hooks import hookimpl
from bingan.hooks.types import AdmissionFilter, AdmissionRef, FulltextHit, PageRef, PluginInfo

from . import service


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
def search_fulltext(query: str, limit: int, offset: int,
                    admissions: AdmissionFilter | None) -> list[FulltextHit] | None:
    return service.search(query, limit, offset, admissions)


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import tantivy

    cli.add_command(tantivy)
