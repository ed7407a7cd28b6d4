"""``bingan pageindex ...``: OCR one image file, queue records, show the state."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from bingan.core.cli import Ctx
from bingan.hooks.types import Runtime


@click.group("pageindex")
def pageindex() -> None:
    """页面索引：文字识别、页面分类与校正。"""


def _rt() -> Runtime:
    """The runtime of this command line invocation (built on first use)."""
    return click.get_current_context().ensure_object(Ctx).rt


@pageindex.command("ocr")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="JSON 输出（含文字位置）")
def ocr_cmd(image: Path, as_json: bool) -> None:
    """识别一个图像文件：打印文字与页面类型（不写数据库）。"""
    from bingan.hooks.types import PageRef

    from bingan_pageindex.engine import OcrInputError, decode_image
    from bingan_pageindex.service import extract_and_classify

    rt = _rt()
    try:
        img = decode_image(image.read_bytes())
    except OcrInputError as exc:
        raise click.ClickException(f"{image}: {exc}") from exc
    ref = PageRef(id=0, admission_id=0, seq=1, page_type=None, image_sha256=None,
                  original_sha256=None)
    blocks, guess, ms, engine = extract_and_classify(rt, img, ref)
    from bingan_pageindex.engine import blocks_text

    text = blocks_text(blocks)
    if as_json:
        click.echo(json.dumps({
            "file": str(image), "width": int(img.shape[1]), "height": int(img.shape[0]),
            "engine": engine, "ms": ms,
            "page_type": guess.page_type if guess else None,
            "confidence": guess.confidence if guess else None,
            "text": text,
            "blocks": [{"text": b.text, "box": list(b.box), "confidence": b.confidence}
                       for b in blocks]}, ensure_ascii=False, indent=2))
        return
    click.echo(text)
    click.echo("-" * 40)
    if guess is not None:
        click.echo(f"页面类型：{guess.page_type}（置信度 {guess.confidence:.2f}）  "
                   f"用时 {ms} ms  {engine}")


@pageindex.command("run")
@click.argument("admission_nos", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="所有尚未识别的页面")
@click.option("--wait", is_flag=True, help="排队后在前台运行识别，直到队列为空")
def run_cmd(admission_nos: tuple[str, ...], all_: bool, wait: bool) -> None:
    """为住院号（ZY...）或全部病案排队识别；已识别的页面不会重复识别。"""
    from sqlalchemy import exists, select

    from bingan.core import audit
    from bingan.core.models import Admission, Page

    from bingan_pageindex.models import PageText
    from bingan_pageindex.service import KIND, enqueue_admission, enqueue_pages

    if bool(admission_nos) == all_:
        raise click.UsageError("请给出住院号，或使用 --all（二者取一）")
    rt = _rt()
    with rt.sessions() as s, s.begin():
        if all_:
            done = exists().where(PageText.page_id == Page.id,
                                  PageText.image_sha256 == Page.image_sha256)
            pages = list(s.scalars(select(Page).where(
                Page.replaced_by_id.is_(None), Page.image_sha256.is_not(None), ~done)
                .order_by(Page.admission_id, Page.seq)))
            n = enqueue_pages(s, rt, pages)
        else:
            adms = []
            for no in admission_nos:
                adm = s.scalar(select(Admission).where(Admission.admission_no == no))
                if adm is None:
                    raise click.ClickException(f"住院号 {no} 不存在（未排队任何页面）")
                adms.append(adm)
            n = sum(enqueue_admission(s, rt, a) for a in adms)
        audit.record(s, rt, "pageindex.run", actor=audit.Actor.cli(),
                     detail={"admissions": list(admission_nos) or "all", "queued": n})
    click.echo(f"已排队 {n} 页")
    if wait and n:
        from bingan.core.tasks import run_until_idle

        ran = run_until_idle(rt, kinds=[KIND])
        click.echo(f"已识别 {ran} 页")


@pageindex.command("reindex")
@click.argument("admission_nos", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="所有已有识别文字的病案")
def reindex_cmd(admission_nos: tuple[str, ...], all_: bool) -> None:
    """把已识别的文字重新送入全文索引（不重新识别、不改页面类型与顺序）：
    更换或重建全文检索后端后使用。"""
    from sqlalchemy import select

    from bingan.core import audit
    from bingan.core.models import Admission

    from bingan_pageindex.models import PageText
    from bingan_pageindex.service import resend

    if bool(admission_nos) == all_:
        raise click.UsageError("请给出住院号，或使用 --all（二者取一）")
    rt = _rt()
    with rt.sessions() as s:
        if all_:
            ids = list(s.scalars(select(PageText.admission_id).distinct()
                                 .order_by(PageText.admission_id)))
        else:
            ids = []
            for no in admission_nos:
                aid = s.scalar(select(Admission.id).where(Admission.admission_no == no))
                if aid is None:
                    raise click.ClickException(f"住院号 {no} 不存在（未重建任何病案）")
                ids.append(aid)
    sent = skipped = 0
    with click.progressbar(ids, label="重建全文索引", show_pos=True,
                           file=sys.stderr) as bar:
        for aid in bar:
            if resend(rt, aid):
                sent += 1
            else:
                skipped += 1
    with rt.sessions() as s, s.begin():
        audit.record(s, rt, "pageindex.reindex", actor=audit.Actor.cli(),
                     detail={"admissions": list(admission_nos) or "all", "sent": sent,
                             "waiting_for_ocr": skipped})
    click.echo(f"已重新索引 {sent} 份病案" + (f"；{skipped} 份尚有页面待识别，识别完成后自动索引"
                                         if skipped else ""))


@pageindex.command("status")
def status_cmd() -> None:
    """各状态的病案数与识别队列。"""
    from sqlalchemy import func, select

    from bingan_pageindex.models import RecordState
    from bingan_pageindex.service import STATUS_LABELS, queue_counts

    rt = _rt()
    with rt.sessions() as s:
        counts = dict(s.execute(select(RecordState.status, func.count())
                                .group_by(RecordState.status)).all())
        q = queue_counts(s)
    click.echo("  ".join(f"{label}：{counts.get(k, 0)}" for k, label in STATUS_LABELS.items()))
    words = {"queued": "排队中", "running": "识别中", "done": "已完成", "failed": "失败"}
    click.echo("识别队列  " + "  ".join(f"{w}：{q.get(k, 0)}" for k, w in words.items()))
    sys.exit(0)
