"""bingan tantivy: the full-text backend for large archives (tantivy, a Rust search library)
behind ``index_record`` and ``search_fulltext``. What every backend shares is in core (cjk_text:
analysis; fulltext: checks, registry, settings, commands); the engine is backend.py, the wiring
service.py; this module only declares the plugin and its hooks."""

from __future__ import annotations

from typing import Any

from bingan.hooks import hookimpl
from bingan.hooks.types import (
    AdmissionFilter, AdmissionRef, FulltextHit, PageRef, PluginInfo, Runtime,
)

from . import service
from .settings import TantivySettings

__all__ = ["PLUGIN", "TantivySettings"]


PLUGIN = PluginInfo(
    name="tantivy",
    version="0.1.0",
    settings=TantivySettings,
    title="全文检索（tantivy，大型病案库）",
)


@hookimpl
def index_record(admission: AdmissionRef, pages: list[tuple[PageRef, str]],
                 rt: Runtime) -> None:
    service.index_record(rt, admission, pages)


@hookimpl
def search_fulltext(query: str, limit: int, offset: int, admissions: AdmissionFilter | None,
                    rt: Runtime) -> list[FulltextHit] | None:
    return service.search(rt, query, limit, offset, admissions)


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import tantivy

    cli.add_command(tantivy)
