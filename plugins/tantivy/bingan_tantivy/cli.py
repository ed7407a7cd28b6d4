"""``bingan tantivy stats`` and ``bingan tantivy optimize`` (core.fulltext.command_group)."""

from __future__ import annotations

from bingan.core.fulltext import command_group

from .service import registry

tantivy = command_group("tantivy", "全文索引（tantivy）：统计与优化。", registry,
                        "等待全文索引的段合并完成并清理不再使用的文件。")
