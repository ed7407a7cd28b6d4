"""``bingan his``: pull now, see where each source is, list the rows that were refused."""

from __future__ import annotations

import click
from bingan_his_sql.settings import HisSqlSettings


@click.group("his")
def his_group() -> None:
    """HIS 首页视图拉取（his_sql）。"""


@his_group.command("pull")
@click.option("--source", "sources", multiple=True, help="数据源名称（默认全部启用的）")
@click.pass_obj
def pull_cmd(obj, sources: tuple[str, ...]) -> None:
    """立即拉取一次，逐行校验入库，打印结果与问题行。"""
    from bingan.core import audit
    from bingan_his_sql.pull import PullError, pull

    rt = obj.rt
    st = rt.settings(HisSqlSettings)
    names = list(sources) or [n for n, s in st.sources.items() if s.enabled]
    if not names:
        raise click.ClickException("plugins.toml 中没有配置 [plugins.his_sql.sources.*]")
    failed = False
    for name in names:
        try:
            rep = pull(rt, name, actor=audit.Actor.cli())
        except PullError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(rep.summary())
        for i in rep.issues[:200]:
            click.echo(f"  行 {i.row} 列 {i.column}：{i.reason}"
                       + (f"（{i.value}）" if i.value else ""))
        failed = failed or bool(rep.error)
    if failed:
        raise SystemExit(1)


@his_group.command("status")
@click.pass_obj
def status_cmd(obj) -> None:
    """各数据源的水位、上次拉取时间与错误。"""
    from bingan_his_sql.models import HisSqlState

    rt = obj.rt
    with rt.sessions() as s:
        for name in rt.settings(HisSqlSettings).sources:
            st = s.get(HisSqlState, name)
            if st is None:
                click.echo(f"{name}：尚未拉取")
                continue
            click.echo(f"{name}：上次 {st.last_run_at:%Y-%m-%d %H:%M:%S}Z，累计 {st.rows_total} 行，"
                       f"最后一行 {st.last_key}" + (f"，错误：{st.last_error}" if st.last_error
                                                 else ""))


@his_group.command("issues")
@click.option("--source", default=None)
@click.option("--limit", default=200, show_default=True)
@click.pass_obj
def issues_cmd(obj, source: str | None, limit: int) -> None:
    """未能入库的行（行主键、列、原因）。"""
    from sqlalchemy import select

    from bingan_his_sql.models import HisSqlIssue

    with obj.rt.sessions() as s:
        q = select(HisSqlIssue).order_by(HisSqlIssue.id.desc()).limit(limit)
        if source:
            q = q.where(HisSqlIssue.source == source)
        for i in s.scalars(q):
            click.echo(f"{i.source} 行 {i.row_key} 列 {i.column}：{i.reason}"
                       + (f"（{i.value}）" if i.value else ""))
