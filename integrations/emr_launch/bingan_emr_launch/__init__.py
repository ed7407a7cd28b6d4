"""bingan emr_launch integration: the EMR (or CDR, 360 view) opens bingan's viewer for its
signed-in user on one admission with an HMAC-signed, short-lived, single-use link
(REQUIREMENTS M2). The link signs the mapped staff member in; what they may read is decided by
the access policy exactly as for any sign-in.

Hookimpls only; links (signing and checking), web (routes) and cli hold the logic.
"""

from __future__ import annotations

from pathlib import Path

import click

from bingan.hooks import hookimpl
from bingan.hooks.types import JobSpec, PluginInfo

from bingan_emr_launch.settings import EmrLaunchSettings
from bingan.hooks.types import Runtime

HERE = Path(__file__).parent

PLUGIN = PluginInfo(name="emr_launch", version="0.1.0", hooks_api="1.0", settings=EmrLaunchSettings,
                    templates=HERE / "templates", migrations=HERE / "migrations" / "versions",
                    title="电子病历调阅链接")


@hookimpl
def register_routes():
    from bingan_emr_launch.web import ROUTES

    return list(ROUTES)


def purge_nonces(rt: Runtime) -> None:
    from bingan_emr_launch.links import purge

    with rt.sessions() as s, s.begin():
        purge(s)


@hookimpl
def register_jobs():
    return [JobSpec("emr_launch.purge", purge_nonces, "interval", {"hours": 1},
                    "清理已过期调阅链接的使用记录")]


@click.group("emr")
def emr_group() -> None:
    """EMR launch links (电子病历调阅链接)."""


@emr_group.command("link")
@click.option("--system", required=True, help="the EMR system's name in plugins.toml")
@click.option("--user", required=True, help="the EMR user id")
@click.option("--admission", required=True, help="住院号")
@click.option("--base", default="http://127.0.0.1:8000", show_default=True)
@click.option("--embed", is_flag=True, help="the 360 view embed instead of the viewer")
@click.pass_obj
def link_cmd(obj, system: str, user: str, admission: str, base: str, embed: bool) -> None:
    """Print a signed link, as the EMR would make it (to test the set-up)."""
    from bingan_emr_launch.links import make_link

    st = obj.rt.settings(EmrLaunchSettings)
    if system not in st.systems:
        raise click.ClickException(f"系统 {system} 未在 [plugins.emr_launch.systems] 中登记")
    click.echo(make_link(st, base, system, user, admission,
                         path="/emr/embed" if embed else "/emr/launch"))


@hookimpl
def register_commands(cli):
    cli.add_command(emr_group)


@hookimpl
def audit_action_labels():
    return {"emr.launch": "电子病历调阅链接"}
