"""``bingan fulltext stats`` and ``bingan fulltext optimize`` (core.fulltext.command_group)."""

from __future__ import annotations

from bingan.core.fulltext import command_group

from .service import registry

fulltext = command_group("fulltext", "全文索引（Whoosh）：统计与优化。", registry,
                         "合并全文索引的所有段（检索更快；大索引需要较长时间）。")
