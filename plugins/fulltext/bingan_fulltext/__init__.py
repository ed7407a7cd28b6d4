"""bingan fulltext: the embedded full-text backend (Whoosh, package whoosh3) behind
``index_record`` and ``search_fulltext``. What every backend shares is in core (cjk_text:
analysis; fulltext: checks, registry, settings, commands); the engine is backend.py, the wiring
service.py; this module only declares the plugin and its hooks."""

from __future__ import annotations

from typing import Any

from bingan.core.fulltext import BackendSettings
from bingan.hooks import hookimpl
from bingan.hooks.types import AdmissionFilter, AdmissionRef, FulltextHit, PageRef, PluginInfo

from . import service


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
def search_fulltext(query: str, limit: int, offset: int,
                    admissions: AdmissionFilter | None) -> list[FulltextHit] | None:
    return service.search(query, limit, offset, admissions)


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import fulltext

    cli.add_command(fulltext)
