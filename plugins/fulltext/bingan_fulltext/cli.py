"""``bingan fulltext stats`` and ``bingan fulltext optimize``.

There is no ``reindex``: the page texts live with the page index (pageindex plugin), which
calls ``index_record`` for each admission; rebuilding the full-text index is its command.
"""

from __future__ import annotations

import json
import time

import click

from core.cli import Ctx, pass_ctx

from .service import index_for


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@click.group("fulltext")
def fulltext() -> None:
    """全文索引（Whoosh）：统计与优化。"""


@fulltext.command("stats")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@pass_ctx
def stats(ctx: Ctx, as_json: bool) -> None:
    """显示全文索引的页数、段数与磁盘占用。"""
    s = index_for(ctx.rt).stats()
    if as_json:
        click.echo(json.dumps(s, ensure_ascii=False))
        return
    click.echo(f"引擎：{s['engine']}\n位置：{s['path']}\n已索引页数：{s['pages']}\n"
               f"待清理的已删除页：{s['deleted']}\n段数：{s['segments']}\n磁盘占用：{_size(s['bytes'])}")


@fulltext.command("optimize")
@pass_ctx
def optimize(ctx: Ctx) -> None:
    """合并全文索引的所有段（检索更快；大索引需要较长时间）。"""
    ix = index_for(ctx.rt)
    if not ix.exists():
        click.echo("全文索引尚未建立，无需优化")
        return
    t0 = time.monotonic()
    ix.optimize()
    s = ix.stats()
    click.echo(f"全文索引已优化：{s['pages']} 页，{s['segments']} 段，{_size(s['bytes'])}，"
               f"用时 {time.monotonic() - t0:.1f} 秒")
