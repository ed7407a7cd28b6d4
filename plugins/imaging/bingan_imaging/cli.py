"""``bingan imaging process IN -o OUT --json``: clean one file with the configured steps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from bingan.core.cli import pass_rt
from bingan.hooks.types import PAPER_SIZES_MM, Runtime


@click.group("imaging")
def imaging() -> None:
    """页面图像处理与质检。"""


@imaging.command("process")
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="处理后的 JPEG 写到这里")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出处理步骤与质检结果")
@click.option("--source", type=click.Choice(["scanner", "camera", "photocopy", "unknown"]),
              default="unknown", show_default=True, help="图像来源")
@click.option("--dpi", type=float, default=None, help="来源声明的分辨率（DPI）")
@click.option("--paper", type=click.Choice(list(PAPER_SIZES_MM)), default=None,
              help="拍摄的纸张（拍照时按它计算分辨率；不给则用设置 camera_paper_mm）")
@pass_rt
def process_cmd(rt: Runtime, src: Path, out: Path, as_json: bool, source: str,
                dpi: float | None, paper: str | None) -> None:
    """对一个图像文件运行全部页面处理步骤（纠偏、去噪、裁边……）并质检。"""
    from bingan_imaging.codec import ImageError
    from bingan_imaging.pipeline import PageStepError

    data = src.read_bytes()
    try:
        page = rt.pm.hook.process_page(rt=rt, data=data, source=source, dpi=dpi,
                                       paper=paper)
    except (ImageError, PageStepError) as exc:
        raise click.ClickException(f"{src.name}：{exc}") from exc
    if page is None:
        raise click.ClickException("没有启用的插件处理页面图像（process_page）")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(page.image)
    tmp.replace(out)
    s = page.steps
    result = {
        "input": str(src), "output": str(out), "width": page.width, "height": page.height,
        "dpi": page.dpi, "dpi_source": s.get("dpi_source"), "source": s.get("source"),
        "steps": s.get("steps_run", []),
        "orientation": s.get("orientation"),
        "angle": (s.get("deskew") or {}).get("angle"),
        "crop_box": (s.get("crop") or {}).get("box"),
        "blank": page.blank,
        "quality": {"status": page.quality.status, "metrics": page.quality.metrics,
                    "reasons": list(page.quality.reasons)},
        "notes": s,
    }
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        q = page.quality
        click.echo(f"{out}：{page.width}×{page.height}，{page.dpi or '?'} DPI，"
                   f"倾斜 {result['angle']}°，方向 {result['orientation']}°，"
                   f"质检 {q.status}" + (f"（{'；'.join(q.reasons)}）" if q.reasons else ""))
    sys.stdout.flush()
