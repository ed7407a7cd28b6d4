"""``bingan search ...``: every search of the UI from the command line (audited as the CLI user).

    bingan search simple --name 张 --icd K35 --json
    bingan search combined query.json --json        (``-`` reads the query from stdin)
    bingan search batch numbers.xlsx --kind admission_no --json
    bingan search fulltext "阑尾炎" --as D0001 --json
    bingan search reindex [--full] [--analyze]
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click
import msgspec

from bingan.core.audit import Actor
from bingan.core.cli import pass_ctx
from bingan_search.settings import SearchSettings


def _emit(obj, as_json: bool, text_fn) -> None:
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(obj), ensure_ascii=False, indent=2))
    else:
        text_fn(obj)


def _fmt_dt(v, tz) -> str:
    if v is None:
        return ""
    return v.astimezone(tz).strftime("%Y-%m-%d")


def _print_hits(hits, header: str, tz) -> None:
    click.echo(header)
    for h in hits:
        click.echo(f"  {h.mrn:<10} {h.name:<6} {h.admission_no:<16} 第{h.visit_no}次 "
                   f"{_fmt_dt(h.admitted_at, tz)}~{_fmt_dt(h.discharged_at, tz)} "
                   f"{h.department or h.department_code or ''} "
                   f"{h.main_diagnosis_code or ''} {h.main_diagnosis or ''}")


def _print_page(res, tz) -> None:
    more = "+" if res.total_capped else ""
    _print_hits(res.hits, f"共 {res.total}{more} 条，第 {res.page}/{res.pages} 页", tz)


def _paging_options(fn):
    for opt in reversed([
        click.option("--page", default=1, show_default=True, type=int, help="页码"),
        click.option("--page-size", type=int, help="每页条数（默认取设置 page_size）"),
        click.option("--sort", help="排序列：discharged_at admitted_at mrn name admission_no "
                                    "visit_no department age los"),
        click.option("--asc", is_flag=True, help="升序（默认降序）"),
        click.option("--json", "as_json", is_flag=True, help="以 JSON 输出"),
    ]):
        fn = opt(fn)
    return fn


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc))


@click.group("search")
def search_group() -> None:
    """病案检索：简单、组合、批量、全文（与网页相同，均记入审计日志）。"""


@search_group.command("simple")
@click.option("--name", default="", help="姓名（汉字前缀）或拼音全拼/首字母")
@click.option("--mrn", default="", help="病案号")
@click.option("--admission-no", default="", help="住院号")
@click.option("--admitted-from", default="", help="入院日期起 YYYY-MM-DD")
@click.option("--admitted-to", default="", help="入院日期止")
@click.option("--discharged-from", default="", help="出院日期起")
@click.option("--discharged-to", default="", help="出院日期止")
@click.option("--icd", default="", help="ICD-10 编码或其前几位")
@click.option("--main-only", is_flag=True, help="只看主要诊断")
@click.option("--diagnosis", default="", help="诊断名称（包含）")
@_paging_options
@pass_ctx
def simple_cmd(ctx, page, page_size, sort, asc, as_json, **fields) -> None:
    """简单检索。"""
    from bingan_search import service
    from bingan_search.query import QueryError

    crit = service.SimpleCriteria(**fields)
    if not crit.given():
        raise click.UsageError("请至少给出一个检索条件（如 --name 张）")
    try:
        res = service.simple(ctx.rt, crit, service.Paging(page, page_size, sort, not asc),
                             actor=Actor.cli(), via="cli")
    except QueryError as exc:
        _fail(exc)
    _emit(res, as_json, functools.partial(_print_page, tz=ctx.rt.tz))


@search_group.command("combined")
@click.argument("query_file", type=click.Path(allow_dash=True, dir_okay=False))
@_paging_options
@pass_ctx
def combined_cmd(ctx, query_file, page, page_size, sort, asc, as_json) -> None:
    """组合检索：QUERY_FILE 是 JSON 格式的检索条件（- 表示从标准输入读取）。

    例：{"type":"group","op":"and","items":[{"type":"cond","field":"main_diagnosis_code",
    "op":"prefix","value":"K35"},{"type":"not","item":{"type":"cond","field":"discharge_way",
    "op":"eq","value":"1"}}]}
    """
    from bingan_search import service
    from bingan_search.query import QueryError, decode

    try:
        raw = sys.stdin.read() if query_file == "-" else Path(query_file).read_text("utf-8")
    except OSError as exc:
        raise click.ClickException(f"无法读取 {query_file}：{exc}") from exc
    try:
        node = decode(raw)
        res = service.combined(ctx.rt, node, service.Paging(page, page_size, sort, not asc),
                               actor=Actor.cli(), via="cli")
    except QueryError as exc:
        _fail(exc)
    _emit(res, as_json, functools.partial(_print_page, tz=ctx.rt.tz))


@search_group.command("batch")
@click.argument("numbers_file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--kind", type=click.Choice(["auto", "admission_no", "mrn"]), default="auto",
              show_default=True, help="号码类型")
@_paging_options
@pass_ctx
def batch_cmd(ctx, numbers_file, kind, page, page_size, sort, asc, as_json) -> None:
    """批量检索：NUMBERS_FILE 为 xlsx、csv 或文本文件（- 表示标准输入），列出找到与未找到的号码。"""
    from bingan_search import batch as batch_mod
    from bingan_search import service
    from bingan_search.query import QueryError

    rt = ctx.rt
    try:
        if numbers_file == "-":
            inp = batch_mod.BatchInput(batch_mod.split_text(sys.stdin.read()))
            source = "stdin"
        else:
            try:
                data = Path(numbers_file).read_bytes()
            except OSError as exc:
                raise click.ClickException(f"无法读取 {numbers_file}：{exc}") from exc
            inp = batch_mod.read_upload(numbers_file, data,
                                        rt.settings(SearchSettings).batch_max_upload_bytes,
                                        rt.settings(SearchSettings).batch_max_numbers)
            source = f"file:{numbers_file}"
        res = service.batch(rt, inp, kind, service.Paging(page, page_size, sort, not asc),
                            actor=Actor.cli(), via="cli", source=source)
    except batch_mod.BatchError as exc:
        service.record_failure(rt, "search.batch", Actor.cli(),
                               {"via": "cli", "kind": kind, "source": numbers_file}, exc)
        _fail(exc)
    except QueryError as exc:
        _fail(exc)

    def text(r) -> None:
        click.echo(f"提交 {r.submitted} 个号码（去重后 {r.unique}），找到 {r.found_numbers} 个，"
                   f"共 {r.total} 份病案；未找到 {len(r.not_found)} 个")
        for w in r.warnings:
            click.echo(f"注意：{w}")
        _print_hits([h.hit for h in r.hits], f"第 {r.page}/{r.pages} 页：", rt.tz)
        if r.not_found:
            click.echo("未找到：" + " ".join(r.not_found))
    _emit(res, as_json, text)


def _staff_for(rt, staff_no: str):
    """The staff member a CLI search runs for (page text is shown under their reading
    rights, as on the web); ClickException when unknown or disabled."""
    from bingan.core.staff import StaffError, get_staff, staff_ref

    with rt.sessions() as s:
        try:
            st = get_staff(s, staff_no.strip())
        except StaffError as exc:
            raise click.ClickException(str(exc)) from exc
        if not st.active:
            raise click.ClickException(f"工号 {st.staff_no} 已停用")
        if "search.use" not in staff_ref(st).permissions:
            raise click.ClickException(f"工号 {st.staff_no} 没有“病案检索”权限（search.use）")
        return staff_ref(st)


@search_group.command("fulltext")
@click.argument("query")
@click.option("--as", "as_staff", required=True, metavar="工号",
              help="以该职工的查阅权限检索：只列出其可查阅病案的页面（页面文字属病案内容）")
@click.option("--page", default=1, show_default=True, type=int)
@click.option("--page-size", type=int)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@pass_ctx
def fulltext_cmd(ctx, query, as_staff, page, page_size, as_json) -> None:
    """全文检索（需启用全文检索插件），只列出 --as 所指职工可查阅的病案。"""
    from bingan_search import service
    from bingan_search.query import QueryError

    user = _staff_for(ctx.rt, as_staff)
    actor = Actor.cli()
    actor = Actor(staff_no=f"{actor.staff_no}>{user.staff_no}"[:32], client_ip=actor.client_ip,
                  computer_name=actor.computer_name)
    try:
        res = service.fulltext(ctx.rt, query, page, page_size, user=user, actor=actor,
                               via="cli")
    except QueryError as exc:
        _fail(exc)

    def text(r) -> None:
        if not r.enabled:
            click.echo("全文检索未启用")
            return
        click.echo(f"第 {r.page} 页，{len(r.hits)} 条{'（还有更多）' if r.has_more else ''}")
        for h in r.hits:
            where = f"第{h.page_seq}页" if h.page_seq else ""
            click.echo(f"  {h.mrn:<10} {h.name:<6} {h.admission_no:<16} {where} {h.snippet}")
    _emit(res, as_json, text)


@search_group.command("reindex")
@click.option("--full", is_flag=True, help="清空后重建（更新了姓氏读音表之后）")
@click.option("--analyze", is_flag=True, help="完成后更新数据库统计信息（批量导入后建议）")
@pass_ctx
def reindex_cmd(ctx, full, analyze) -> None:
    """补齐姓名拼音键与诊断/手术名称词表（批量导入数据后运行）。"""
    from bingan.core import audit
    from bingan_search.index import reindex

    rt = ctx.rt

    def progress(label: str, n: int) -> None:
        click.echo(f"  {label}: {n}", err=True)

    counts = reindex(rt, full=full, analyze=analyze, progress=progress)
    with rt.sessions() as s, s.begin():
        audit.record(s, rt, "search.reindex", actor=Actor.cli(),
                     detail={**counts, "full": full, "analyze": analyze})
    click.echo(f"新增姓名 {counts['names']} 个，诊断名称 {counts['dx']} 个，"
               f"手术名称 {counts['op']} 个")
