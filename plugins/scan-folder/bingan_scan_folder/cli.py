"""``bingan folder watch DIR``: take what scanner software saves into a folder."""

from __future__ import annotations

from pathlib import Path

import click

from bingan.core.cli import pass_rt
from bingan.hooks.types import Runtime
from bingan_scan_folder.settings import FolderSettings


def _process(rt: Runtime) -> None:
    from bingan.core.tasks import run_until_idle
    from bingan_capture.ingest import TASK_KIND

    n = run_until_idle(rt, kinds=[TASK_KIND])
    click.echo(f"已处理 {n} 个采集任务")


@click.group("folder")
def folder_group() -> None:
    """热文件夹：监视扫描仪软件投放文件的目录。"""


@folder_group.command("watch")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--once", is_flag=True, help="只扫描一遍目录（等待文件稳定后接收），然后退出")
@click.option("--batch", "batch_id", type=int, help="把接收的文件记入此批次")
@click.option("--stable", type=float, default=None,
              help="文件大小与修改时间保持不变多少秒后才接收（默认取设置）")
@click.option("--process", is_flag=True, help="接收后在本进程立即处理（否则由服务的后台任务处理）")
@pass_rt
def watch(rt: Runtime, directory: Path, once: bool, batch_id, stable, process: bool) -> None:
    """监视扫描仪软件投放文件的目录 DIRECTORY。

    稳定的文件被接收后移入 DIRECTORY/done；被拒收的移入 DIRECTORY/rejected，并写出
    同名 .error.txt 说明原因。子目录名为住院号时，其中文件直接归入该病案。
    """
    from bingan_capture.ingest import CaptureError
    from bingan_scan_folder.folder import HotFolder

    try:
        folder = HotFolder(rt, directory, batch_id=batch_id, stable_seconds=stable)
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from exc

    def show(r) -> None:
        mark = "✓" if r.ok else "✗"
        click.echo(f"{mark} {r.path.relative_to(directory)}：{r.message}")

    if once:
        results = folder.run_once()
        for r in results:
            show(r)
        click.echo(f"接收 {sum(r.ok for r in results)} 个，拒收 {sum(not r.ok for r in results)} 个")
        if process:
            _process(rt)
        return
    click.echo(f"正在监视 {directory}（Ctrl+C 停止）")

    def on_result(r) -> None:
        show(r)
        if process and r.ok:
            _process(rt)

    try:
        folder.run_forever(rt.settings(FolderSettings).poll_seconds, on_result)
    except KeyboardInterrupt:
        click.echo("已停止")
