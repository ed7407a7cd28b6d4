"""The ``bingan`` command line. Plugins add commands through ``register_commands``."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import click

from bingan.core.config import ConfigError


class Ctx:
    """Lazily built runtime shared by the commands of one invocation."""

    def __init__(self) -> None:
        self._rt = None

    @property
    def rt(self):
        if self._rt is None:
            from bingan.core.runtime import build_runtime

            self._rt = build_runtime()
        return self._rt


pass_ctx = click.make_pass_decorator(Ctx, ensure=True)


def pass_rt(f: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for a command (core's or a plugin's): pass the runtime of this invocation
    as the first argument (built on first use, from the configuration)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context().ensure_object(Ctx)
        return f(ctx.rt, *args, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bingan")
def cli() -> None:
    """bingan 病案数字化管理平台。

    配置：BINGAN_CONFIG 指定的文件，否则 $BINGAN_HOME/plugins.toml，否则随程序安装的默认
    plugins.toml（与当前目录无关；`bingan plugins` 显示读取的文件）；数据目录 BINGAN_HOME（默认 ~/.local/share/bingan，
    即 $XDG_DATA_HOME/bingan）；
    数据库 BINGAN_DATABASE_URL；存储 BINGAN_STORAGE_URL。
    """


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-scheduler", is_flag=True, help="不在本进程运行定时任务")
@click.option("--workers", "task_workers", type=click.IntRange(min=0), default=None,
              help="本进程运行的后台任务线程数（默认取配置 [core] workers；"
                   "使用独立的 `bingan worker` 时为 0）")
@pass_ctx
def serve(ctx: Ctx, host: str, port: int, no_scheduler: bool, task_workers: int | None) -> None:
    """启动 Web 服务（拒绝未迁移的数据库）。"""
    import uvicorn

    from bingan.core.migrate import pending
    from bingan.core.web.app import create_app

    rt = ctx.rt
    behind = pending(rt)
    if behind:
        raise click.ClickException(
            f"数据库尚未迁移（待执行：{', '.join(behind)}）。请先运行 `bingan db upgrade`。")
    n_workers = rt.config.core.workers if task_workers is None else task_workers
    app = create_app(rt, start_scheduler=rt.config.core.scheduler and not no_scheduler,
                     workers=n_workers)
    if not n_workers:
        click.echo("本进程不运行后台任务（workers = 0）：请另行运行 `bingan worker`。")
    from bingan.core import fonts

    try:  # cover sheets, watermarks and stamps draw Chinese: say now that they cannot
        fonts.cjk_font()
    except fonts.FontMissing as exc:
        click.echo(f"警告：{exc}", err=True)
    click.echo(f"bingan 已启动：http://{host}:{port}  （Ctrl+C 停止）")
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)


@cli.group()
def db() -> None:
    """数据库迁移。"""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Ctx) -> None:
    """把数据库升级到核心与所有已启用插件的最新版本（可重复执行）。"""
    from bingan.core.migrate import upgrade

    heads = upgrade(ctx.rt)
    click.echo("数据库已是最新：" + ", ".join(heads))
    from bingan.core.audit import last_checkpoint_seq
    from bingan.core.defaults.jobs import audit_checkpoint

    if last_checkpoint_seq(ctx.rt) is None:  # install: anchor the (empty) chain at once
        entry = audit_checkpoint(ctx.rt, "genesis", force=True)
        click.echo(f"审计链创始检查点：事件 {entry['seq']}")


@db.command("status")
@pass_ctx
def db_status(ctx: Ctx) -> None:
    """显示当前版本与待执行的迁移。"""
    from bingan.core.migrate import current_heads, pending

    click.echo("当前：" + (", ".join(current_heads(ctx.rt)) or "（空数据库）"))
    behind = pending(ctx.rt)
    click.echo("待执行：" + (", ".join(behind) or "无"))
    sys.exit(1 if behind else 0)


@cli.group()
def demo() -> None:
    """演示数据。"""


@demo.command("load")
@click.option("--if-empty", is_flag=True, help="数据库已有数据时什么也不做")
@pass_ctx
def demo_load(ctx: Ctx, if_empty: bool) -> None:
    """载入演示医院：科室、约 20 名员工、300 份住院病案。"""
    from sqlalchemy import func, select

    from bingan.core import audit
    from bingan.core.demo import load_demo
    from bingan.core.models import Admission, Staff

    rt = ctx.rt
    with rt.sessions() as s, s.begin():
        has = (s.scalar(select(func.count()).select_from(Staff)) or 0) + (
            s.scalar(select(func.count()).select_from(Admission)) or 0)
        if has:
            if if_empty:
                from bingan.core.demo import demo_logins

                click.echo("数据库已有数据，跳过演示数据。")
                print_logins(demo_logins())
                return
            raise click.ClickException("数据库不是空的；演示数据只能载入空数据库。")
        summary = load_demo(s, rt)
        audit.record(s, rt, "demo.load", actor=audit.Actor.cli(),
                     detail={"admissions": summary.admissions})
    from bingan.core.records import to_ref

    with rt.sessions() as s:
        refs = [to_ref(a) for a in s.scalars(select(Admission).order_by(Admission.id))]
    rt.pm.hook.demo_loaded(admissions=refs, rt=rt)
    click.echo(f"已载入演示数据：{summary.admissions} 份病案，{summary.staff} 名员工。")
    print_logins(summary.logins)


def print_logins(logins) -> None:
    click.echo("演示账号（工号 / 密码）：")
    for staff_no, name, role, password in logins:
        click.echo(f"  {staff_no:<8} {password:<14} {name}（{role}）")


@cli.group()
def user() -> None:
    """员工账号。"""


@user.command("add")
@click.argument("staff_no")
@click.argument("name")
@click.option("--department", help="科室代码")
@click.option("--role", "roles", multiple=True, help="角色，可多次给出（admin、auditor ...）")
@click.option("--password", help="不给则交互输入")
@pass_ctx
def user_add(ctx: Ctx, staff_no, name, department, roles, password) -> None:
    """新增员工（首次登录时须修改此密码）。"""
    from bingan.core import audit
    from bingan.core.staff import StaffError, add_staff, ensure_builtin_roles

    password = password or click.prompt("密码", hide_input=True, confirmation_prompt=True)
    rt = ctx.rt
    try:
        with rt.sessions() as s, s.begin():
            ensure_builtin_roles(s, rt)
            add_staff(s, staff_no, name, password, department, list(roles), must_change=True,
                      record_roles={r for r, a in rt.config.core.role_actions.items() if a})
            audit.record(s, rt, "admin.user.add", actor=audit.Actor.cli(),
                         detail={"staff_no": staff_no, "roles": list(roles)})
    except StaffError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"已新增 {staff_no} {name}")


@user.command("passwd")
@click.argument("staff_no")
@click.option("--password", help="不给则交互输入")
@pass_ctx
def user_passwd(ctx: Ctx, staff_no, password) -> None:
    """重置密码（同时解除锁定、注销其全部会话；下次登录时须修改密码）。"""
    from bingan.core import audit
    from bingan.core.staff import StaffError, set_password

    password = password or click.prompt("新密码", hide_input=True, confirmation_prompt=True)
    rt = ctx.rt
    try:
        with rt.sessions() as s, s.begin():
            set_password(s, staff_no, password)
            audit.record(s, rt, "admin.user.password", actor=audit.Actor.cli(),
                         detail={"staff_no": staff_no})
    except StaffError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"已重置 {staff_no} 的密码")


@user.command("disable")
@click.argument("staff_no")
@click.option("--enable", is_flag=True, help="重新启用")
@pass_ctx
def user_disable(ctx: Ctx, staff_no, enable) -> None:
    """停用账号（并注销其全部会话）；--enable 重新启用。"""
    from bingan.core import audit
    from bingan.core.staff import StaffError, set_active

    rt = ctx.rt
    try:
        with rt.sessions() as s, s.begin():
            set_active(s, staff_no, enable)
            audit.record(s, rt, "admin.user." + ("enable" if enable else "disable"),
                         actor=audit.Actor.cli(), detail={"staff_no": staff_no})
    except StaffError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"已{'启用' if enable else '停用'} {staff_no}")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="JSON 输出")
@pass_ctx
def plugins_cmd(ctx: Ctx, as_json: bool) -> None:
    """已安装 / 已启用的插件、版本和实现的钩子。"""
    pm = ctx.rt.pm
    cfg = ctx.rt.config
    rows = []
    for name in sorted(set(pm.installed) | set(pm.loaded)):
        lp = pm.loaded.get(name)
        rows.append({"name": name, "installed": name in pm.installed, "enabled": lp is not None,
                     "version": lp.info.version if lp else pm.installed[name].dist.version
                     if pm.installed[name].dist else "",
                     "hooks": pm.hooks_implemented(name)})
    if as_json:
        click.echo(json.dumps({"config": str(cfg.path), "config_source": cfg.source,
                               "plugins": rows}, ensure_ascii=False, indent=2))
        return
    source = {"BINGAN_CONFIG": "由 BINGAN_CONFIG 指定", "BINGAN_HOME": "BINGAN_HOME 下",
              "installed default": "随程序安装的默认配置"}.get(cfg.source, cfg.source)
    click.echo(f"配置文件：{cfg.path}（{source}）")
    if not rows:
        click.echo("未安装任何插件。")
    for r in rows:
        state = "已启用" if r["enabled"] else "已安装未启用"
        click.echo(f"{r['name']:<14} {r['version']:<8} {state}  {', '.join(r['hooks'])}")


@cli.group()
def audit() -> None:
    """审计日志。"""


@audit.command("verify")
@click.option("--anchor", "anchors", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="另外核对的检查点文件（如从 syslog 或日志服务器取回的行），可重复")
@pass_ctx
def audit_verify(ctx: Ctx, anchors: tuple[str, ...]) -> None:
    """校验整条审计哈希链与每个检查点（签名、与链是否相符）；发现问题时指出第一条出错的事件并以非零状态退出。"""
    from pathlib import Path

    from bingan.core import audit as audit_mod

    rt = ctx.rt
    with rt.sessions() as s:
        with click.progressbar(length=1, label="校验审计链", file=sys.stderr) as bar:
            def progress(done, total):
                bar.length = max(total, 1)
                bar.update(done - bar.pos)
            res = audit_mod.verify(s, rt, progress=progress,
                                   extra=tuple(Path(a) for a in anchors))
    if res.ok:
        click.echo(f"审计链完整：{res.checked} 条事件。")
        return
    where = f"（第一条出错事件序号 {res.first_bad_seq}）" if res.first_bad_seq else ""
    click.echo(f"审计链被破坏：{res.problem}{where}", err=True)
    sys.exit(1)


@audit.command("checkpoint")
@pass_ctx
def audit_checkpoint(ctx: Ctx) -> None:
    """立即把链头签名写入所有检查点位置（服务启动时和定时任务也会写）。"""
    from bingan.core.defaults.jobs import audit_checkpoint as job

    entry = job("manual", force=True)
    click.echo(f"检查点：事件 {entry['seq']} {entry['hash'][:16]}…")


@cli.group()
def storage() -> None:
    """文件存储。"""


@storage.command("verify")
@click.option("--replica", "of_replica", is_flag=True, help="校验副本而不是主存储")
@pass_ctx
def storage_verify(ctx: Ctx, of_replica: bool) -> None:
    """全量哈希校验：报告缺失、损坏和孤立文件；有问题时非零退出。"""
    from bingan.core.storage import verify_store
    from bingan.core.storage_ops import primary_of, replica_of

    rt = ctx.rt
    store = replica_of(rt.store) if of_replica else primary_of(rt.store)
    if store is None:
        raise click.ClickException("未配置副本（BINGAN_REPLICA_URL）")
    with rt.sessions() as s:
        with click.progressbar(length=1, label="校验文件", file=sys.stderr) as bar:
            def progress(done, total):
                bar.length = max(total, 1)
                bar.update(done - bar.pos)
            report = verify_store(s, store, progress=progress)
    click.echo(f"已校验 {report.checked} 个文件：缺失 {len(report.missing)}，"
               f"损坏 {len(report.corrupt)}，孤立 {len(report.orphans)}")
    for kind, keys in (("缺失", report.missing), ("损坏", report.corrupt),
                       ("孤立", report.orphans)):
        for k in keys[:50]:
            click.echo(f"  {kind} {k}")
    if report.orphans and report.ok:
        click.echo("孤立文件没有记录引用（多为中断的写入），不是数据丢失；"
                   "运行 bingan storage cleanup 清除")
    # docs/operations.md: exit 1 when anything is reported, orphans included
    sys.exit(0 if report.ok and not report.orphans else 1)


@storage.command("cleanup")
@click.option("--grace", default=3600, show_default=True, help="只删除早于此秒数的孤立文件")
@pass_ctx
def storage_cleanup(ctx: Ctx, grace: int) -> None:
    """删除中断写入留下的临时文件和没有记录引用的孤立文件。"""
    from bingan.core import audit as audit_mod
    from bingan.core.storage import cleanup_store

    rt = ctx.rt
    from bingan.core.storage_ops import replica_of

    with rt.sessions() as s:  # cleanup_store commits as it goes
        tmp, orphans = cleanup_store(s, rt.store, orphan_grace_seconds=grace)
        replica = replica_of(rt.store)
        if replica is not None:
            rtmp, rorphans = cleanup_store(s, replica, orphan_grace_seconds=grace)
            tmp, orphans = tmp + rtmp, orphans + rorphans
    with rt.sessions() as s, s.begin():
        audit_mod.record(s, rt, "storage.cleanup", actor=audit_mod.Actor.cli(),
                         detail={"temp": tmp, "orphans": orphans})
    click.echo(f"已删除临时文件 {tmp} 个，孤立文件 {orphans} 个")


def _bar(label: str):
    """A progress bar on stderr whose length follows ``progress(done, total)``."""
    bar = click.progressbar(length=1, label=label, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.length = max(total, 1)
        bar.update(done - bar.pos)
    return bar, progress


def _stage_bars():
    """``progress(stage, done, total)`` drawing one bar per stage (backup and restore)."""
    state: dict = {}

    def progress(stage: str, done: int, total: int) -> None:
        if state.get("stage") != stage:
            if state.get("bar") is not None:
                state["bar"].render_finish()
            state["stage"], state["bar"] = stage, click.progressbar(
                length=max(total, 1), label=stage, file=sys.stderr)
            state["bar"].render_progress()
        bar = state["bar"]
        bar.length = max(total, 1)
        bar.update(done - bar.pos)

    def finish() -> None:
        if state.get("bar") is not None:
            state["bar"].render_finish()
    return progress, finish


@storage.command("repair")
@pass_ctx
def storage_repair(ctx: Ctx) -> None:
    """逐个哈希校验主存储中的文件，缺失或损坏的从副本（BINGAN_REPLICA_URL）恢复并重新校验；
    仍有无法修复的文件时非零退出。"""
    from bingan.core import audit as audit_mod
    from bingan.core.storage_ops import repair_store, replica_of

    rt = ctx.rt
    if replica_of(rt.store) is None:
        raise click.ClickException("未配置副本（BINGAN_REPLICA_URL），无法修复；"
                                   "请先配置副本并运行 bingan storage replicate")
    bar, progress = _bar("校验并修复")
    with rt.sessions() as s, bar:
        report = repair_store(s, rt.store, progress=progress)
    with rt.sessions() as s, s.begin():
        audit_mod.record(s, rt, "storage.repair", actor=audit_mod.Actor.cli(),
                         outcome="ok" if report.ok else "failed",
                         detail={"checked": report.checked, "repaired": report.repaired[:50],
                                 "unrepaired": report.unrepaired[:50]})
    click.echo(f"已校验 {report.checked} 个文件：发现问题 {len(report.found)}，"
               f"已从副本修复并复核 {len(report.repaired)}，无法修复 {len(report.unrepaired)}")
    for k in report.repaired[:50]:
        click.echo(f"  已修复 {k}")
    for k in report.unrepaired[:50]:
        click.echo(f"  无法修复 {k}（副本也缺失或损坏）")
    sys.exit(0 if report.ok else 1)


@storage.command("replicate")
@pass_ctx
def storage_replicate(ctx: Ctx) -> None:
    """把副本缺少的文件从主存储补写到副本（新配置副本后运行一次；定时任务也会补写）。"""
    from bingan.core import audit as audit_mod
    from bingan.core.storage_ops import replica_of, sync_replica

    rt = ctx.rt
    if replica_of(rt.store) is None:
        raise click.ClickException("未配置副本（BINGAN_REPLICA_URL）")
    bar, progress = _bar("补写副本")
    with rt.sessions() as s, bar:
        report = sync_replica(s, rt.store, progress=progress)
    with rt.sessions() as s, s.begin():
        audit_mod.record(s, rt, "storage.replicate", actor=audit_mod.Actor.cli(),
                         outcome="ok" if not report.failed else "failed",
                         detail={"copied": len(report.copied), "failed": report.failed[:50]})
    click.echo(f"共 {report.rows} 个文件：补写到副本 {len(report.copied)}，"
               f"失败 {len(report.failed)}")
    for k in report.failed[:50]:
        click.echo(f"  失败 {k}（主存储的文件缺失或损坏，运行 bingan storage verify）")
    sys.exit(0 if not report.failed else 1)


@storage.command("migrate")
@click.argument("target_url")
@pass_ctx
def storage_migrate(ctx: Ctx, target_url: str) -> None:
    """把全部文件复制到 TARGET_URL 指定的存储（如 s3://bucket/blobs?endpoint=...），
    逐个读回校验；中断后再次运行从断点继续。完成后把 BINGAN_STORAGE_URL 改为新地址。"""
    from bingan.core import audit as audit_mod
    from bingan.core.storage_ops import migrate_store, migration_state_path, primary_of

    rt = ctx.rt
    source = primary_of(rt.store)
    try:
        target = rt.open_store(target_url, "target")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if target.url == source.url:
        raise click.ClickException("目标就是当前存储")
    state = migration_state_path(rt.home, target.url)
    bar, progress = _bar("迁移文件")
    with rt.sessions() as s, bar:
        report = migrate_store(s, source, target, state, progress=progress)
    with rt.sessions() as s, s.begin():
        audit_mod.record(s, rt, "storage.migrate", actor=audit_mod.Actor.cli(),
                         outcome="ok" if report.done else "failed",
                         detail={"target": target_url.split("?", 1)[0], "total": report.total,
                                 "copied": report.copied, "present": report.present,
                                 "failed": report.failed[:50]})
    if report.resumed_after:
        click.echo(f"从上次中断处继续（{report.resumed_after[:12]}… 之后）")
    click.echo(f"共 {report.total} 个文件：本次复制并校验 {report.copied}，"
               f"目标已有且完好 {report.present}，失败 {len(report.failed)}")
    for k in report.failed[:50]:
        click.echo(f"  失败 {k}（源文件缺失或损坏：先运行 bingan storage repair）")
    if report.done:
        click.echo("迁移完成。停止服务，把 BINGAN_STORAGE_URL 改为目标地址后重新启动，"
                   "再运行 bingan storage verify；确认无误前保留原存储。")
    sys.exit(0 if report.done else 1)


@cli.command("backup")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--no-blobs", is_flag=True,
              help="不复制文件本身，只记清单（文件已在带副本的对象存储中时）")
@pass_ctx
def backup_cmd(ctx: Ctx, dest: str, no_blobs: bool) -> None:
    """备份到新文件夹 DEST：数据库（SQLite 在线备份或 pg_dump）、文件清单与文件、
    读取加密数据所需的密钥、审计检查点和配置。备份含密钥，请像保管密钥一样保管。"""
    from pathlib import Path

    from bingan.core.backup import BackupError, create_backup

    from bingan.core.storage import LocalBlobStore
    from bingan.core.storage_ops import replica_of

    if no_blobs and isinstance(ctx.rt.store, LocalBlobStore) and replica_of(ctx.rt.store) is None:
        click.echo("警告：文件只在本机一个文件夹中且未配置副本，--no-blobs 的备份不含文件本身，"
                   "磁盘损坏时无法恢复文件。", err=True)
    progress, finish = _stage_bars()
    try:
        manifest = create_backup(ctx.rt, Path(dest), include_blobs=not no_blobs,
                                 progress=progress)
    except BackupError as exc:
        finish()
        raise click.ClickException(str(exc)) from exc
    finish()
    b = manifest["blobs"]
    click.echo(f"备份完成：{dest}")
    click.echo(f"  数据库 {manifest['database']['file']}，文件 {b['count']} 个 "
               f"{b['bytes'] / 1e6:.1f} MB{'（已复制并校验）' if b['included'] else '（仅清单）'}，"
               f"审计链头 {manifest['audit']['head'].get('seq')}")


@cli.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@pass_ctx
def restore_cmd(ctx: Ctx, src: str) -> None:
    """把备份文件夹 SRC 恢复到空的 BINGAN_HOME 与空数据库（先核对备份中每个文件的哈希）。
    完成后请运行 bingan storage verify 和 bingan audit verify。"""
    from pathlib import Path

    from bingan.core.backup import BackupError, restore_backup

    progress, finish = _stage_bars()
    try:
        manifest = restore_backup(ctx.rt, Path(src), progress=progress)
    except BackupError as exc:
        finish()
        raise click.ClickException(str(exc)) from exc
    finish()
    ctx.rt.close()
    click.echo(f"已恢复 {manifest['created_at'][:19]} 的备份：文件 {manifest['blobs']['count']} 个，"
               f"审计链头 {manifest['audit']['head'].get('seq')}")
    if manifest.get("config_restored_as"):
        click.echo(f"  备份时的配置已存为 {manifest['config_restored_as']}")
    click.echo("请运行 bingan storage verify 与 bingan audit verify 核对。")


@cli.group()
def tasks() -> None:
    """后台任务（持久化队列）。"""


@tasks.command("status")
@pass_ctx
def tasks_status(ctx: Ctx) -> None:
    """各状态的任务数与最近失败的任务。"""
    from sqlalchemy import select

    from bingan.core.models import Task
    from bingan.core.tasks import counts

    with ctx.rt.sessions() as s:
        c = counts(s)
        click.echo("  ".join(f"{k}: {c.get(k, 0)}" for k in ("queued", "running", "done", "failed")))
        for t in s.scalars(select(Task).where(Task.status == "running").order_by(Task.id)
                           .limit(50)):
            click.echo(f"  运行中 #{t.id} {t.kind} 由 {t.locked_by}，租约至 "
                       f"{t.lease_until:%H:%M:%S} UTC，第 {t.attempts} 次")
        for t in s.scalars(select(Task).where(Task.status == "failed").order_by(Task.id.desc())
                           .limit(20)):
            click.echo(f"  失败 #{t.id} {t.kind} 尝试 {t.attempts} 次：{(t.last_error or '')[:120]}")


@cli.command()
@click.option("--processes", "-n", type=click.IntRange(min=1), default=1, show_default=True,
              help="工作进程数（一般等于本机 CPU 核数）")
@click.option("--kind", "kinds", multiple=True,
              help="只运行这些类型的任务，可多次给出（如 pageindex.ocr：本机只做 OCR）")
@click.option("--poll", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="队列为空时的轮询间隔（秒）")
@pass_ctx
def worker(ctx: Ctx, processes: int, kinds: tuple[str, ...], poll: float) -> None:
    """运行后台任务的独立工作进程（可在多台主机上运行，共用同一数据库与存储）。

    SIGTERM 或 Ctrl+C：完成当前任务后退出；再次发出则立即退出（任务由其他工作进程接手）。
    Web 服务不再自己运行任务时，在配置中设 [core] workers = 0。
    """
    import logging

    from bingan.core import worker as worker_mod
    from bingan.core.migrate import pending

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(levelname)s %(message)s")
    logging.getLogger("bingan").setLevel(logging.INFO)
    rt = ctx.rt
    behind = pending(rt)
    if behind:
        raise click.ClickException(
            f"数据库尚未迁移（待执行：{', '.join(behind)}）。请先运行 `bingan db upgrade`。")
    if processes > 1:
        sup = worker_mod.Supervisor(worker_mod.child_argv(list(kinds), poll), processes)
        sys.exit(sup.run())
    try:
        worker_mod.run_process(rt, kinds=list(kinds) or None, poll_seconds=poll,
                               on_task=_log_task)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def _log_task(task, seconds: float) -> None:
    import logging

    logging.getLogger("bingan.worker").info("任务 #%s %s 用时 %.2f 秒", task.id, task.kind,
                                            seconds)


@tasks.command("run")
@click.option("--max", "max_tasks", default=100000, show_default=True)
@pass_ctx
def tasks_run(ctx: Ctx, max_tasks: int) -> None:
    """在前台运行到期的任务，直到队列为空。"""
    from bingan.core.tasks import run_until_idle

    n = run_until_idle(ctx.rt, max_tasks)
    click.echo(f"已运行 {n} 个任务")


@tasks.command("retry")
@click.argument("task_id", type=int)
@pass_ctx
def tasks_retry(ctx: Ctx, task_id: int) -> None:
    """把失败的任务重新排队。"""
    from bingan.core.models import Task, utcnow

    with ctx.rt.sessions() as s, s.begin():
        t = s.get(Task, task_id)
        if t is None or t.status != "failed":
            raise click.ClickException(f"任务 {task_id} 不存在或未失败")
        t.status, t.attempts, t.run_after = "queued", 0, utcnow()
    click.echo(f"任务 {task_id} 已重新排队")


@cli.group("api-client")
def api_client() -> None:
    """接口客户端（HIS、EMR、CDR、360 视图等系统的凭据）。"""


@api_client.command("add")
@click.argument("client_id")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="权限范围，可多次给出：documents.read（读取病案文档）、"
                   "admissions.write（写入住院登记）")
@pass_ctx
def api_client_add(ctx: Ctx, client_id: str, name: str, scopes: tuple[str, ...]) -> None:
    """登记接口客户端；密钥只显示这一次（库中只存其哈希）。"""
    from bingan.core import apiclients

    rt = ctx.rt
    try:
        with rt.sessions() as s, s.begin():
            client, token = apiclients.add_client(s, rt, client_id, name, list(scopes),
                                                  by=audit_mod_actor())
            scopes_text = " ".join(client.scopes)
    except apiclients.ApiClientError as exc:
        raise click.ClickException(str(exc)) from exc
    secret = token.split("_", 2)[2]
    click.echo(f"已登记接口客户端 {client_id}（{name}），权限范围：{scopes_text}")
    click.echo("请立即交给对方系统，本密钥不会再次显示：")
    click.echo(f"  client_id     {client_id}")
    click.echo(f"  client_secret {secret}")
    click.echo(f"  Bearer 令牌   {token}")
    click.echo("用法：Authorization: Bearer <令牌>，或 POST /oauth/token 以 client_credentials "
               "换取一小时有效的访问令牌。")


@api_client.command("list")
@pass_ctx
def api_client_list(ctx: Ctx) -> None:
    """列出接口客户端。"""
    from bingan.core import apiclients

    with ctx.rt.sessions() as s:
        rows = apiclients.list_clients(s)
        if not rows:
            click.echo("尚未登记接口客户端。")
        for c in rows:
            state = f"已撤销 {c.revoked_at:%Y-%m-%d %H:%M}" if c.revoked_at else "有效"
            used = f"最近使用 {c.last_used_at:%Y-%m-%d %H:%M}" if c.last_used_at else "未使用"
            click.echo(f"{c.client_id:<20} {c.name:<16} {' '.join(c.scopes):<34} {state}  {used}")


@api_client.command("revoke")
@click.argument("client_id")
@pass_ctx
def api_client_revoke(ctx: Ctx, client_id: str) -> None:
    """撤销接口客户端：其密钥与已签发的令牌立即失效。"""
    from bingan.core import apiclients

    rt = ctx.rt
    try:
        with rt.sessions() as s, s.begin():
            apiclients.revoke_client(s, rt, client_id, by=audit_mod_actor())
    except apiclients.ApiClientError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"已撤销接口客户端 {client_id}")


def audit_mod_actor():
    from bingan.core import audit as audit_mod

    return audit_mod.Actor.cli()


@cli.command("jobs")
@pass_ctx
def jobs_cmd(ctx: Ctx) -> None:
    """列出定时任务。"""
    from bingan.core.jobs import all_jobs

    for j in all_jobs(ctx.rt):
        click.echo(f"{j.id:<26} {j.trigger:<8} {j.trigger_args}  {j.description}")


def build_cli(rt) -> click.Group:
    """A fresh root group: core's commands plus those of every enabled plugin (a copy, so a
    plugin disabled since leaves nothing behind in this process)."""
    import copy

    group = copy.copy(cli)
    group.commands = dict(cli.commands)
    if rt is not None:
        rt.pm.hook.register_commands(cli=group)
    return group


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        from bingan.core.runtime import build_runtime

        rt = build_runtime()
    except ConfigError as exc:
        if argv and argv[0] in ("-h", "--help", "--version"):
            rt = None
        else:
            click.echo(f"配置错误：{exc}", err=True)
            sys.exit(2)
    obj = Ctx()
    obj._rt = rt
    build_cli(rt).main(args=argv, prog_name="bingan", obj=obj)




if __name__ == "__main__":  # ``python -m bingan.core.cli`` (the worker supervisor's children)
    main()
