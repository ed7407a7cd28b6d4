"""What the hooks do (core.fulltext.IndexRegistry: check the input, find this runtime's index,
call it), with the settings of ``[plugins.fulltext]``."""

from __future__ import annotations

from bingan.core.fulltext import IndexRegistry, check_pages, check_paging  # noqa: F401 - API

from .backend import WhooshIndex
from .settings import FulltextSettings

registry: IndexRegistry[WhooshIndex] = IndexRegistry(FulltextSettings, "whoosh", WhooshIndex)
index_path = registry.index_path
index_for = registry.index_for
close_all = registry.close_all
index_record = registry.index_record
search = registry.search
