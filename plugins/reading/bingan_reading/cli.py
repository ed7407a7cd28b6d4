"""``bingan access ...``: explain a decision, grant and revoke reading rights by hand."""

from __future__ import annotations

import datetime as dt

import click

from bingan.core.cli import pass_ctx


@click.group("access")
def access() -> None:
    """查阅权限：判定说明、手工授权与撤销。"""


@access.command("explain")
@click.argument("staff_no")
@click.argument("admission_no")
@click.argument("action", required=False, default="view")
@pass_ctx
def explain_cmd(obj, staff_no: str, admission_no: str, action: str) -> None:
    """说明 STAFF_NO 能否对 ADMISSION_NO 执行 ACTION（默认 view）：结论与每一票。"""
    from bingan.core import audit
    from bingan.core.permissions import UnknownAction
    from bingan.core.records import RecordError
    from bingan.core.staff import StaffError

    from bingan_reading.explain import explain, render_text

    rt = obj.rt
    try:
        with rt.sessions() as s, s.begin():
            text = render_text(explain(s, rt, staff_no, admission_no, action), rt)
            audit.record(s, rt, "reading.explain", actor=audit.Actor.cli(),
                         admission_no=admission_no[:32],
                         detail={"staff_no": staff_no, "action": action})
    except (StaffError, RecordError, UnknownAction) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(text)


@access.command("grant")
@click.argument("staff_no")
@click.option("--admission", "admission_no", help="住院号（一份病案）")
@click.option("--mrn", help="病案号（该患者全部病案）")
@click.option("--days", type=click.IntRange(1, 3660), default=7, show_default=True)
@click.option("--action", "actions", multiple=True, default=["view"], show_default=True)
@click.option("--reason", default="", help="授权理由")
@pass_ctx
def grant_cmd(obj, staff_no, admission_no, mrn, days, actions, reason) -> None:
    """授予 STAFF_NO 查阅一份病案（--admission）或一位患者全部病案（--mrn）的权限。"""
    from bingan.core import audit
    from bingan.core.grants import GrantError, create_grant
    from bingan.core.models import utcnow
    from bingan.core.records import RecordError
    from bingan.core.staff import StaffError

    rt = obj.rt
    deadline = utcnow() + dt.timedelta(days=days)
    try:
        with rt.sessions() as s, s.begin():
            g = create_grant(s, rt, staff_no=staff_no, actions=list(actions), deadline=deadline,
                             admission_no=admission_no, mrn=mrn, reason=reason,
                             granted_by=audit.Actor.cli(), source="cli")
            gid = g.id
    except (GrantError, RecordError, StaffError) as exc:
        raise click.ClickException(str(exc)) from exc
    from bingan_reading.applications import local

    click.echo(f"已授权 #{gid}：{staff_no} {'、'.join(actions)}，至 {local(deadline, rt.tz)}")


@access.command("revoke")
@click.argument("grant_id", type=int)
@pass_ctx
def revoke_cmd(obj, grant_id: int) -> None:
    """撤销授权 GRANT_ID。"""
    from bingan.core import audit
    from bingan.core.grants import GrantError, revoke_grant

    rt = obj.rt
    try:
        with rt.sessions() as s, s.begin():
            revoke_grant(s, rt, grant_id, actor=audit.Actor.cli())
    except GrantError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"已撤销授权 #{grant_id}")
