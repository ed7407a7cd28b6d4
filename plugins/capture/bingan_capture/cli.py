"""``bingan capture ...`` commands: watch a hot folder, import files, scan with SANE, print
cover sheets."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bingan.core.cli import pass_ctx
from bingan_capture.settings import CaptureSettings
from bingan.core.config import CoreSettings


def _process(rt) -> None:
    from bingan.core.tasks import run_until_idle
    from bingan_capture.ingest import TASK_KIND

    n = run_until_idle(rt, kinds=[TASK_KIND])
    click.echo(f"已处理 {n} 个采集任务")


@click.group("capture")
def capture_group() -> None:
    """病案采集：热文件夹、文件导入、SANE 扫描、封面打印。"""


@capture_group.command("watch")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--once", is_flag=True, help="只扫描一遍目录（等待文件稳定后接收），然后退出")
@click.option("--batch", "batch_id", type=int, help="把接收的文件记入此批次")
@click.option("--stable", type=float, default=None,
              help="文件大小与修改时间保持不变多少秒后才接收（默认取设置）")
@click.option("--process", is_flag=True, help="接收后在本进程立即处理（否则由服务的后台任务处理）")
@pass_ctx
def watch(ctx, directory: Path, once: bool, batch_id, stable, process: bool) -> None:
    """监视扫描仪软件投放文件的目录 DIRECTORY。

    稳定的文件被接收后移入 DIRECTORY/done；被拒收的移入 DIRECTORY/rejected，并写出
    同名 .error.txt 说明原因。子目录名为住院号时，其中文件直接归入该病案。
    """
    from bingan_capture.ingest import CaptureError
    from bingan_capture.sources import HotFolder

    rt = ctx.rt
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
        folder.run_forever(rt.settings(CaptureSettings).hot_folder_poll_seconds, on_result)
    except KeyboardInterrupt:
        click.echo("已停止")


@capture_group.command("import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--admission", help="住院号或病案条码（不给则按页面上的条码识别）")
@click.option("--batch", "batch_id", type=int, help="记入此批次")
@click.option("--process", is_flag=True, help="接收后在本进程立即处理")
@pass_ctx
def import_files(ctx, files, admission, batch_id, process: bool) -> None:
    """导入图像或 PDF 文件（JPEG、PNG、TIFF 多页、PDF）。"""
    from bingan.core import audit
    from bingan_capture.ingest import CaptureError, receive

    rt = ctx.rt
    who = audit.Actor.cli()
    bad = 0
    for path in files:
        try:
            with rt.sessions() as s, s.begin():
                got = receive(s, rt, path.read_bytes(), path.name, "import",
                              admission_no=admission, batch_id=batch_id, by=who.staff_no,
                              actor=who)
        except CaptureError as exc:
            bad += 1
            click.echo(f"✗ {path.name}：{exc}", err=True)
            continue
        if got.duplicate:
            click.echo(f"= {path.name}：已接收过（采集 #{got.capture_id}），未重复保存")
        else:
            click.echo(f"✓ {path.name}：采集 #{got.capture_id}，{got.frames} 页")
    if process:
        _process(rt)
    if bad:
        sys.exit(1)


@capture_group.command("scan")
@click.option("--admission", required=True, help="住院号或病案条码")
@click.option("--device", help="SANE 设备名（scanimage -L 列出；测试设备为 test）")
@click.option("--resolution", type=int, help="分辨率 DPI（默认取设置，300）")
@click.option("--mode", help="Color / Gray / Lineart（默认取设置）")
@click.option("--adf", is_flag=True, help="从自动进纸器连续扫描所有纸张")
@click.option("--option", "extra", multiple=True, help="传给 scanimage 的其他选项，可多次给出")
@click.option("--batch", "batch_id", type=int, help="记入此批次")
@click.option("--process", is_flag=True, help="接收后在本进程立即处理")
@pass_ctx
def scan_cmd(ctx, admission, device, resolution, mode, adf, extra, batch_id, process) -> None:
    """用 SANE 扫描仪（scanimage）扫描并存入指定病案。"""
    from bingan.core import audit
    from bingan_capture.ingest import CaptureError, receive
    from bingan_capture.sources import scan

    rt = ctx.rt
    who = audit.Actor.cli()
    try:
        with rt.sessions() as s:
            from bingan_capture.ingest import resolve_admission

            resolve_admission(s, admission)  # fail before scanning paper
        pages = scan(rt.settings(CaptureSettings), device=device, resolution=resolution, mode=mode,
                     adf=adf, extra=tuple(extra))
        for name, data in pages:
            with rt.sessions() as s, s.begin():
                got = receive(s, rt, data, name, "sane", admission_no=admission,
                              batch_id=batch_id, by=who.staff_no, actor=who)
            click.echo(f"✓ {name}：采集 #{got.capture_id}，{got.frames} 页")
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from exc
    if process:
        _process(rt)


@capture_group.command("cover-sheet")
@click.argument("admissions", nargs=-1)
@click.option("--batch", "batch_id", type=int, help="该批次的全部病案")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="输出 PDF 文件")
@pass_ctx
def cover_sheet(ctx, admissions, batch_id, output: Path) -> None:
    """生成病案扫描封面（分隔页）PDF，每份病案一页，带病案条码。"""
    from sqlalchemy import select

    from bingan.core import audit
    from bingan.core.models import Admission
    from bingan_capture.codes import cover_info, cover_sheets_pdf
    from bingan_capture.ingest import CaptureError, resolve_admission
    from bingan_capture.models import CaptureBatchItem

    rt = ctx.rt
    if not admissions and batch_id is None:
        raise click.UsageError("请给出住院号或 --batch")
    hospital = rt.settings(CoreSettings).hospital_name
    with rt.sessions() as s, s.begin():
        try:
            adms = [resolve_admission(s, a) for a in admissions]
        except CaptureError as exc:
            raise click.ClickException(str(exc)) from exc
        if batch_id is not None:
            ids = list(s.scalars(select(CaptureBatchItem.admission_id).where(
                CaptureBatchItem.batch_id == batch_id).order_by(CaptureBatchItem.id)))
            if not ids:
                raise click.ClickException(f"批次 {batch_id} 不存在或没有病案")
            adms += [s.get(Admission, i) for i in ids]
        pdf = cover_sheets_pdf([cover_info(a, hospital, tz=rt.tz) for a in adms])
        for a in adms:
            audit.record(s, rt, "capture.cover.print", actor=audit.Actor.cli(),
                         mrn=a.patient.mrn, admission_no=a.admission_no)
    output.write_bytes(pdf)
    click.echo(f"已生成 {output}：{len(adms)} 页封面")
