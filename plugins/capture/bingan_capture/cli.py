"""``bingan capture ...`` commands: import files, print cover sheets. (The hot folder and SANE
scanning are the adapters scan-folder and scan-sane.)"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bingan.core.cli import pass_ctx
from bingan.core.config import CoreSettings


def _process(rt) -> None:
    from bingan.core.tasks import run_until_idle
    from bingan_capture.ingest import TASK_KIND

    n = run_until_idle(rt, kinds=[TASK_KIND])
    click.echo(f"已处理 {n} 个采集任务")


@click.group("capture")
def capture_group() -> None:
    """病案采集：文件导入、封面打印（热文件夹、扫描仪等来源见各采集插件）。"""


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
