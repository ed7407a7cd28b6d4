"""``bingan copying purge``: the identity-image purge by hand (the nightly job does the same)."""

from __future__ import annotations

import click

from bingan.core.cli import pass_ctx
from bingan_copying.settings import CopyingSettings


@click.group("copying")
def copying() -> None:
    """病历复印：证件影像清理。"""


@copying.command("purge")
@pass_ctx
def purge_cmd(obj) -> None:
    """删除保存期满的复印申请人证件影像。"""
    from bingan_copying.identity import purge

    rt = obj.rt
    n = purge(rt, rt.settings(CopyingSettings))
    click.echo(f"已删除 {n} 份到期的证件影像")
